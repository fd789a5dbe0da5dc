"""The PointRend-style point head (``model.mask_head.point``): the point ops of ``ops/points.py``
(sampling, uncertainty selection, cell replacement, point targets), the point loss, the head in the
model (training with and without people, the refinement at inference) and its configuration."""

import os

os.environ.setdefault("MASKRCNN_BODY_OPS", "tf")

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers.kernels import convolutions_refuse_empty_batches
from helpers.models import tiny_batch, tiny_config
from maskrcnn_body.config import ConfigError, get_config
from maskrcnn_body.model import losses as loss_fns
from maskrcnn_body.model.maskrcnn import build_model
from maskrcnn_body.model.roi_heads import PointLossRois
from maskrcnn_body.ops import points, roi_align
from maskrcnn_body.ops.targets import mask_targets

SIZE = 64


def _cfg(**overrides):
    """:func:`tiny_config` with a small point head (on in cpu_small); dotted-key ``overrides``."""
    return tiny_config(
        SIZE,
        **{
            "model.mask_head.point.dim": 16,
            "model.mask_head.point.layers": 2,
            "model.mask_head.point.train_points": 20,
            "model.mask_head.point.refine_points": 50,
            **overrides,
        },
    )


def _batch(num_gt=(2, 1)):
    return tiny_batch(SIZE, num_gt, split_parts=True)


# --------------------------------------------------------------------------- point ops
def test_sample_feature_map_equals_a_hand_computed_bilinear_sample():
    feat = np.arange(2 * 4 * 5 * 2, dtype=np.float32).reshape(2, 4, 5, 2)  # (B, H=4, W=5, C)
    # stride 2: map position u = x / 2 - 0.5, v = y / 2 - 0.5 (cell centres at integers)
    # (7, 8.8): u = 3.0, v = 3.9, within one cell of the map -> clamped to row 3 -> f[3, 3]
    # (4, 3): u = 1.5, v = 1.0 -> 0.5 f[1, 1] + 0.5 f[1, 2]
    # (-4, 3): u = -2.5 < -1 -> 0;  (7, 10): v = 4.5 > H -> 0
    pts = tf.constant([[[7.0, 8.8], [4.0, 3.0], [-4.0, 3.0], [3.3, 5.1], [7.0, 10.0]]])
    got = points.sample_feature_map(tf.constant(feat), tf.constant([1]), pts, 2.0).numpy()[0]
    f = feat[1]
    np.testing.assert_allclose(got[0], f[3, 3])
    np.testing.assert_allclose(got[1], 0.5 * f[1, 1] + 0.5 * f[1, 2])
    np.testing.assert_allclose(got[2], 0.0)
    np.testing.assert_allclose(got[4], 0.0)
    u, v = 3.3 / 2 - 0.5, 5.1 / 2 - 0.5  # 1.15, 2.05
    ly, lx = v - 2, u - 1
    hand = (1 - ly) * (1 - lx) * f[2, 1] + (1 - ly) * lx * f[2, 2] + ly * (1 - lx) * f[3, 1] + ly * lx * f[3, 2]
    np.testing.assert_allclose(got[3], hand, rtol=1e-5)


def test_sample_grid_hits_cell_centres_and_edges_replicate():
    maps = tf.reshape(tf.range(2 * 4 * 4 * 1, dtype=tf.float32), [2, 4, 4, 1])
    rel = tf.constant([[[0.125, 0.125], [0.375, 0.125], [0.25, 0.125], [0.0, 0.0]]] * 2)
    got = points.sample_grid(maps, rel).numpy()[..., 0]
    np.testing.assert_allclose(got[0], [0, 1, 0.5, 0])
    np.testing.assert_allclose(got[1], [16, 17, 16.5, 16])


def test_sample_feature_map_matches_roi_align_bins():
    rng = np.random.default_rng(1)
    feat = tf.constant(rng.normal(size=(2, 8, 8, 3)).astype(np.float32))
    box = np.array([[4.0, 8.0, 28.0, 24.0]], np.float32)
    crop = roi_align.roi_align(feat[1:], box[None], 4, stride=4, sampling_ratio=1).numpy()[0, 0]
    rel = np.stack(np.meshgrid((np.arange(4) + 0.5) / 4, (np.arange(4) + 0.5) / 4), -1).reshape(1, 16, 2)
    pts = points.rel_to_image(tf.constant(rel, tf.float32), tf.constant(box))
    got = points.sample_feature_map(feat, tf.constant([1]), pts, 4.0).numpy().reshape(4, 4, 3)
    np.testing.assert_allclose(got, crop, atol=1e-5)


