"""The 2017 original's metric (``draw/metric.py`` of the legacy code), re-implemented (numpy only).

What the original computes, per image, and keeps here:

1. A detection *counts* when its probability is > 0.5 and its integer box area
   ``(int(x2) - int(x1)) * (int(y2) - int(y1))`` is > 1000; counted detections are the
   denominator.
2. Each counted detection is assigned the ground-truth person of highest box IoU (several
   detections may share one person). It is *good* when that IoU is > 0.5 and the mask IoU is
   > 0.5, where the predicted mask is thresholded at **0.6** and both masks are cropped to the
   integer predicted box ``[int(y1):int(y2), int(x1):int(x2)]``; mask IoU is
   ``|P & G| / (|P | G| + 1)`` as in the original.
3. Image score = good / counted; the metric is the mean over images.

The original stacked the 7 channels into one IoU; that is the ``complete`` row. The per-channel
rows apply the same procedure to one channel.

Deliberate differences (bugs fixed):

* **instance 0**: the original cropped the ground truth of person 0 (``gt_mask[0]``) whatever
  person the detection was assigned, and compared class labels by detection index
  (``gt_label[i]``); here the assigned person is used.
* **zeroed channels**: the original scored unannotated channels (stored as all-zero) as misses.
  Here a channel with ``gt_valid = 0`` for the assigned person is left out of that channel's row
  (and out of the stacked IoU of ``complete``), and a channel empty in both masks within the box
  (e.g. an occluded arm predicted absent) is left out of its row instead of scoring IoU 0.
* The mask comparison is made in image pixels (the prediction pasted with ``paste`` rules at
  threshold 0.6) instead of resizing the ground truth into a 112 x 112 box frame with
  OpenCV; box IoU uses this package's exclusive-corner convention (no ``+ 1``).
* An image with no ground truth scores its counted detections as misses (the original crashed);
  a row averages over the images that have a counted detection or a person annotated in that
  channel (with no detection such an image scores 0, as in the original).
"""

from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np

from maskrcnn_body import constants
from maskrcnn_body.evaluation.prepared import PreparedImage
from maskrcnn_body.ops import paste

SCORE_THRESHOLD = 0.5
MIN_BOX_AREA = 1000
BOX_IOU = 0.5
MASK_THRESHOLD = 0.6
MASK_IOU = 0.5
ROWS = ("complete",) + constants.CHANNELS
ROW_LABELS = {
    "complete": "Complete",
    "body": "Full Body",
    "head": "Head",
    "torso": "Torso",
    "left_arm": "Left Arm",
    "right_arm": "Right Arm",
    "left_leg": "Left Leg",
    "right_leg": "Right Leg",
}
"""Rows in the original report's order, with its labels."""


def legacy_mask_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """The original's ``IOU_mask``: ``|P & G| / (|P | G| + 1)`` over all given elements."""
    return float(np.sum(pred & gt)) / float(np.sum(pred | gt) + 1)


class LegacyMetric:
    """Accumulates :class:`PreparedImage` s; :meth:`result` gives ``{row: value}`` for :data:`ROWS`."""

    def __init__(self):
        self.per_image: Dict[str, List[float]] = {row: [] for row in ROWS}

    def add(self, img: PreparedImage) -> None:
        good = dict.fromkeys(ROWS, 0)
        counted = dict.fromkeys(ROWS, 0)
        ib = np.trunc(img.boxes).astype(np.int64)
        area = (ib[:, 2] - ib[:, 0]) * (ib[:, 3] - ib[:, 1])
        for r in np.flatnonzero((img.scores > SCORE_THRESHOLD) & (area > MIN_BOX_AREA)):
            if img.num_gt == 0:
                for row in ROWS:
                    counted[row] += 1
                continue
            g = int(np.argmax(img.box_iou[r]))
            valid = img.gt_valid[g]
            x1, x2 = np.clip(ib[r, [0, 2]], 0, img.width)
            y1, y2 = np.clip(ib[r, [1, 3]], 0, img.height)
            pred = paste.binarize(img.probs[r].window(y1, y2, x1, x2), MASK_THRESHOLD)
            gt = img.gt[g, y1:y2, x1:x2]
            hit = img.box_iou[r, g] > BOX_IOU
            if valid.any():
                counted["complete"] += 1
                good["complete"] += hit and legacy_mask_iou(pred[..., valid], gt[..., valid]) > MASK_IOU
            for k, row in enumerate(constants.CHANNELS):
                if not valid[k] or (hit and not (pred[..., k].any() or gt[..., k].any())):
                    continue
                counted[row] += 1
                good[row] += hit and legacy_mask_iou(pred[..., k], gt[..., k]) > MASK_IOU
        has_gt = {"complete": bool(img.gt_valid.any())}
        has_gt.update({row: bool(img.gt_valid[:, k].any()) for k, row in enumerate(constants.CHANNELS)})
        for row in ROWS:
            if counted[row]:
                self.per_image[row].append(good[row] / counted[row])
            elif has_gt[row]:
                self.per_image[row].append(0.0)

    def result(self) -> Dict[str, Optional[float]]:
        return {row: (float(np.mean(v)) if v else None) for row, v in self.per_image.items()}
