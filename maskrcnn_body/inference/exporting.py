"""Exports: SavedModel, TFLite (float32, float16, dynamic-range int8, full int8) and ONNX.

Every export has the one signature ``serving_default(image) -> dict``: one RGB ``uint8`` image of
any size, (H, W, 3), in; for the D = ``max_detections`` detection slots (rows past
``num_detections`` are zero), in original image pixels:

* ``boxes`` float32 (D, 4) x1, y1, x2, y2; ``scores`` float32 (D,); ``num_detections`` int32 ()
* ``masks`` float32 (D, M, M, 7) box-frame probabilities (paste with the README's rule)
* ``keypoints`` float32 (D, 15, 3) x, y, score

The SavedModel also has ``serving_batch(images)``: a batch of same-size images (B, H, W, 3) uint8
in one call, outputs (B, D, ...) and ``num_detections`` (B,) (equal to one-at-a-time calls, as
:meth:`~maskrcnn_body.inference.predictor.Predictor.predict_batch`). TFLite and ONNX files have
the single-image signature only: run a batch as a loop (the runners of
:mod:`~maskrcnn_body.inference.backends` do).

Frozen BatchNorm (``model.backbone.norm=frozen_bn``, the ``r50_fpn_imagenet`` preset) is folded into the
convolutions before tracing (:mod:`maskrcnn_body.model.fold`): no BatchNorm op is left in any export.

The graph is traced with the pure-TF ops and the ``NonMaxSuppressionV4`` NMS op
(``ops.backend.use_backend("tf", nms="v4")``): no custom op and no
``CropAndResize`` end up in it, so ``tf.saved_model.load`` works without this package, TFLite needs
builtin ops only, and tf2onnx maps every op (NMS to ONNX ``NonMaxSuppression``).

TFLite: the variables are frozen into constants before conversion (:func:`frozen_serving_module`);
the file keeps the (None, None, 3) input, and the interpreter resizes the input tensor and
re-allocates per image size. Boxes match the SavedModel within ~1e-3 px and masks within ~1e-4
(tests/test_export.py). Quantised TFLite (``quant=``): ``float16`` (weights stored as float16,
computed in float32 by XNNPACK), ``dynamic`` (int8 weights, activations quantised on the fly),
``int8`` (int8 weights and activations, calibrated on ``calib_images``; ops without an int8 kernel
and GroupNorm's statistics, :data:`INT8_FLOAT_OPS`, stay float). Their accuracy and speed against float32:
docs/BENCHMARKS.md.

ONNX: tf2onnx from the SavedModel (opset 17), the same input and output names; ONNX Runtime
matches the SavedModel within ~1e-3 px and ~1e-4 on masks (tests/test_export_onnx.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Iterable, Optional

import numpy as np
import tensorflow as tf

from maskrcnn_body.errors import InvalidArgument
from maskrcnn_body.inference.backends import BATCH_SIGNATURE, SIGNATURE
from maskrcnn_body.inference.transforms import postprocess, postprocess_batch, preprocess, preprocess_batch
from maskrcnn_body.model.fold import fold_frozen_batchnorm
from maskrcnn_body.ops.backend import use_backend
from maskrcnn_body.utils.files import atomic_path, write_bytes_atomic

TFLITE_QUANT = ("float16", "dynamic", "int8")
ONNX_OPSET = 17
INT8_FLOAT_OPS = ["SQUARED_DIFFERENCE", "MEAN", "SUM", "RSQRT"]
"""TFLite ops that the full-int8 export keeps in float (GroupNorm's statistics)."""


class ExportModule(tf.Module):
    def __init__(self, model, cfg):
        super().__init__()
        self.model = model
        i = cfg.input
        self._sizes = (i.min_size, i.max_size, i.pad_size)

    @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.uint8, name="image")])
    def serve(self, image):
        padded, shape, scale = preprocess(image, *self._sizes)
        out = postprocess(self.model.detect(padded, shape, training=False), scale, tf.shape(image)[:2])
        out["num_detections"] = tf.cast(out["num_detections"], tf.int32)
        return out

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")])
    def serve_batch(self, images):
        """Same-size images (B, H, W, 3): one resize rule for all, one model call."""
        padded, shape, scales = preprocess_batch(images, *self._sizes)
        hw = tf.tile(tf.shape(images)[1:3][None], [tf.shape(images)[0], 1])
        out = postprocess_batch(self.model.detect(padded, shape, training=False), scales, hw)
        out["num_detections"] = tf.cast(out["num_detections"], tf.int32)
        return out


def export_saved_model(model, cfg, export_dir: str, fold_batchnorm: bool = True) -> str:
    """Writes a SavedModel with signatures ``serving_default(image)`` and ``serving_batch(images)``
    (module docstring). ``fold_batchnorm``: trace the model with its frozen BatchNorm folded into the
    convolutions (:func:`~maskrcnn_body.model.fold.fold_frozen_batchnorm`; nothing to fold without
    ``model.backbone.norm=frozen_bn``); the TFLite and ONNX files, converted from the SavedModel, inherit it."""
    if fold_batchnorm:
        model = fold_frozen_batchnorm(model)
    module = ExportModule(model, cfg)
    with use_backend("tf", nms="v4"):  # no compiled op; one NMS op that TFLite and ONNX map
        signatures = {
            SIGNATURE: module.serve.get_concrete_function(),
            BATCH_SIGNATURE: module.serve_batch.get_concrete_function(),
        }
        tf.saved_model.save(module, export_dir, signatures=signatures)
    return export_dir


