"""train/export.py end to end on a random-weight cpu_small model (128 px, with its point head refining the
masks): the SavedModel runs without this package and matches the Predictor; the TFLite file (builtin ops only)
matches it on images of two sizes.

Tolerances (float32; TFLite reorders reductions): boxes and keypoint x/y 1e-2 px, scores 1e-5 (TFLite 1e-4),
masks 1e-4 (probabilities). Detections are matched by box (random weights give near-tied scores whose order
may differ); the SavedModel must agree row for row. The point head re-predicts the k most uncertain mask cells:
rounding differences can swap the cells ranked k and k + 1 (random weights give many near ties), so up to
0.1% of the mask values may differ by more than the tolerance (by < 0.05: the untrained head is near the identity).
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from helpers.exports import run_tflite
from helpers.masks import assert_masks_close
from helpers.models import write_random_train_dir
from maskrcnn_body.inference import backends
from maskrcnn_body.inference.predictor import Predictor
from maskrcnn_body.model.postprocess import gather_rows

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = {
    "input.min_size": 128,
    "input.max_size": 128,
    "model.postprocess.score_threshold": 0.0,
    "model.postprocess.max_detections": 5,
}

pytestmark = pytest.mark.slow  # SavedModel/TFLite export: `make test-fast` leaves these out
SIZES = [(100, 150), (90, 60)]  # landscape and portrait, neither a multiple of 32
CUSTOM_OPS = {"MultilevelRoiAlign", "MultilevelRoiAlignGrad", "BoxPairwiseIou", "BoxMatch", "CropAndResize"}


def _image(h, w):
    return np.random.default_rng(h * w).integers(0, 255, (h, w, 3), np.uint8)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(train_dir, saved_model dir, tflite path), written by the CLI."""
    d = tmp_path_factory.mktemp("export")
    train_dir = str(d / "run")
    write_random_train_dir(train_dir, "cpu_small", seed=0, **SMALL)
    cfg = json.loads(open(os.path.join(train_dir, "config.json")).read())
    assert cfg["model"]["mask_head"]["point"]["dim"] > 0  # the export covers the point head
    sm, tfl = str(d / "saved_model"), str(d / "model.tflite")
    r = subprocess.run(
        [sys.executable, "train/export.py", "--train_dir", train_dir, "--saved_model", sm, "--tflite", tfl],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert os.path.exists(os.path.join(sm, "saved_model.pb")) and os.path.getsize(tfl) > 100_000
    return train_dir, sm, tfl


@pytest.fixture(scope="module")
def reference(exported):
    pred = Predictor.from_train_dir(exported[0])
    return {hw: pred(_image(*hw)) for hw in SIZES}


def _assert_matches(out, ref, box_tol, score_tol, mask_tol, kp_tol, same_order):
    n = int(out["num_detections"])
    assert n == len(ref["scores"]) > 0
    assert not np.any(out["scores"][n:]) and not np.any(out["masks"][n:])  # padding rows are zero
    boxes = out["boxes"][:n]
    if same_order:
        order = np.arange(n)
    else:  # nearest reference box per row; must be a permutation
        order = np.abs(boxes[:, None] - ref["boxes"][None]).max(-1).argmin(1)
        assert sorted(order) == list(range(n))
    np.testing.assert_allclose(boxes, ref["boxes"][order], atol=box_tol)
    np.testing.assert_allclose(out["scores"][:n], ref["scores"][order], atol=score_tol)
    assert_masks_close(out["masks"][:n], ref["masks"][order], atol=mask_tol)
    np.testing.assert_allclose(out["keypoints"][:n, :, :2], ref["keypoints"][order, :, :2], atol=kp_tol)
    np.testing.assert_allclose(out["keypoints"][:n, :, 2], ref["keypoints"][order, :, 2], atol=mask_tol)


def test_saved_model_runs_without_this_package_and_matches_predictor(exported, reference, tmp_path):
    _, sm, _ = exported
    for hw in SIZES:
        np.save(tmp_path / f"in_{hw[0]}x{hw[1]}.npy", _image(*hw))
    script = textwrap.dedent(f"""
        import json, sys, numpy as np, tensorflow as tf
        m = tf.saved_model.load({sm!r})
        fn = m.signatures["serving_default"]
        lib = fn.graph.as_graph_def().library
        ops = {{n.op for f in lib.function for n in f.node_def}} | {{n.op for n in fn.graph.as_graph_def().node}}
        for hw in {SIZES!r}:
            out = fn(image=tf.constant(np.load({str(tmp_path)!r} + "/in_%dx%d.npy" % hw)))
            np.savez({str(tmp_path)!r} + "/out_%dx%d.npz" % hw, **{{k: v.numpy() for k, v in out.items()}})
        print(json.dumps({{"modules": sorted(k for k in sys.modules if k.startswith("maskrcnn")),
                          "ops": sorted(ops), "inputs": str(fn.structured_input_signature)}}))
    """)
    r = subprocess.run(
        [sys.executable, "-c", script],
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    info = json.loads(r.stdout.strip().splitlines()[-1])
    assert info["modules"] == []
    assert not CUSTOM_OPS & set(info["ops"]), CUSTOM_OPS & set(info["ops"])
    assert "shape=(None, None, 3), dtype=tf.uint8" in info["inputs"]
    for hw in SIZES:
        out = dict(np.load(tmp_path / f"out_{hw[0]}x{hw[1]}.npz"))
        _assert_matches(out, reference[hw], 1e-3, 1e-5, 1e-5, 1e-3, same_order=True)


def test_tflite_matches_predictor_on_any_image_size(exported, reference):
    runner = backends.load_tflite(exported[2])
    for hw in SIZES:  # one interpreter, two input sizes: resized and re-allocated per call
        out = run_tflite(exported[2], _image(*hw), runner=runner)
        assert set(out) == {"boxes", "scores", "num_detections", "masks", "keypoints"}
        assert out["masks"].shape[1:] == (112, 112, 7)  # refined by the point head (56 -> 112)
        _assert_matches(out, reference[hw], 1e-2, 1e-4, 1e-4, 1e-2, same_order=False)


def test_export_cli_reports_a_missing_checkpoint(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    r = subprocess.run(
        [sys.executable, "train/export.py", "--train_dir", str(tmp_path), "--saved_model", str(tmp_path / "sm")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "no checkpoint in" in r.stderr


def test_gather_rows_equals_batched_gather():
    rng = np.random.default_rng(0)
    params = tf.constant(rng.random((3, 7, 2, 4)), tf.float32)
    idx = tf.constant(rng.integers(0, 7, (3, 5)), tf.int32)
    np.testing.assert_array_equal(gather_rows(params, idx).numpy(), tf.gather(params, idx, batch_dims=1).numpy())
    np.testing.assert_array_equal(
        gather_rows(params[..., 0, 0], idx).numpy(), tf.gather(params[..., 0, 0], idx, batch_dims=1).numpy()
    )


def test_postprocess_maps_back_and_clips_to_the_original_image():
    from maskrcnn_body.inference.transforms import postprocess

    scale = 128 / 70  # a 70 x 60 image resizes to round(109.7) = 110 columns: 110 / scale = 60.16 > 60
    det = {
        "boxes": tf.constant([[[11.0, 22.0, 110.0, 128.0], [0, 0, 0, 0]]]),
        "scores": tf.constant([[0.9, 0.0]]),
        "masks": tf.zeros([1, 2, 4, 4, 7]),
        "num_detections": tf.constant([1]),
        "keypoints": tf.constant([[[[110.0, 64.0, 0.7]] * 15, [[0.0, 0.0, 0.0]] * 15]]),
    }
    out = {k: v.numpy() for k, v in postprocess(det, tf.constant(scale), tf.constant([70, 60])).items()}
    np.testing.assert_allclose(out["boxes"], [[11 / scale, 22 / scale, 60, 70], [0, 0, 0, 0]], rtol=1e-6)
    np.testing.assert_allclose(out["keypoints"][0, 0], [60, 64 / scale, 0.7], rtol=1e-6)
    assert not out["keypoints"][1].any() and int(out["num_detections"]) == 1
