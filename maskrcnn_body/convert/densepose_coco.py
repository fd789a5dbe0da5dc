"""DensePose-COCO -> schema v1 (all 7 channels + 15 keypoints on the people DensePose annotates).

DensePose-COCO (Gueler, Neverova, Kokkinos, CVPR 2018) adds to COCO 2014 person annotations, for
about 50k people, ``dp_masks``: 14 RLE-encoded 256x256 part masks in the frame of the person's box,
in this order (the dataset's ``data_format.md``; detectron2 ``DENSEPOSE_DATASETS.md``)::

    1 Torso, 2 Right Hand, 3 Left Hand, 4 Left Foot, 5 Right Foot, 6 Upper Leg Right,
    7 Upper Leg Left, 8 Lower Leg Right, 9 Lower Leg Left, 10 Upper Arm Left,
    11 Upper Arm Right, 12 Lower Arm Left, 13 Lower Arm Right, 14 Head

Layout under ``root`` (docs/DATASETS.md)::

    annotations/densepose_coco_2014_{train,valminusminival,minival}.json   (DensePose's own names)
      or annotations/densepose_{train,valminusminival,minival}2014.json   (detectron2's names; also in ROOT)
    train2014/COCO_train2014_<12 digits>.jpg, val2014/COCO_val2014_<12 digits>.jpg

``--split train`` reads ``train2014/``; ``valminusminival`` and ``minival`` read ``val2014/``.

* **Parts -> channels** (:data:`DP_PART_CHANNEL`): head = Head; torso = Torso; left arm = Upper
  Arm Left + Lower Arm Left + Left Hand; right arm likewise; left leg = Upper Leg Left + Lower Leg
  Left + Left Foot; right leg likewise. "Left"/"Right" are the person's own sides, as our channels
  are (verified on DensePose's own documentation, flip tables and real annotations: docs/DATASETS.md,
  "DensePose-COCO", "How the side convention and the mask frame were verified").
* **Mask frame**: the 256x256 grid divides the annotation's ``bbox`` ``[x, y, w, h]`` into 256 x 256
  equal cells in the pixel-edge frame: cell ``(r, c)`` covers ``x + c * w / 256 <= X < x + (c + 1) *
  w / 256`` (and likewise in y). An image pixel takes, nearest neighbour, the label of the cell under
  its centre: ``c = floor((col + 0.5 - x) * 256 / w)`` (:func:`paste_box_labels`). Where two part
  masks overlap, the later one in the list wins (DensePose's ``GetDensePoseMask``).
* **Body** (channel 0) = the COCO ``segmentation`` united with the parts (DensePose's annotators drew
  parts under clothing, beyond the visible outline). Parts are mutually exclusive.
* ``parts_valid``: all 7 channels for a person with ``dp_masks`` (a part the person has no pixel of
  is annotated as absent: hidden or outside the image); people without ``dp_masks`` (or with 14
  empty masks) are kept with the body only (``parts_valid = 1, 0, 0, 0, 0, 0, 0``): their boxes,
  bodies and keypoints still train.
* Keypoints, crowd regions, images without persons: as the COCO converter
  (:mod:`maskrcnn_body.convert.coco`): COCO-17 -> our 15, x + 0.5; images with an ``iscrowd``
  region are skipped unless ``keep_crowd_images``.
"""

from __future__ import annotations

import glob
import os
from typing import Dict, List, Tuple

import numpy as np

from maskrcnn_body import constants
from maskrcnn_body.convert import coco
from maskrcnn_body.data import conversion, schema

DP_MASK_SIZE = 256
DP_PARTS = (
    "torso",
    "right_hand",
    "left_hand",
    "left_foot",
    "right_foot",
    "upper_leg_right",
    "upper_leg_left",
    "lower_leg_right",
    "lower_leg_left",
    "upper_arm_left",
    "upper_arm_right",
    "lower_arm_left",
    "lower_arm_right",
    "head",
)
"""The 14 ``dp_masks`` in file order (label k + 1 = ``DP_PARTS[k]``)."""
DP_PART_CHANNEL: Dict[str, str] = {
    "torso": "torso",
    "right_hand": "right_arm",
    "left_hand": "left_arm",
    "left_foot": "left_leg",
    "right_foot": "right_leg",
    "upper_leg_right": "right_leg",
    "upper_leg_left": "left_leg",
    "lower_leg_right": "right_leg",
    "lower_leg_left": "left_leg",
    "upper_arm_left": "left_arm",
    "upper_arm_right": "right_arm",
    "lower_arm_left": "left_arm",
    "lower_arm_right": "right_arm",
    "head": "head",
}
"""DensePose part -> our channel name (the person's own sides in both)."""
LABEL_TO_CHANNEL = np.array([0] + [constants.CHANNEL_INDEX[DP_PART_CHANNEL[p]] for p in DP_PARTS], np.uint8)
"""uint8 (15,): DensePose label 0..14 -> our channel (0 = no part)."""

SPLITS = ("train", "valminusminival", "minival")
_FILE_PATTERNS = ("densepose_coco_2014_{split}.json", "densepose_{split}2014.json")


