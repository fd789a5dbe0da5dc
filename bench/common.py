"""Framework-free helpers shared by the benchmark workers and the orchestrator.

Nothing here imports TensorFlow or torch (importing TF then torch in one process segfaults on
this machine): the orchestrator (:mod:`bench.run_all`) only starts one worker subprocess per
measured configuration, and each worker imports exactly one framework.

Worker protocol: a worker prints exactly one line ``BENCH_RESULT <json>`` on stdout (any
other output is ignored); :func:`run_worker` returns that dict, or ``{"error": ...}`` naming
the command and the tail of its stderr when it failed.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, Optional

import numpy as np

RESULT_PREFIX = "BENCH_RESULT "
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----------------------------------------------------------------------------- in the worker
def time_runs(fn: Callable[[], object], repeats: int, warmup: int = 1) -> Dict[str, object]:
    """Calls ``fn`` ``warmup`` times untimed (tracing, allocator warm-up), then ``repeats`` times
    timed with ``time.perf_counter``; ``fn`` must block until its result is computed.

    Returns ``{"times_s": [...], "median_s", "min_s", "warmup_s", "cpu_times_s": [...],
    "cpu_median_s"}``: wall times, and process CPU times (user + system of all threads, less
    sensitive than wall time to other processes on a shared CPU; with 2 busy threads it is up
    to 2x the wall time).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    t0 = time.perf_counter()
    for _ in range(warmup):
        fn()
    warm = time.perf_counter() - t0
    times, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return {
        "times_s": times,
        "median_s": float(statistics.median(times)),
        "min_s": float(min(times)),
        "warmup_s": warm,
        "cpu_times_s": cpu,
        "cpu_median_s": float(statistics.median(cpu)),
    }


def memory_mb() -> Dict[str, float]:
    """This process's resident memory: ``rss_mb`` now and ``peak_rss_mb`` (high-water mark,
    ``VmHWM`` of /proc/self/status, else ``ru_maxrss``), in MiB."""
    out = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmHWM", "VmRSS"):
                    out["peak_rss_mb" if key == "VmHWM" else "rss_mb"] = int(value.split()[0]) / 1024.0
    except OSError:
        pass
    if "peak_rss_mb" not in out:
        out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return out


def emit(result: Dict[str, object]) -> None:
    """Prints the worker's result line (see module docstring)."""
    sys.stdout.write(RESULT_PREFIX + json.dumps(result, sort_keys=True) + "\n")
    sys.stdout.flush()


def synthetic_people(size: int, num_people: int = 3, seed: int = 0, width: int = 0) -> Dict[str, np.ndarray]:
    """Deterministic ground truth for a training step on a ``size`` (high) x ``width`` (default
    ``size``) image (numpy only).

    Returns ``image`` float32 (size, width, 3) RGB in [0, 255]; ``boxes`` float32 (N, 4) x1, y1,
    x2, y2 in the pixel-edge frame (standing people side by side, about 0.8 * size tall);
    ``masks`` uint8 (N, size, width), 1 inside each box (a filled box, so the box-frame crop is
    all ones); ``keypoints`` float32 (N, 15, 3) x, y, v=2 along the box's vertical axis.
    """
    width = width or size
    rng = np.random.default_rng(seed)
    image = rng.uniform(0, 255, (size, width, 3)).astype(np.float32)
    boxes = np.zeros((num_people, 4), np.float32)
    step = width / (num_people + 1)
    for i in range(num_people):
        x1 = step * (i + 0.5)
        boxes[i] = [x1, size * 0.1, x1 + step * 0.8, size * 0.9]
    masks = np.zeros((num_people, size, width), np.uint8)
    kps = np.zeros((num_people, 15, 3), np.float32)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        masks[i, int(y1) : int(y2), int(x1) : int(x2)] = 1
        kps[i, :, 0] = (x1 + x2) / 2
        kps[i, :, 1] = np.linspace(y1 + 1, y2 - 1, 15)
        kps[i, :, 2] = 2
    return {"image": image, "boxes": boxes, "masks": masks, "keypoints": kps}


# ----------------------------------------------------------------------------- in the parent
def run_worker(
    module: str, flags: Dict[str, object], timeout_s: float = 900.0, env: Optional[Dict[str, str]] = None
) -> Dict[str, object]:
    """Runs ``python -m <module> --key=value ...`` from the repo root and returns its result dict.

    On a crash, timeout or missing result line returns ``{"error": "<what>", "command": ...}``
    (the benchmark goes on with the other measurements). ``wall_s`` (subprocess wall time,
    imports included) is added to every result.
    """
    cmd = [sys.executable, "-m", module] + [f"--{k}={v}" for k, v in flags.items()]
    full_env = dict(os.environ, **(env or {}))
    full_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout_s, env=full_env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s:.0f} s", "command": " ".join(cmd)}
    wall = time.perf_counter() - t0
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX) :])
            result["wall_s"] = wall
            return result
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-6:]
    return {
        "error": f"exit code {proc.returncode}, no result line: " + " | ".join(tail),
        "command": " ".join(cmd),
        "wall_s": wall,
    }


def package_version(*names: str) -> Optional[str]:
    """Installed version of the first distribution in ``names`` found (no import), else None."""
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_isa() -> str:
    """The vector extensions that matter for the figures (TF's oneDNN kernels and the compiled
    ops' builds differ by them), e.g. ``"x86-64 AVX2 AVX-512 AVX512-FP16 AMX"``."""
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    names = [
        ("avx2", "AVX2"),
        ("avx512f", "AVX-512"),
        ("avx512_bf16", "AVX512-BF16"),
        ("avx512_fp16", "AVX512-FP16"),
        ("amx_tile", "AMX"),
    ]
    return " ".join([platform.machine()] + [name for flag, name in names if flag in flags])


def gpu_description() -> str:
    """``nvidia-smi`` GPU names, or a sentence saying that no GPU is visible."""
    try:
        proc = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        if proc.returncode == 0 and proc.stdout.strip():
            return "; ".join(proc.stdout.strip().splitlines())
    except (OSError, subprocess.TimeoutExpired):
        pass
    return "none visible (no GPU on this machine): CPU figures only"


def machine_info() -> Dict[str, object]:
    """Description of this machine and software, without importing TF or torch."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "cpu_model": cpu_model(),
        "cpu_isa": cpu_isa(),
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on for x86-64)"),
        "cores": os.cpu_count(),
        "load_average_start": [round(x, 2) for x in load],
        "gpu": gpu_description(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "tensorflow": package_version("tensorflow", "tensorflow-cpu", "tf-nightly"),
        "keras": package_version("keras"),
        "torch": package_version("torch"),
        "torchvision": package_version("torchvision"),
        "numpy": package_version("numpy"),
    }


def ratio(ours: Optional[float], theirs: Optional[float]) -> Optional[float]:
    """``ours / theirs`` or None when either is missing or ``theirs`` is not positive."""
    if ours is None or theirs is None or theirs <= 0:
        return None
    return float(ours) / float(theirs)


def torch_available() -> bool:
    """torch and torchvision are installed (checked without importing them)."""
    return package_version("torch") is not None and package_version("torchvision") is not None
