"""Fault-tolerant checkpoints: atomic saves, keep-last-K, automatic resume, partial restore.

Layout of a checkpoint (``tf.train.Checkpoint``; files ``TRAIN_DIR/ckpt-<step>.{index,data-*}``):

* ``model/<keras variable path>``: every model variable under its stable Keras path
  (:mod:`maskrcnn_body.model.weights`), independent of how the model object graph is nested;
* ``optimizer``: the optimizer with its slots and its update counter (drives the LR schedule);
* ``step``: the trainer's step counter (int64; counts skipped steps too, so the data position
  of a resumed run matches the uninterrupted run).

Atomicity: TensorFlow writes the data/index files under temporary names and renames them when
complete, and ``tf.train.CheckpointManager`` then replaces the ``checkpoint`` state file
atomically. A process killed at any moment therefore leaves the state file pointing at a
complete checkpoint; :meth:`Checkpointer.restore_latest` additionally falls back to the
previous checkpoints if the newest one cannot be read.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
from typing import List, Optional, Tuple

import tensorflow as tf

from maskrcnn_body.model.weights import (
    CHECKPOINT_NAME,
    MODEL_PREFIX,
    VALUE_SUFFIX,
    escape_name,
    model_variable_key,
    named_model_variables,
    unescape_name,
)

log = logging.getLogger(__name__)


class Checkpointer:
    """Saves and restores model + optimizer + step for one training directory.

    In a multi-worker run every worker must call :meth:`save` (saving takes part in
    collectives); only the chief writes to ``directory``, the others write to a private
    scratch directory that is deleted right away. All workers restore from ``directory``.
    """

    def __init__(
        self, directory: str, model, optimizer, max_to_keep: int = 3, is_chief: bool = True, worker_id: int = 0
    ):
        self.directory = directory
        self.is_chief = is_chief
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="train_step")
        self.checkpoint = tf.train.Checkpoint(optimizer=optimizer, step=self.step, **named_model_variables(model))
        self._write_dir = directory if is_chief else os.path.join(directory, f".worker{worker_id}_tmp")
        self.manager = tf.train.CheckpointManager(
            self.checkpoint,
            self._write_dir,
            max_to_keep=max_to_keep if is_chief else 1,
            checkpoint_name=CHECKPOINT_NAME,
        )

    def save(self, step: int) -> Optional[str]:
        """Writes checkpoint ``ckpt-<step>``; returns its path on the chief, else None."""
        self.step.assign(step)
        path = self.manager.save(checkpoint_number=step)
        if not self.is_chief:
            shutil.rmtree(self._write_dir, ignore_errors=True)
            return None
        return path

    def candidates(self) -> List[str]:
        """Checkpoint prefixes in ``directory``, newest first."""
        state = tf.train.get_checkpoint_state(self.directory)
        if state is None:
            return []
        paths = list(state.all_model_checkpoint_paths) or [state.model_checkpoint_path]
        if state.model_checkpoint_path and state.model_checkpoint_path not in paths:
            paths.append(state.model_checkpoint_path)
        return sorted(set(paths), key=_checkpoint_number, reverse=True)

    def restore_latest(self) -> Optional[Tuple[str, int]]:
        """Restores the newest readable checkpoint; returns ``(path, step)`` or None if none.

        A checkpoint that fails to load (missing/corrupt files) is reported and the next older
        one is tried; if none loads, raises ``RuntimeError`` naming them.
        """
        failures = []
        for path in self.candidates():
            try:
                self.checkpoint.restore(path).assert_existing_objects_matched()
            except Exception as e:
                msg = str(e).splitlines()[0] if str(e) else type(e).__name__
                log.warning("checkpoint %s could not be loaded (%s); trying an older one", path, msg)
                failures.append(f"{path}: {msg}")
                continue
            return path, int(self.step.numpy())
        if failures:
            raise RuntimeError(
                "no checkpoint in {} could be loaded:\n  {}\nmove the directory away to start from scratch".format(
                    self.directory, "\n  ".join(failures)
                )
            )
        return None


def _checkpoint_number(path: str) -> int:
    try:
        return int(path.rsplit("-", 1)[-1])
    except ValueError:
        return -1


@dataclasses.dataclass
class PartialRestoreReport:
    """Outcome of :func:`restore_partial`: restored paths, skipped ``(path, reason)`` and
    checkpoint entries that no model variable used."""

    source: str
    restored: List[str]
    skipped: List[Tuple[str, str]]
    unused: List[str]

    def summary(self) -> str:
        lines = [
            f"partial restore from {self.source}: {len(self.restored)} variables restored, "
            f"{len(self.skipped)} skipped, {len(self.unused)} checkpoint entries unused"
        ]
        lines += [f"  skipped {p}: {why}" for p, why in self.skipped]
        lines += [f"  unused  {k}" for k in self.unused]
        return "\n".join(lines)


def resolve_checkpoint(path: str) -> str:
    """A checkpoint prefix from a prefix or a directory (its latest checkpoint)."""
    if os.path.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest is None:
            raise FileNotFoundError(f"--restore_from {path}: directory holds no checkpoint state file")
        return latest
    if not tf.io.gfile.exists(path + ".index"):
        raise FileNotFoundError(f"--restore_from {path}: no checkpoint (expected {path}.index)")
    return path


def restore_partial(model, path: str) -> PartialRestoreReport:
    """Copies every checkpoint value whose name and shape match a model variable.

    ``path`` is a checkpoint prefix or a directory written by :class:`Checkpointer` (e.g. a
    run trained without the keypoint head). Optimizer state and the step are not restored.
    """
    source = resolve_checkpoint(path)
    reader = tf.train.load_checkpoint(source)
    shapes = reader.get_variable_to_shape_map()
    restored, skipped, used = [], [], set()
    for v in model.variables:
        key = model_variable_key(v)
        if key not in shapes:
            skipped.append((v.path, "not in checkpoint"))
            continue
        used.add(key)
        if tuple(shapes[key]) != tuple(v.shape):
            skipped.append((v.path, f"shape {tuple(shapes[key])} in checkpoint vs {tuple(v.shape)} in model"))
            continue
        v.assign(reader.get_tensor(key))
        restored.append(v.path)
    prefix = escape_name(MODEL_PREFIX)
    unused = sorted(
        unescape_name(k[: -len(VALUE_SUFFIX)])
        for k in shapes
        if k.startswith(prefix) and k.endswith(VALUE_SUFFIX) and k not in used
    )
    if not restored:
        raise ValueError(
            f"--restore_from {source}: no variable matched by name and shape; is it a maskrcnn_body checkpoint?"
        )
    return PartialRestoreReport(source, restored, skipped, unused)
