"""Stand-in exported models: the exports' interface (``image`` uint8 (H, W, 3) in; ``boxes`` (D, 4), ``scores``
(D,), ``masks`` (D, M, M, 7), ``keypoints`` (D, 15, 3), ``num_detections`` () out, signature
``serving_default``) with fixed detections, written in a second (ONNX) or a few (TFLite) instead of the
minute a real export takes. The fixed outputs are in the pixels of an image of at least :data:`MIN_SIZE`.
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np

D, M = 3, 14
MIN_SIZE = (96, 128)
"""(H, W) the fixed boxes fit in."""


def standin_detections() -> Dict[str, np.ndarray]:
    """The fixed outputs: two persons (D = 3 rows, the last one padding), masks with distinct parts."""
    rng = np.random.default_rng(7)
    boxes = np.array([[10, 8, 70, 90], [60, 20, 120, 80], [0, 0, 0, 0]], np.float32)
    scores = np.array([0.9, 0.7, 0.0], np.float32)
    masks = np.zeros((D, M, M, 7), np.float32)
    masks[:2, 2:12, 3:11, 0] = 0.9  # body
    masks[:2, 2:5, 5:9, 1] = 0.8  # head
    masks[:2, 5:9, 4:10, 2] = 0.7  # torso
    masks[:2, 9:12, 3:7, 5] = 0.6  # left leg
    keypoints = np.zeros((D, 15, 3), np.float32)
    for r in range(2):
        x1, y1, x2, y2 = boxes[r]
        keypoints[r, :, 0] = rng.uniform(x1, x2, 15)
        keypoints[r, :, 1] = rng.uniform(y1, y2, 15)
        keypoints[r, :, 2] = rng.uniform(0.1, 1.0, 15)
    return {"boxes": boxes, "scores": scores, "masks": masks, "keypoints": keypoints, "num_detections": np.int32(2)}


def write_standin_onnx(path: str) -> str:
    """An ONNX file whose graph returns :func:`standin_detections` for any image (needs the ``onnx`` package)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    det = standin_detections()
    nodes, outputs = [], []
    for name, value in det.items():
        value = np.asarray(value)
        nodes.append(helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value, name + "_value")))
        dtype = TensorProto.INT32 if value.dtype == np.int32 else TensorProto.FLOAT
        outputs.append(helper.make_tensor_value_info(name, dtype, list(value.shape)))
    image = helper.make_tensor_value_info("image", TensorProto.UINT8, ["H", "W", 3])
    graph = helper.make_graph(nodes, "standin", [image], outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def write_standin_tflite(path: str) -> str:
    """A TFLite file whose ``serving_default`` signature returns :func:`standin_detections` (needs TensorFlow)."""
    import tensorflow as tf

    det = standin_detections()

    class Standin(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.uint8, name="image")])
        def serve(self, image):
            zero = tf.cast(tf.reduce_min(image[:1, :1, :1]), tf.float32) * 0.0  # keeps the input in the graph
            return {k: tf.constant(v) + tf.cast(zero, tf.as_dtype(np.asarray(v).dtype)) for k, v in det.items()}

    module = Standin()
    conv = tf.lite.TFLiteConverter.from_concrete_functions([module.serve.get_concrete_function()], module)
    with open(path, "wb") as f:
        f.write(conv.convert())
    # the signature of a converted concrete function is named serving_default
    return path


# --------------------------------------------------------------------------- one image through an export
def run_tflite(tflite_path: str, image, runner=None) -> dict:
    """Runs the TFLite file on one RGB uint8 (H, W, 3) image of any size; returns the output dict
    (numpy, as :func:`run_saved_model`). The signature runner resizes the input tensor and
    re-allocates when the size changes."""
    from maskrcnn_body.inference.backends import load_tflite

    runner = runner or load_tflite(tflite_path)
    return runner(image=np.asarray(image, np.uint8))


def run_saved_model(export_dir: str, image, loaded: Optional[object] = None) -> dict:
    """Runs the SavedModel's ``serving_default`` signature on one RGB uint8 image; the output dict (numpy)."""
    import tensorflow as tf

    from maskrcnn_body.inference.backends import SIGNATURE

    loaded = loaded or tf.saved_model.load(export_dir)
    out = loaded.signatures[SIGNATURE](image=tf.constant(image))
    return {k: v.numpy() for k, v in out.items()}


def run_onnx(onnx_path: str, image, session=None) -> dict:
    """Runs the ONNX file with ONNX Runtime on one RGB uint8 image; the output dict as
    :func:`run_saved_model`."""
    from maskrcnn_body.inference.backends import onnxruntime_session

    session = session or onnxruntime_session(onnx_path)
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {session.get_inputs()[0].name: np.asarray(image, np.uint8)})))
