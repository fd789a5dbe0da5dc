"""Head design choices that matter for speed and for left/right: GroupNorm parity with Keras, the
RoI-wide context branch, the shared mask+keypoint tower, and heads run on the real positives only."""

import os

os.environ.setdefault("MASKRCNN_BODY_OPS", "tf")

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers.kernels import convolutions_refuse_empty_batches
from helpers.models import tiny_batch, tiny_config
from maskrcnn_body import constants
from maskrcnn_body.model import heads
from maskrcnn_body.model.maskrcnn import build_model
from maskrcnn_body.model.norm import GroupNorm

SIZE = 64


def _cfg(**overrides):
    return tiny_config(SIZE, **overrides)


@pytest.mark.parametrize("training", [True, False], ids=["hand_written_gradient", "autodiff"])
@pytest.mark.parametrize("shape, groups", [((2, 9, 7, 64), 32), ((3, 5, 5, 6), 3), ((4, 14, 14, 32), 8)])
def test_group_norm_matches_keras_values_and_gradients(shape, groups, training):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(5.0, 3.0, shape).astype(np.float32))  # mean far from 0: no cancellation
    w = tf.constant(rng.normal(size=shape).astype(np.float32))
    ref, ours = keras.layers.GroupNormalization(groups, epsilon=1e-5), GroupNorm(groups, epsilon=1e-5)
    gamma, beta = rng.uniform(0.5, 1.5, shape[-1]), rng.normal(size=shape[-1])
    results = []
    for layer in (ref, ours):
        layer.build(shape)
        layer.gamma.assign(gamma.astype(np.float32))
        layer.beta.assign(beta.astype(np.float32))
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=training)
            loss = tf.reduce_sum(y * w)
        results.append([y] + tape.gradient(loss, [x, layer.gamma, layer.beta]))
    for name, a, b in zip(("y", "dx", "dgamma", "dbeta"), *results):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=2e-5, err_msg=name)
    assert [v.path.split("/")[-1] for v in ours.weights] == ["gamma", "beta"]  # checkpoint names as Keras'


def test_group_norm_under_mixed_precision_keeps_the_input_dtype():
    x = tf.random.normal((2, 4, 4, 8), dtype=tf.float32)
    layer = GroupNorm(4, dtype="mixed_float16")  # as under --mixed_precision=mixed_float16
    y = layer(x)
    assert y.dtype == tf.float16
    np.testing.assert_allclose(y.numpy().astype(np.float32), GroupNorm(4)(x).numpy(), atol=1e-2)


def _far_corner_changes(cfg):
    """Does a change in one corner cell of the RoI crop reach the opposite corner of the mask?"""
    m = cfg.model
    head = heads.build_mask_head(m.mask_head, m.fpn.channels, m.keypoint_head)
    s = m.mask_head.roi_size
    x = np.random.default_rng(1).normal(size=(1, s, s, m.fpn.channels)).astype(np.float32)
    y0 = head(x)
    x[0, 0, 0] += 10.0
    y1 = head(x)
    return float(np.abs(y1[0, -1, -1] - y0[0, -1, -1]).max())


def test_global_context_lets_the_whole_roi_decide_each_pixel():
    """With two 3x3 convolutions the far corner cannot see the changed corner; with the RoI-wide
    FC branch (the face/back-of-head cue reaching the legs) it can. (Head GroupNorm is off here:
    its RoI-wide statistics would leak a little of everything everywhere.)"""
    local = _cfg(**{"model.mask_head.convs": 2, "model.mask_head.global_dim": 0, "model.mask_head.norm": "none"})
    assert _far_corner_changes(local) == 0.0
    assert (
        _far_corner_changes(
            _cfg(**{"model.mask_head.convs": 2, "model.mask_head.global_dim": 32, "model.mask_head.norm": "none"})
        )
        > 1e-6
    )
    m = local.model
    names = [layer.name for layer in heads.build_mask_head(m.mask_head, m.fpn.channels, m.keypoint_head).layers]
    assert not any("global" in n for n in names)


