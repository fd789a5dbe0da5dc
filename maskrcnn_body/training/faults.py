"""Fault handling for the training loop: stop signals and non-finite-step accounting."""
from __future__ import annotations

import signal
import threading
from typing import Optional


class TrainingDivergedError(RuntimeError):
    """Raised after ``max_bad_steps`` consecutive non-finite steps."""


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
                "in the training directory: lower --learning_rate, raise the warm-up, or check the "
                "input records, then restart")
