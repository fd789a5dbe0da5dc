"""A model over validation records -> evaluation dumps (the TensorFlow side of evaluation).

``write_dumps`` runs ``model.detect`` over validation records through the non-training input
pipeline (same resizing as training), maps boxes and keypoints back to original-image pixels
(``original = resized / scale``) and writes one ``evaluation.dumps`` ``.npz`` per image with the
record's full-resolution ground truth. ``evaluate_model`` then runs ``evaluation.evaluator``.
"""

from __future__ import annotations

import os
import shutil
import weakref
from typing import Any, Iterator, List, Optional, Tuple

import numpy as np
import tensorflow as tf

from maskrcnn_body.data import pipeline, schema
from maskrcnn_body.data.writer import iterate_records
from maskrcnn_body.evaluation import dumps, evaluator
from maskrcnn_body.utils.files import safe_file_name

_DETECT_FNS: weakref.WeakKeyDictionary[object, Tuple[tuple, Any]] = weakref.WeakKeyDictionary()


def detect_fn(model):
    """``tf.function`` of ``model.detect`` (inference mode), cached per model and mask decoding: traced once,
    again after ``model.cfg.model.postprocess``'s ``mask_thresholds`` / ``mask_body_union`` change (they are
    constants of the graph)."""
    p = model.cfg.model.postprocess
    decoding = (tuple(p.mask_thresholds), bool(p.mask_body_union))
    cached = _DETECT_FNS.get(model)
    if cached is None or cached[0] != decoding:
        fn = tf.function(lambda images, shape: model.detect(images, shape, training=False))
        cached = _DETECT_FNS[model] = (decoding, fn)
    return cached[1]


def _ground_truth(patterns, skip_corrupt: bool) -> Iterator[tuple]:
    """Yields ``(source_id, dump ground-truth arrays)`` for every record, in shard order
    (the order of the non-training pipeline), one at a time (full resolution)."""
    for path, i, rec in iterate_records(patterns, skip_corrupt=skip_corrupt):
        try:
            r = schema.decode_example(rec, f"{path}#{i}", decode_image=True)
        except schema.RecordError:
            if skip_corrupt:
                continue
            raise
        n, (h, w) = len(r.persons), (r.height, r.width)
        yield (
            r.source_id,
            {
                "image": r.decode_image(),
                "gt_boxes": np.asarray([p.bbox for p in r.persons], np.float32).reshape(n, 4),
                "gt_parts": np.asarray([p.parts for p in r.persons], np.uint8).reshape(n, h, w),
                "gt_valid": np.asarray([p.parts_valid for p in r.persons], np.uint8).reshape(n, 7),
                "gt_keypoints": np.asarray([p.keypoints for p in r.persons], np.float32).reshape(n, 15, 3),
            },
        )


def predict_dumps(model, patterns, cfg, batch_size: int = 4, max_images: Optional[int] = None) -> Iterator[dict]:
    """Yields dump dicts (``evaluation.dumps`` keys) for the first ``max_images`` records.

    Predictions (tf.data, non-training order = sorted shards, records in file order) and ground
    truth (:func:`_ground_truth`, the same order) are streamed side by side, so memory stays
    bounded however large the validation set; records the pipeline skipped are passed over.
    """
    gt = _ground_truth(patterns, cfg.input.skip_corrupt)
    ds = pipeline.build_dataset(patterns, cfg.input, batch_size, training=False)
    if max_images:
        ds = ds.unbatch().take(max_images).batch(batch_size)
    detect = detect_fn(model)
    for batch in ds:
        det = {k: v.numpy() for k, v in detect(batch["images"], batch["image_shape"]).items()}
        for j, sid in enumerate(batch["source_id"].numpy()):
            sid = sid.decode()
            truth = next((t for gt_sid, t in gt if gt_sid == sid), None)
            if truth is None:
                raise RuntimeError(
                    f"prediction for {sid!r} has no ground-truth record in {patterns!r} (records out of order?)"
                )
            n, s = int(det["num_detections"][j]), float(batch["scale"][j])
            kp = det["keypoints"][j, :n].copy()
            kp[..., :2] /= s
            yield {
                "source_id": sid,
                "boxes": det["boxes"][j, :n] / s,
                "scores": det["scores"][j, :n],
                "masks": det["masks"][j, :n],
                "keypoints": kp,
                **truth,
            }


def runner_dumps(runner, patterns, max_images: Optional[int] = None, skip_corrupt: bool = False) -> Iterator[dict]:
    """Yields dump dicts for the first ``max_images`` records, predicted by a backend runner
    (:data:`~maskrcnn_body.inference.backends.Runner`: an exported SavedModel, ONNX or TFLite file,
    or a training directory on any backend) on each record's full-resolution image, so that every
    backend and every quantised export is scored on the same images by the same metrics. The
    runner resizes as the exports do (``inference.transforms``)."""
    for i, (sid, truth) in enumerate(_ground_truth(patterns, skip_corrupt)):
        if max_images is not None and i >= max_images:
            return
        (det,) = runner([truth["image"]])
        yield {"source_id": sid, **{k: det[k] for k in ("boxes", "scores", "masks", "keypoints")}, **truth}


def write_runner_dumps(
    runner, patterns, out_dir: str, max_images: Optional[int] = None, skip_corrupt: bool = False
) -> List[str]:
    """:func:`runner_dumps` written as ``out_dir/<source_id>.npz``; returns the paths."""
    return [
        dumps.write_dump(os.path.join(out_dir, safe_file_name(d["source_id"]) + ".npz"), **d)
        for d in runner_dumps(runner, patterns, max_images, skip_corrupt)
    ]


def write_dumps(model, patterns, cfg, out_dir: str, batch_size: int = 4, max_images: Optional[int] = None) -> List[str]:
    """Writes ``out_dir/<source_id>.npz`` per image; returns the paths."""
    paths = []
    for d in predict_dumps(model, patterns, cfg, batch_size, max_images):
        paths.append(dumps.write_dump(os.path.join(out_dir, safe_file_name(d["source_id"]) + ".npz"), **d))
    return paths


def evaluate_model(model, patterns, cfg, dump_dir: str, batch_size: int = 4, max_images: Optional[int] = None):
    """Writes the dumps (``dump_dir`` is emptied first) and returns
    ``evaluation.evaluator.EvaluationResult``."""
    shutil.rmtree(dump_dir, ignore_errors=True)
    write_dumps(model, patterns, cfg, dump_dir, batch_size, max_images)
    return evaluator.evaluate_dir(dump_dir)
