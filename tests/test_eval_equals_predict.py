"""Evaluation equals prediction (issue 26): the metrics ``evaluate`` reports (batches of 4 through the
input pipeline, each padded to its batch's largest image) equal those computed from what
``mb.load(train_dir)(image)`` returns one image at a time (each image padded to its own multiple of 32).

Before the mask-aware GroupNorm the padding entered the backbone's statistics, so the same image gave
other detections in a batch than alone. Images of four different sizes make the padding differ; the
resize scale is 1 for all of them, so the two paths' resizing (tf.data vs the export's) is the identity.
"""

from __future__ import annotations

import numpy as np
import pytest

import maskrcnn_body as mb
from helpers.masks import assert_masks_close
from helpers.models import write_random_train_dir
from maskrcnn_body.data import schema, synthetic, writer
from maskrcnn_body.evaluation import evaluator
from maskrcnn_body.inference.loading import load_trained_model
from maskrcnn_body.inference.record_dumps import _ground_truth, predict_dumps

SIZES = [(96, 128), (128, 96), (64, 128), (128, 128)]
SMALL = {
    "input.min_size": 128,
    "input.max_size": 128,
    "model.postprocess.score_threshold": 0.0,
    "model.postprocess.max_detections": 5,
}


def _leaves(d, prefix=""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _leaves(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


@pytest.mark.slow
def test_evaluate_equals_one_image_at_a_time_prediction(tmp_path):
    train_dir = str(tmp_path / "run")
    write_random_train_dir(train_dir, "cpu_small", seed=1, **SMALL)
    rng = np.random.default_rng(5)
    records = [schema.encode_example(synthetic.render_scene(rng, h, w, f"img{i}")) for i, (h, w) in enumerate(SIZES)]
    (path,) = writer.write_records(str(tmp_path / "val"), records)

    model, cfg, _ = load_trained_model(train_dir)
    batched = list(predict_dumps(model, path, cfg, batch_size=4))
    predictor = mb.load(train_dir, backend="tensorflow", score_threshold=0.0)
    single = []
    for sid, truth in _ground_truth(path, False):
        det = predictor(truth["image"])[0].detections
        single.append({"source_id": sid, **{k: det[k] for k in ("boxes", "scores", "masks", "keypoints")}, **truth})

    assert [d["source_id"] for d in batched] == [d["source_id"] for d in single]
    matched = 0
    for a, b in zip(batched, single):
        assert len(a["boxes"]) == len(b["boxes"]) > 0, a["source_id"]
        # random weights give near-tied scores, so float rounding (another padded size, other convolution
        # tiling) may swap which of two equal-scoring boxes NMS keeps: compare the rows found on both paths
        dist = np.abs(a["boxes"][:, None] - b["boxes"][None]).max(-1)
        rows = np.flatnonzero(dist.min(1) < 0.05)
        matched += len(rows)
        order = dist.argmin(1)[rows]
        np.testing.assert_allclose(a["scores"][rows], b["scores"][order], atol=1e-3, err_msg=a["source_id"])
        assert_masks_close(a["masks"][rows], b["masks"][order], atol=2e-3)
    assert matched >= 0.8 * sum(len(d["boxes"]) for d in batched)  # with padding in GroupNorm: ~0
    want = dict(_leaves(evaluator.evaluate(batched).summary))
    got = dict(_leaves(evaluator.evaluate(single).summary))
    for key, v in want.items():
        if v is not None:
            assert got[key] == pytest.approx(v, abs=1e-3), key  # 0.1 AP