def test_point_targets_agree_with_the_grid_targets():
    rng = np.random.default_rng(2)
    gt_masks = (rng.random((1, 2, 16, 16, 7)) > 0.5).astype(np.float32)
    gt_boxes = np.array([[[3.0, 5.0, 40.0, 50.0], [10.0, 10.0, 30.0, 20.0]]], np.float32)
    rois = np.array([[[0.0, 2.0, 44.0, 52.0]]], np.float32)
    m = 8
    grid = mask_targets(rois, gt_boxes, gt_masks, np.array([[0]], np.int32), m, 1).numpy()[0, 0]
    rel = np.stack(np.meshgrid((np.arange(m) + 0.5) / m, (np.arange(m) + 0.5) / m), -1).reshape(1, m * m, 2)
    pts = points.rel_to_image(tf.constant(rel, tf.float32), tf.constant(rois[0]))
    got = points.point_mask_targets(pts, gt_boxes[0], gt_masks[0], tf.constant([0])).numpy().reshape(m, m, 7)
    np.testing.assert_array_equal(got, grid)


def test_uncertain_cells_are_the_most_uncertain_and_only_they_are_replaced():
    logits = np.full((1, 4, 4, 7), 5.0, np.float32)
    logits[0, 1, 2, 4] = 0.1  # the most uncertain cell (row 1, col 2): one channel near 0
    logits[0, 3, 0, 0] = -0.3  # the second
    logits[0, 0, 0, 6] = -1.0  # the third
    idx, rel = points.most_uncertain_cells(tf.constant(logits), 2)
    assert idx.numpy().tolist() == [[6, 12]]
    np.testing.assert_allclose(rel.numpy()[0], [[2.5 / 4, 1.5 / 4], [0.5 / 4, 3.5 / 4]])
    out = points.replace_cells(tf.constant(logits), idx, -tf.ones((1, 2, 7))).numpy()
    assert (out[0, 1, 2] == -1).all() and (out[0, 3, 0] == -1).all()
    keep = np.ones((4, 4), bool)
    keep[1, 2] = keep[3, 0] = False
    np.testing.assert_array_equal(out[0][keep], logits[0][keep])
    # more points than cells: every cell, each once
    idx, _ = points.most_uncertain_cells(tf.constant(logits), 100)
    assert sorted(idx.numpy()[0].tolist()) == list(range(16))


def test_training_points_lie_in_the_roi_and_prefer_uncertain_regions():
    logits = np.full((3, 8, 8, 7), 6.0, np.float32)
    logits[:, :, 4, :] = 0.0  # a vertical boundary at column 4
    tf.random.set_seed(0)
    pts = points.training_points(tf.constant(logits), 100, 3.0, 0.75).numpy()
    assert pts.shape == (3, 100, 2) and (pts >= 0).all() and (pts <= 1).all()
    near = np.abs(pts[:, :75, 0] - 4.5 / 8) < 1.5 / 8
    assert near.mean() > 0.9
    # the uniform rest (and importance 0) spread over the RoI
    uniform = points.training_points(tf.constant(logits), 400, 3.0, 0.0).numpy()
    assert uniform.shape == (3, 400, 2) and (uniform >= 0).all() and (uniform <= 1).all()
    assert np.abs(uniform[..., 0] - 4.5 / 8).mean() > 0.15


def test_per_channel_selection_gives_thin_parts_their_share_of_points():
    """An arm boundary (|logit| small on a thin band) competing with a body that is uncertain everywhere:
    the shared uncertainty (-min_c |logit_c|) spends the points on the body; per-channel selection gives
    the arm its 1/7 of the importance points, all on its boundary (issue 26, fix 6)."""
    arm = 3
    logits = np.full((2, 16, 16, 7), 6.0, np.float32)
    logits[..., 0] = 0.01  # the body: uncertain everywhere
    cols = (np.arange(16) + 0.5) / 16
    logits[..., arm] = 20.0 * (cols - 0.5)[None, None, :]  # the arm's boundary at x = 0.5
    tf.random.set_seed(1)
    shared = points.training_points(tf.constant(logits), 140, 3.0, 1.0).numpy()
    tf.random.set_seed(1)
    mine = points.training_points(tf.constant(logits), 140, 3.0, 1.0, per_channel=True).numpy()
    assert mine.shape == shared.shape == (2, 140, 2)
    on_arm = lambda p: (np.abs(p[..., 0] - 0.5) < 0.05).sum(1)  # noqa: E731
    assert (on_arm(mine) >= 20).all()  # the arm's share: 140 / 7 points
    assert (on_arm(shared) < on_arm(mine) - 8).all()  # ~10% of random points


