"""Compiled ops (libs/, ops/custom.py): parity with the pure-TF ops, gradients, bad inputs.

Skipped when the library is not built (`make`), unless MASKRCNN_BODY_OPS=custom, which
makes a missing library an error (CI).
"""

import os
import zlib

import numpy as np
import pytest
import tensorflow as tf

from maskrcnn_body.ops import backend as ops_backend
from maskrcnn_body.ops import boxes as box_ops
from maskrcnn_body.ops import custom
from maskrcnn_body.ops import roi_align as RA
from maskrcnn_body.ops import targets as target_ops

OPS = custom.load()
if OPS is None:
    if os.environ.get(ops_backend.ENV_VAR, "").strip().lower() == "custom":
        raise RuntimeError(
            f"{ops_backend.ENV_VAR}=custom but the compiled ops are not available: {custom.load_error()}"
        )
    pytest.skip(f"compiled ops not built: {custom.load_error()}", allow_module_level=True)

STRIDES = [4, 8, 16, 32]


def _pyramid(rng, batch=2, size=64, channels=3, levels=4, dtype=np.float32):
    return [rng.normal(size=(batch, size // s, size // s, channels)).astype(dtype) for s in STRIDES[:levels]]


def _random_boxes(rng, batch, num, size):
    xy = rng.uniform(-0.1 * size, 1.1 * size, (batch, num, 2, 2))
    return np.concatenate([xy.min(axis=2), xy.max(axis=2)], axis=-1).astype(np.float32)


def _case(name, rng):
    """(features, boxes, levels, strides) for one named input family (image 64x64)."""
    size = 64
    if name == "one_level":
        feats = _pyramid(rng, levels=1)
        boxes = _random_boxes(rng, 2, 6, size)
        return feats, boxes, np.zeros((2, 6), np.int32), STRIDES[:1]
    feats = _pyramid(rng)
    if name == "random":
        boxes = _random_boxes(rng, 2, 8, size)
    elif name == "borders":  # touching / crossing / outside the image edges
        boxes = np.array(
            [
                [[0, 0, 64, 64], [-10, -10, 5, 5], [60, 60, 64, 64], [-30, -30, -10, -10]],
                [[0, 20, 8, 40], [50, 0, 90, 64], [63.9, 63.9, 64, 64], [-1, -1, 0, 0]],
            ],
            np.float32,
        )
    elif name == "degenerate":  # zero width/height and inverted boxes
        boxes = np.array(
            [
                [[10, 10, 10, 30], [5, 5, 20, 5], [30, 30, 10, 10], [7, 9, 7, 9]],
                [[40, 12, 40, 12], [20, 40, 10, 45], [1, 2, 3, 2], [33, 33, 34, 34]],
            ],
            np.float32,
        )
    elif name == "zero":  # padding rows
        boxes = np.zeros((2, 5, 4), np.float32)
    else:
        raise ValueError(name)
    levels = rng.integers(0, len(feats), boxes.shape[:2]).astype(np.int32)
    return feats, boxes, levels, STRIDES


def _forward_backward(backend, feats, boxes, levels, strides, out, sr, aligned, upstream):
    feats = [tf.constant(f) for f in feats]
    with tf.GradientTape() as tape:
        tape.watch(feats)
        y = RA.multilevel_roi_align(feats, boxes, levels, strides, out, sr, aligned, backend=backend)
        loss = tf.reduce_sum(y * upstream)
    return y.numpy(), [g.numpy() for g in tape.gradient(loss, feats)]


@pytest.mark.parametrize("name", ["random", "borders", "degenerate", "zero", "one_level"])
@pytest.mark.parametrize("out,sr,aligned", [(7, 2, True), (3, 1, True), (4, 3, False)])
def test_roi_align_forward_and_gradient_match_pure_tf(name, out, sr, aligned):
    rng = np.random.default_rng(zlib.crc32(f"{name}-{out}-{sr}-{aligned}".encode()))
    feats, boxes, levels, strides = _case(name, rng)
    upstream = rng.normal(size=boxes.shape[:2] + (out, out, feats[0].shape[-1])).astype(np.float32)
    y_c, g_c = _forward_backward("custom", feats, boxes, levels, strides, out, sr, aligned, upstream)
    y_t, g_t = _forward_backward("tf", feats, boxes, levels, strides, out, sr, aligned, upstream)
    assert y_c.shape == y_t.shape == boxes.shape[:2] + (out, out, 3)
    np.testing.assert_allclose(y_c, y_t, atol=1e-5, rtol=0)
    assert len(g_c) == len(g_t)
    for gc, gt in zip(g_c, g_t):  # sums of up to R*S*S*sr^2 float32 terms per element
        np.testing.assert_allclose(gc, gt, atol=1e-5, rtol=1e-5)
    if name == "zero" and aligned:  # an aligned zero box samples the (0, 0) pixel of its level only
        for b in range(2):
            for r in range(boxes.shape[1]):
                np.testing.assert_allclose(
                    y_c[b, r], np.broadcast_to(feats[levels[b, r]][b, 0, 0], (out, out, 3)), atol=1e-6
                )


def test_roi_align_non_square_output_and_numpy_reference():
    from test_ops_roi_align import reference_roi_align  # the pure-TF op's own reference loop

    rng = np.random.default_rng(3)
    feats, boxes, levels, strides = _case("borders", rng)
    got = OPS.multilevel_roi_align(feats, boxes, levels, strides, (2, 5), 2, True).numpy()
    assert got.shape == (2, 4, 2, 5, 3)
    for b in range(2):
        for r in range(4):
            lvl = levels[b, r]
            want = reference_roi_align(feats[lvl][b].astype(np.float64), boxes[b, r] / strides[lvl], (2, 5), 2)
            np.testing.assert_allclose(got[b, r], want, atol=1e-5)


@pytest.mark.parametrize("aligned", [True, False])
def test_roi_align_gradient_numeric(aligned):
    rng = np.random.default_rng(4)
    feats = [tf.constant(rng.normal(size=(1, 6, 6, 2))), tf.constant(rng.normal(size=(1, 3, 3, 2)))]
    boxes = tf.constant([[[1.0, 2.0, 17.0, 15.0], [-3.0, 0.0, 9.0, 24.0], [8.0, 8.0, 8.0, 8.0]]], tf.float64)
    levels = tf.constant([[0, 1, 0]], tf.int32)

    def f(f0, f1):
        return OPS.multilevel_roi_align([f0, f1], boxes, levels, [4, 8], 2, 2, aligned)

    theoretical, numerical = tf.test.compute_gradient(f, feats)
    for t, n in zip(theoretical, numerical):
        assert np.abs(t).max() > 0
        np.testing.assert_allclose(t, n, atol=1e-7)


def test_roi_align_no_gradient_for_boxes_and_works_in_tf_function():
    rng = np.random.default_rng(5)
    feats = [tf.constant(f) for f in _pyramid(rng, levels=2)]
    boxes = tf.constant(_random_boxes(rng, 2, 4, 64))
    levels = tf.constant(rng.integers(0, 2, (2, 4)), tf.int32)
    with tf.GradientTape() as tape:
        tape.watch(boxes)
        y = OPS.multilevel_roi_align(feats, boxes, levels, STRIDES[:2], 3)
    assert tape.gradient(y, boxes) is None

    @tf.function(input_signature=[tf.TensorSpec([None, None, 4], tf.float32), tf.TensorSpec([None, None], tf.int32)])
    def run(b, lv):
        out = OPS.multilevel_roi_align(feats, b, lv, STRIDES[:2], 3)
        assert out.shape.as_list() == [2, None, 3, 3, 3]  # static shape from the shape function
        return out

    np.testing.assert_array_equal(run(boxes, levels).numpy(), y.numpy())


def _raises(match, fn):
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError), match=match):
        fn()


def test_roi_align_bad_inputs_raise():
    rng = np.random.default_rng(6)
    feats = _pyramid(rng, levels=2)
    boxes = _random_boxes(rng, 2, 3, 64)
    levels = np.zeros((2, 3), np.int32)
    lib = OPS.module
    _raises("out of range", lambda: OPS.multilevel_roi_align(feats, boxes, levels + 2, STRIDES[:2], 3))
    _raises("out of range", lambda: OPS.multilevel_roi_align(feats, boxes, levels - 1, STRIDES[:2], 3))
    _raises(
        "features\\[0\\]", lambda: OPS.multilevel_roi_align([feats[0][0], feats[1][0]], boxes, levels, STRIDES[:2], 3)
    )
    _raises("output_height", lambda: OPS.multilevel_roi_align(feats, boxes, levels, STRIDES[:2], -2))
    _raises("sampling_ratio", lambda: OPS.multilevel_roi_align(feats, boxes, levels, STRIDES[:2], 3, 0))
    _raises("strides", lambda: OPS.multilevel_roi_align(feats, boxes, levels, STRIDES[:3], 3))
    _raises("4", lambda: OPS.multilevel_roi_align(feats, boxes[..., :3], levels, STRIDES[:2], 3))
    _raises("levels", lambda: OPS.multilevel_roi_align(feats, boxes, levels[:, :2], STRIDES[:2], 3))
    _raises(
        "strides\\[1\\]",
        lambda: lib.multilevel_roi_align(feats, boxes, levels, strides=[4, 0], output_height=2, output_width=2),
    )
    _raises(
        "grad must have shape",
        lambda: lib.multilevel_roi_align_grad(
            feats,
            boxes,
            levels,
            np.zeros((2, 3, 2, 2, 3), np.float32),
            strides=STRIDES[:2],
            output_height=3,
            output_width=3,
        ),
    )


def _box_set(rng, n):
    boxes = _random_boxes(rng, 1, n, 50)[0]
    boxes[: n // 4, 2:] = boxes[: n // 4, :2]  # zero-size
    boxes[n // 4 : n // 3] = boxes[n // 4 : n // 3][:, [2, 3, 0, 1]]  # inverted
    return np.round(boxes)  # integer coords -> exact ties


def test_pairwise_iou_matches_pure_tf():
    rng = np.random.default_rng(7)
    a, b = _box_set(rng, 30), _box_set(rng, 40)
    np.testing.assert_allclose(OPS.pairwise_iou(a, b).numpy(), box_ops.pairwise_iou(a, b).numpy(), atol=1e-6)
    ab = np.stack([a, a[::-1]])  # (2, 30, 4) vs broadcast (1, 40, 4)
    got = OPS.pairwise_iou(ab, b[None]).numpy()
    assert got.shape == (2, 30, 40)
    np.testing.assert_allclose(got, box_ops.pairwise_iou(ab, b[None]).numpy(), atol=1e-6)
    assert OPS.pairwise_iou(a[:0], b).shape == (0, 40)
    np.testing.assert_allclose(OPS.pairwise_iou([[0, 0, 10, 10]], [[5, 0, 15, 10]]).numpy(), [[1 / 3]], rtol=1e-6)


@pytest.mark.parametrize("low_quality", [True, False])
def test_match_matches_pure_tf(low_quality):
    rng = np.random.default_rng(8)
    gt = _box_set(rng, 24).reshape(2, 12, 4)
    anchors = _box_set(rng, 80)
    iou = box_ops.pairwise_iou(gt, anchors[None]).numpy()  # (2, 12, 80), with ties
    valid = np.arange(12)[None, :] < np.array([[7], [0]])  # image 1: no GT at all
    for v in (None, valid):
        got = OPS.match(iou, 0.5, 0.2, low_quality, gt_valid=v)
        want = target_ops.match(iou, 0.5, 0.2, low_quality, gt_valid=v)
        for g, w in zip(got, want):
            assert g.dtype == tf.int32
            np.testing.assert_array_equal(g.numpy(), w.numpy())
    labels = OPS.match(iou, 0.5, 0.2, low_quality, gt_valid=valid)[1].numpy()
    assert (labels[1] == 0).all() and set(np.unique(labels[0])) <= {-1, 0, 1}


def test_match_hand_case_and_empty():
    iou = np.array([[0.8, 0.3, 0.1, 0.0, 0.7], [0.2, 0.45, 0.1, 0.0, 0.45]], np.float32)
    # GT 1's best IoU (0.45, cols 1 and 4) makes both positive and matched to GT 1, even
    # col 4 whose argmax is GT 0; col 0 is GT 0's best; cols 2, 3 are negatives.
    matched, labels = OPS.match(iou, 0.5, 0.3, True)
    np.testing.assert_array_equal(matched.numpy(), [0, 1, 0, 0, 1])
    np.testing.assert_array_equal(labels.numpy(), [1, 1, 0, 0, 1])
    matched, labels = OPS.match(iou, 0.5, 0.3, False)
    np.testing.assert_array_equal(matched.numpy(), [0, 1, 0, 0, 0])
    np.testing.assert_array_equal(labels.numpy(), [1, -1, 0, 0, 1])
    matched, labels = OPS.match(np.zeros((2, 0, 5), np.float32), 0.5, 0.3, True)
    assert matched.shape == labels.shape == (2, 5) and not labels.numpy().any()
    _raises("neg_iou", lambda: OPS.match(iou, 0.3, 0.5, True))
    _raises("gt_valid", lambda: OPS.match(iou, 0.5, 0.3, True, gt_valid=np.ones(3, bool)))
    _raises(
        "a must be", lambda: OPS.module.box_pairwise_iou(np.zeros((3, 5), np.float32), np.zeros((3, 4), np.float32))
    )


def _model_batch(size=64):
    """Two 64x64 images with two / one bright 'people' (fixed, no randomness)."""
    img = np.zeros((2, size, size, 3), np.float32)
    boxes = np.zeros((2, 2, 4), np.float32)
    boxes[0] = [[8, 6, 30, 58], [34, 10, 60, 50]]
    boxes[1, 0] = [20, 4, 44, 62]
    for b, n in ((0, 2), (1, 1)):
        for x1, y1, x2, y2 in boxes[b, :n].astype(int):
            img[b, y1:y2, x1:x2] = [200.0, 120.0 + 20 * b, 60.0]
    kps = np.zeros((2, 2, 15, 3), np.float32)
    kps[..., 0] = (boxes[..., None, 0] + boxes[..., None, 2]) / 2 + np.arange(15) - 7
    kps[..., 1] = (boxes[..., None, 1] + boxes[..., None, 3]) / 2
    kps[..., 2] = 2
    masks = np.zeros((2, 2, 16, 16, 7), np.float32)
    masks[:, :, 2:14, 4:12] = 1.0
    return {
        "images": img,
        "image_shape": np.full((2, 2), size, np.int32),
        "num_gt": np.array([2, 1], np.int32),
        "gt_boxes": boxes,
        "gt_masks": masks,
        "gt_parts_valid": np.ones((2, 2, 7), np.float32),
        "gt_keypoints": kps,
    }


@pytest.mark.parametrize("global_dim, grad_rtol", [(0, 1e-4), (256, 2e-3)], ids=["local_heads", "default_heads"])
def test_full_model_losses_and_gradients_equal_with_either_backend(monkeypatch, global_dim, grad_rtol):
    """Same losses and gradients with either RoIAlign backend. With the RoI-wide FC context branch
    (the default) one ReLU kink flipped by a 1e-7 difference in one RoIAlign output moves the
    gradient at every position of that RoI, so the head gradients agree to 2e-3 there; without
    it, to 1e-4."""
    from maskrcnn_body.config import get_config
    from maskrcnn_body.model.maskrcnn import build_model

    cfg = get_config(
        "cpu_small",
        **{
            "input.min_size": 64,
            "input.max_size": 64,
            "model.mask_head.global_dim": global_dim,
            "model.keypoint_head.global_dim": global_dim,
        },
    )
    tf.keras.utils.set_random_seed(0)
    model = build_model(cfg)
    batch = _model_batch()
    results = {}
    for backend in ("tf", "custom"):
        monkeypatch.setenv(ops_backend.ENV_VAR, backend)
        tf.random.set_seed(0)  # same RoI/anchor sampling draws for both backends
        with tf.GradientTape() as tape:
            losses = model.compute_losses(batch, training=True)
        grads = tape.gradient(losses["total"], model.trainable_variables)
        results[backend] = (
            {k: float(v) for k, v in losses.items()},
            [None if g is None else tf.convert_to_tensor(g).numpy() for g in grads],
        )
    (l_tf, g_tf), (l_c, g_c) = results["tf"], results["custom"]
    assert l_tf["mask"] > 0 and l_tf["keypoint"] > 0  # the RoI heads really ran
    for k in l_tf:
        np.testing.assert_allclose(l_c[k], l_tf[k], rtol=1e-5, atol=1e-6, err_msg=k)
    assert sum(g is not None for g in g_tf) > 10
    # float32 rounding differs (~1e-7 per RoIAlign output); a ReLU input at ~0 can amplify it
    # for single elements, so compare each variable's gradient as a whole
    for v, gt, gc in zip(model.trainable_variables, g_tf, g_c):
        assert (gt is None) == (gc is None), v.path
        if gt is not None:
            assert np.linalg.norm(gc - gt) <= grad_rtol * np.linalg.norm(gt) + 1e-7, v.path


# --------------------------------------------------------------------------- portable builds
def test_baseline_library_runs_on_any_x86_64_cpu():
    """The baseline build (loaded where no vector build fits) holds no AVX/AVX-512 instruction,
    so it runs on every x86-64 machine it is copied to (no -march=native)."""
    import platform
    import shutil
    import subprocess

    if platform.machine() != "x86_64" or not shutil.which("objdump"):
        pytest.skip("x86-64 with objdump only")
    if not os.path.exists(custom.LIBRARY_PATH):
        pytest.skip("baseline library not built")
    asm = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", custom.LIBRARY_PATH], capture_output=True, text=True, check=True
    ).stdout
    wide = [line for line in asm.splitlines() if "%ymm" in line or "%zmm" in line]
    assert not wide, wide[:5]


@pytest.mark.parametrize("isa", custom.ISAS)
def test_every_build_the_cpu_supports_loads_and_matches_pure_tf(isa):
    """Each library variant (AVX-512, AVX2, baseline) gives the pure-TF RoIAlign's values; the
    loader picks the fastest supported one unless MASKRCNN_BODY_OPS_ISA names one."""
    import subprocess
    import sys

    if isa not in custom.supported_isas() or not os.path.exists(custom.library_path_for(isa)):
        pytest.skip(f"{isa} build not built or not supported by this CPU")
    code = (
        "import numpy as np, tensorflow as tf\n"
        "from maskrcnn_body.ops import custom, roi_align as RA\n"
        "rng = np.random.default_rng(0)\n"
        "feats = [tf.constant(rng.normal(size=(2, 64 // s, 64 // s, 32)).astype('float32')) for s in (4, 8, 16, 32)]\n"
        "xy = rng.uniform(-5, 70, (2, 9, 2, 2))\n"
        "boxes = tf.constant(np.concatenate([xy.min(2), xy.max(2)], -1).astype('float32'))\n"
        "levels = tf.constant(rng.integers(0, 4, (2, 9)).astype('int32'))\n"
        "a = RA.multilevel_roi_align(feats, boxes, levels, [4, 8, 16, 32], 7, backend='custom')\n"
        "b = RA.multilevel_roi_align(feats, boxes, levels, [4, 8, 16, 32], 7, backend='tf')\n"
        "print(custom.loaded_path()); print(float(np.abs(a.numpy() - b.numpy()).max()))\n"
    )
    env = dict(os.environ, **{custom.ISA_ENV_VAR: isa, "TF_CPP_MIN_LOG_LEVEL": "2"})
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    path, diff = out.stdout.split()[-2:]
    assert path == custom.library_path_for(isa) and float(diff) < 1e-5


def test_loader_prefers_the_fastest_build_the_cpu_supports(monkeypatch):
    monkeypatch.delenv(custom.ISA_ENV_VAR, raising=False)
    built = [isa for isa in custom.supported_isas() if os.path.exists(custom.library_path_for(isa))]
    assert custom.library_path() == custom.library_path_for(built[0] if built else "baseline")
    monkeypatch.setattr(custom, "_cpu_flags", lambda: frozenset({"sse4_2"}))  # an old x86-64 CPU
    assert custom.supported_isas() == ("baseline",) and custom.library_path() == custom.LIBRARY_PATH
    monkeypatch.setenv(custom.ISA_ENV_VAR, "sse9")
    with pytest.raises(ValueError, match="MASKRCNN_BODY_OPS_ISA"):
        custom.library_path()