def frozen_serving_module(saved_model_dir: str) -> tf.Module:
    """The SavedModel's serving signature with every variable folded into a constant.

    ``TFLiteConverter.from_saved_model`` keeps Keras 3 variables as TFLite resource variables
    (VAR_HANDLE/READ_VARIABLE) that nothing initialises in the interpreter, so the converted model
    silently computes with garbage weights (NaN/1e38 outputs). Freezing first avoids that; the
    wrapper keeps the signature's input and output names.
    """
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    loaded = tf.saved_model.load(saved_model_dir)
    fn = loaded.signatures[SIGNATURE]
    frozen = convert_variables_to_constants_v2(fn, lower_control_flow=False)
    keys = list(fn.structured_outputs)  # flat outputs follow nest.flatten order: sorted keys
    keys.sort()
    (spec,) = fn.structured_input_signature[1].values()

    module = tf.Module()
    module.loaded = loaded  # the frozen graph is built from it; keep it alive while converting

    @tf.function(input_signature=[spec])
    def serve(image):
        return dict(zip(keys, frozen(image)))

    module.serve = serve
    return module


def export_tflite(
    saved_model_dir: str,
    tflite_path: str,
    optimize: bool = False,
    quant: Optional[str] = None,
    calib_images: Optional[Iterable[np.ndarray]] = None,
) -> str:
    """Converts the SavedModel to TFLite with builtin ops only (fails loudly if any op is not builtin).

    The file has one signature ``serving_default(image) -> {boxes, scores, num_detections, masks,
    keypoints}``, the SavedModel's. Its input is (None, None, 3): the interpreter resizes the input
    tensor and re-allocates for each image size.

    ``quant``: None (float32), ``"float16"``, ``"dynamic"`` (int8 weights) or ``"int8"`` (int8
    weights and activations calibrated on ``calib_images``, RGB uint8 arrays of any size, e.g.
    :func:`calibration_images`; required). ``optimize=True`` is the old spelling of ``"dynamic"``.
    """
    if optimize and quant is None:
        quant = "dynamic"
    if quant is not None and quant not in TFLITE_QUANT:
        raise InvalidArgument(f"quant={quant!r}: expected None or one of {TFLITE_QUANT}")
    module = frozen_serving_module(saved_model_dir)
    conv = tf.lite.TFLiteConverter.from_concrete_functions([module.serve.get_concrete_function()], module)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quant:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if quant == "float16":
        conv.target_spec.supported_types = [tf.float16]
    if quant == "int8":
        if calib_images is None:
            raise InvalidArgument(
                "quant='int8' needs calib_images (RGB uint8 arrays), e.g. calibration_images(records)"
            )
        images = [np.asarray(im, np.uint8) for im in calib_images]
        if not images:
            raise InvalidArgument("quant='int8': calib_images is empty")
        conv.representative_dataset = lambda: ([im] for im in images)
        # int8 kernels where TFLite has them; float kernels for the rest (NMS, resize of the input, ...)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
        # GroupNorm's statistics stay float: an int8 SQUARED_DIFFERENCE of (x - mean)^2 gets a
        # quantisation multiplier TFLite cannot represent (its Prepare aborts the process), and int8
        # means/variances would lose the small differences the normalisation divides by
        options = tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=INT8_FLOAT_OPS)
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=conv, debug_dataset=lambda: ([im] for im in images[:1]), debug_options=options
        )
        data = debugger.get_nondebug_quantized_model()
    else:
        data = conv.convert()
    write_bytes_atomic(tflite_path, data)
    return tflite_path


def calibration_images(patterns, num_images: int = 32) -> list:
    """The first ``num_images`` images (RGB uint8, original size) of the records matching
    ``patterns`` (a glob, comma-separated globs or a list), for int8 calibration."""
    from maskrcnn_body.data import schema
    from maskrcnn_body.data.writer import expand_patterns, iterate_records

    if not expand_patterns(patterns):
        from maskrcnn_body.errors import UserError

        raise UserError(f"no calibration records match {patterns!r}")
    out = []
    for path, i, rec in iterate_records(patterns):
        out.append(schema.decode_example(rec, f"{path}#{i}", decode_image=True).decode_image())
        if len(out) >= num_images:
            break
    return out


def export_onnx(saved_model_dir: str, onnx_path: str, opset: int = ONNX_OPSET, timeout_s: float = 3600) -> str:
    """Converts the SavedModel's ``serving_default`` signature to ONNX with tf2onnx (``pip install
    "maskrcnn_body[onnx]"``); input ``image`` uint8 (H, W, 3) of any size, outputs ``boxes``,
    ``scores``, ``num_detections``, ``masks``, ``keypoints`` as the SavedModel's.

    tf2onnx runs in a subprocess (its converter keeps TF graphs alive; a subprocess gives the
    memory back). Raises ``RuntimeError`` with tf2onnx's last lines when it fails."""
    try:
        import tf2onnx  # noqa: F401
    except ImportError:
        from maskrcnn_body.errors import UserError

        raise UserError('ONNX export needs tf2onnx: pip install "maskrcnn_body[onnx]"') from None
    with atomic_path(onnx_path, suffix=".onnx") as tmp:  # removed when tf2onnx fails
        _run_tf2onnx(saved_model_dir, tmp, opset, timeout_s)
    return onnx_path


def _run_tf2onnx(saved_model_dir: str, out_path: str, opset: int, timeout_s: float) -> None:
    cmd = [
        sys.executable,
        "-m",
        "tf2onnx.convert",
        "--saved-model",
        saved_model_dir,
        "--tag",
        "serve",
        "--signature_def",
        SIGNATURE,
        "--opset",
        str(opset),
        "--output",
        out_path,
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
    if proc.returncode != 0 or not os.path.exists(out_path):
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise RuntimeError(f"tf2onnx failed on {saved_model_dir} (exit {proc.returncode}):\n{tail}")
