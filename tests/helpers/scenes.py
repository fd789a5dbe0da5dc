"""Hand-built dumps for tests and demos: stick-figure people facing the camera (numpy only).

A person fills its box (x1, y1, x2, y2, integers) with rectangular parts; being seen from the
front, the subject's *left* arm and leg are on the image's *right*:

=============  ==================  ==================
part           rows (box height)   columns (box width)
=============  ==================  ==================
head           0.00 - 0.25         0.35 - 0.65
torso          0.25 - 0.60         0.30 - 0.70
right arm      0.25 - 0.60         0.00 - 0.30
left arm       0.25 - 0.60         0.70 - 1.00
right leg      0.60 - 1.00         0.30 - 0.50
left leg       0.60 - 1.00         0.50 - 0.70
=============  ==================  ==================

The body (channel 0) is the union of the parts, so the box is tight on it.
"""

from __future__ import annotations

from typing import Dict, Sequence

import numpy as np

from maskrcnn_body import constants
from maskrcnn_body.data.schema import pack_channels, unpack_channels
from maskrcnn_body.ops import paste

PART_RECTS = {  # channel: (row0, row1, col0, col1) as fractions of the box
    constants.CHANNEL_INDEX["head"]: (0.0, 0.25, 0.35, 0.65),
    constants.CHANNEL_INDEX["torso"]: (0.25, 0.6, 0.3, 0.7),
    constants.CHANNEL_INDEX["right_arm"]: (0.25, 0.6, 0.0, 0.3),
    constants.CHANNEL_INDEX["left_arm"]: (0.25, 0.6, 0.7, 1.0),
    constants.CHANNEL_INDEX["right_leg"]: (0.6, 1.0, 0.3, 0.5),
    constants.CHANNEL_INDEX["left_leg"]: (0.6, 1.0, 0.5, 0.7),
}
JOINTS = {  # (x, y) as fractions of the box
    "neck": (0.5, 0.25),
    "belly": (0.5, 0.45),
    "face": (0.5, 0.12),
    "right_shoulder": (0.3, 0.27),
    "left_shoulder": (0.7, 0.27),
    "right_hip": (0.4, 0.6),
    "left_hip": (0.6, 0.6),
    "right_elbow": (0.15, 0.4),
    "left_elbow": (0.85, 0.4),
    "right_knee": (0.4, 0.8),
    "left_knee": (0.6, 0.8),
    "right_wrist": (0.1, 0.55),
    "left_wrist": (0.9, 0.55),
    "right_ankle": (0.4, 0.97),
    "left_ankle": (0.6, 0.97),
}


def stick_person(height: int, width: int, box: Sequence[int]):
    """(parts uint8 (H, W) bit field, keypoints float32 (15, 3) with v = 2) of one person."""
    x1, y1, x2, y2 = (int(v) for v in box)
    bw, bh = x2 - x1, y2 - y1
    ch = np.zeros((height, width, constants.NUM_CHANNELS), bool)
    for k, (r0, r1, c0, c1) in PART_RECTS.items():
        ch[
            y1 + int(round(r0 * bh)) : y1 + int(round(r1 * bh)), x1 + int(round(c0 * bw)) : x1 + int(round(c1 * bw)), k
        ] = True
    ch[..., constants.BODY] = ch[..., 1:].any(-1)
    kp = np.array(
        [[x1 + JOINTS[n][0] * bw, y1 + JOINTS[n][1] * bh, constants.KP_VISIBLE] for n in constants.KEYPOINTS],
        np.float32,
    )
    return pack_channels(ch), kp


def make_scene(height: int, width: int, boxes: Sequence[Sequence[int]], seed: int = 0) -> Dict[str, np.ndarray]:
    """Ground-truth half of a dump: ``image`` (noise background, people drawn in grey),
    ``source_id``, ``gt_boxes``, ``gt_parts``, ``gt_valid`` (all 1), ``gt_keypoints``."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 80, (height, width, 3), dtype=np.uint8)
    parts, kps = [], []
    for box in boxes:
        p, k = stick_person(height, width, box)
        parts.append(p)
        kps.append(k)
        image[(p & 1) != 0] = (170, 170, 170)
    g = len(boxes)
    return {
        "image": image,
        "source_id": f"synthetic_{seed}",
        "gt_boxes": np.asarray(boxes, np.float32).reshape(g, 4),
        "gt_parts": np.asarray(parts, np.uint8).reshape(g, height, width),
        "gt_valid": np.ones((g, constants.NUM_CHANNELS), np.uint8),
        "gt_keypoints": np.asarray(kps, np.float32).reshape(g, constants.NUM_KEYPOINTS, 3),
    }


def perfect_predictions(scene: Dict[str, np.ndarray], mask_size: int) -> Dict[str, np.ndarray]:
    """Prediction half of a dump that reproduces the ground truth: boxes = GT boxes, scores
    0.9, 0.8, ..., masks = :func:`paste.crop_masks` of the GT channels (exact when the boxes are
    ``mask_size`` pixels square), keypoints = GT joints with score 1."""
    g = len(scene["gt_boxes"])
    kp = scene["gt_keypoints"].copy()
    kp[..., 2] = 1.0
    return {
        "boxes": scene["gt_boxes"].copy(),
        "scores": np.linspace(0.9, 0.9 - 0.1 * (g - 1), g).astype(np.float32) if g else np.zeros(0, np.float32),
        "masks": paste.crop_masks(unpack_channels(scene["gt_parts"]), scene["gt_boxes"], mask_size).astype(np.float16),
        "keypoints": kp,
    }


def empty_predictions(mask_size: int) -> Dict[str, np.ndarray]:
    """Prediction half of a dump with no detection."""
    return {
        "boxes": np.zeros((0, 4), np.float32),
        "scores": np.zeros(0, np.float32),
        "masks": np.zeros((0, mask_size, mask_size, constants.NUM_CHANNELS), np.float16),
        "keypoints": np.zeros((0, constants.NUM_KEYPOINTS, 3), np.float32),
    }