def test_shared_keypoint_head_predicts_from_the_mask_tower():
    model = build_model(_cfg(**{"model.keypoint_head.kind": "shared"}))
    assert model.keypoint_head is None
    k = model.cfg.model.keypoint_head.heatmap_size
    assert [tuple(o.shape) for o in model.mask_head.outputs] == [
        (None, 56, 56, constants.NUM_CHANNELS),
        (None, k, k, constants.NUM_KEYPOINTS),
    ]
    out = model.detect(tf.random.uniform((1, SIZE, SIZE, 3), 0, 255, seed=0))
    assert out["keypoints"].shape == (1, 5, constants.NUM_KEYPOINTS, 3)
    batch = _batch()
    with tf.GradientTape() as tape:
        losses = model.compute_losses(batch)
    assert np.isfinite(losses["keypoint"].numpy()) and losses["keypoint"].numpy() > 0.1
    kp_kernel = model.mask_head.get_layer("kp_deconv").kernel
    mask_conv = model.mask_head.get_layer("mask_conv1").kernel
    g_kp, g_tower = tape.gradient(losses["keypoint"], [kp_kernel, mask_conv])
    # the keypoint loss trains its own deconvolution and the shared tower
    assert np.abs(g_kp.numpy()).max() > 0 and np.abs(g_tower.numpy()).max() > 0


def _batch():
    return tiny_batch(SIZE)


def test_heads_on_selected_rows_equal_the_full_run_gathered():
    """Training runs the mask/keypoint heads only on the real positives (a dynamic count); each
    row's output must be what the padded run gives for that row."""
    model = build_model(_cfg())
    feats = model.features(tf.random.uniform((2, SIZE, SIZE, 3), 0, 255, seed=3), False)
    boxes = tf.constant(
        [[[4, 4, 30, 60], [30, 10, 60, 50], [0, 0, 20, 20]], [[10, 5, 50, 60], [1, 1, 9, 9], [20, 20, 40, 44]]],
        tf.float32,
    )
    rows = tf.constant([[0, 1], [1, 0], [1, 2]], tf.int64)
    full_m, full_k = model.roi_heads.part_outputs(feats, boxes, False)
    sel_m, sel_k = model.roi_heads.part_outputs(feats, boxes, False, rows)
    assert sel_m.shape[:2] == (1, 3) and sel_k.shape[:2] == (1, 3)
    np.testing.assert_allclose(sel_m[0].numpy(), tf.gather_nd(full_m, rows).numpy(), atol=1e-5)
    np.testing.assert_allclose(sel_k[0].numpy(), tf.gather_nd(full_k, rows).numpy(), atol=1e-5)
    with convolutions_refuse_empty_batches():  # as with oneDNN on an Intel Xeon
        none_m, none_k = model.roi_heads.part_outputs(feats, boxes, False, tf.zeros((0, 2), tf.int64))
    assert none_m.shape[:2] == (1, 0) and none_k.shape[:2] == (1, 0)


@pytest.mark.slow  # three full training steps (the full suite, which CI runs, keeps them)
@pytest.mark.parametrize("keypoint_head", ["shared", "heatmap", "regression"])
def test_training_gradients_are_finite_with_and_without_positives(keypoint_head):
    """A batch without people (zero positive RoIs) trains like any other: finite gradients, and
    the mask/keypoint heads get exactly zero gradient -- with convolutions that refuse an empty
    batch, as oneDNN's do on an Intel Xeon, in eager mode and in one traced step."""
    model = build_model(_cfg(**{"model.keypoint_head.kind": keypoint_head}))
    head_vars = {id(v) for v in model.mask_head.trainable_variables}
    if model.keypoint_head is not None:
        head_vars |= {id(v) for v in model.keypoint_head.trainable_variables}
    if model.point_head is not None:  # on in cpu_small
        head_vars |= {id(v) for v in model.point_head.trainable_variables}

    def grads_of(batch):
        with tf.GradientTape() as tape:
            losses = model.compute_losses(batch)
        return losses, tape.gradient(losses["total"], model.trainable_variables)

    traced = tf.function(grads_of)
    with convolutions_refuse_empty_batches():
        for num_gt in ([2, 1], [0, 0]):
            batch = dict(_batch(), num_gt=np.array(num_gt, np.int32))
            for fn in (grads_of, traced):
                losses, grads = fn(batch)
                assert all(g is None or np.all(np.isfinite(g.numpy())) for g in grads), num_gt
                if num_gt == [0, 0]:
                    assert float(losses["mask"]) == 0.0 and float(losses["keypoint"]) == 0.0
                    assert float(losses.get("point", 0.0)) == 0.0
                    for v, g in zip(model.trainable_variables, grads):
                        if id(v) in head_vars and g is not None:
                            assert not np.any(g.numpy()), v.path
    assert traced.experimental_get_tracing_count() == 1  # with and without people: one trace
