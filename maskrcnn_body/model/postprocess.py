"""Proposal generation and detection post-processing (pure TF, static output shapes).

All boxes are ``(x1, y1, x2, y2)`` in the resized-image pixel-edge frame (``constants``).
Outputs have fixed sizes (``post_nms_topk``, ``max_detections``) with zero padding and a
validity mask / count, so a ``tf.function`` traces once per input size.
"""

from __future__ import annotations

from typing import Dict, Sequence

import numpy as np
import tensorflow as tf

from maskrcnn_body import constants
from maskrcnn_body.ops import backend
from maskrcnn_body.ops import boxes as box_ops

_INVALID = -1e9  # score given to boxes that must never be selected


def batched_nms(
    boxes: tf.Tensor, scores: tf.Tensor, max_output: int, iou_threshold: float, score_threshold: float = _INVALID / 2
):
    """Class-agnostic greedy NMS per image with a fixed-size, zero-padded output.

    Args:
      boxes: (B, N, 4) float32.  scores: (B, N) float32 (``> score_threshold`` to be kept).
      max_output: K, static.
    Returns:
      indices (B, K) int32 into N (0 where padded), valid (B, K) bool, sorted by score.

    The op traced is ``ops.backend.nms_op()`` (``"padded"`` or ``"v4"``; chosen with
    ``ops.backend.use_backend(nms=...)``); both give the same selection.
    """
    v4 = backend.nms_op() == "v4"

    def one(args):
        b, s = args
        if v4:
            idx, n = tf.raw_ops.NonMaxSuppressionV4(
                boxes=b,
                scores=s,
                max_output_size=max_output,
                iou_threshold=iou_threshold,
                score_threshold=score_threshold,
                pad_to_max_output_size=True,
            )
        else:
            idx, n = tf.image.non_max_suppression_padded(
                b,
                s,
                max_output,
                iou_threshold=iou_threshold,
                score_threshold=score_threshold,
                pad_to_max_output_size=True,
            )
        return tf.cast(idx, tf.int32), tf.range(max_output) < n

    if boxes.shape[0] is not None and boxes.shape[0] <= 8:
        # static batch: unroll (no while loop, so the graph converts to TFLite builtins)
        outs = [one((boxes[i], scores[i])) for i in range(boxes.shape[0])]
        return tf.stack([o[0] for o in outs]), tf.stack([o[1] for o in outs])
    idx, valid = tf.map_fn(
        one,
        (boxes, scores),
        fn_output_signature=(tf.TensorSpec([max_output], tf.int32), tf.TensorSpec([max_output], tf.bool)),
    )
    return idx, valid


def gather_rows(params: tf.Tensor, idx: tf.Tensor) -> tf.Tensor:
    """``tf.gather(params, idx, batch_dims=1)`` written as one flat gather (identical values).

    Args: params (B, N, ...); idx (B, K) int32 into N (static K). Returns (B, K, ...).
    TFLite's batched GATHER fails on NMS indices: the converter gives the stacked NMS output the
    type (1, K) while the NMS kernel allocates it as (K,) ("gather.cc input->dims->data[i] !=
    positions->dims->data[i]"); flattening makes the gather independent of that rank.
    """
    shape = tf.shape(params)
    b, n, rest = shape[0], shape[1], shape[2:]
    flat = tf.reshape(params, tf.concat([[b * n], rest], 0))
    pos = tf.reshape(idx + tf.range(b)[:, None] * n, [-1])
    return tf.reshape(tf.gather(flat, pos), tf.concat([[b, idx.shape[1]], rest], 0))


def _min_size_ok(boxes, min_size):
    w = boxes[..., 2] - boxes[..., 0]
    h = boxes[..., 3] - boxes[..., 1]
    return tf.logical_and(w > min_size, h > min_size)


def generate_proposals(
    logits: Sequence[tf.Tensor],
    deltas: Sequence[tf.Tensor],
    anchors: Sequence[tf.Tensor],
    image_shape: tf.Tensor,
    pre_nms_topk: int,
    post_nms_topk: int,
    nms_iou: float,
    min_size: float = 0.0,
):
    """RPN outputs -> proposals: per-level top-k, decode, clip, drop tiny boxes, NMS, top-k per image.

    Args:
      logits: per level (B, N_l) objectness logits.  deltas: per level (B, N_l, 4).
      anchors: per level (N_l, 4) (``ops.anchors`` order).
      image_shape: (B, 2) int valid (height, width); boxes are clipped to it.
      pre_nms_topk: candidates kept per level; post_nms_topk: proposals per image (static).
    Returns:
      proposals (B, post_nms_topk, 4) float32 (0 where padded), valid (B, post_nms_topk) bool.
      Proposals are not differentiated through (``stop_gradient``).
    """
    all_boxes, all_scores = [], []
    for lg, dl, an in zip(logits, deltas, anchors):
        lg = tf.stop_gradient(lg)
        n = lg.shape[1]
        k = min(pre_nms_topk, n) if n is not None else tf.minimum(pre_nms_topk, tf.shape(lg)[1])
        top, idx = tf.math.top_k(lg, k=k, sorted=False)
        d = tf.gather(tf.stop_gradient(dl), idx, batch_dims=1)
        a = tf.gather(an, idx)
        b = box_ops.decode_boxes(d, a, box_ops.RPN_BOX_WEIGHTS)
        b = box_ops.clip_boxes(b, image_shape)
        top = tf.where(_min_size_ok(b, min_size), top, _INVALID)
        all_boxes.append(b)
        all_scores.append(top)
    boxes = tf.concat(all_boxes, axis=1)
    scores = tf.concat(all_scores, axis=1)
    idx, valid = batched_nms(boxes, scores, post_nms_topk, nms_iou)
    proposals = gather_rows(boxes, idx) * tf.cast(valid, tf.float32)[..., None]
    return proposals, valid


