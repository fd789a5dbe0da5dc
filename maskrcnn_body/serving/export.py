"""SavedModel and TFLite export.

The exported function takes one RGB ``uint8`` image of any size, (H, W, 3), and returns, for the D
= ``max_detections`` detection slots (rows past ``num_detections`` are zero), in original image pixels:

* ``boxes`` float32 (D, 4) x1, y1, x2, y2; ``scores`` float32 (D,); ``num_detections`` int32 ()
* ``masks`` float32 (D, M, M, 7) box-frame probabilities (paste with the README's rule)
* ``keypoints`` float32 (D, 15, 3) x, y, score

It is traced with the pure-TF ops (``ops.backend.use_backend("tf")``): no custom op and no
``CropAndResize`` end up in the graph, so ``tf.saved_model.load`` works without this package and
TFLite needs builtin ops only.

TFLite: the variables are frozen into constants before conversion (:func:`frozen_serving_module`);
the file keeps the (None, None, 3) input, and the interpreter resizes the input tensor and
re-allocates per image size (:func:`run_tflite`). Boxes match the SavedModel within ~1e-3 px and
masks within ~1e-4 (tests/test_export.py). Tested with ``tf.lite.Interpreter`` from TF 2.21.
"""
from __future__ import annotations

import os

import tensorflow as tf

from maskrcnn_body.inference.transforms import postprocess, preprocess
from maskrcnn_body.ops.backend import use_backend

SIGNATURE = "serving_default"


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


def export_saved_model(model, cfg, export_dir: str) -> str:
    """Writes a SavedModel with signature ``serving_default(image) -> dict`` (module docstring)."""
    module = ExportModule(model, cfg)
    with use_backend("tf"):     # no compiled op in an exported graph
        fn = module.serve.get_concrete_function()
        tf.saved_model.save(module, export_dir, signatures={SIGNATURE: fn})
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


def export_tflite(saved_model_dir: str, tflite_path: str, optimize: bool = False) -> str:
    """Converts the SavedModel to TFLite with builtin ops only (fails loudly if any op is not builtin).

    The file has one signature ``serving_default(image) -> {boxes, scores, num_detections, masks,
    keypoints}``, the SavedModel's. Its input is (None, None, 3): the interpreter resizes the input
    tensor and re-allocates for each image size (:func:`run_tflite` does that per call).
    """
    module = frozen_serving_module(saved_model_dir)
    conv = tf.lite.TFLiteConverter.from_concrete_functions([module.serve.get_concrete_function()], module)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if optimize:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    data = conv.convert()
    os.makedirs(os.path.dirname(os.path.abspath(tflite_path)), exist_ok=True)
    tmp = tflite_path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, tflite_path)
    return tflite_path
