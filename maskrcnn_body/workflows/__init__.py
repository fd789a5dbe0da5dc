"""The workflows: train, evaluate, predict, track and export as Python functions (the command line is each with
flags). They sit between {training, inference} and {serving, cli} and are the only place that composes them.

* :func:`maskrcnn_body.workflows.train.train` -> a trained :class:`~maskrcnn_body.workflows.model.Model`
  (``mb.train``); the training hooks (evaluation, drawings) are in :mod:`~maskrcnn_body.workflows.hooks`.
* :func:`maskrcnn_body.workflows.evaluate.evaluate`: a model over records -> dumps, the metrics table and JSON.
* :func:`maskrcnn_body.workflows.predict.predict`: images, folders, videos, a webcam -> drawings and JSON files.
* :func:`maskrcnn_body.workflows.track.track`: a video -> annotated H.264 video, JSON Lines and COCO results.
* :func:`maskrcnn_body.workflows.export.export`: a training directory -> SavedModel, TFLite, ONNX, the web page.
* :func:`maskrcnn_body.workflows.model.load`: the user-facing model (``mb.load``).

Importing a workflow module does not import TensorFlow; running one that needs it does.
"""
