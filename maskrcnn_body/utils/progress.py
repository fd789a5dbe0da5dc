"""A one-line text progress bar: step, loss terms, steps/s and ETA."""

from __future__ import annotations

import sys
import time
from typing import Dict, Optional, TextIO


def format_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def peak_memory_mb() -> float:
    """Peak resident memory of this process in MiB (``VmHWM``; ``ru_maxrss`` where /proc is missing)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class ProgressBar:
    """Rewrites one terminal line (``\\r``) when ``stream`` is a TTY, else prints one line per
    :meth:`update`. Steps/s is measured over the steps since the previous update."""

    def __init__(self, total: int, start: int = 0, width: int = 20, stream: Optional[TextIO] = None):
        self.total = max(int(total), 1)
        self.width = width
        self.stream = stream or sys.stdout
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last_step = start
        self._last_time = time.perf_counter()
        self.rate = 0.0

    def line(self, step: int, logs: Dict[str, float]) -> str:
        now = time.perf_counter()
        if step > self._last_step:
            self.rate = (step - self._last_step) / max(now - self._last_time, 1e-9)
        self._last_step, self._last_time = step, now
        done = min(step / self.total, 1.0)
        fill = int(done * self.width)
        bar = "=" * fill + (">" if fill < self.width else "") + " " * (self.width - fill - 1)
        terms = " ".join(f"{k} {v:.4g}" for k, v in logs.items())
        eta = format_duration((self.total - step) / self.rate) if self.rate > 0 else "--:--"
        return f"step {step}/{self.total} [{bar}] {terms} | {self.rate:.2f} step/s | ETA {eta}"

    def update(self, step: int, logs: Dict[str, float]) -> None:
        text = self.line(step, logs)
        if self.tty:
            self.stream.write("\r\033[K" + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
