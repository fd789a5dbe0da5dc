"""Fault handling for the training loop: stop signals and non-finite-step accounting."""

from __future__ import annotations

import signal
import threading
from typing import Optional


class TrainingError(RuntimeError):
    """A training run stopped for a reason the message explains (what failed, what to do)."""


class TrainingDivergedError(TrainingError):
    """Raised after ``max_bad_steps`` consecutive non-finite steps."""


class TrainingStepError(TrainingError):
    """A training step (or the input pipeline feeding it) raised inside TensorFlow.

    The message names the step, the batch's ``source_id`` s (when the batch was read), the first
    line of TensorFlow's error, the checkpoint to resume from, and what to do; the whole
    TensorFlow error is written to ``log_path``.
    """

    def __init__(
        self,
        step: int,
        source_ids,
        error: Exception,
        checkpoint: Optional[str],
        log_path: Optional[str],
        reading: bool = False,
    ):
        self.step, self.source_ids, self.error, self.log_path = step, list(source_ids), error, log_path
        first = (getattr(error, "message", None) or str(error)).strip().splitlines()
        first = first[0][:500] if first else type(error).__name__
        if reading:
            what = f"reading the training data for step {step} failed: {first}"
            todo = "fix or re-convert the record named above, or pass --skip_corrupt to skip and count corrupt records"
        else:
            shown = ", ".join(self.source_ids[:16]) + (" ..." if len(self.source_ids) > 16 else "")
            what = (
                f"training step {step} failed inside TensorFlow ({type(error).__name__}) on the batch of "
                f"images [{shown}]: {first}"
            )
            todo = (
                "look at these images (python convert_data/visualize_records.py --records GLOB --out_dir DIR); "
                "if they are unusual (no person, tiny or huge boxes, an odd size) leave them out or "
                "re-convert them, otherwise report this message as a bug"
            )
        resume = (
            f"the newest checkpoint is {checkpoint}; the same command resumes from it"
            if checkpoint
            else "no checkpoint was written yet"
        )
        log = f"; TensorFlow's full error is in {log_path}" if log_path else ""
        super().__init__(f"{what}\nWhat to do: {todo}.\nNothing is lost: {resume}{log}.")


class StopSignal:
    """Context manager turning SIGINT/SIGTERM into a flag the training loop polls.

    The loop then saves a checkpoint and returns cleanly. A second signal while stopping
    restores the default behaviour (so a double Ctrl-C still kills). Outside the main thread
    (where Python cannot install handlers) it only reports ``requested = False``.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.received: Optional[int] = None
        self._previous = {}

    @property
    def requested(self) -> bool:
        return self.received is not None

    def _handle(self, signum, frame):
        if self.received is not None:
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)
            return
        self.received = signum

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()
        return False


class BadStepCounter:
    """Counts skipped (non-finite) steps: ``total`` over the run and ``consecutive`` now."""

    def __init__(self, max_consecutive: int):
        self.max_consecutive = max_consecutive
        self.total = 0
        self.consecutive = 0

    def update(self, finite: bool, step: int) -> None:
        """Records one step; raises :class:`TrainingDivergedError` at the limit."""
        if finite:
            self.consecutive = 0
            return
        self.total += 1
        self.consecutive += 1
        if self.max_consecutive and self.consecutive >= self.max_consecutive:
            raise TrainingDivergedError(
                f"{self.consecutive} consecutive steps up to step {step} had a non-finite loss or "
                f"gradient ({self.total} skipped in total); stopping. The last good checkpoint is kept "
                "in the training directory: lower train.learning_rate, raise train.warmup_images, or check the "
                "input records, then restart"
            )
