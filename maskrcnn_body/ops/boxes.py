"""Box utilities (pure TF, float32, XLA-compatible).

Convention (see ``maskrcnn_body.constants``): boxes are ``(x1, y1, x2, y2)`` in the
continuous pixel-edge frame, ``x2``/``y2`` exclusive, so ``width = x2 - x1`` and
``centre = (x1 + x2) / 2`` (no ``+1`` anywhere). Every function accepts any number of
leading batch dimensions unless stated otherwise.
"""

from __future__ import annotations

import math
from typing import Sequence

import tensorflow as tf

from maskrcnn_body.ops import backend as ops_backend

_no_autograph = tf.autograph.experimental.do_not_convert  # no tensor-dependent Python control flow here

BBOX_XFORM_CLIP = math.log(1000.0 / 16.0)
"""Upper clip of the decoded log-size deltas ``dw``/``dh`` (avoids exp overflow)."""

RPN_BOX_WEIGHTS = (1.0, 1.0, 1.0, 1.0)
"""Delta weights used by the RPN (``ops.targets.rpn_targets`` encodes with these, so the
model must decode RPN deltas with them too). The box head uses ``cfg.model.box_head.box_weights``."""

_MIN_SIZE = 1e-6  # sizes below this are treated as this inside log() during encoding


@_no_autograph
def box_area(boxes: tf.Tensor) -> tf.Tensor:
    """Area of ``boxes`` (..., 4) -> (...). Inverted boxes (x2 < x1 or y2 < y1) have area 0."""
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    w = tf.maximum(boxes[..., 2] - boxes[..., 0], 0.0)
    h = tf.maximum(boxes[..., 3] - boxes[..., 1], 0.0)
    return w * h


@_no_autograph
def pairwise_iou(a: tf.Tensor, b: tf.Tensor, backend=None) -> tf.Tensor:
    """Intersection over union of every box of ``a`` with every box of ``b``.

    Shapes: ``a`` (N, 4), ``b`` (M, 4) -> (N, M); batched ``a`` (B, N, 4), ``b`` (B, M, 4)
    -> (B, N, M) (any equal leading dims work). ``IoU = inter / (area_a + area_b - inter)``
    with ``inter = max(0, min(x2) - max(x1)) * max(0, min(y2) - max(y1))``; when the union is
    0 (both boxes of zero area) the IoU is 0, never NaN. A zero-area box therefore has IoU 0
    with everything (including an identical zero-area box).

    ``backend`` (None: :mod:`maskrcnn_body.ops.backend` decides): ``custom`` runs the compiled op of ``libs/``
    (same semantics, no gradient: IoU is only used for targets), ``tf`` this pure-TF code.
    """
    lib = ops_backend.resolve(backend)
    if lib is not None:
        return lib.pairwise_iou(a, b)
    a = tf.convert_to_tensor(a, tf.float32)
    b = tf.convert_to_tensor(b, tf.float32)
    if a.shape.rank != b.shape.rank or a.shape.rank is None or a.shape.rank < 2:
        raise ValueError(
            f"pairwise_iou expects a (..., N, 4) and b (..., M, 4) of equal rank, got {a.shape} and {b.shape}"
        )
    ea = a[..., :, None, :]  # (..., N, 1, 4)
    eb = b[..., None, :, :]  # (..., 1, M, 4)
    iw = tf.maximum(tf.minimum(ea[..., 2], eb[..., 2]) - tf.maximum(ea[..., 0], eb[..., 0]), 0.0)
    ih = tf.maximum(tf.minimum(ea[..., 3], eb[..., 3]) - tf.maximum(ea[..., 1], eb[..., 1]), 0.0)
    inter = iw * ih
    union = box_area(a)[..., :, None] + box_area(b)[..., None, :] - inter
    return tf.math.divide_no_nan(inter, union)


def _centre_size(boxes):
    w = boxes[..., 2] - boxes[..., 0]
    h = boxes[..., 3] - boxes[..., 1]
    return boxes[..., 0] + 0.5 * w, boxes[..., 1] + 0.5 * h, w, h


