"""Loader of the compiled custom ops built from ``libs/`` (``make``).

``load()`` opens the fastest build of the library that the CPU supports (:func:`library_path`:
AVX-512, AVX2 or the portable baseline) and returns a :class:`CustomOps` whose functions have the
Python signatures and the semantics of the pure-TF ops (``ops.roi_align.multilevel_roi_align``,
``ops.boxes.pairwise_iou``, ``ops.targets.match``), or ``None`` when the library is not
built or fails to load (the reason is logged once and kept in :func:`load_error`). The
package never requires the library.

Which backend an op uses (compiled or pure TF) is decided by :mod:`maskrcnn_body.ops.backend`.

One deliberate difference: the compiled RoIAlign raises ``InvalidArgumentError`` for a
level index outside ``[0, L)`` (CPU kernel), where the pure-TF op clips it.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import tensorflow as tf

_HERE = os.path.dirname(os.path.abspath(__file__))
LIBRARY_PATH = os.path.join(_HERE, "_maskrcnn_body_ops.so")
"""The baseline build (x86-64-v2 on x86-64): loads on any CPU of the architecture."""
ISA_ENV_VAR = "MASKRCNN_BODY_OPS_ISA"
ISAS = ("avx512", "avx2", "baseline")
"""Builds of ``libs/`` from the fastest to the most portable (``libs/Makefile``)."""
_ISA_FLAGS = {
    # /proc/cpuinfo flags each build's -march needs (x86-64-v4 / x86-64-v3)
    "avx512": ("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl", "avx2", "fma", "bmi2"),
    "avx2": ("avx", "avx2", "fma", "bmi1", "bmi2", "f16c", "movbe"),
    "baseline": (),
}


def library_path_for(isa: str) -> str:
    return LIBRARY_PATH if isa == "baseline" else os.path.join(_HERE, f"_maskrcnn_body_ops.{isa}.so")


def _cpu_flags() -> frozenset:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def supported_isas() -> Tuple[str, ...]:
    """The builds this CPU can run, fastest first (always ends with ``"baseline"``)."""
    flags = _cpu_flags()
    return tuple(isa for isa in ISAS if all(f in flags for f in _ISA_FLAGS[isa]))


def library_path() -> str:
    """The library :func:`load` opens: env ``MASKRCNN_BODY_OPS_ISA`` (``avx512`` | ``avx2`` |
    ``baseline``) when set, else the fastest build present that this CPU supports."""
    forced = os.environ.get(ISA_ENV_VAR, "").strip().lower()
    if forced:
        if forced not in ISAS:
            raise ValueError(f"env {ISA_ENV_VAR}={forced!r} is not one of {ISAS}")
        return library_path_for(forced)
    for isa in supported_isas():
        path = library_path_for(isa)
        if os.path.exists(path):
            return path
    return LIBRARY_PATH


_log = logging.getLogger(__name__)
_lock = threading.Lock()
_state: Dict[str, Any] = {"tried": False, "ops": None, "error": None, "path": None}


def _compute_dtype(t: tf.Tensor) -> tf.DType:
    return tf.float64 if t.dtype == tf.float64 else tf.float32


class CustomOps:
    """The compiled ops with the pure-TF functions' signatures (see docs/DESIGN.md "Ops").

    Like the pure-TF ops, inputs are computed and returned in float32 (float64 inputs stay
    float64, which the gradient checks use).
    """

    def __init__(self, module):
        self.module = module

    def multilevel_roi_align(
        self,
        features: Sequence[tf.Tensor],
        boxes,
        levels,
        strides: Sequence[int],
        output_size: Union[int, Tuple[int, int]],
        sampling_ratio: int = 2,
        aligned: bool = True,
    ) -> tf.Tensor:
        """RoIAlign over a feature pyramid.

        features: L <= 8 tensors (B, H_l, W_l, C); boxes (B, R, 4) x1,y1,x2,y2 in image
        pixels; levels (B, R) int32 index into ``features``; strides: L ints; output_size:
        S or (S_h, S_w). Returns (B, R, S_h, S_w, C) float32 (float64 for float64 input).
        Differentiable with respect to ``features`` (not ``boxes``).
        """
        if isinstance(output_size, int):
            out_h = out_w = output_size
        else:
            out_h, out_w = (int(v) for v in output_size)
        features = [tf.convert_to_tensor(f) for f in features]
        compute = _compute_dtype(features[0])
        return self.module.multilevel_roi_align(
            features=[tf.cast(f, compute) for f in features],
            boxes=tf.cast(boxes, compute),
            levels=tf.cast(levels, tf.int32),
            strides=[int(s) for s in strides],
            output_height=out_h,
            output_width=out_w,
            sampling_ratio=int(sampling_ratio),
            aligned=bool(aligned),
        )

    def pairwise_iou(self, a, b) -> tf.Tensor:
        """IoU of a (..., N, 4) and b (..., M, 4) -> (..., N, M); leading dims broadcast."""
        a = tf.convert_to_tensor(a)
        compute = _compute_dtype(a)
        a = tf.cast(a, compute)
        b = tf.cast(b, compute)
        if a.shape.rank != b.shape.rank or a.shape.rank is None or a.shape.rank < 2:
            raise ValueError(
                f"pairwise_iou expects a (..., N, 4) and b (..., M, 4) of equal rank, got {a.shape} and {b.shape}"
            )
        if a.shape.rank > 2 and a.shape[:-2] != b.shape[:-2]:
            lead = tf.broadcast_dynamic_shape(tf.shape(a)[:-2], tf.shape(b)[:-2])
            a = tf.broadcast_to(a, tf.concat([lead, tf.shape(a)[-2:]], 0))
            b = tf.broadcast_to(b, tf.concat([lead, tf.shape(b)[-2:]], 0))
        return self.module.box_pairwise_iou(a, b)

    def match(self, iou, pos_iou: float, neg_iou: float, allow_low_quality: bool = True, gt_valid=None):
        """iou (..., G, M) (+ gt_valid (..., G) bool, default all True) -> (matched_gt
        (..., M) int32, labels (..., M) int32 in {1 pos, 0 neg, -1 ignore})."""
        iou = tf.convert_to_tensor(iou)
        iou = tf.cast(iou, _compute_dtype(iou))
        if gt_valid is None:
            gt_valid = tf.ones(tf.shape(iou)[:-1], tf.bool)
        return self.module.box_match(
            iou,
            tf.cast(gt_valid, tf.bool),
            pos_iou=float(pos_iou),
            neg_iou=float(neg_iou),
            allow_low_quality=bool(allow_low_quality),
        )


def _register_gradients(module) -> None:
    """Gradient of the RoIAlign op w.r.t. features; None for boxes and levels."""

    @tf.RegisterGradient("MultilevelRoiAlign")
    def _roi_align_grad(op, grad):  # pylint: disable=unused-variable
        n = op.get_attr("N")
        grads = module.multilevel_roi_align_grad(
            features=op.inputs[:n],
            boxes=op.inputs[n],
            levels=op.inputs[n + 1],
            grad=grad,
            strides=op.get_attr("strides"),
            output_height=op.get_attr("output_height"),
            output_width=op.get_attr("output_width"),
            sampling_ratio=op.get_attr("sampling_ratio"),
            aligned=op.get_attr("aligned"),
        )
        return list(grads) + [None, None]

    for name in ("MultilevelRoiAlignGrad", "BoxPairwiseIou", "BoxMatch"):
        tf.no_gradient(name)


def load() -> Optional[CustomOps]:
    """The compiled ops, or None when ``LIBRARY_PATH`` is missing or fails to load."""
    with _lock:
        if not _state["tried"]:
            _state["tried"] = True
            path = library_path()
            _state["path"] = path
            if not os.path.exists(path):
                _state["error"] = (
                    f"{path} not found; run `make` at the repository root "
                    "to build the compiled ops (using the pure-TF ops)"
                )
                _log.info("custom ops not loaded: %s", _state["error"])
            else:
                try:
                    module = tf.load_op_library(path)
                    _register_gradients(module)
                    _state["ops"] = CustomOps(module)
                except Exception as e:
                    _state["error"] = (
                        f"failed to load {path}: {e}; rebuild with `make` for this TensorFlow (using the pure-TF ops)"
                    )
                    _log.warning("custom ops not loaded: %s", _state["error"])
        return _state["ops"]


def loaded_path() -> Optional[str]:
    """The library file :func:`load` opened (or tried to); None before the first call."""
    return _state["path"]


def availability_note() -> Optional[str]:
    """A one-line note for users when the compiled ops are not in use (None when they are)."""
    if load() is not None:
        return None
    return (
        f"note: the compiled ops are not available ({load_error()}); the pure-TF ops run instead, about "
        "1.5x slower per training step. Build them with `make` (a C++ compiler is needed; libs/README.md)."
    )


def load_error() -> Optional[str]:
    """Why :func:`load` returned None (None when it loaded or was not tried)."""
    return _state["error"]
