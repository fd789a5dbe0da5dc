"""maskrcnn_body: multi-person body-part segmentation (7 channels) and 15 keypoints with one Keras Mask R-CNN.

    import maskrcnn_body as mb
    model = mb.load("output/mask_rcnn")      # a training directory, a SavedModel directory or a .tflite file
    r = model("photo.jpg")[0]
    r.persons[0].masks["left_arm"], r.part_map, r.plot(), r.to_json()

See :mod:`maskrcnn_body.inference.api`. Importing the package is cheap: TensorFlow loads on first use.
"""

from maskrcnn_body.version import __version__

__all__ = ["Model", "Person", "Result", "__version__", "load"]


def load(path, **kwargs):
    """A :class:`~maskrcnn_body.inference.api.Model` for ``path`` (see :func:`maskrcnn_body.inference.api.load`)."""
    from maskrcnn_body.inference.api import load as _load

    return _load(path, **kwargs)


def __getattr__(name):
    if name in ("Model", "Person", "Result"):
        from maskrcnn_body.inference import api

        return getattr(api, name)
    raise AttributeError(f"module 'maskrcnn_body' has no attribute {name!r}")
