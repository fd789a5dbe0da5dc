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

from maskrcnn_body.constants import SIZE_DIVISOR
from maskrcnn_body.data import augment
from maskrcnn_body.ops.boxes import clip_boxes


def preprocess(image: tf.Tensor, min_size: int, max_size: int, pad_size: int
               ) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
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


def postprocess(det: Dict[str, tf.Tensor], scale: tf.Tensor, original_shape: tf.Tensor) -> Dict[str, tf.Tensor]:
    """Batch-of-one detect dict (resized frame) -> detections in original pixels (first image).

    ``original_shape`` (2,) int is the source image's (height, width). Boxes and keypoint x/y are
    clipped to it: the resized size is rounded, so a box clipped to the resized image can reach
    up to half a resized pixel (``0.5 / scale``) past the original border.
    Returns padded tensors (D rows) plus ``num_detections``; rows past it are zero.
    """
    inv = 1.0 / scale
    hw = tf.cast(original_shape, tf.float32)
    kp = det["keypoints"][0]
    xy = tf.clip_by_value(kp[..., :2] * inv, 0.0, tf.stack([hw[1], hw[0]]))
    return {"boxes": clip_boxes(det["boxes"][0] * inv, original_shape), "scores": det["scores"][0],
            "masks": det["masks"][0], "keypoints": tf.concat([xy, kp[..., 2:]], -1),
            "num_detections": det["num_detections"][0]}
