"""Inference: loading a trained model, the image <-> model frame transforms, the single-image
:class:`~maskrcnn_body.inference.predictor.Predictor`, the evaluation dumps of a model over records,
and the JSON of detections."""
