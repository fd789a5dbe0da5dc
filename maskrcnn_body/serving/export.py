"""SavedModel and TFLite export.

The exported function takes one RGB ``uint8`` image of any size, (H, W, 3), and returns, for the D
= ``max_detections`` detection slots (rows past ``num_detections`` are zero), in original image pixels:

* ``boxes`` float32 (D, 4) x1, y1, x2, y2; ``scores`` float32 (D,); ``num_detections`` int32 ()
* ``masks`` float32 (D, M, M, 7) box-frame probabilities (paste with the README's rule)
* ``keypoints`` float32 (D, 15, 3) x, y, score

It is traced with the pure-TF ops (``MASKRCNN_BODY_OPS=tf``): no custom op and no
``CropAndResize`` end up in the graph, so ``tf.saved_model.load`` works without this package and
TFLite needs builtin ops only.
"""
from __future__ import annotations

import contextlib
import os
from typing import Optional

import tensorflow as tf

from maskrcnn_body.ops.roi_align import BACKEND_ENV
from maskrcnn_body.serving.predictor import postprocess, preprocess

SIGNATURE = "serving_default"


@contextlib.contextmanager
def pure_tf_ops():
    """Trace with the pure-TF op backend (export never uses compiled ops)."""
    old = os.environ.get(BACKEND_ENV)
    os.environ[BACKEND_ENV] = "tf"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(BACKEND_ENV, None)
        else:
            os.environ[BACKEND_ENV] = old


class ExportModule(tf.Module):
    def __init__(self, model, cfg):
        super().__init__()
        self.model = model
        i = cfg.input
        self._sizes = (i.min_size, i.max_size, i.pad_size)

    @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.uint8, name="image")])
    def serve(self, image):
        padded, shape, scale = preprocess(image, *self._sizes)
        out = postprocess(self.model.detect(padded, shape, training=False), scale)
        out["num_detections"] = tf.cast(out["num_detections"], tf.int32)
        return out


def export_saved_model(model, cfg, export_dir: str) -> str:
    """Writes a SavedModel with signature ``serving_default(image) -> dict`` (module docstring)."""
    module = ExportModule(model, cfg)
    with pure_tf_ops():
        fn = module.serve.get_concrete_function()
        tf.saved_model.save(module, export_dir, signatures={SIGNATURE: fn})
    return export_dir


def export_tflite(saved_model_dir: str, tflite_path: str, optimize: bool = False) -> str:
    """Converts the SavedModel to TFLite with builtin ops only (fails loudly if any op is not builtin)."""
    conv = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=[SIGNATURE])
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


def run_tflite(tflite_path: str, image) -> dict:
    """Runs the TFLite file on one RGB uint8 image; returns the output dict (numpy)."""
    interp = tf.lite.Interpreter(model_path=tflite_path, num_threads=2)
    runner = interp.get_signature_runner(SIGNATURE)
    return runner(image=image)


def run_saved_model(export_dir: str, image, loaded: Optional[object] = None) -> dict:
    loaded = loaded or tf.saved_model.load(export_dir)
    out = loaded.signatures[SIGNATURE](image=tf.constant(image))
    return {k: v.numpy() for k, v in out.items()}
