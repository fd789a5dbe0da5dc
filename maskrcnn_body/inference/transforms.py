"""Image <-> model frame: the one resize/pad rule and its inverse, shared by every inference path
(:class:`~maskrcnn_body.inference.predictor.Predictor`, the HTTP server, the SavedModel/TFLite export).

The resize rule is the training pipeline's (``data.augment.resize_scale``): shorter side to
``min_size`` unless the longer side would pass ``max_size``; the image is then padded bottom/right
with zeros to the next multiples of 32 (as the pipeline pads each image before batching), so the
model computes only the image's own pixels. Coordinates map back by dividing by ``scale``.
"""

from __future__ import annotations

from typing import Dict, Tuple

import tensorflow as tf

from maskrcnn_body.constants import SIZE_DIVISOR, round_up
from maskrcnn_body.data import augment
from maskrcnn_body.ops.boxes import clip_boxes


def preprocess(image: tf.Tensor, min_size: int, max_size: int, pad_size: int) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """RGB uint8 (H, W, 3) -> (padded float32 (1, Hp, Wp, 3), image_shape int32 (1, 2), scale float32).

    Same scale rule as the training pipeline (``data.augment.resize_scale``, the longer side capped
    at ``pad_size``); resizing uses ``tf.image.resize`` (bilinear, half-pixel centres), which TFLite
    has as a builtin. Hp, Wp are the resized size rounded up to multiples of 32.
    """
    shape = tf.shape(image)
    scale = augment.resize_scale(shape[0], shape[1], min_size, max_size, pad_size)
    size = augment.resized_size(shape[0], shape[1], scale)
    resized = tf.image.resize(tf.cast(image, tf.float32)[None], size, method="bilinear")
    padded = augment.pad_to_multiple(resized[0], SIZE_DIVISOR)
    return padded[None], size[None], scale


def preprocess_batch(
    images: tf.Tensor, min_size: int, max_size: int, pad_size: int
) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Same-size RGB uint8 images (B, H, W, 3) -> (padded float32 (B, Hp, Wp, 3), image_shape int32
    (B, 2), scales float32 (B,)): :func:`preprocess` of each image, in one resize."""
    shape = tf.shape(images)
    b = shape[0]
    scale = augment.resize_scale(shape[1], shape[2], min_size, max_size, pad_size)
    size = augment.resized_size(shape[1], shape[2], scale)
    resized = tf.image.resize(tf.cast(images, tf.float32), size, method="bilinear")
    h, w = round_up(size[0], SIZE_DIVISOR), round_up(size[1], SIZE_DIVISOR)
    padded = tf.pad(resized, [[0, 0], [0, h - size[0]], [0, w - size[1]], [0, 0]])
    return padded, tf.tile(size[None], [b, 1]), tf.fill([b], scale)


def postprocess_batch(det: Dict[str, tf.Tensor], scales: tf.Tensor, original_shapes: tf.Tensor) -> Dict[str, tf.Tensor]:
    """Detect dict of a batch (resized frame) -> detections in each image's original pixels.

    ``scales`` (B,) float32 and ``original_shapes`` (B, 2) int32 (height, width) per image. Boxes and
    keypoint x/y are clipped to the original image: the resized size is rounded, so a box clipped to
    the resized image can reach up to half a resized pixel (``0.5 / scale``) past the original border.
    Returns padded tensors (B, D, ...) plus ``num_detections`` (B,); rows past it are zero.
    """
    inv = 1.0 / tf.cast(scales, tf.float32)
    hw = tf.cast(original_shapes, tf.float32)  # (B, 2)
    kp = det["keypoints"]  # (B, D, 15, 3)
    limit = tf.reshape(tf.stack([hw[:, 1], hw[:, 0]], -1), [-1, 1, 1, 2])
    xy = tf.clip_by_value(kp[..., :2] * inv[:, None, None, None], 0.0, limit)
    return {
        "boxes": clip_boxes(det["boxes"] * inv[:, None, None], original_shapes),
        "scores": det["scores"],
        "masks": det["masks"],
        "keypoints": tf.concat([xy, kp[..., 2:]], -1),
        "num_detections": det["num_detections"],
    }


def postprocess(det: Dict[str, tf.Tensor], scale: tf.Tensor, original_shape: tf.Tensor) -> Dict[str, tf.Tensor]:
    """Batch-of-one detect dict (resized frame) -> detections in original pixels (first image), as
    :func:`postprocess_batch` (``scale`` scalar, ``original_shape`` (2,))."""
    out = postprocess_batch(det, tf.reshape(scale, [1]), tf.reshape(original_shape, [1, 2]))
    return {k: v[0] for k, v in out.items()}
