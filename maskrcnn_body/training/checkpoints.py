"""Fault-tolerant checkpoints: atomic saves, keep-last-K, automatic resume, partial restore.

Layout of a checkpoint (``tf.train.Checkpoint``; files ``TRAIN_DIR/ckpt-<step>.{index,data-*}``, names
and the state file's format from :mod:`maskrcnn_body.config.train_dir`):

* ``model/<keras variable path>``: every model variable under its stable Keras path
  (:mod:`maskrcnn_body.model.weights`), independent of how the model object graph is nested;
* ``optimizer``: the optimizer with its slots and its update counter (drives the LR schedule);
* ``step``: the trainer's step counter (int64; counts skipped steps too, so the data position
  of a resumed run matches the uninterrupted run).

Consistency on disk at every instant (a process may be killed anywhere, e.g. SIGKILL):

1. TensorFlow writes the new checkpoint's data/index files under temporary names and renames
   them when complete (``tf.train.Checkpoint.write``);
2. only then is the ``checkpoint`` state file replaced, atomically (temporary file + rename),
   listing the new checkpoint and the ``max_to_keep - 1`` newest older ones;
3. only then are the files of checkpoints no longer listed deleted (and left-overs of an
   earlier kill swept).

So the state file never lists a checkpoint whose files are gone, and always lists the newest
complete one. ``tf.train.CheckpointManager`` is not used for this: it records the state,
deletes the oldest checkpoint, then records the state again, so a kill between its deletion and
its second write leaves the state file listing a deleted checkpoint (issue 24).
:meth:`Checkpointer.restore_latest` additionally falls back to older checkpoints if the newest
one cannot be read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
from typing import Callable, ClassVar, List, Optional, Tuple

import tensorflow as tf

from maskrcnn_body.config.train_dir import TrainDir, checkpoint_step
from maskrcnn_body.errors import InvalidArgument
from maskrcnn_body.model.weights import (
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

    #: Test-only fault-injection point: called as ``fault_hook(point, step)`` at each stage of
    #: :meth:`save` (``"written"``: new files complete, state file not yet updated;
    #: ``"recorded"``: state file updated, dropped checkpoints not yet deleted; ``"deleted"``:
    #: rotation finished). ``tests/helpers/standin.py --kill_at`` kills the process there.
    fault_hook: ClassVar[Optional[Callable[[str, int], None]]] = None

    def __init__(
        self, directory: str, model, optimizer, max_to_keep: int = 3, is_chief: bool = True, worker_id: int = 0
    ):
        if max_to_keep < 1:
            raise InvalidArgument(f"max_to_keep must be >= 1, got {max_to_keep}")
        self.directory = directory
        self.train_dir = TrainDir(directory)
        self.is_chief = is_chief
        self.max_to_keep = max_to_keep if is_chief else 1
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="train_step")
        self.checkpoint = tf.train.Checkpoint(optimizer=optimizer, step=self.step, **named_model_variables(model))
        self._write_dir = TrainDir(directory if is_chief else self.train_dir.worker_scratch_dir(worker_id))

    def _fault(self, point: str, step: int) -> None:
        if Checkpointer.fault_hook is not None:
            Checkpointer.fault_hook(point, step)

    def save(self, step: int) -> Optional[str]:
        """Writes checkpoint ``ckpt-<step>`` and rotates; returns its path on the chief, else None.

        Order: files, then the state file (atomic), then deletion of what the state no longer
        lists — see the module docstring for why this keeps the directory consistent.
        """
        self.step.assign(step)
        # like tf.train.CheckpointManager.save: count saves in the checkpoint's own ``save_counter``
        # (restoring with assert_existing_objects_matched expects it in every checkpoint)
        self.checkpoint.save_counter.assign_add(1)
        path = self.checkpoint.write(self._write_dir.checkpoint(step))  # every worker takes part (collectives)
        if not self.is_chief:
            shutil.rmtree(self._write_dir.path, ignore_errors=True)
            return None
        self._fault("written", step)
        older = [p for p in self.candidates() if checkpoint_step(p) != int(step)]
        keep = [path] + [p for p in older if checkpoint_step(p) < int(step)][: self.max_to_keep - 1]
        keep = sorted(keep, key=checkpoint_step)
        self.train_dir.write_state(keep)
        self._fault("recorded", step)
        self._delete_unlisted(keep)
        self._fault("deleted", step)
        return path

    def _delete_unlisted(self, keep: List[str]) -> None:
        """Deletes checkpoint files in ``directory`` that the state file does not list (rotated
        out now, or left by a process killed between its state write and its deletion)."""
        kept = {os.path.basename(p) for p in keep}
        for name, f in self.train_dir.checkpoint_files():
            if name in kept:
                continue
            if os.path.isdir(f):
                shutil.rmtree(f, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(f)

    def candidates(self) -> List[str]:
        """Checkpoint prefixes in ``directory`` (those its state file lists), newest first."""
        return self.train_dir.checkpoints()

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
        latest = TrainDir(path).latest_checkpoint()
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
        raise InvalidArgument(
            f"--restore_from {source}: no variable matched by name and shape; is it a maskrcnn_body checkpoint?"
        )
    return PartialRestoreReport(source, restored, skipped, unused)
