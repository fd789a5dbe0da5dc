"""Cells of the benchmark report (bench/report.py): reading worker results, formatting seconds, MiB, ratios.

A worker result is a dict; one with an ``"error"`` key (or anything else) failed, and every figure read from it
is None, rendered as :data:`DASH`.
"""

from __future__ import annotations

from typing import List, Optional

from bench.common import ratio

DASH = "-"

BACKEND_LABELS = {
    "tensorflow": "TensorFlow float32",
    "tensorflow_bf16": "TensorFlow bfloat16",
    "onnxruntime": "ONNX Runtime",
    "onnxruntime_int8": "ONNX Runtime int8",
    "openvino": "OpenVINO float32",
    "openvino_bf16": "OpenVINO bfloat16",
    "tflite": "TFLite (XNNPACK)",
}


def backend_label(b: str) -> str:
    """The table heading of a backend name."""
    return BACKEND_LABELS.get(b, b)


def succeeded(res) -> bool:
    return isinstance(res, dict) and "error" not in res


def value(res, key: str) -> Optional[float]:
    """``res[key]`` of a successful worker result, else None."""
    return float(res[key]) if succeeded(res) and res.get(key) is not None else None


def summed(results: List, key: str) -> Optional[float]:
    """Sum of ``key`` over worker results, None if any is missing."""
    vals = [value(r, key) for r in results]
    return None if any(v is None for v in vals) else sum(vals)


def fmt_s(x: Optional[float]) -> str:
    return DASH if x is None else f"{x:.3f}"


def fmt_mb(x: Optional[float]) -> str:
    return DASH if x is None else f"{x:.0f}"


def fmt_ratio(x: Optional[float]) -> str:
    return DASH if x is None else f"{x:.2f}x"


def fmt_pair(wall: Optional[float], cpu: Optional[float], fmt=fmt_s) -> str:
    """``wall (cpu)``."""
    return fmt(wall) if cpu is None else f"{fmt(wall)} ({fmt(cpu)})"


def peer_ratios(ours, peers: List, key: str) -> Optional[float]:
    """ours[key] / sum(peer[key])."""
    return ratio(value(ours, key), summed(peers, key))
