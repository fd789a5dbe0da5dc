"""Geometric transforms of a parsed example: horizontal flip, resize scale, box-frame masks.

All functions are pure TensorFlow (no state, no py_function) and work on the
full-resolution example returned by :func:`maskrcnn_body.data.pipeline.parse_example`:

=============== ======= ============ =================================================
key             dtype   shape        meaning
=============== ======= ============ =================================================
``image``       uint8   (H, W, 3)    RGB
``parts``       uint8   (N, H, W)    bit field per person; bit k = channel k
``boxes``       float32 (N, 4)       x1, y1, x2, y2, pixel-edge frame, x2/y2 exclusive
``parts_valid`` int32   (N, 7)       1 = channel annotated
``keypoints``   float32 (N, 15, 3)   x, y (pixel-edge frame), v in {0, 1, 2}
=============== ======= ============ =================================================

Coordinates follow :mod:`maskrcnn_body.constants`: pixel column ``i`` covers ``[i, i + 1)``
and has its centre at ``i + 0.5``; a horizontal flip of width ``W`` maps ``x -> W - x``.
"""

from __future__ import annotations

from typing import Dict, Tuple

import tensorflow as tf

from maskrcnn_body import constants


def _bit_flip_lut() -> tf.Tensor:
    """uint8 (256,) table: a parts bit field -> the same pixel with left/right channels swapped.

    Bit k of the output is bit ``CHANNEL_FLIP_PERM[k]`` of the input; bit 7 (unused by the
    schema) is kept so that the table is an exact involution.
    """
    perm = list(constants.CHANNEL_FLIP_PERM) + [7]
    table = [sum(((v >> perm[k]) & 1) << k for k in range(8)) for v in range(256)]
    return tf.constant(table, tf.uint8)


