"""Post-training int8 quantisation of an ONNX export that keeps its accuracy (ONNX Runtime, no TensorFlow).

``quantize_onnx(float.onnx, out.int8.onnx, calib_images)`` writes a QDQ model (QuantizeLinear /
DequantizeLinear pairs around the quantised nodes, the format ONNX Runtime runs with int8 kernels):

* **what is int8**: the convolutions (:data:`DEFAULT_OP_TYPES`): their weights symmetric int8, **per output
  channel** (one scale per filter: the filters of a GroupNorm network differ in range by orders of magnitude,
  one scale per tensor rounds the small ones to zero), their input activations asymmetric uint8 with ranges
  (min/max) calibrated on real images (``calib_images``: RGB uint8 arrays of any size, e.g.
  :func:`maskrcnn_body.inference.exporting.calibration_images` of a held-out split);
* **what stays float**: everything else: GroupNorm's statistics, the box decoding and anchors (pixel
  coordinates up to the image size: 8 bits cannot hold them to a pixel), the scores, NMS, the RoIAlign
  gathers, the point head's MLPs and the mask/keypoint decoding. docs/BENCHMARKS.md ("int8 that keeps the
  accuracy") has the accuracy of each choice on the trained ``cpu_small`` model, scored on synthetic val with
  the project's metrics beside float32; the full-int8 TFLite export (every op int8) scores 0 AP.

Input and outputs keep the float export's names, dtypes and shapes (``image`` uint8 (H, W, 3) of any size ->
``boxes``, ``scores``, ``masks``, ``keypoints``, ``num_detections``), so every runner of an ``.onnx`` file
(``mb.load``, the server, ``maskrcnn-body evaluate``) runs it unchanged.
"""

from __future__ import annotations

import logging
import os
from typing import Iterable, Optional, Sequence

import numpy as np

from maskrcnn_body.errors import InvalidArgument, UserError
from maskrcnn_body.utils.files import atomic_path

ONNX_QUANT = ("int8",)
"""The quantised ONNX variants :func:`quantize_onnx` writes."""

DEFAULT_OP_TYPES = ("Conv",)
"""ONNX node types quantised by default: the convolutions (module docstring)."""


def quant_path(path: str, quant: str) -> str:
    """``NAME.<quant>.onnx`` beside ``path`` (``model.onnx`` -> ``model.int8.onnx``)."""
    stem = path[: -len(".onnx")] if path.lower().endswith(".onnx") else path
    return f"{stem}.{quant}.onnx"


def quantize_onnx(
    onnx_path: str,
    out_path: str,
    calib_images: Iterable[np.ndarray],
    op_types: Optional[Sequence[str]] = DEFAULT_OP_TYPES,
    exclude_nodes: Sequence[str] = (),
    per_channel: bool = True,
) -> str:
    """Writes the int8 QDQ model of the float ONNX export ``onnx_path`` to ``out_path`` (written whole or not at
    all) and returns ``out_path``. ``calib_images``: RGB uint8 (H, W, 3) arrays, run through the float model to
    collect each quantised activation's min/max. ``op_types``: the node types to quantise (None: every type
    ONNX Runtime can quantise, the "full int8" of the measurements); ``exclude_nodes``: node names kept
    float. Needs ``onnxruntime`` (``pip install "maskrcnn_body[onnx]"``)."""
    try:
        from onnxruntime.quantization import (
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )
    except ImportError as e:
        raise UserError(f'int8 ONNX needs onnxruntime: pip install "maskrcnn_body[onnx]" ({e})') from None
    if not os.path.isfile(onnx_path):
        raise UserError(f"no ONNX file at {onnx_path}")
    images = [np.ascontiguousarray(im, np.uint8) for im in calib_images]
    if not images:
        raise InvalidArgument("int8 quantisation needs at least one calibration image")
    bad = [im.shape for im in images if im.ndim != 3 or im.shape[-1] != 3]
    if bad:
        raise InvalidArgument(f"calibration images must be RGB uint8 (H, W, 3), got shapes {bad[:3]}")

    class _Images(CalibrationDataReader):
        def __init__(self):
            self._it = iter(images)

        def get_next(self):
            image = next(self._it, None)
            return None if image is None else {"image": image}

    root = logging.getLogger()
    advice = _DropAdvice()  # ONNX Runtime's "consider pre-processing" on the root logger: not for our users
    root.addFilter(advice)
    try:
        with atomic_path(out_path, suffix=".onnx") as tmp:
            quantize_static(
                onnx_path,
                tmp,
                _Images(),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=None if op_types is None else list(op_types),
                nodes_to_exclude=list(exclude_nodes),
                per_channel=per_channel,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
            )
    finally:
        root.removeFilter(advice)
    return out_path


class _DropAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()
