"""Mask decoding (issue 26, fix 4): per-channel thresholds and body = max(body, parts), chosen on a
calibration split, stored in the training directory and applied inside the model graph, so every
backend and export decodes alike (the exports' side: tests/test_backends.py)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf

from maskrcnn_body import constants
from maskrcnn_body.config import get_config
from maskrcnn_body.evaluation import dumps as dumps_lib
from maskrcnn_body.evaluation import thresholds
from maskrcnn_body.model.postprocess import decode_mask_logits
from tests.helpers.masks import decode_probabilities
from tests.helpers.scenes import make_scene, perfect_predictions

ARMS = [constants.CHANNEL_INDEX["left_arm"], constants.CHANNEL_INDEX["right_arm"]]


def test_decoding_cuts_each_channel_at_its_threshold():
    logits = tf.constant(np.random.default_rng(0).normal(0, 3, (4, 9, 9, 7)), tf.float32)
    p = tf.sigmoid(logits).numpy()
    np.testing.assert_allclose(decode_mask_logits(logits, (0.5,) * 7, False).numpy(), p, atol=1e-6)
    t = (0.45, 0.6, 0.5, 0.3, 0.35, 0.4, 0.42)
    out = decode_mask_logits(logits, t, True).numpy()
    away = np.abs(p - np.asarray(t)) > 1e-4  # away from float ties at the cut
    np.testing.assert_array_equal((out >= 0.5)[..., 1:][away[..., 1:]], (p >= np.asarray(t))[..., 1:][away[..., 1:]])
    assert np.all(out[..., 0] >= out[..., 1:].max(-1) - 1e-7)  # the body contains every part
    np.testing.assert_allclose(out, decode_probabilities(p, t, True), atol=1e-5)


def test_config_rejects_bad_thresholds():
    from maskrcnn_body.config import ConfigError

    with pytest.raises(ConfigError, match="model.postprocess.mask_thresholds: needs 7 values in"):
        get_config("cpu_small", **{"model.postprocess.mask_thresholds": (0.5, 0.5)})
    with pytest.raises(ConfigError, match="model.postprocess.mask_thresholds"):
        get_config("cpu_small", **{"model.postprocess.mask_thresholds": (0.5,) * 6 + (1.0,)})


def _dumps(tmp_path, arm_scale: float) -> str:
    """Dumps of 3 images whose arm probabilities are under-confident (x ``arm_scale``)."""
    out = tmp_path / "dumps"
    for i, boxes in enumerate([[[10, 8, 74, 120]], [[5, 5, 61, 101], [70, 20, 118, 116]], [[30, 10, 110, 126]]]):
        scene = make_scene(128, 128, boxes, seed=i)
        pred = perfect_predictions(scene, 56)
        masks = pred["masks"].astype(np.float32)
        masks[..., ARMS] *= arm_scale
        pred["masks"] = masks.astype(np.float16)
        dumps_lib.write_dump(str(out / f"{i}.npz"), **scene, **pred)
    return str(out)


def test_threshold_search_finds_the_cut_of_under_confident_arms(tmp_path):
    chosen = thresholds.choose_thresholds(_dumps(tmp_path, 0.45))
    t = chosen["mask_thresholds"]
    assert len(t) == 7 and chosen["mask_body_union"] is True
    for k in ARMS:
        assert t[k] < 0.45  # 0.5 loses every arm pixel
        at_half, at_chosen = chosen["mean_iou"][constants.CHANNELS[k]]
        assert at_half == 0.0 and at_chosen > 0.85
    assert chosen["pairs"]["left_arm"] == 4


def test_calibrate_writes_the_decoding_into_the_training_directory(tmp_path):
    """workflows.calibrate: raw dumps of the calibration split, the choice written into config.json, and the
    model loaded afterwards decodes with it (every backend reads the same config)."""
    from helpers.models import write_random_train_dir
    from maskrcnn_body.config.train_dir import TrainDir
    from maskrcnn_body.convert.synthetic import write_split
    from maskrcnn_body.inference.loading import load_trained_model
    from maskrcnn_body.workflows import calibrate as calibrate_workflow

    train_dir = str(tmp_path / "run")
    write_random_train_dir(train_dir, "cpu_small", **{"model.postprocess.mask_thresholds": (0.3,) * 7})
    write_split(str(tmp_path / "synthetic"), "calib", 2, num_workers=1, progress=False)
    seen = {}

    def choose(dump_dir, grid=thresholds.GRID):  # the real search, recorded
        seen["dumps"] = sorted(os.listdir(dump_dir))
        out = real_choose(dump_dir, grid)
        return {**out, "mask_thresholds": (0.45, 0.5, 0.5, 0.3, 0.325, 0.4, 0.4)}

    real_choose = thresholds.choose_thresholds
    lines = []
    try:
        thresholds.choose_thresholds = choose
        chosen = calibrate_workflow.calibrate(
            train_dir, [str(tmp_path / "synthetic_calib-*.tfrecord")], log=lines.append
        )
    finally:
        thresholds.choose_thresholds = real_choose
    assert seen["dumps"] == [
        "synthetic_calib_000000.npz",
        "synthetic_calib_000001.npz",
    ]  # the calibration split, 2 images
    assert chosen["mask_body_union"] is True and "left_arm" in lines[0]
    cfg = TrainDir(train_dir).read_config()
    assert cfg.model.postprocess.mask_thresholds == (0.45, 0.5, 0.5, 0.3, 0.325, 0.4, 0.4)
    assert cfg.model.postprocess.mask_body_union
    _, loaded, _ = load_trained_model(train_dir)
    assert loaded.model.postprocess.mask_thresholds == cfg.model.postprocess.mask_thresholds


def test_the_detect_function_is_traced_again_when_the_decoding_changes():
    from helpers.models import tiny_config
    from maskrcnn_body.inference.record_dumps import detect_fn
    from maskrcnn_body.model.maskrcnn import build_model

    model = build_model(tiny_config())
    first = detect_fn(model)
    assert detect_fn(model) is first
    model.cfg.model.postprocess.mask_thresholds = (0.4,) * 7
    assert detect_fn(model) is not first  # the thresholds are constants of the graph: a stale trace would ignore them
