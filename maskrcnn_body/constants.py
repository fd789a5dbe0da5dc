"""Names, orders and symmetry tables used everywhere in maskrcnn_body.

This module is the single definition of:

* the 7 mask channels (``CHANNELS``) and which channels swap under a horizontal flip,
* the 15 JHMDB keypoints (``KEYPOINTS``), their flip permutation and the skeleton,
* the dataset names allowed in ``image/dataset``,
* the size divisor of padded images and the names of the loss terms.

Left and right always mean the *subject's own* sides: for a person facing the camera
the left arm appears on the image's right.

Coordinate convention (shared by the schema, the pipeline, the model and evaluation):
continuous pixel-edge coordinates with the top-left image corner at (0, 0). Pixel
column ``i`` covers ``[i, i + 1)`` and its centre is at ``i + 0.5``. Boxes are
``(x1, y1, x2, y2)`` with ``x2``/``y2`` exclusive, so a one-pixel mask at column 5 has
``x1 = 5, x2 = 6``. Keypoints use the same frame (a joint at the centre of pixel
(col 5, row 7) is ``(5.5, 7.5)``). Under a horizontal flip of an image of width ``W``
every x becomes ``W - x``.
"""

from __future__ import annotations

from typing import Any, overload

# --------------------------------------------------------------------------- channels
CHANNELS = ("body", "head", "torso", "left_arm", "right_arm", "left_leg", "right_leg")
"""Mask channel names, in channel order. Channel k is bit ``1 << k`` of a parts PNG."""
NUM_CHANNELS = len(CHANNELS)
CHANNEL_INDEX = {name: i for i, name in enumerate(CHANNELS)}
BODY = 0
PART_CHANNELS = tuple(range(1, NUM_CHANNELS))  # channels clipped to the body mask

CHANNEL_FLIP_PAIRS = ((3, 4), (5, 6))
"""Channel pairs that swap under a horizontal flip (left arm <-> right arm, left leg <-> right leg)."""


def _perm_from_pairs(n, pairs):
    perm = list(range(n))
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return tuple(perm)


CHANNEL_FLIP_PERM = _perm_from_pairs(NUM_CHANNELS, CHANNEL_FLIP_PAIRS)
"""``flipped[..., k] = original[..., CHANNEL_FLIP_PERM[k]]`` after mirroring the pixels."""

# --------------------------------------------------------------------------- keypoints
KEYPOINTS = (
    "neck",
    "belly",
    "face",
    "right_shoulder",
    "left_shoulder",
    "right_hip",
    "left_hip",
    "right_elbow",
    "left_elbow",
    "right_knee",
    "left_knee",
    "right_wrist",
    "left_wrist",
    "right_ankle",
    "left_ankle",
)
"""The 15 JHMDB joints in schema order (0-based)."""
NUM_KEYPOINTS = len(KEYPOINTS)
KEYPOINT_INDEX = {name: i for i, name in enumerate(KEYPOINTS)}

KEYPOINT_FLIP_PAIRS = ((3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14))
KEYPOINT_FLIP_PERM = _perm_from_pairs(NUM_KEYPOINTS, KEYPOINT_FLIP_PAIRS)
"""``flipped[k] = original[KEYPOINT_FLIP_PERM[k]]`` after mirroring x."""

SKELETON = (
    ("face", "neck"),
    ("neck", "belly"),
    ("neck", "right_shoulder"),
    ("right_shoulder", "right_elbow"),
    ("right_elbow", "right_wrist"),
    ("neck", "left_shoulder"),
    ("left_shoulder", "left_elbow"),
    ("left_elbow", "left_wrist"),
    ("belly", "right_hip"),
    ("right_hip", "right_knee"),
    ("right_knee", "right_ankle"),
    ("belly", "left_hip"),
    ("left_hip", "left_knee"),
    ("left_knee", "left_ankle"),
)
SKELETON_INDEX = tuple((KEYPOINT_INDEX[a], KEYPOINT_INDEX[b]) for a, b in SKELETON)

KEYPOINT_SIGMAS = (
    # OKS sigmas for the JHMDB-15 joints. JHMDB has no official sigmas; we take COCO's
    # per-joint values for the joints that correspond (shoulders .079, elbows .072,
    # wrists .062, hips .107, knees .087, ankles .089), the COCO nose value .026 widened
    # to .050 for the face centre, and the mean of shoulders and hips for neck/belly.
    0.079,
    0.107,
    0.050,
    0.079,
    0.079,
    0.107,
    0.107,
    0.072,
    0.072,
    0.087,
    0.087,
    0.062,
    0.062,
    0.089,
    0.089,
)

# visibility flags (schema `person/keypoints` v)
KP_UNLABELLED, KP_OCCLUDED, KP_VISIBLE = 0, 1, 2

# --------------------------------------------------------------------------- model
SIZE_DIVISOR = 32
"""Padded image sides are multiples of this (the coarsest RoI level, P5, has stride 32)."""


@overload
def ceil_div(n: int, divisor: int) -> int: ...
@overload
def ceil_div(n: Any, divisor: int) -> Any: ...
def ceil_div(n, divisor):
    """``ceil(n / divisor)`` for non-negative ``n``: a Python int, or an integer tensor / array.

    Written ``(n + d - 1) // d``, not ``-(-n // d)``: ONNX's integer Div truncates, so a floor
    division of a negative number would not survive the ONNX export (identical values for n >= 0)."""
    return (n + divisor - 1) // divisor


@overload
def round_up(n: int, divisor: int = SIZE_DIVISOR) -> int: ...
@overload
def round_up(n: Any, divisor: int = SIZE_DIVISOR) -> Any: ...
def round_up(n, divisor=SIZE_DIVISOR):
    """``n`` rounded up to a multiple of ``divisor`` (default :data:`SIZE_DIVISOR`); an int, or an
    integer tensor / array (:func:`ceil_div`)."""
    return ceil_div(n, divisor) * divisor


LOSS_KEYS = ("rpn_class", "rpn_box", "class", "box", "mask", "keypoint")
"""The model's loss terms, in the order they are logged; ``total`` is their weighted sum."""

# pixel normalisation (``model.backbone.preprocessing``), as keras.applications' preprocess_input modes
TORCH_MEAN = (0.485, 0.456, 0.406)
"""'torch' mode: RGB mean of image / 255 (and :data:`TORCH_STD` its std)."""
TORCH_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
"""'caffe' mode: BGR mean subtracted from 0-255 pixels (Keras' ImageNet ResNet50 weights)."""
"""The model's loss terms, in the order they are logged; ``total`` is their weighted sum."""

# --------------------------------------------------------------------------- datasets
DATASETS = ("synthetic", "pascal_part", "jhmdb", "ade20k", "chalearn", "coco", "densepose_coco", "custom")
"""Values of ``image/dataset``; ``custom`` = converted from the format of docs/DATASETS.md, "Your own annotations"."""

# colours (RGB) for drawing the six parts; distinct hues, one per part channel 1..6
PART_COLOURS = {
    1: (255, 215, 0),  # head: gold
    2: (0, 170, 255),  # torso: sky blue
    3: (230, 25, 75),  # left arm: red
    4: (60, 180, 75),  # right arm: green
    5: (145, 30, 180),  # left leg: purple
    6: (255, 130, 0),  # right leg: orange
}
