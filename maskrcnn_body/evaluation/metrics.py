"""COCO box AP for people and COCO mask AP per channel (pycocotools' COCOeval, numpy only).

* Box: one category (person); ground truth = every ``gt_boxes`` row with positive size.
* Masks: each channel k is its own category (id ``k + 1``). Its instances are the people's
  pasted channel-k masks (``paste`` rules), scored by the person's score. Per ground-truth
  person and channel:

  - ``gt_valid = 1`` and a non-empty mask: a normal instance;
  - ``gt_valid = 1`` and an empty mask (e.g. an occluded arm): no instance; a predicted mask there
    is a false positive;
  - ``gt_valid = 0`` (channel not annotated): an ignore region (COCO ``iscrowd=1``) covering the
    person's body mask (its box when the body is unknown too), so neither a miss nor a false
    positive for predictions on that person.

  An empty predicted channel mask is no detection. ``complete`` = mean over the 7 channels of the
  defined values. Values are None when a category has no ground truth at all.
* Masks by person size (``mask_by_size``): the same mask AP restricted, as COCO's small / medium /
  large, to the people whose *box height* (in the original image's pixels) lies in
  :data:`SIZE_RANGES`: small < 80 px (on the 256 px synthetic images an arm is then 3-5 px wide,
  about one stride-4 cell), medium 80-160 px, large >= 160 px. Ground truth outside the range is
  ignored, and so are unmatched detections whose box height lies outside it.
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from maskrcnn_body import constants
from maskrcnn_body.errors import optional_import
from maskrcnn_body.evaluation.coco import CocoSet
from maskrcnn_body.evaluation.prepared import PreparedImage

PERSON_CATEGORY = 1
AP_KEYS = ("AP", "AP50", "AP75")
CURVE_IOUS = (0.5, 0.75)
SIZE_RANGES = {"small": (0.0, 80.0), "medium": (80.0, 160.0), "large": (160.0, 1e10)}
"""Person sizes of ``mask_by_size``: ``[lo, hi)`` of the box height in original image pixels."""


def channel_category(k: int) -> int:
    """COCO category id of mask channel ``k``."""
    return k + 1


def xywh(box) -> list:
    x1, y1, x2, y2 = (float(v) for v in box)
    return [x1, y1, x2 - x1, y2 - y1]


def _rle(masks_hwn: np.ndarray) -> list:
    """bool (H, W, N) -> N COCO RLEs."""
    mask_utils = optional_import("pycocotools.mask", "eval", "computing the COCO metrics")

    return mask_utils.encode(np.asfortranarray(masks_hwn, dtype=np.uint8))


def _bbox(rle) -> list:
    """[x, y, w, h] of an RLE."""
    mask_utils = optional_import("pycocotools.mask", "eval", "computing the COCO metrics")

    return [float(v) for v in mask_utils.toBbox(rle)]


def _box_mask(box, height: int, width: int) -> np.ndarray:
    """bool (H, W): pixels whose centre lies in the box."""
    x1, y1, x2, y2 = box
    ys = np.arange(height) + 0.5
    xs = np.arange(width) + 0.5
    return ((ys >= y1) & (ys < y2))[:, None] & ((xs >= x1) & (xs < x2))[None, :]


def mean_of(values) -> Optional[float]:
    """Mean of the non-None values, None if there are none."""
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


class BoxMaskAP:
    """Accumulates :class:`PreparedImage` s; :meth:`result` runs COCOeval for boxes and masks."""

    def __init__(self):
        self.boxes = CocoSet([PERSON_CATEGORY])
        self.masks = CocoSet([channel_category(k) for k in range(constants.NUM_CHANNELS)])
        # the same masks with the person's box height in the "area" field (COCOeval's size filter)
        self.masks_by_height = CocoSet([channel_category(k) for k in range(constants.NUM_CHANNELS)])

    def add(self, img: PreparedImage) -> None:
        h, w = img.height, img.width
        bid = self.boxes.add_image(h, w)
        for box in img.gt_boxes:
            bb = xywh(box)
            if bb[2] > 0 and bb[3] > 0:
                self.boxes.add_gt(image_id=bid, category_id=PERSON_CATEGORY, bbox=bb, area=bb[2] * bb[3])
        for box, s in zip(img.boxes, img.scores):
            bb = xywh(box)
            self.boxes.add_dt(
                image_id=bid, category_id=PERSON_CATEGORY, bbox=bb, area=max(bb[2], 0) * max(bb[3], 0), score=float(s)
            )
        self._add_masks(img, self.masks.add_image(h, w), self.masks_by_height.add_image(h, w))

    def _add_masks(self, img: PreparedImage, mid: int, hid: int) -> None:
        h, w, nc = img.height, img.width, constants.NUM_CHANNELS
        g = img.num_gt
        if g:
            rles = _rle(img.gt.transpose(1, 2, 0, 3).reshape(h, w, g * nc))
            for j in range(g):
                body = (
                    img.gt[j, ..., constants.BODY]
                    if img.gt_valid[j, constants.BODY] and img.gt_area[j, constants.BODY]
                    else _box_mask(img.gt_boxes[j], h, w)
                )
                ignore_rle = None
                for k in range(nc):
                    cat = channel_category(k)
                    height = float(img.gt_boxes[j, 3] - img.gt_boxes[j, 1])
                    if img.gt_valid[j, k]:
                        if img.gt_area[j, k] > 0:
                            ann = dict(category_id=cat, segmentation=rles[j * nc + k], bbox=_bbox(rles[j * nc + k]))
                            self.masks.add_gt(image_id=mid, area=float(img.gt_area[j, k]), **ann)
                            self.masks_by_height.add_gt(image_id=hid, area=height, **ann)
                    elif body.any():
                        ignore_rle = ignore_rle or _rle(body[:, :, None])[0]
                        ann = dict(category_id=cat, segmentation=ignore_rle, bbox=_bbox(ignore_rle), iscrowd=1)
                        self.masks.add_gt(image_id=mid, area=float(body.sum()), **ann)
                        self.masks_by_height.add_gt(image_id=hid, area=height, **ann)
        for r, crop in enumerate(img.pred):
            if not img.pred_area[r].any():
                continue
            full = np.zeros((h, w, nc), np.uint8, order="F")
            ch, cw = crop.values.shape[:2]
            full[crop.y0 : crop.y0 + ch, crop.x0 : crop.x0 + cw] = crop.values
            rles = _rle(full)
            height = float(img.boxes[r, 3] - img.boxes[r, 1])
            for k in np.flatnonzero(img.pred_area[r]).tolist():
                ann = dict(
                    category_id=channel_category(int(k)),
                    segmentation=rles[k],
                    bbox=_bbox(rles[k]),
                    score=float(img.scores[r]),
                )
                self.masks.add_dt(image_id=mid, area=float(img.pred_area[r, k]), **ann)
                self.masks_by_height.add_dt(image_id=hid, area=height, **ann)

    def result(self):
        """(summary, pr_curves): ``{"box": {AP, AP50, AP75}, "mask": {CH: {...}, "complete": {...}}}``
        and ``{"box" | CH: {iou: (recall (101,), precision (101,))}}`` for iou in :data:`CURVE_IOUS`."""
        box = self.boxes.evaluate("bbox")
        mask = self.masks.evaluate("segm")
        summary: Dict[str, Dict] = {"box": box.ap(PERSON_CATEGORY), "mask": {}}
        curves = {"box": {t: box.pr_curve(PERSON_CATEGORY, t) for t in CURVE_IOUS}}
        for k, name in enumerate(constants.CHANNELS):
            summary["mask"][name] = mask.ap(channel_category(k))
            curves[name] = {t: mask.pr_curve(channel_category(k), t) for t in CURVE_IOUS}
        summary["mask"]["complete"] = {
            key: mean_of(summary["mask"][n][key] for n in constants.CHANNELS) for key in AP_KEYS
        }
        by_size = self.masks_by_height.evaluate_ranges("segm", SIZE_RANGES)
        summary["mask_by_size"] = {
            size: {name: by_size[size].ap(channel_category(k)) for k, name in enumerate(constants.CHANNELS)}
            for size in SIZE_RANGES
        }
        return summary, curves