def test_limb_weight_scales_the_limbs_in_the_point_loss():
    cfg = get_config("cpu_small", **{"model.mask_head.point.limb_weight": 3.0})
    assert cfg.model.mask_head.point.limb_weight == 3.0
    with pytest.raises(ConfigError, match="model.mask_head.point.limb_weight"):
        get_config("cpu_small", **{"model.mask_head.point.limb_weight": 0.0})


def test_point_loss_weights_and_empty_rows():
    logits = tf.constant(np.random.default_rng(0).normal(size=(2, 5, 7)).astype(np.float32))
    targets = tf.constant((np.random.default_rng(1).random((2, 5, 7)) > 0.5).astype(np.float32))
    w = np.ones((2, 7), np.float32)
    full = float(loss_fns.point_mask_loss(logits, targets, w))
    ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits).numpy().mean(1)
    np.testing.assert_allclose(full, ce.mean(), rtol=1e-5)
    w[1] = 0  # an unannotated RoI does not count
    np.testing.assert_allclose(float(loss_fns.point_mask_loss(logits, targets, w)), ce[0].mean(), rtol=1e-5)
    assert float(loss_fns.point_mask_loss(logits, targets, np.zeros((2, 7), np.float32))) == 0.0


# --------------------------------------------------------------------------- the head in the model
def test_point_head_trains_and_refines_the_detected_masks():
    model = build_model(_cfg(**{"model.mask_head.point.features": "p2+image"}))
    assert model.point_head is not None
    with tf.GradientTape() as tape:
        losses = model.compute_losses(_batch())
    assert "point" in losses and np.isfinite(float(losses["point"])) and float(losses["point"]) > 0
    grads = tape.gradient(losses["total"], model.point_head.trainable_variables)
    assert all(g is not None and np.isfinite(g.numpy()).all() for g in grads)
    assert np.abs(grads[-1].numpy()).sum() > 0
    m = model.cfg.model
    # the total counts the point loss with weight loss_weights["mask"] * point.loss_weight
    rest = sum(m.loss_weights[k] * float(losses[k]) for k in m.loss_weights)
    expected = rest + m.loss_weights["mask"] * m.mask_head.point.loss_weight * float(losses["point"])
    np.testing.assert_allclose(float(losses["total"]), expected, rtol=1e-5)
    det = model.detect(_batch()["images"])
    assert m.mask_head.mask_size == 112
    assert det["masks"].shape == (2, 5, 112, 112, 7)
    assert np.isfinite(det["masks"].numpy()).all()


def test_point_loss_without_positives_is_a_finite_zero():
    """N = 0 positive RoIs: the point head runs on one zero-weight stand-in row (never on an empty
    batch, emulated oneDNN), the loss is exactly 0 and its gradients 0; with RoIs it is positive."""
    model = build_model(_cfg(**{"model.mask_head.point.features": "p2+image"}))
    batch = _batch()
    images = tf.constant(batch["images"])
    feats = model.features(images, False)
    ms = model.cfg.model.mask_head.output_size

    def rois(n):
        return PointLossRois(
            image_index=tf.zeros([n], tf.int64),
            boxes=tf.tile(tf.constant([[8.0, 4.0, 40.0, 60.0]]), [n, 1]),
            coarse=tf.random.normal((n, ms, ms, 7), seed=2),
            gt_index=tf.zeros([n], tf.int32),
            weights=tf.ones([n, 7]),
            gt_boxes=tf.constant(batch["gt_boxes"][0]),
            gt_masks=tf.constant(batch["gt_masks"][0]),
        )

    with convolutions_refuse_empty_batches():
        with tf.GradientTape() as tape:
            zero = model.roi_heads.point_loss(feats, rois(0), images=images, training=True)
        grads = tape.gradient(zero, model.point_head.trainable_variables)
        some = model.roi_heads.point_loss(feats, rois(3), images=images, training=True)
    assert float(zero) == 0.0
    assert all(g is None or not np.any(g.numpy()) for g in grads)
    assert np.isfinite(float(some)) and float(some) > 0


@pytest.mark.parametrize("features", ["p2", "p2+image"])
def test_refinement_changes_only_the_most_uncertain_cells(features):
    model = build_model(
        _cfg(
            **{
                "model.mask_head.point.features": features,
                "model.mask_head.point.refine_sizes": (56,),
                "model.mask_head.point.refine_points": 30,
            }
        )
    )
    images = tf.constant(_batch()["images"][:1])
    feats = model.features(images, False)
    boxes = tf.constant([[[10.0, 5.0, 50.0, 60.0], [0.0, 0.0, 30.0, 30.0]]])
    coarse = tf.random.normal((1, 2, 56, 56, 7), seed=1) * 3
    refined = model.roi_heads.refine_masks(feats, images, boxes, coarse, False).numpy()
    assert refined.shape == (1, 2, 56, 56, 7)
    for r in range(2):
        changed = np.any(refined[0, r] != coarse.numpy()[0, r], axis=-1)
        assert 0 < changed.sum() <= 30
        idx, _ = points.most_uncertain_cells(coarse[:, r], 30)
        assert set(np.flatnonzero(changed.reshape(-1))) <= set(idx.numpy()[0].tolist())