@_no_autograph
def encode_boxes(boxes: tf.Tensor, anchors: tf.Tensor, weights: Sequence[float] = (10.0, 10.0, 5.0, 5.0)) -> tf.Tensor:
    """Regression targets (dx, dy, dw, dh) of ``boxes`` relative to ``anchors``.

    ``boxes`` and ``anchors`` (..., 4), broadcastable; returns (..., 4) float32::

        dx = wx * (cx_b - cx_a) / w_a      dw = ww * log(w_b / w_a)
        dy = wy * (cy_b - cy_a) / h_a      dh = wh * log(h_b / h_a)

    with ``weights = (wx, wy, ww, wh)``. Sizes are floored at 1e-6 before division/log so
    zero-size (padding) boxes give large but finite values; mask them out of the loss.
    """
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    anchors = tf.convert_to_tensor(anchors, tf.float32)
    wx, wy, ww, wh = (float(w) for w in weights)
    bx, by, bw, bh = _centre_size(boxes)
    ax, ay, aw, ah = _centre_size(anchors)
    aw = tf.maximum(aw, _MIN_SIZE)
    ah = tf.maximum(ah, _MIN_SIZE)
    return tf.stack(
        [
            wx * (bx - ax) / aw,
            wy * (by - ay) / ah,
            ww * tf.math.log(tf.maximum(bw, _MIN_SIZE) / aw),
            wh * tf.math.log(tf.maximum(bh, _MIN_SIZE) / ah),
        ],
        axis=-1,
    )


@_no_autograph
def decode_boxes(deltas: tf.Tensor, anchors: tf.Tensor, weights: Sequence[float] = (10.0, 10.0, 5.0, 5.0)) -> tf.Tensor:
    """Inverse of :func:`encode_boxes`: deltas (..., 4) + anchors (..., 4) -> boxes (..., 4).

    ``dw``/``dh`` (after dividing by their weights) are clipped at ``log(1000/16)``; the
    result is ``x1 = cx - w/2, x2 = cx + w/2`` (pixel-edge frame, not clipped to the image).
    """
    deltas = tf.convert_to_tensor(deltas, tf.float32)
    anchors = tf.convert_to_tensor(anchors, tf.float32)
    wx, wy, ww, wh = (float(w) for w in weights)
    ax, ay, aw, ah = _centre_size(anchors)
    dx = deltas[..., 0] / wx
    dy = deltas[..., 1] / wy
    dw = tf.minimum(deltas[..., 2] / ww, BBOX_XFORM_CLIP)
    dh = tf.minimum(deltas[..., 3] / wh, BBOX_XFORM_CLIP)
    cx = ax + dx * aw
    cy = ay + dy * ah
    w = aw * tf.exp(dw)
    h = ah * tf.exp(dh)
    return tf.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], axis=-1)


@_no_autograph
def clip_boxes(boxes: tf.Tensor, image_shape) -> tf.Tensor:
    """Clip ``boxes`` (..., 4) to ``[0, width] x [0, height]``.

    ``image_shape`` is ``(height, width)``: shape (2,) for all boxes, or (B, 2) per image
    with ``boxes`` (B, ..., 4) (any number of box dims after B).
    """
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    shape = tf.cast(tf.convert_to_tensor(image_shape), tf.float32)
    if shape.shape.rank == 2:
        extra = boxes.shape.rank - 2
        if extra < 0:
            raise ValueError(
                f"clip_boxes: per-image image_shape {shape.shape} needs boxes (B, ..., 4), got {boxes.shape}"
            )
        shape = tf.reshape(shape, tf.concat([tf.shape(shape)[:1], tf.ones([extra], tf.int32), [2]], 0))
    elif shape.shape.rank != 1:
        raise ValueError(f"clip_boxes: image_shape must be (2,) or (B, 2), got {shape.shape}")
    h = shape[..., 0]
    w = shape[..., 1]
    x1 = tf.minimum(tf.maximum(boxes[..., 0], 0.0), w)
    y1 = tf.minimum(tf.maximum(boxes[..., 1], 0.0), h)
    x2 = tf.minimum(tf.maximum(boxes[..., 2], 0.0), w)
    y2 = tf.minimum(tf.maximum(boxes[..., 3], 0.0), h)
    return tf.stack([x1, y1, x2, y2], axis=-1)
