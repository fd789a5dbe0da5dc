"""Anchor generation for the FPN levels (pure TF, static shapes).

Layout (binding for the RPN head, see ``model/rpn.py``): the anchors of all levels are
concatenated level by level (``min_level`` first); inside a level they are ordered by
feature-map row ``y``, then column ``x``, then anchor index ``a``, i.e. flat index
``(y * Wl + x) * A + a`` -- exactly a row-major reshape of an RPN output
(B, Hl, Wl, A) -> (B, Hl*Wl*A). The A = len(scales) * len(aspect_ratios) anchors of one
location are **scale-major**: ``a = scale_index * len(aspect_ratios) + ratio_index``.

Geometry (pixel-edge frame, boxes x1, y1, x2, y2): level ``l`` has stride ``2**l`` and a
feature map of ``Hl = ceil(height / 2**l)`` by ``Wl = ceil(width / 2**l)`` (what 'same'
stride-2 convolutions and the stride-2 P6 pooling give). ``height``/``width`` may be Python ints
(static anchors, one trace per size) or int32 scalar tensors (any input size in one trace). The anchor at (y,
x) is centred at
``((x + 0.5) * stride, (y + 0.5) * stride)`` with size ``s = anchor_size * stride * scale``
and aspect ratio ``r = h / w``: ``w = s / sqrt(r)``, ``h = s * sqrt(r)`` (area ``s**2``).
"""

from __future__ import annotations

import math
from typing import List, Sequence, Tuple

import tensorflow as tf

from maskrcnn_body.config.sections import AnchorConfig
from maskrcnn_body.constants import ceil_div


def level_shapes(image_size, min_level: int, max_level: int) -> List[Tuple]:
    """Feature-map sizes ``[(Hl, Wl)]`` for levels ``min_level..max_level`` of a (height, width) =
    ``image_size`` input: ``Hl = ceil(height / 2**l)`` (ints, or int32 tensors for a tensor size)."""
    h, w = image_size
    if not (tf.is_tensor(h) or tf.is_tensor(w)):
        h, w = int(h), int(w)
    return [(ceil_div(h, 2**lvl), ceil_div(w, 2**lvl)) for lvl in range(min_level, max_level + 1)]


def cell_anchors(
    anchor_size: float, stride: int, scales: Sequence[float], aspect_ratios: Sequence[float]
) -> List[Tuple[float, float]]:
    """The A (width, height) pairs of one location, scale-major (see module docstring)."""
    out = []
    for scale in scales:
        size = float(anchor_size) * stride * float(scale)
        for ratio in aspect_ratios:
            out.append((size / math.sqrt(ratio), size * math.sqrt(ratio)))
    return out


def generate_anchors(
    image_size,
    min_level: int,
    max_level: int,
    anchor_size: float,
    scales: Sequence[float],
    aspect_ratios: Sequence[float],
) -> Tuple[List[tf.Tensor], tf.Tensor]:
    """Anchors for an input of ``image_size = (height, width)`` (the padded size; ints or tensors).

    Returns ``(per_level, all)``: a list of float32 (Hl*Wl*A, 4) tensors, one per level
    ``min_level..max_level``, and their concatenation (N, 4), N = sum Hl*Wl*A. Order and
    geometry are described in the module docstring. Anchors are not clipped to the image.
    """
    if min_level > max_level:
        raise ValueError(f"generate_anchors: min_level {min_level} > max_level {max_level}")
    if not scales or not aspect_ratios:
        raise ValueError(
            f"generate_anchors: need at least one scale and aspect ratio, got "
            f"scales={scales}, aspect_ratios={aspect_ratios}"
        )
    per_level = []
    for lvl, (hl, wl) in zip(range(min_level, max_level + 1), level_shapes(image_size, min_level, max_level)):
        stride = 2**lvl
        wh = tf.constant(cell_anchors(anchor_size, stride, scales, aspect_ratios), tf.float32)  # (A, 2)
        cy = (tf.range(hl, dtype=tf.float32) + 0.5) * stride
        cx = (tf.range(wl, dtype=tf.float32) + 0.5) * stride
        cy, cx = tf.meshgrid(cy, cx, indexing="ij")  # (Hl, Wl)
        # expand_dims rather than [:, :, None]: TFLite has no strided slice adding an axis to a
        # tensor of unknown size (the anchors of any input size are computed in the graph)
        centres = tf.expand_dims(tf.stack([cx, cy], axis=-1), 2)  # (Hl, Wl, 1, 2)
        half = tf.reshape(0.5 * wh, [1, 1, -1, 2])  # (1, 1, A, 2)
        boxes = tf.concat([centres - half, centres + half], axis=-1)  # (Hl, Wl, A, 4)
        per_level.append(tf.reshape(boxes, [-1, 4]))
    return per_level, tf.concat(per_level, axis=0)


def generate_anchors_for_config(anchor_cfg: AnchorConfig, image_size) -> Tuple[List[tf.Tensor], tf.Tensor]:
    """:func:`generate_anchors` for the RPN levels P2..P{``anchor_cfg.max_level``} of an
    :class:`~maskrcnn_body.config.sections.AnchorConfig` (``size``, ``scales``, ``aspect_ratios``)."""
    return generate_anchors(
        image_size, 2, anchor_cfg.max_level, anchor_cfg.size, anchor_cfg.scales, anchor_cfg.aspect_ratios
    )