@pytest.mark.slow  # a full training step (the full suite, which CI runs, keeps it)
def test_no_people_trains_with_zero_point_loss_and_one_trace():
    """A batch without people (zero positives): the point head runs on one zero-weight stand-in row,
    never on an empty batch (emulated oneDNN), the point loss is 0 and its gradients exactly 0."""
    model = build_model(_cfg(**{"model.mask_head.point.features": "p2+image"}))
    point_vars = {id(v) for v in model.point_head.trainable_variables}

    def grads_of(batch):
        with tf.GradientTape() as tape:
            losses = model.compute_losses(batch)
        return losses, tape.gradient(losses["total"], model.trainable_variables)

    traced = tf.function(grads_of)
    with convolutions_refuse_empty_batches():
        for num_gt in ((2, 1), (0, 0)):
            batch = _batch(num_gt)
            for fn in (grads_of, traced):
                losses, grads = fn(batch)
                assert all(np.isfinite(float(v)) for v in losses.values())
                assert all(g is None or np.all(np.isfinite(g.numpy())) for g in grads), num_gt
                if num_gt == (0, 0):
                    assert float(losses["point"]) == 0.0
                    for v, g in zip(model.trainable_variables, grads):
                        if id(v) in point_vars and g is not None:
                            assert not np.any(g.numpy()), v.path
                else:
                    assert float(losses["point"]) > 0
    assert traced.experimental_get_tracing_count() == 1


@pytest.mark.slow  # a full training step
def test_a_training_step_with_the_point_head_updates_it():
    keras.utils.set_random_seed(0)
    model = build_model(_cfg())
    opt = keras.optimizers.AdamW(1e-3)
    batch = _batch()

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            losses = model.compute_losses(batch)
        grads = tape.gradient(losses["total"], model.trainable_variables)
        opt.apply_gradients([(g, v) for g, v in zip(grads, model.trainable_variables) if g is not None])
        return losses

    before = [v.numpy().copy() for v in model.point_head.trainable_variables]
    for _ in range(2):
        losses = step()
    assert np.isfinite(float(losses["total"]))
    after = model.point_head.trainable_variables
    assert all(np.any(a.numpy() != b) for a, b in zip(after, before))


def test_point_head_off_keeps_the_head_masks():
    model = build_model(_cfg(**{"model.mask_head.point.dim": 0}))
    assert model.point_head is None
    assert "point" not in model.compute_losses(_batch())
    assert model.detect(_batch()["images"])["masks"].shape[2] == model.cfg.model.mask_head.output_size == 56


# --------------------------------------------------------------------------- configuration
def test_presets_turn_the_point_head_on_except_legacy():
    small = get_config("cpu_small").model.mask_head
    assert (small.point.dim, small.point.features, small.point.layers) == (128, "p2+image", 3)
    assert (small.point.train_points, small.point.oversample, small.point.importance) == (196, 3.0, 0.75)
    assert (small.point.refine_sizes, small.point.refine_points, small.point.loss_weight) == ((56, 112), 784, 1.0)
    assert small.mask_size == 112
    for name in ("r50_fpn", "r50_fpn_imagenet"):
        mh = get_config(name).model.mask_head
        assert (mh.point.dim, mh.point.features, mh.point.refine_sizes, mh.mask_size) == (128, "p2", (112,), 112)
    legacy = get_config("legacy").model.mask_head
    assert legacy.point.dim == 0 and legacy.mask_size == legacy.output_size


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("dim", -1, "model.mask_head.point.dim: must be >= 0"),
        ("layers", 0, "model.mask_head.point.layers: must be > 0"),
        ("importance", 1.5, r"model.mask_head.point.importance: must be in \[0, 1\]"),
        ("oversample", 0.5, "model.mask_head.point.oversample: must be >= 1"),
        ("refine_sizes", (56, 0), "model.mask_head.point.refine_sizes: sides must be > 0"),
        ("features", "rgb", "model.mask_head.point.features: 'rgb' is not a valid value"),
    ],
)
def test_point_config_errors_name_the_field(key, value, message):
    with pytest.raises(ConfigError, match=message):
        get_config("cpu_small", **{f"model.mask_head.point.{key}": value})
