"""ops.targets: matching rules, RPN anchor sampling, RoI sampling, mask and keypoint targets."""

import numpy as np
import pytest
import tensorflow as tf

from maskrcnn_body.config import get_config
from maskrcnn_body.ops import anchors as anchor_ops
from maskrcnn_body.ops import boxes as box_ops
from maskrcnn_body.ops import targets as target_ops


@pytest.fixture(scope="module")
def cfg():
    return get_config("cpu_small").model


def test_match_thresholds_and_ignore_band():
    iou = tf.constant([[0.8, 0.5, 0.2, 0.69], [0.1, 0.6, 0.75, 0.3]])
    matched, labels = target_ops.match(iou, 0.7, 0.3, allow_low_quality=False)
    np.testing.assert_array_equal(labels.numpy(), [1, -1, 1, -1])
    np.testing.assert_array_equal(matched.numpy(), [0, 1, 1, 0])


def test_match_low_quality_ties_and_reassignment():
    # GT 1 is best matched (IoU 0.4, twice: a tie) by columns 1 and 3; column 3 prefers GT 0 (0.45)
    # by max IoU but is GT 1's best, so it is forced to GT 1. Column 2 is a plain negative.
    iou = tf.constant([[0.9, 0.1, 0.0, 0.45], [0.0, 0.4, 0.1, 0.4]])
    matched, labels = target_ops.match(iou, 0.7, 0.3, allow_low_quality=True)
    np.testing.assert_array_equal(labels.numpy(), [1, 1, 0, 1])
    np.testing.assert_array_equal(matched.numpy(), [0, 1, 1, 1])
    _, labels = target_ops.match(iou, 0.7, 0.3, allow_low_quality=False)
    np.testing.assert_array_equal(labels.numpy(), [1, -1, 0, -1])


def test_match_padding_by_flag_or_minus_one_and_no_gt():
    iou = tf.constant([[[0.8, 0.2, 0.5], [0.9, 0.9, 0.9]]])  # row 1 is padding
    valid = tf.constant([[True, False]])
    m1, l1 = target_ops.match(iou, 0.7, 0.3, True, gt_valid=valid)
    m2, l2 = target_ops.match(tf.where(valid[..., None], iou, -1.0), 0.7, 0.3, True)
    np.testing.assert_array_equal(l1.numpy(), [[1, 0, -1]])
    np.testing.assert_array_equal(l1.numpy(), l2.numpy())
    np.testing.assert_array_equal(m1.numpy(), m2.numpy())
    _, l3 = target_ops.match(iou, 0.7, 0.3, True, gt_valid=tf.constant([[False, False]]))
    np.testing.assert_array_equal(l3.numpy(), [[0, 0, 0]])
    _, l4 = target_ops.match(tf.zeros([1, 0, 3]), 0.7, 0.3)
    np.testing.assert_array_equal(l4.numpy(), [[0, 0, 0]])


def test_gt_on_anchor_is_positive_and_crowd_gets_positives(cfg):
    _, anchors = anchor_ops.generate_anchors_for_config(cfg.anchors, (128, 128))
    a = anchors.numpy()
    exact = a[1234]
    rng = np.random.default_rng(0)
    crowd = []  # 7 heavily overlapping people side by side
    for i in range(7):
        x = 20 + 9 * i + rng.uniform(0, 2)
        crowd.append([x, 30, x + 16 + rng.uniform(0, 4), 30 + 48 + rng.uniform(0, 8)])
    gt = np.zeros((1, 9, 4), np.float32)
    gt[0, 0] = exact
    gt[0, 1:8] = crowd
    iou = box_ops.pairwise_iou(gt, a[None])
    valid = target_ops.gt_valid_mask(tf.constant([8]), 9)
    matched, labels = target_ops.match(iou, cfg.rpn.pos_iou, cfg.rpn.neg_iou, True, valid)
    matched, labels = matched.numpy()[0], labels.numpy()[0]
    assert labels[1234] == 1 and matched[1234] == 0
    for g in range(8):
        assert np.sum((labels == 1) & (matched == g)) >= 1, f"GT {g} has no positive anchor"
    assert set(np.unique(labels)) <= {-1, 0, 1}


