"""Inference backends: what runs an exported or trained model, behind one :data:`~maskrcnn_body.inference.api.Runner`.

* ``tensorflow``: a training directory (``config.json`` + ``ckpt-N``) through
  :class:`~maskrcnn_body.inference.predictor.Predictor` (compiled ops when built; batches of same-size
  images in one call);
* ``savedmodel``: an exported SavedModel directory (``maskrcnn-body export``), its
  ``serving_default(image)`` signature, one image per call;
* ``tflite``: a ``.tflite`` file with the TFLite interpreter (XNNPACK on CPU), one image per call.

Every runner returns, per image, the detections the model kept in that image's pixels: ``boxes``
(R, 4), ``scores`` (R,), ``masks`` (R, M, M, 7) box-frame probabilities, ``keypoints`` (R, 15, 3).
"""
from __future__ import annotations

import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from maskrcnn_body.errors import UserError

SIGNATURE = "serving_default"
Runner = Callable[[Sequence[np.ndarray]], List[Dict[str, np.ndarray]]]


def is_train_dir(path: str) -> bool:
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, "config.json"))


def is_saved_model(path: str) -> bool:
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, "saved_model.pb"))


def tensorflow_runner(train_dir: str, checkpoint: Optional[str] = None) -> Runner:
    from maskrcnn_body.inference.predictor import Predictor
    return Predictor.from_train_dir(train_dir, checkpoint).predict_batch


def exported_runner(run_one: Callable[[np.ndarray], Dict[str, np.ndarray]]) -> Runner:
    """A runner over a single-image exported signature (D padded rows + ``num_detections``)."""
    def run(images: Sequence[np.ndarray]) -> List[Dict[str, np.ndarray]]:
        out = []
        for image in images:
            det = run_one(image)
            n = int(np.asarray(det["num_detections"]).reshape(-1)[0])
            out.append({k: np.asarray(det[k])[:n] for k in ("boxes", "scores", "masks", "keypoints")})
        return out
    return run


def saved_model_runner(export_dir: str) -> Runner:
    import tensorflow as tf
    fn = tf.saved_model.load(export_dir).signatures[SIGNATURE]
    return exported_runner(lambda image: {k: v.numpy() for k, v in fn(image=tf.constant(image)).items()})


def tflite_runner(path: str, num_threads: Optional[int] = None) -> Runner:
    runner = load_tflite(path, num_threads=num_threads or os.cpu_count() or 2)
    return exported_runner(lambda image: runner(image=np.asarray(image, np.uint8)))


def open_runner(path: str, checkpoint: Optional[str] = None) -> Tuple[Runner, str]:
    """``(runner, backend name)`` for a training directory, a SavedModel directory or a ``.tflite``
    file; a :class:`~maskrcnn_body.errors.UserError` saying what is expected otherwise."""
    if is_train_dir(path):
        return tensorflow_runner(path, checkpoint), "tensorflow"
    if is_saved_model(path):
        return saved_model_runner(path), "savedmodel"
    if os.path.isfile(path) and path.lower().endswith(".tflite"):
        return tflite_runner(path), "tflite"
    what = "does not exist" if not os.path.exists(path) else "is none of them"
    raise UserError(f"cannot load {path!r}: expected a training directory (config.json + ckpt-N files, written by "
                    f"maskrcnn-body train), an exported SavedModel directory (saved_model.pb, from maskrcnn-body "
                    f"export) or a .tflite file; {path!r} {what}")


def load_tflite(tflite_path: str, num_threads: int = 2):
    """The ``serving_default`` signature runner of a TFLite file (reuse it for many images)."""
    import tensorflow as tf
    interp = tf.lite.Interpreter(model_path=tflite_path, num_threads=num_threads)
    return interp.get_signature_runner(SIGNATURE)


def run_tflite(tflite_path: str, image, runner=None) -> dict:
    """Runs the TFLite file on one RGB uint8 (H, W, 3) image of any size; returns the output dict
    (numpy, as :func:`run_saved_model`). The signature runner resizes the input tensor and
    re-allocates when the size changes."""
    runner = runner or load_tflite(tflite_path)
    return runner(image=np.asarray(image, np.uint8))


def run_saved_model(export_dir: str, image, loaded: Optional[object] = None) -> dict:
    import tensorflow as tf
    loaded = loaded or tf.saved_model.load(export_dir)
    out = loaded.signatures[SIGNATURE](image=tf.constant(image))
    return {k: v.numpy() for k, v in out.items()}