def select_detections(
    class_logits: tf.Tensor,
    deltas: tf.Tensor,
    proposals: tf.Tensor,
    proposal_valid: tf.Tensor,
    image_shape: tf.Tensor,
    box_weights: Sequence[float],
    score_threshold: float,
    nms_iou: float,
    max_detections: int,
) -> Dict[str, tf.Tensor]:
    """Box-head outputs -> final detections: person score, decode, clip, threshold, NMS, top-k.

    Args:
      class_logits: (B, R, 2).  deltas: (B, R, 4).  proposals: (B, R, 4).  proposal_valid: (B, R) bool.
      image_shape: (B, 2) valid (height, width).
    Returns:
      dict ``boxes`` (B, D, 4), ``scores`` (B, D), ``num_detections`` (B,) int32, ``valid`` (B, D)
      bool; padding rows are 0, valid rows come first in descending score order.
    """
    scores = tf.nn.softmax(tf.cast(class_logits, tf.float32), axis=-1)[..., 1]
    boxes = box_ops.decode_boxes(tf.cast(deltas, tf.float32), proposals, box_weights)
    boxes = box_ops.clip_boxes(boxes, image_shape)
    keep = tf.logical_and(proposal_valid, _min_size_ok(boxes, 0.0))
    keep = tf.logical_and(keep, scores > score_threshold)
    nms_scores = tf.where(keep, scores, _INVALID)
    idx, valid = batched_nms(boxes, nms_scores, max_detections, nms_iou)
    fvalid = tf.cast(valid, tf.float32)
    return {
        "boxes": gather_rows(boxes, idx) * fvalid[..., None],
        "scores": gather_rows(scores, idx) * fvalid,
        "num_detections": tf.reduce_sum(tf.cast(valid, tf.int32), axis=1),
        "valid": valid,
    }


def decode_keypoint_heatmaps(logits: tf.Tensor, boxes: tf.Tensor) -> tf.Tensor:
    """Heatmap logits (B, D, K, K, 15) + boxes (B, D, 4) -> keypoints (B, D, 15, 3) = (x, y, score).

    The joint is at the centre of the arg-max cell: cell (r, c) covers box-frame
    ``[c, c + 1) * w / K``, so ``x = x1 + (c + 0.5) * w / K``. ``score`` is the softmax
    probability of that cell (in [0, 1]).
    """
    shape = tf.shape(logits)
    k = shape[2]
    flat = tf.reshape(tf.cast(logits, tf.float32), [shape[0], shape[1], k * k, constants.NUM_KEYPOINTS])
    prob = tf.nn.softmax(flat, axis=2)
    best = tf.argmax(flat, axis=2, output_type=tf.int32)  # (B, D, 15)
    score = tf.reduce_max(prob, axis=2)
    kf = tf.cast(k, tf.float32)
    col = (tf.cast(best % k, tf.float32) + 0.5) / kf
    row = (tf.cast(best // k, tf.float32) + 0.5) / kf
    return _to_image_frame(tf.stack([col, row], axis=-1), boxes, score)


def decode_keypoint_regression(xy: tf.Tensor, boxes: tf.Tensor, scores: tf.Tensor) -> tf.Tensor:
    """Regression output (B, D, 15, 2) in RoI-normalised coordinates -> (B, D, 15, 3) (x, y, score);
    the branch has no per-joint confidence, so ``score`` is the detection score."""
    score = tf.tile(tf.cast(scores, tf.float32)[..., None], [1, 1, constants.NUM_KEYPOINTS])
    return _to_image_frame(tf.cast(xy, tf.float32), boxes, score)


def _to_image_frame(rel_xy, boxes, score):
    x1, y1 = boxes[..., 0:1], boxes[..., 1:2]
    w, h = boxes[..., 2:3] - x1, boxes[..., 3:4] - y1
    x = x1 + rel_xy[..., 0] * w
    y = y1 + rel_xy[..., 1] * h
    return tf.stack([x, y, score], axis=-1)


def decode_mask_logits(logits: tf.Tensor, thresholds, body_union: bool) -> tf.Tensor:
    """Mask logits (..., 7) -> decoded probabilities (..., 7), float32.

    ``sigmoid(logit_k - logit(t_k))`` with the per-channel thresholds ``t_k``
    (``model.postprocess.mask_thresholds``), so a 0.5 cut of the output (what the pasting rule,
    the drawings, the dumps and the browser demo apply) keeps exactly the pixels whose probability
    is >= t_k; with ``body_union`` the body channel is the maximum over all channels (the body
    contains every part, so clipping the parts to it removes nothing). With every t_k = 0.5 and no
    union this is ``sigmoid(logits)``.
    """
    t = np.asarray(thresholds, np.float64)
    shift = np.log(t) - np.log1p(-t)
    logits = tf.cast(logits, tf.float32)
    if np.any(shift != 0):
        logits = logits - tf.constant(shift, tf.float32)
    probs = tf.sigmoid(logits)
    if body_union:
        probs = tf.concat([tf.reduce_max(probs, -1, keepdims=True), probs[..., 1:]], -1)
    return probs
