"""The training directory: its layout, and the one reader and writer of its paths (no TensorFlow).

Written by the trainer (:mod:`maskrcnn_body.training`) or by
:func:`maskrcnn_body.inference.loading.write_train_dir`; read by loading, the backends and the exports::

    TRAIN_DIR/
      config.json                     the run's Config (Config.to_json), written atomically
      checkpoint                      the checkpoint state (TensorFlow's CheckpointState text proto:
                                      model_checkpoint_path / all_model_checkpoint_paths, oldest first)
      ckpt-<step>.index               a checkpoint (tf.train.Checkpoint: model variables, optimizer, step)
      ckpt-<step>.data-00000-of-00001
      train/                          TensorBoard summaries of training
      eval/dumps/                     evaluation dumps written during training (maskrcnn-body train)
      eval_dumps/                     evaluation dumps of maskrcnn-body evaluate (its default --dump_dir)
      draw/                           pictures of maskrcnn-body train --draw
      step_error.log                  TensorFlow's whole message of a failed training step
      .worker<N>_tmp/                 a non-chief worker's scratch checkpoint (deleted after each save)

Everything else asks this module for these names: :class:`TrainDir`, :func:`is_train_dir`.
"""

from __future__ import annotations

import logging
import os
import re
from typing import List, Optional, Tuple, Union

from maskrcnn_body.config.io import load_file
from maskrcnn_body.config.sections import Config, ConfigError
from maskrcnn_body.errors import UserError
from maskrcnn_body.utils.files import write_text_atomic

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
STATE_FILE = "checkpoint"
CHECKPOINT_NAME = "ckpt"
"""Checkpoint prefixes are ``TRAIN_DIR/ckpt-<step>`` (files ``.index`` and ``.data-*``)."""
SUMMARIES_DIR = "train"
EVAL_DIR = "eval"
EVAL_DUMPS_DIR = os.path.join(EVAL_DIR, "dumps")
TRAIN_SPLIT_DUMPS_DIR = os.path.join(EVAL_DIR, "train_dumps")
CALIBRATION_DUMPS_DIR = "calibration_dumps"
EVALUATE_DUMPS_DIR = "eval_dumps"
DRAW_DIR = "draw"
STEP_ERROR_LOG = "step_error.log"

CHECKPOINT_FILE_RE = re.compile(rf"^({re.escape(CHECKPOINT_NAME)}-(\d+))(\.index|\.data-\d{{5}}-of-\d{{5}}|_temp.*)$")
"""A checkpoint's file (or TensorFlow's temporary while writing it): group 1 the prefix's name, 2 the step."""

PathLike = Union[str, "os.PathLike[str]"]


class TrainDirError(UserError):
    """A training directory that cannot be read (the message says why and what to run)."""


def checkpoint_step(prefix: str) -> int:
    """The step of checkpoint prefix ``.../ckpt-<step>`` (-1 when it has none)."""
    try:
        return int(str(prefix).rsplit("-", 1)[-1])
    except ValueError:
        return -1


def is_train_dir(path: PathLike) -> bool:
    """Whether ``path`` is a training directory (a directory with ``config.json``)."""
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, CONFIG_FILE))


