"""The user-facing model (``mb.load``, ``mb.train``): :class:`maskrcnn_body.inference.api.Model` (predict, track,
evaluate) plus :meth:`Model.export`, which needs the export workflow.

    import maskrcnn_body as mb
    model = mb.load("output/mask_rcnn")
    results = model("photo.jpg")                                   # predict: images, folders, videos
    for r in model.track("clip.mp4"): r.persons[0].track_id        # track
    model.evaluate("data/records/synthetic_val-*.tfrecord").summary  # evaluate
    model.export("onnx")                                           # -> output/mask_rcnn/export/model.onnx
"""

from __future__ import annotations

import os
from typing import Optional, Union

from maskrcnn_body.errors import UserError
from maskrcnn_body.inference import api


class Model(api.Model):
    """A loaded model; see :class:`maskrcnn_body.inference.api.Model` for calling, :meth:`track` and
    :meth:`evaluate`. ``training``: the :class:`~maskrcnn_body.training.trainer.TrainResult` when the model comes
    from :func:`maskrcnn_body.train`, else None."""

    training = None

    def export(self, format: str = "onnx", path: Optional[str] = None, **options) -> str:
        """Exports a model loaded from a training directory; returns the path written.

        ``format``: ``"savedmodel"`` (a directory), ``"onnx"`` (``quant=None | "int8"``: the convolutions
        int8, the rest float, the variant that keeps the accuracy), ``"tflite"`` (``quant=None | "float16" |
        "dynamic" | "int8"``) or ``"web"`` (the in-browser page folder, docs/BROWSER.md); int8 needs
        ``calib_records``. ``path``: default ``<train_dir>/export/`` + ``saved_model`` | ``model.onnx``
        (``model.int8.onnx``) | ``model.tflite`` | ``web``. ``options``: :func:`maskrcnn_body.workflows.export.export`'s
        (``score_threshold``, ``max_detections``, ``calib_records``, ``calib_images``, ``score_records``: score a
        quantised file beside float32 and warn when it loses more than 1 AP). ``maskrcnn-body export`` does the
        same from the command line."""
        if self.format != "train_dir":
            raise UserError(
                f"{self.name!r} is already an export ({self.format}); export from the training directory it came from"
            )
        from maskrcnn_body.workflows.export import export_format

        return export_format(self.name, format, path, checkpoint=self.checkpoint, **options)


def load(path: Union[str, os.PathLike], **options) -> Model:
    """:func:`maskrcnn_body.inference.api.load` (same arguments) giving a :class:`Model` that can also export."""
    model = api.load(path, model_class=Model, **options)
    assert isinstance(model, Model)
    return model