def flip_example(example: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """Mirrors a full-resolution example left-right; returns a new dict (other keys copied).

    Image and parts are mirrored along the width axis; left/right channels are swapped in the
    parts bit field and in ``parts_valid`` with ``constants.CHANNEL_FLIP_PERM``; boxes become
    ``(W - x2, y1, W - x1, y2)``; labelled keypoints (v > 0) get ``x -> W - x`` and joints are
    permuted with ``constants.KEYPOINT_FLIP_PERM`` (unlabelled joints keep their x, normally 0).
    ``W`` is the width of ``example["image"]``. Applying it twice is the identity.
    """
    out = dict(example)
    image = example["image"]
    width = tf.cast(tf.shape(image)[1], tf.float32)
    out["image"] = tf.reverse(image, axis=[1])
    mirrored = tf.reverse(example["parts"], axis=[2])
    out["parts"] = tf.gather(_bit_flip_lut(), tf.cast(mirrored, tf.int32))
    out["parts_valid"] = tf.gather(example["parts_valid"], constants.CHANNEL_FLIP_PERM, axis=1)
    x1, y1, x2, y2 = tf.unstack(tf.cast(example["boxes"], tf.float32), num=4, axis=-1)
    out["boxes"] = tf.stack([width - x2, y1, width - x1, y2], axis=-1)
    kp = tf.cast(example["keypoints"], tf.float32)
    x, y, v = tf.unstack(kp, num=3, axis=-1)
    x = tf.where(v > 0, width - x, x)
    out["keypoints"] = tf.gather(tf.stack([x, y, v], axis=-1), constants.KEYPOINT_FLIP_PERM, axis=1)
    return out


def random_flip(example: Dict[str, tf.Tensor], seed: tf.Tensor, prob: float = 0.5) -> Dict[str, tf.Tensor]:
    """:func:`flip_example` with probability ``prob``; ``seed`` is an int32/int64 (2,) stateless seed."""
    do_flip = tf.random.stateless_uniform([], seed=seed) < prob
    return tf.cond(do_flip, lambda: flip_example(example), lambda: dict(example))


def resize_scale(
    height, width, min_size: int, max_size: int, pad_size: int, jitter=1.0, zoom_in: bool = False
) -> tf.Tensor:
    """float32 scalar ``scale`` (resized = original * scale) for an image of ``height x width``.

    The shorter side goes to ``min_size`` unless that makes the longer side exceed ``max_size`` (then
    the longer side goes to ``max_size``); the result is multiplied by ``jitter`` and, unless
    ``zoom_in``, capped so that the longer side fits in ``pad_size``: a draw above what fits gives the
    largest size that fits (with ``cpu_small``'s 256 px images and ``scale_jitter`` (0.8, 1.2), half the
    draws give exactly the base scale). With ``zoom_in`` (``input.zoom_in``, training) the resized image
    may exceed ``pad_size`` and is then cut to it by :func:`crop_example`.
    """
    h = tf.cast(height, tf.float32)
    w = tf.cast(width, tf.float32)
    short, long = tf.minimum(h, w), tf.maximum(h, w)
    if zoom_in:
        scale = tf.minimum(tf.minimum(float(min_size) / short, float(max_size) / long), float(pad_size) / long)
        return scale * tf.cast(jitter, tf.float32)
    scale = tf.minimum(float(min_size) / short, float(max_size) / long)
    return tf.minimum(scale * tf.cast(jitter, tf.float32), float(pad_size) / long)


def random_crop_offset(size: tf.Tensor, pad_size: int, seed: tf.Tensor) -> tf.Tensor:
    """int32 (2,) ``(y, x)`` top-left corner of a ``pad_size`` window in a resized image of ``size``
    (h, w), uniform over the integer positions that keep the window inside the image; 0 along a side
    that already fits. ``seed``: int32/int64 (2,) stateless seed."""
    room = tf.maximum(tf.cast(size, tf.int32) - pad_size, 0)
    u = tf.random.stateless_uniform([2], seed=seed)
    return tf.minimum(tf.cast(tf.floor(u * tf.cast(room + 1, tf.float32)), tf.int32), room)


def crop_example(
    image: tf.Tensor, boxes: tf.Tensor, keypoints: tf.Tensor, offset: tf.Tensor, pad_size: int, min_side: float = 2.0
):
    """Cuts the ``pad_size`` window at ``offset`` out of a resized image and its annotations.

    Args:
      image: float32 (h, w, 3) resized image.
      boxes: float32 (N, 4) and ``keypoints`` float32 (N, 15, 3), in the resized image's pixel-edge frame.
      offset: int32 (2,) ``(y, x)`` from :func:`random_crop_offset`.
      min_side: people whose box keeps less than this many pixels of width or height are dropped.

    Returns ``(image (h', w', 3), boxes (M, 4), keypoints (M, 15, 3), keep (N,) bool, size (2,) int32)``
    with ``h' = min(h, pad_size)``: boxes shifted and clipped to the window, keypoints shifted and set
    to (0, 0, 0) when they leave it; ``keep`` marks the people kept (rows of the outputs). With a zero
    offset and an image that fits, everything is returned unchanged.
    """
    shape = tf.shape(image)
    size = tf.minimum(shape[:2], pad_size)
    image = tf.slice(image, tf.concat([offset, [0]], 0), tf.concat([size, [-1]], 0))
    oy, ox = tf.unstack(tf.cast(offset, tf.float32))
    hf, wf = tf.unstack(tf.cast(size, tf.float32))
    shifted = boxes - tf.stack([ox, oy, ox, oy])
    lo = tf.zeros_like(hf)
    clipped = tf.stack(
        [
            tf.clip_by_value(shifted[:, 0], lo, wf),
            tf.clip_by_value(shifted[:, 1], lo, hf),
            tf.clip_by_value(shifted[:, 2], lo, wf),
            tf.clip_by_value(shifted[:, 3], lo, hf),
        ],
        axis=-1,
    )
    keep = tf.logical_and(clipped[:, 2] - clipped[:, 0] >= min_side, clipped[:, 3] - clipped[:, 1] >= min_side)
    x, y, v = tf.unstack(keypoints, num=3, axis=-1)
    x, y = x - ox, y - oy
    inside = (v > 0) & (x >= 0) & (x < wf) & (y >= 0) & (y < hf)
    kp = tf.where(inside[..., None], tf.stack([x, y, v], -1), tf.zeros_like(keypoints))
    return image, tf.boolean_mask(clipped, keep), tf.boolean_mask(kp, keep), keep, size


def resized_size(height, width, scale) -> tf.Tensor:
    """int32 (2,) valid (height, width) after resizing by ``scale``: ``round(side * scale)``, >= 1.

    Every pixel centre of the resized image, mapped back by ``/ scale``, lies inside the
    original image, so no resized pixel is extrapolated.
    """
    hw = tf.cast(tf.stack([height, width]), tf.float32) * scale
    return tf.maximum(tf.cast(tf.round(hw), tf.int32), 1)


def resize_image(image: tf.Tensor, scale: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
    """Bilinear resize of an (H, W, C) image by exactly ``scale`` to ``size`` (h, w) -> float32.

    Output pixel centre ``(i + 0.5)`` samples the input at ``(i + 0.5) / scale`` (pixel-edge
    frame, the same mapping for both axes, matching ``coordinate * scale`` for boxes and
    keypoints); edge pixels are replicated. Equals ``tf.image.resize(..., "bilinear")`` when
    ``size / (H, W)`` equals ``scale`` exactly.
    """
    scale = tf.cast(scale, tf.float32)
    out = tf.raw_ops.ScaleAndTranslate(
        images=image[None],
        size=tf.cast(size, tf.int32),
        scale=tf.stack([scale, scale]),
        translation=tf.zeros([2], tf.float32),
        kernel_type="triangle",
        antialias=False,
    )
    return out[0]


def pad_to_multiple(image: tf.Tensor, divisor: int) -> tf.Tensor:
    """Zero-pads an (H, W, C) image bottom/right to the next multiples of ``divisor``."""
    shape = tf.shape(image)
    h, w = constants.round_up(shape[0], divisor), constants.round_up(shape[1], divisor)
    return tf.pad(image, [[0, h - shape[0]], [0, w - shape[1]], [0, 0]])


def _box_samples(lo: tf.Tensor, hi: tf.Tensor, size: int, limit: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Bilinear sample positions along one axis for ``size`` bins of each box ``[lo, hi)``.

    Bin j samples pixel-edge coordinate ``lo + (j + 0.5) * (hi - lo) / size``, i.e. index
    coordinate ``c = that - 0.5`` (pixel i has its centre at index i), clamped to the centres
    of the first and last pixel the box touches (``floor(lo)`` .. ``ceil(hi) - 1``) and to the
    image ``[0, limit - 1]``. Returns (i0, i1) int32 (N, size) and the weight of i1, float32.
    """
    j = (tf.range(size, dtype=tf.float32) + 0.5) / float(size)
    c = lo[:, None] + j[None, :] * (hi - lo)[:, None] - 0.5
    last_px = tf.cast(limit - 1, tf.float32)
    first = tf.clip_by_value(tf.floor(lo), 0.0, last_px)
    last = tf.clip_by_value(tf.math.ceil(hi) - 1.0, first, last_px)
    c = tf.clip_by_value(c, first[:, None], last[:, None])
    i0 = tf.floor(c)
    frac = c - i0
    i1 = tf.minimum(i0 + 1.0, last[:, None])
    return tf.cast(i0, tf.int32), tf.cast(i1, tf.int32), frac


def crop_box_masks(parts: tf.Tensor, boxes: tf.Tensor, size: int) -> tf.Tensor:
    """Each person's 7 channels cropped to its box and resized: float32 (N, size, size, 7) in [0, 1].

    Args:
      parts: uint8 (N, H, W) bit fields (bit k = channel k), full resolution.
      boxes: float32 (N, 4) x1, y1, x2, y2 in the same (original) image, pixel-edge frame.
      size: output side (``gt_mask_size``).

    Convention (the RoIAlign ``aligned=True`` / ``tf.image.resize`` half-pixel one): output bin
    (i, j) is the bilinear value at the bin centre ``(x1 + (j + 0.5) * w / size,
    y1 + (i + 0.5) * h / size)``; samples that would fall between the box's border pixels and
    the box edge are clamped to the border pixel centres (edge replication inside the box), so
    a mask covering its whole box stays exactly 1 and nothing outside the box leaks in. For an
    integer box this equals ``tf.image.resize(channels[y1:y2, x1:x2], (size, size), "bilinear")``.
    Pixels are gathered from the packed bit field before unpacking, so memory is
    O(N * size * W), never O(N * H * W * 7) floats.
    """
    shape = tf.shape(parts)
    x1, y1, x2, y2 = tf.unstack(tf.cast(boxes, tf.float32), num=4, axis=-1)
    y0i, y1i, ty = _box_samples(y1, y2, size, shape[1])
    x0i, x1i, tx = _box_samples(x1, x2, size, shape[2])
    bits = tf.range(constants.NUM_CHANNELS, dtype=tf.int32)

    def corner(rows, cols):
        r = tf.gather(parts, rows, axis=1, batch_dims=1)  # (N, size, W)
        v = tf.cast(tf.gather(r, cols, axis=2, batch_dims=1), tf.int32)  # (N, size, size)
        return tf.cast(tf.bitwise.bitwise_and(tf.bitwise.right_shift(v[..., None], bits), 1), tf.float32)

    tx = tx[:, None, :, None]
    ty = ty[:, :, None, None]
    top = corner(y0i, x0i) * (1.0 - tx) + corner(y0i, x1i) * tx
    bottom = corner(y1i, x0i) * (1.0 - tx) + corner(y1i, x1i) * tx
    return top * (1.0 - ty) + bottom * ty


def scale_coordinates(boxes: tf.Tensor, keypoints: tf.Tensor, scale: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """Boxes (N, 4) and keypoints' x, y (N, 15, 3) multiplied by ``scale``; keypoint v is kept."""
    scale = tf.cast(scale, tf.float32)
    kp = tf.cast(keypoints, tf.float32)
    return tf.cast(boxes, tf.float32) * scale, tf.concat([kp[..., :2] * scale, kp[..., 2:]], axis=-1)