class TrainDir:
    """The paths of one training directory, and reading/writing its config and checkpoint state."""

    def __init__(self, path: PathLike):
        self.path = os.fspath(path)

    def __repr__(self) -> str:
        return f"TrainDir({self.path!r})"

    # ------------------------------------------------------------------ paths
    @property
    def config_path(self) -> str:
        return os.path.join(self.path, CONFIG_FILE)

    @property
    def state_path(self) -> str:
        """The checkpoint state file (``checkpoint``)."""
        return os.path.join(self.path, STATE_FILE)

    @property
    def summaries_dir(self) -> str:
        return os.path.join(self.path, SUMMARIES_DIR)

    @property
    def eval_dir(self) -> str:
        return os.path.join(self.path, EVAL_DIR)

    @property
    def eval_dumps_dir(self) -> str:
        """Dumps of the evaluations run during training."""
        return os.path.join(self.path, EVAL_DUMPS_DIR)

    @property
    def train_split_dumps_dir(self) -> str:
        """Dumps of the end-of-training evaluation on training images (train-split AP beside val's)."""
        return os.path.join(self.path, TRAIN_SPLIT_DUMPS_DIR)

    @property
    def calibration_dumps_dir(self) -> str:
        """Dumps of the calibration split the mask decoding was chosen on (``workflows/calibrate.py``)."""
        return os.path.join(self.path, CALIBRATION_DUMPS_DIR)

    @property
    def evaluate_dumps_dir(self) -> str:
        """Default dumps directory of ``maskrcnn-body evaluate``."""
        return os.path.join(self.path, EVALUATE_DUMPS_DIR)

    @property
    def draw_dir(self) -> str:
        return os.path.join(self.path, DRAW_DIR)

    @property
    def step_error_log(self) -> str:
        return os.path.join(self.path, STEP_ERROR_LOG)

    def worker_scratch_dir(self, worker_id: int) -> str:
        """Where a non-chief worker writes its (discarded) share of a checkpoint."""
        return os.path.join(self.path, f".worker{worker_id}_tmp")

    def checkpoint(self, step: int) -> str:
        """The prefix of the checkpoint of ``step`` (it may not exist)."""
        return os.path.join(self.path, f"{CHECKPOINT_NAME}-{int(step)}")

    def is_train_dir(self) -> bool:
        return is_train_dir(self.path)

    # ------------------------------------------------------------------ config
    def read_config(self) -> Config:
        """The validated config (``config.json``); a :class:`TrainDirError` naming the file and what to
        run when it is missing or invalid."""
        path = self.config_path
        if not os.path.exists(path):
            raise TrainDirError(
                f"{path} not found: expected a training directory written by "
                f"`maskrcnn-body train` / train/train.py (config.json + ckpt-N files)"
            )
        try:
            return load_file(path)
        except ConfigError as e:
            raise TrainDirError(str(e)) from None

    def write_config(self, cfg: Config) -> str:
        """Writes ``config.json`` atomically (the directory is created); returns its path."""
        return write_text_atomic(self.config_path, cfg.to_json() + "\n")

    # ------------------------------------------------------------------ checkpoints
    def checkpoints(self) -> List[str]:
        """Checkpoint prefixes the state file lists (absolute when the directory is), newest first;
        [] without a state file (or with one that cannot be read, which is logged)."""
        state = self._read_state()
        if state is None:
            return []
        latest, listed = state
        paths = set(listed or [latest])
        if latest:
            paths.add(latest)
        return sorted(paths, key=checkpoint_step, reverse=True)

    def latest_checkpoint(self) -> Optional[str]:
        """The newest checkpoint prefix (the state file's ``model_checkpoint_path``) when its files
        exist, else None (as ``tf.train.latest_checkpoint``)."""
        state = self._read_state()
        if state is None or not state[0]:
            return None
        latest = state[0]
        return latest if os.path.exists(latest + ".index") else None

    def write_state(self, paths: List[str]) -> str:
        """Replaces the state file atomically; ``paths``: checkpoint prefixes, oldest first, newest
        last (stored relative to the directory, as TensorFlow does). Returns its path."""
        if not paths:
            raise ValueError("write_state needs at least one checkpoint")
        names = [os.path.relpath(p, self.path) for p in paths]
        lines = [f"model_checkpoint_path: {_quote(names[-1])}"]
        lines += [f"all_model_checkpoint_paths: {_quote(n)}" for n in names]
        return write_text_atomic(self.state_path, "\n".join(lines) + "\n")

    def checkpoint_files(self) -> List[Tuple[str, str]]:
        """``(prefix name, path)`` of every checkpoint file in the directory (``ckpt-<step>.index``,
        ``.data-*``, TensorFlow's ``_temp`` left-overs), sorted by path."""
        if not os.path.isdir(self.path):
            return []
        out = []
        for name in sorted(os.listdir(self.path)):
            m = CHECKPOINT_FILE_RE.match(name)
            if m is not None:
                out.append((m.group(1), os.path.join(self.path, name)))
        return out

    def _read_state(self) -> Optional[Tuple[str, List[str]]]:
        """``(model_checkpoint_path, all_model_checkpoint_paths)`` of the state file, paths joined
        to the directory; None when there is none or it cannot be parsed."""
        try:
            with open(self.state_path, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            return None
        except OSError as e:
            log.warning("%s cannot be read: %s", self.state_path, e)
            return None
        latest, listed = "", []
        for n, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            # a string field (the paths) or a number (TensorFlow's timestamps, ignored)
            m = re.fullmatch(r"(\w+)\s*:\s*(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|[-+0-9.eE]+)", line)
            paths = ("model_checkpoint_path", "all_model_checkpoint_paths")
            if m is None or (m.group(1) in paths and m.group(2)[0] not in "\"'"):
                log.warning("%s line %d cannot be parsed: %r", self.state_path, n, line)
                return None
            key, value = m.group(1), m.group(2)
            if key == "model_checkpoint_path":
                latest = self._join(_unquote(value))
            elif key == "all_model_checkpoint_paths":
                listed.append(self._join(_unquote(value)))
        return latest, listed

    def _join(self, name: str) -> str:
        return name if not name or os.path.isabs(name) else os.path.join(self.path, name)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


_ESCAPES = {"n": b"\n", "t": b"\t", "r": b"\r", '"': b'"', "'": b"'", "\\": b"\\"}


def _unquote(quoted: str) -> str:
    """The string of a text-proto string literal (C escapes, octal bytes as TensorFlow writes non-ASCII)."""
    body, out, i = quoted[1:-1], bytearray(), 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
            continue
        nxt = body[i + 1]
        octal = re.match(r"[0-7]{1,3}", body[i + 1 : i + 4])
        if octal:
            out.append(int(octal.group(0), 8) & 0xFF)
            i += 1 + len(octal.group(0))
        elif nxt == "x" and re.match(r"[0-9a-fA-F]{1,2}", body[i + 2 : i + 4]):
            hexa = re.match(r"[0-9a-fA-F]{1,2}", body[i + 2 : i + 4])
            assert hexa is not None
            out.append(int(hexa.group(0), 16))
            i += 2 + len(hexa.group(0))
        else:
            out += _ESCAPES.get(nxt, nxt.encode("utf-8"))
            i += 2
    return out.decode("utf-8", errors="surrogateescape")