def test_rpn_targets_sampling_and_deltas(cfg):
    _, anchors = anchor_ops.generate_anchors_for_config(cfg.anchors, (128, 128))
    gt = tf.constant([[[10, 10, 50, 90], [60, 20, 100, 60], [0, 0, 0, 0]], [[0, 0, 0, 0]] * 3], tf.float32)
    num_gt = tf.constant([2, 0])
    t = target_ops.rpn_targets(anchors, gt, num_gt, cfg.rpn, seed=7)
    labels = t.labels.numpy()
    n_pos, n_neg = (labels == 1).sum(1), (labels == 0).sum(1)
    assert np.all(n_pos + n_neg == cfg.rpn.batch_per_image)
    assert n_pos[0] >= 2 and n_pos[0] <= cfg.rpn.batch_per_image * cfg.rpn.positive_fraction
    assert n_pos[1] == 0  # no GT: all sampled anchors negative
    # deltas of positives decode back onto a GT box; other rows are zero
    pos = np.nonzero(labels[0] == 1)[0]
    decoded = box_ops.decode_boxes(t.box_targets[0], anchors, box_ops.RPN_BOX_WEIGHTS).numpy()[pos]
    dist = np.abs(decoded[:, None, :] - gt.numpy()[0, None, :2]).max(-1).min(-1)
    assert np.all(dist < 1e-3)
    assert np.all(t.box_targets.numpy()[labels != 1] == 0)
    again = target_ops.rpn_targets(anchors, gt, num_gt, cfg.rpn, seed=7)
    np.testing.assert_array_equal(again.labels.numpy(), labels)  # deterministic with a seed


def _random_boxes(rng, n, lo=0, hi=100, size=(5, 50)):
    xy = rng.uniform(lo, hi, (n, 2))
    return np.concatenate([xy, xy + rng.uniform(*size, (n, 2))], -1).astype(np.float32)


def test_sample_rois_counts_fractions_and_order(cfg):
    rng = np.random.default_rng(1)
    gt = np.zeros((2, 4, 4), np.float32)
    gt[0, :3] = [[10, 10, 50, 90], [60, 20, 100, 60], [20, 60, 70, 120]]
    # many jittered copies of the GT boxes (foreground) + random boxes (mostly background)
    jitter = np.repeat(gt[0, :3], 30, axis=0) + rng.uniform(-3, 3, (90, 4)).astype(np.float32)
    props = np.stack([np.concatenate([jitter, _random_boxes(rng, 110)]), _random_boxes(rng, 200)])
    s = target_ops.sample_rois(props, gt, tf.constant([3, 0]), cfg.roi, cfg.box_head.box_weights, seed=3)
    k, max_fg = cfg.roi.per_image, int(round(cfg.roi.per_image * cfg.roi.positive_fraction))
    assert s.rois.shape == (2, k, 4)
    np.testing.assert_array_equal(s.num_fg.numpy(), [max_fg, 0])
    np.testing.assert_array_equal(s.weights.numpy().sum(1), [k, k])
    labels = s.labels.numpy()
    np.testing.assert_array_equal(labels[0], np.arange(k) < max_fg)  # foreground rows first
    assert labels[1].sum() == 0  # no GT: all background
    iou = box_ops.pairwise_iou(s.rois, gt).numpy()[0]  # (K, P)
    matched = s.matched_gt.numpy()[0]
    assert np.all(iou[np.arange(k), matched][:max_fg] >= cfg.roi.fg_iou)
    assert np.all(iou[max_fg:, :3].max(-1) < cfg.roi.bg_iou_high)
    decoded = box_ops.decode_boxes(s.box_targets[0, :max_fg], s.rois[0, :max_fg], cfg.box_head.box_weights).numpy()
    np.testing.assert_allclose(decoded, gt[0][matched[:max_fg]], atol=1e-3)


def test_sample_rois_appends_gt_and_pads(cfg):
    gt = np.array([[[10, 10, 50, 90], [0, 0, 0, 0]]], np.float32)
    props = np.array([[[12, 10, 50, 90], [200, 200, 220, 220], [0, 0, 0, 0]]], np.float32)  # fg, bg, invalid
    s = target_ops.sample_rois(props, gt, tf.constant([1]), cfg.roi, cfg.box_head.box_weights, seed=0)
    assert s.num_fg.numpy()[0] == 2  # the proposal and the appended GT box
    assert s.weights.numpy()[0].sum() == 3  # + one background, the rest is padding
    assert np.all(s.rois.numpy()[0, 3:] == 0) and np.all(s.labels.numpy()[0, 2:] == 0)
    fg_rois = s.rois.numpy()[0, :2]
    assert any(np.allclose(r, gt[0, 0]) for r in fg_rois)


def test_sample_rois_compiles_with_xla(cfg, monkeypatch):
    monkeypatch.setenv("MASKRCNN_BODY_OPS", "tf")  # XLA cannot compile the compiled (custom) ops
    rng = np.random.default_rng(2)
    props = np.stack([_random_boxes(rng, 50), _random_boxes(rng, 50)])
    gt = np.stack([_random_boxes(rng, 3), _random_boxes(rng, 3)])
    fn = tf.function(
        lambda p, g, n: target_ops.sample_rois(p, g, n, cfg.roi, cfg.box_head.box_weights, seed=5), jit_compile=True
    )
    xla = fn(props, gt, tf.constant([3, 1]))
    eager = target_ops.sample_rois(props, gt, tf.constant([3, 1]), cfg.roi, cfg.box_head.box_weights, seed=5)
    for name, a, b in zip(xla._fields, xla, eager):  # same seed -> same sample (Philox both ways)
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5, err_msg=name)


