"""ops.boxes: IoU hand cases, encode/decode round trip and clipping, clip_boxes."""

import math

import numpy as np
import tensorflow as tf

from maskrcnn_body.ops import boxes as box_ops


def test_iou_hand_cases():
    a = tf.constant([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [3, 3, 3, 3], [2, 2, 4, 4]], tf.float32)
    b = tf.constant([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [3, 3, 3, 3], [0, 0, 10, 10]], tf.float32)
    iou = box_ops.pairwise_iou(a, b).numpy()
    assert iou.shape == (5, 5)
    expected_diag = [1.0, 50.0 / 150.0, 0.0, 0.0, 4.0 / 100.0]  # identical, half, disjoint, zero area, contained
    np.testing.assert_allclose(np.diag(iou), expected_diag, atol=1e-6)
    assert np.all(np.isfinite(iou))
    np.testing.assert_allclose(iou[3], 0.0)  # zero-area box: IoU 0 with everything, no NaN
    np.testing.assert_allclose(iou, box_ops.pairwise_iou(b, a).numpy().T, atol=1e-7)


def test_iou_batched_matches_unbatched():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 50, (2, 6, 2))
    a = np.concatenate([xy, xy + rng.uniform(0, 20, (2, 6, 2))], -1).astype(np.float32)
    xy = rng.uniform(0, 50, (2, 4, 2))
    b = np.concatenate([xy, xy + rng.uniform(0, 20, (2, 4, 2))], -1).astype(np.float32)
    batched = box_ops.pairwise_iou(a, b).numpy()
    assert batched.shape == (2, 6, 4)
    for i in range(2):
        np.testing.assert_allclose(batched[i], box_ops.pairwise_iou(a[i], b[i]).numpy(), atol=1e-7)


def test_box_area_inverted_is_zero():
    np.testing.assert_allclose(box_ops.box_area(tf.constant([[0, 0, 4, 5], [5, 5, 1, 9.0]])).numpy(), [20, 0])


def test_encode_decode_round_trip_both_weights():
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 100, (50, 2))
    anchors = np.concatenate([xy, xy + rng.uniform(4, 60, (50, 2))], -1).astype(np.float32)
    xy = rng.uniform(0, 100, (50, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(4, 60, (50, 2))], -1).astype(np.float32)
    for weights in ((10.0, 10.0, 5.0, 5.0), (1.0, 1.0, 1.0, 1.0)):
        deltas = box_ops.encode_boxes(boxes, anchors, weights)
        np.testing.assert_allclose(box_ops.decode_boxes(deltas, anchors, weights).numpy(), boxes, atol=1e-3)
    # hand case: same centre, twice the width -> dw = ww * log 2
    d = box_ops.encode_boxes([[0, 0, 20, 10]], [[5, 0, 15, 10]], (10, 10, 5, 5)).numpy()
    np.testing.assert_allclose(d, [[0, 0, 5 * math.log(2), 0]], atol=1e-6)


def test_decode_clips_log_size():
    anchors = tf.constant([[0, 0, 16, 16]], tf.float32)
    out = box_ops.decode_boxes(tf.constant([[0, 0, 100.0, 100.0]]), anchors, (1, 1, 1, 1)).numpy()
    np.testing.assert_allclose(out[0, 2] - out[0, 0], 1000.0, rtol=1e-4)  # 16 * exp(log(1000/16))
    assert np.all(np.isfinite(out))


def test_encode_zero_size_box_is_finite():
    d = box_ops.encode_boxes(tf.zeros([1, 4]), tf.constant([[0, 0, 8, 8.0]])).numpy()
    assert np.all(np.isfinite(d))


def test_clip_boxes_shared_and_per_image():
    boxes = tf.constant([[[-5, -5, 50, 50]], [[1, 1, 200, 200]]], tf.float32)
    per_image = box_ops.clip_boxes(boxes, tf.constant([[20, 30], [100, 100]])).numpy()
    np.testing.assert_allclose(per_image, [[[0, 0, 30, 20]], [[1, 1, 100, 100]]])
    shared = box_ops.clip_boxes(boxes, (20, 30)).numpy()
    np.testing.assert_allclose(shared, [[[0, 0, 30, 20]], [[1, 1, 30, 20]]])
