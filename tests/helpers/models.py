"""Small models for tests: a training directory holding an untrained, seeded model."""

from __future__ import annotations

import keras
import numpy as np

from maskrcnn_body.config import get_config
from maskrcnn_body.inference.loading import write_train_dir
from maskrcnn_body.model.maskrcnn import build_model


def write_random_train_dir(train_dir: str, preset: str = "cpu_small", seed: int = 0, **overrides) -> str:
    """A training directory holding an untrained, random-weight model of ``get_config(preset,
    **overrides)`` (seeded): for smoke and load tests of the inference path without training.
    Returns the checkpoint path."""
    keras.utils.set_random_seed(seed)
    cfg = get_config(preset, **overrides)
    return write_train_dir(build_model(cfg), cfg, train_dir)


def tiny_config(size: int = 64, **overrides):
    """``cpu_small`` at ``size`` px with few proposals and detections (fast model tests);
    ``overrides`` are dotted config keys."""
    return get_config(
        "cpu_small",
        **{
            "input.min_size": size,
            "input.max_size": size,
            "model.rpn.pre_nms_topk_test": 50,
            "model.rpn.post_nms_topk_test": 20,
            "model.postprocess.max_detections": 5,
            "model.postprocess.score_threshold": 0.0,
            **overrides,
        },
    )


def tiny_batch(size: int = 64, num_gt=(2, 1), split_parts: bool = False) -> dict:
    """A training batch of 2 random ``size`` px images with up to 3 people (``num_gt`` real rows:
    fixed boxes, keypoints at the box centres, visible). Masks: every channel all ones, or with
    ``split_parts`` body everywhere, head the top half and torso the bottom half of the box."""
    p = 3
    boxes = np.zeros((2, p, 4), np.float32)
    boxes[0, :2] = [[4, 4, 30, 60], [30, 10, 60, 50]]
    boxes[1, :1] = [[10, 5, 50, 60]]
    kps = np.zeros((2, p, 15, 3), np.float32)
    kps[..., 0] = (boxes[..., 0:1] + boxes[..., 2:3]) / 2
    kps[..., 1] = (boxes[..., 1:2] + boxes[..., 3:4]) / 2
    kps[..., 2] = (boxes[..., 2:3] > 0) * 2.0
    if split_parts:
        masks = np.zeros((2, p, 16, 16, 7), np.float32)
        masks[..., 0] = 1.0
        masks[:, :, :8, :, 1] = 1.0  # head: top half
        masks[:, :, 8:, :, 2] = 1.0  # torso: bottom half
    else:
        masks = np.ones((2, p, 16, 16, 7), np.float32)
    return {
        "images": np.random.default_rng(0).uniform(0, 255, (2, size, size, 3)).astype(np.float32),
        "image_shape": np.array([[size, size]] * 2, np.int32),
        "num_gt": np.array(num_gt, np.int32),
        "gt_boxes": boxes,
        "gt_masks": masks,
        "gt_parts_valid": np.ones((2, p, 7), np.float32),
        "gt_keypoints": kps,
    }