def test_mask_targets_box_aligned_reproduces_gt_and_outside_is_zero():
    rng = np.random.default_rng(3)
    ms = 8
    masks = (rng.random((1, 2, ms, ms, 7)) > 0.5).astype(np.float32)
    gt = np.array([[[10, 20, 42, 60], [0, 0, 16, 16]]], np.float32)
    rois = np.array(
        [
            [
                [10, 20, 42, 60],  # the GT box itself
                [10, 20, 26, 40],  # its top-left quadrant
                [-6, 0, 58, 80],  # twice the GT box, same centre
                [0, 0, 16, 16],
            ]
        ],
        np.float32,
    )
    matched = np.array([[0, 0, 0, 1]], np.int32)
    out = target_ops.mask_targets(rois, gt, masks, matched, ms).numpy()
    assert out.shape == (1, 4, ms, ms, 7)
    np.testing.assert_array_equal(out[0, 0], masks[0, 0])
    np.testing.assert_array_equal(out[0, 3], masks[0, 1])
    quadrant = target_ops.mask_targets(rois[:, 1:2], gt, masks, matched[:, 1:2], ms // 2).numpy()
    np.testing.assert_array_equal(quadrant[0, 0], masks[0, 0, :4, :4])
    doubled = target_ops.mask_targets(rois[:, 2:3], gt, masks, matched[:, 2:3], 2 * ms).numpy()[0, 0]
    np.testing.assert_array_equal(doubled[4:12, 4:12], masks[0, 0])  # the GT box in the middle
    doubled[4:12, 4:12] = 0
    np.testing.assert_array_equal(doubled, 0)  # outside the GT box -> 0


def test_keypoint_targets():
    rois = tf.constant([[[0, 0, 56, 28]]], tf.float32)  # heatmap 4: cells of 14 x 7 pixels
    kp = np.zeros((1, 1, 15, 3), np.float32)
    kp[0, 0, 0] = [15, 8, 2]  # cell (y=1, x=1)
    kp[0, 0, 1] = [56, 28, 1]  # exactly on x2/y2 -> last cell
    kp[0, 0, 2] = [60, 10, 2]  # outside the RoI
    kp[0, 0, 3] = [10, 10, 0]  # unlabelled
    kp[0, 0, 4] = [0, 0, 2]  # top-left corner
    index, weight = target_ops.keypoint_targets(rois, kp, 4)
    index, weight = index.numpy()[0, 0], weight.numpy()[0, 0]
    np.testing.assert_array_equal(weight[:5], [1, 1, 0, 0, 1])
    np.testing.assert_array_equal(index[:5], [1 * 4 + 1, 15, 0, 0, 0])
    assert index.dtype == np.int32


def test_match_parity_with_compiled_op_when_built():
    from maskrcnn_body.ops import backend

    ops = backend.resolve("auto")
    if ops is None:
        pytest.skip("compiled ops not built")
    rng = np.random.default_rng(4)
    iou = np.round(rng.random((3, 5, 40)), 1).astype(np.float32)  # coarse values: many ties
    iou[:, 3:] = -1.0  # padding rows
    iou[2] = -1.0  # an image without GT
    for low_quality in (True, False):
        for got, want in zip(ops.match(iou, 0.7, 0.3, low_quality), target_ops.match(iou, 0.7, 0.3, low_quality)):
            np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_rpn_samples_no_negative_in_the_padding(cfg):
    """A 4:3 image (96 x 128 valid) in a 128 x 128 canvas: no sampled negative anchor is centred in
    the padding below the image; without image_shape a quarter of them were."""
    _, anchors = anchor_ops.generate_anchors_for_config(cfg.anchors, (128, 128))
    centre_y = 0.5 * (anchors[:, 1] + anchors[:, 3]).numpy()
    gt = tf.constant([[[20.0, 10.0, 60.0, 90.0], [0.0, 0.0, 0.0, 0.0]]])
    shape = tf.constant([[96, 128]], tf.int32)
    for seed in range(3):
        with_shape = target_ops.rpn_targets(anchors, gt, tf.constant([1]), cfg.rpn, seed=seed, image_shape=shape)
        labels = with_shape.labels.numpy()[0]
        assert (labels == 0).sum() > 0 and not ((labels == 0) & (centre_y >= 96)).any()
        assert (labels == 1).sum() > 0
        without = target_ops.rpn_targets(anchors, gt, tf.constant([1]), cfg.rpn, seed=seed).labels.numpy()[0]
        assert ((without == 0) & (centre_y >= 96)).sum() > 0.15 * (without == 0).sum()