def dp_label_map(dp_masks: list) -> np.ndarray:
    """The 14 ``dp_masks`` -> uint8 (256, 256) labels 0 (none) .. 14, later masks winning overlaps.

    Empty entries (``[]``, ``{}``, ``0``, ``None``) are parts the person does not show. Raises
    :class:`~maskrcnn_body.data.conversion.SkipItem` ("bad dp_masks") on a malformed list.
    """
    from pycocotools import mask as mask_utils

    if not isinstance(dp_masks, list) or len(dp_masks) != len(DP_PARTS):
        n = len(dp_masks) if isinstance(dp_masks, list) else type(dp_masks).__name__
        raise conversion.SkipItem(f"bad dp_masks: expected a list of {len(DP_PARTS)} RLEs, got {n}")
    labels = np.zeros((DP_MASK_SIZE, DP_MASK_SIZE), np.uint8)
    for k, rle in enumerate(dp_masks):
        if not rle:
            continue
        try:
            if isinstance(rle.get("counts"), list):
                rle = mask_utils.frPyObjects(rle, *rle["size"])
            m = mask_utils.decode(rle)
        except Exception as e:
            raise conversion.SkipItem(f"bad dp_masks: mask {k} ({DP_PARTS[k]}) does not decode ({e})") from None
        if m.shape[:2] != (DP_MASK_SIZE, DP_MASK_SIZE):
            raise conversion.SkipItem(
                f"bad dp_masks: mask {k} ({DP_PARTS[k]}) is {m.shape[0]}x{m.shape[1]}, expected 256x256"
            )
        labels[m > 0] = k + 1
    return labels


def paste_box_labels(labels: np.ndarray, bbox_xywh, height: int, width: int) -> np.ndarray:
    """uint8 (S, S) labels in a box's frame -> uint8 (height, width) labels in the image (0 outside the box).

    Cell ``c`` of S covers ``[x + c * w / S, x + (c + 1) * w / S)`` (pixel-edge frame); each image pixel
    takes the cell under its centre (nearest neighbour). Raises ``SkipItem`` ("bad box") when w or h <= 0.
    """
    s = labels.shape[0]
    x, y, w, h = (float(v) for v in bbox_xywh)
    if not (w > 0 and h > 0):
        raise conversion.SkipItem(f"bad box: bbox {[x, y, w, h]} has no area")
    cols = np.floor((np.arange(width) + 0.5 - x) * s / w).astype(np.int64)
    rows = np.floor((np.arange(height) + 0.5 - y) * s / h).astype(np.int64)
    col_in, row_in = (cols >= 0) & (cols < s), (rows >= 0) & (rows < s)
    out = labels[np.clip(rows, 0, s - 1)[:, None], np.clip(cols, 0, s - 1)[None, :]]
    out[~(row_in[:, None] & col_in[None, :])] = 0
    return out


def densepose_parts(ann: dict, height: int, width: int) -> Dict[int, np.ndarray]:
    """{channel 1..6: bool (H, W)} of one annotation with ``dp_masks`` (empty dict when all 14 are empty)."""
    labels = dp_label_map(ann["dp_masks"])
    if not labels.any():
        return {}
    bbox = ann.get("bbox")
    if not isinstance(bbox, list) or len(bbox) != 4:
        raise conversion.SkipItem(f"bad box: annotation {ann.get('id')} has dp_masks but bbox {bbox!r}")
    channels = LABEL_TO_CHANNEL[paste_box_labels(labels, bbox, height, width)]
    return {k: channels == k for k in constants.PART_CHANNELS}


class DensePoseCocoConverter(coco.CocoConverter):
    dataset = "densepose_coco"

    def _annotation_files(self) -> List[Tuple[str, str]]:
        dirs = [os.path.join(self.root, "annotations"), self.root]
        splits = SPLITS if self.split == "all" else (self.split,)
        found = []
        for split in splits:
            for d in dirs:
                hits = [p for pat in _FILE_PATTERNS for p in glob.glob(os.path.join(d, pat.format(split=split)))]
                if hits:
                    found.append((split, sorted(hits)[0]))
                    break
        if not found:
            names = " or ".join(
                pat.format(split=self.split if self.split != "all" else "<split>") for pat in _FILE_PATTERNS
            )
            raise FileNotFoundError(
                f"no {names} in {dirs[0]} or {self.root} (DensePose-COCO annotations: "
                f"bash convert_data/download_and_convert_data.sh densepose_coco, docs/DATASETS.md)"
            )
        return found

    def image_path(self, split: str, info: dict) -> str:
        folder = "train2014" if split == "train" else "val2014"
        return os.path.join(self.root, folder, info["file_name"])

    def person(self, ann: dict, image: conversion.SourceImage) -> schema.Person:
        body = coco.annotation_mask(ann, image.height, image.width)
        parts = densepose_parts(ann, image.height, image.width) if ann.get("dp_masks") else {}
        if not parts:
            return conversion.build_person(body, None, conversion.BODY_ONLY, coco.annotation_keypoints(ann))
        for m in parts.values():
            body = body | m
        return conversion.build_person(body, parts, conversion.ALL_VALID, coco.annotation_keypoints(ann))
