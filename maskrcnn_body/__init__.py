"""maskrcnn_body: multi-person body-part segmentation (7 channels) and 15 keypoints with one Keras Mask R-CNN.

    import maskrcnn_body as mb
    model = mb.load("output/mask_rcnn")      # a training directory, a SavedModel directory, a .onnx or a .tflite file
    r = model("photo.jpg")[0]                # also a folder, a video ("clip.mp4": one result per frame), a list
    r.persons[0].masks["left_arm"], r.part_map, r.plot(), r.to_json()
    for r in model.track("clip.mp4"): ...    # persons with track_id
    model.evaluate("data/records/synthetic_val-*.tfrecord").summary
    model.export("onnx")
    model = mb.train()                       # = python train/train.py; returns the trained model

See :mod:`maskrcnn_body.inference.api` (results) and :mod:`maskrcnn_body.workflows` (train, evaluate, predict,
track, export). Importing the package is cheap: TensorFlow loads on first use.
"""

from maskrcnn_body.version import __version__

__all__ = ["Model", "Person", "Result", "__version__", "load", "train"]


def load(path, **kwargs):
    """A :class:`~maskrcnn_body.workflows.model.Model` for ``path`` (see :func:`maskrcnn_body.inference.api.load`)."""
    from maskrcnn_body.workflows.model import load as _load

    return _load(path, **kwargs)


def train(preset: str = "cpu_small", **kwargs):
    """Trains a model and returns it loaded (see :func:`maskrcnn_body.workflows.train.train`)."""
    from maskrcnn_body.workflows.train import train as _train

    return _train(preset, **kwargs)


def __getattr__(name):
    if name == "Model":
        from maskrcnn_body.workflows.model import Model

        return Model
    if name in ("Person", "Result"):
        from maskrcnn_body.inference import api

        return getattr(api, name)
    raise AttributeError(f"module 'maskrcnn_body' has no attribute {name!r}")
