"""Mask R-CNN losses (float32 scalars; inputs are cast to float32 first).

Every loss is a sum over valid elements divided by a count floored at 1, so an image with no
people (no positives) gives finite, zero-valued box/mask/keypoint losses instead of NaN.
"""

from __future__ import annotations

import tensorflow as tf


def _f32(x):
    return tf.cast(x, tf.float32)


def smooth_l1(diff: tf.Tensor, beta: float) -> tf.Tensor:
    """Elementwise smooth-L1 (Huber / beta); ``beta == 0`` is plain L1."""
    a = tf.abs(diff)
    if beta <= 0:
        return a
    return tf.where(a < beta, 0.5 * a * a / beta, a - 0.5 * beta)


def rpn_losses(logits, deltas, labels, box_targets, beta: float = 1.0 / 9.0):
    """RPN objectness and box losses.

    Args:
      logits: (B, N) objectness logits.  deltas: (B, N, 4) predicted deltas.
      labels: (B, N) int32, 1 positive / 0 negative (sampled) / -1 ignored.
      box_targets: (B, N, 4) encoded targets (used at positives only).
    Returns:
      (class_loss, box_loss): both normalised by the number of sampled anchors.
    """
    labels = tf.cast(labels, tf.int32)
    sampled = _f32(labels >= 0)
    pos = _f32(labels == 1)
    norm = tf.maximum(tf.reduce_sum(sampled), 1.0)
    ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=pos, logits=_f32(logits))
    cls = tf.reduce_sum(ce * sampled) / norm
    box = tf.reduce_sum(smooth_l1(_f32(deltas) - _f32(box_targets), beta) * pos[..., None]) / norm
    return cls, box


def box_head_losses(class_logits, deltas, labels, box_targets, beta: float = 1.0):
    """Fast R-CNN classification (softmax, 2 classes) and class-agnostic box losses.

    Args:
      class_logits: (B, R, 2).  deltas: (B, R, 4).
      labels: (B, R) int32, 1 person / 0 background / -1 padding (not sampled).
      box_targets: (B, R, 4) encoded with ``cfg.box_weights`` (used at positives only).
    Returns:
      (class_loss, box_loss), both normalised by the number of sampled RoIs.
    """
    labels = tf.cast(labels, tf.int32)
    sampled = _f32(labels >= 0)
    pos = _f32(labels == 1)
    norm = tf.maximum(tf.reduce_sum(sampled), 1.0)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.maximum(labels, 0), logits=_f32(class_logits))
    cls = tf.reduce_sum(ce * sampled) / norm
    box = tf.reduce_sum(smooth_l1(_f32(deltas) - _f32(box_targets), beta) * pos[..., None]) / norm
    return cls, box


def mask_loss(logits, targets, weights, dice_weight: float = 0.0):
    """Per-channel sigmoid cross-entropy (+ optional soft Dice), averaged over the (RoI, channel)
    pairs with weight > 0.

    Args:
      logits: (B, P, M, M, 7) mask logits of the positive RoIs.
      targets: (B, P, M, M, 7) in [0, 1] (soft targets allowed).
      weights: (B, P, 7): 1 for a real positive RoI whose channel is annotated (``parts_valid``),
        0 otherwise (padding RoIs, unknown channels). Unknown channels are *not* trained as
        background.
      dice_weight: weight of the soft Dice term ``1 - (2 sum(p t) + 1) / (sum(p) + sum(t) + 1)``
        per (RoI, channel). Limbs cover a few percent of a person's box; the per-pixel
        cross-entropy alone lets their probabilities stay under 0.5 for a long time, while Dice
        is invariant to the foreground fraction (an empty target with an empty prediction costs 0).
    """
    w = _f32(weights)
    t = _f32(targets)
    logits = _f32(logits)
    ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=t, logits=logits)
    per_channel = tf.reduce_mean(ce, axis=[2, 3])  # (B, P, 7)
    if dice_weight:
        p = tf.sigmoid(logits)
        inter = tf.reduce_sum(p * t, axis=[2, 3])
        denom = tf.reduce_sum(p, axis=[2, 3]) + tf.reduce_sum(t, axis=[2, 3])
        per_channel += dice_weight * (1.0 - (2.0 * inter + 1.0) / (denom + 1.0))
    return tf.reduce_sum(per_channel * w) / tf.maximum(tf.reduce_sum(w), 1.0)


def point_mask_loss(logits, targets, weights):
    """The point head's loss: per-channel sigmoid cross-entropy at the sampled points (no Dice: the
    points are mostly near boundaries, not a region), averaged over the (RoI, channel) pairs with
    weight > 0, as :func:`mask_loss`.

    Args:
      logits: (N, P, 7) point logits.  targets: (N, P, 7) in {0, 1}.
      weights: (N, 7) as in :func:`mask_loss` (0 for unannotated channels and stand-in rows).
    """
    w = _f32(weights)
    ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=_f32(targets), logits=_f32(logits))
    per_channel = tf.reduce_mean(ce, axis=1)  # (N, 7)
    return tf.reduce_sum(per_channel * w) / tf.maximum(tf.reduce_sum(w), 1.0)


def keypoint_heatmap_loss(logits, target_index, weights):
    """Keypoint R-CNN loss: one softmax over the K*K heatmap cells per joint.

    Args:
      logits: (B, P, K, K, 15).
      target_index: (B, P, 15) int32 flat cell index ``row * K + col`` of the joint.
      weights: (B, P, 15): 1 for labelled joints inside a positive RoI, else 0.
    """
    shape = tf.shape(logits)
    flat = tf.reshape(_f32(logits), [shape[0], shape[1], shape[2] * shape[3], shape[4]])
    flat = tf.transpose(flat, [0, 1, 3, 2])  # (B, P, 15, K*K)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(target_index, tf.int32), logits=flat)
    w = _f32(weights)
    return tf.reduce_sum(ce * w) / tf.maximum(tf.reduce_sum(w), 1.0)


def keypoint_regression_loss(pred, target, weights, beta: float = 1.0 / 9.0):
    """The original's regression branch: smooth-L1 on RoI-normalised (x, y).

    Args:
      pred, target: (B, P, 15, 2) positions in RoI-normalised coordinates.
      weights: (B, P, 15) as in :func:`keypoint_heatmap_loss`.
    """
    w = _f32(weights)
    l = tf.reduce_sum(smooth_l1(_f32(pred) - _f32(target), beta), axis=-1)
    return tf.reduce_sum(l * w) / tf.maximum(tf.reduce_sum(w), 1.0)
