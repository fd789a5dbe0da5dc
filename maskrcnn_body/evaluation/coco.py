"""A thin, silent in-memory wrapper around pycocotools' COCOeval.

COCO conventions kept as they are, so the numbers mean what COCO numbers mean:

* AP averages precision over IoU (or OKS) thresholds 0.50:0.05:0.95 and 101 recall points;
  AP50/AP75 use one threshold. Reported values use the area range ``all`` and the largest
  ``maxDets`` (100 for bbox/segm, 20 for keypoints: COCO's defaults).
* Ground truth flagged ``iscrowd=1`` is an *ignore region*: detections matched to it count
  neither as true nor as false positives, and it is never a miss (for ``segm`` the overlap with
  a crowd region is ``|dt & gt| / |dt|``). COCOeval overwrites a plain ``ignore`` key with
  ``iscrowd``, so ``iscrowd`` is the only way to ignore ground truth.
* For keypoints, ground truth with ``num_keypoints == 0`` is ignored and OKS uses ``area``.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from maskrcnn_body.errors import optional_import


@dataclasses.dataclass
class CocoResult:
    """COCOeval output for area ``all`` and the largest ``maxDets``.

    Attributes:
      precision: float64 (T, 101, K); -1 where a category has no (non-ignored) ground truth.
      iou_thresholds: (T,); recall_thresholds: (101,); category_ids: K ids in ``precision`` order.
    """

    precision: np.ndarray
    iou_thresholds: np.ndarray
    recall_thresholds: np.ndarray
    category_ids: List[int]

    def _mean(self, k: int, t: Optional[float]) -> Optional[float]:
        p = self.precision[:, :, k]
        if t is not None:
            p = p[np.flatnonzero(np.isclose(self.iou_thresholds, t))]
        p = p[p > -1]
        return float(p.mean()) if p.size else None

    def ap(self, category_id: int) -> Dict[str, Optional[float]]:
        """``{"AP", "AP50", "AP75"}`` of one category (None when it has no ground truth)."""
        k = self.category_ids.index(category_id)
        return {"AP": self._mean(k, None), "AP50": self._mean(k, 0.5), "AP75": self._mean(k, 0.75)}

    def pr_curve(self, category_id: int, iou: float = 0.5):
        """(recall (101,), precision (101,)) at one IoU threshold; precision -1 = undefined."""
        k = self.category_ids.index(category_id)
        t = int(np.flatnonzero(np.isclose(self.iou_thresholds, iou))[0])
        return self.recall_thresholds.copy(), self.precision[t, :, k].copy()


class CocoSet:
    """Collects images, ground truth and detections, then runs COCOeval on them in memory.

    Annotations are plain COCO dicts (``image_id``, ``category_id``, ``bbox`` [x, y, w, h],
    ``area``, ``iscrowd``, plus ``segmentation`` RLE / ``keypoints`` / ``num_keypoints``);
    detections additionally carry ``score``.
    """

    def __init__(self, category_ids: Sequence[int]):
        self.category_ids = list(category_ids)
        self.images: List[dict] = []
        self.gts: List[dict] = []
        self.dts: List[dict] = []

    def add_image(self, height: int, width: int) -> int:
        image_id = len(self.images) + 1
        self.images.append({"id": image_id, "height": int(height), "width": int(width)})
        return image_id

    def add_gt(self, **ann) -> None:
        ann.setdefault("iscrowd", 0)
        self.gts.append(dict(ann, id=len(self.gts) + 1))

    def add_dt(self, **ann) -> None:
        self.dts.append(dict(ann, id=len(self.dts) + 1, iscrowd=0))

    def _coco(self, anns):
        COCO = optional_import("pycocotools.coco", "eval", "computing the COCO metrics").COCO

        c = COCO()
        c.dataset = {
            "images": list(self.images),
            "annotations": copy.deepcopy(anns),
            "categories": [{"id": i, "name": str(i)} for i in self.category_ids],
        }
        with contextlib.redirect_stdout(io.StringIO()):
            c.createIndex()
        return c

    def evaluate(self, iou_type: str, kpt_oks_sigmas: Optional[Sequence[float]] = None) -> CocoResult:
        """Runs ``COCOeval(iouType=iou_type)``: ``"bbox"``, ``"segm"`` or ``"keypoints"``."""
        return self._run(iou_type, kpt_oks_sigmas)["all"]

    def evaluate_ranges(self, iou_type: str, ranges: Mapping[str, Sequence[float]]) -> Dict[str, CocoResult]:
        """COCOeval with the area ranges ``{label: (lo, hi)}`` in place of COCO's small / medium / large:
        per label, ground truth whose ``area`` field lies outside ``[lo, hi)`` is ignored, and so are
        unmatched detections outside it (COCO's rule). The ``area`` field may hold any size measure
        (the box height for :class:`~maskrcnn_body.evaluation.metrics.BoxMaskAP`'s sizes)."""
        return self._run(iou_type, None, ranges)

    def _run(self, iou_type, kpt_oks_sigmas=None, ranges=None) -> Dict[str, CocoResult]:
        COCOeval = optional_import("pycocotools.cocoeval", "eval", "computing the COCO metrics").COCOeval

        if not self.images:
            raise ValueError("CocoSet.evaluate: no images were added")
        ev = COCOeval(self._coco(self.gts), self._coco(self.dts), iouType=iou_type)
        if kpt_oks_sigmas is not None:
            ev.params.kpt_oks_sigmas = np.asarray(kpt_oks_sigmas, np.float64)
        if ranges is not None:
            ev.params.areaRng = [[0.0, 1e10]] + [[float(lo), float(hi)] for lo, hi in ranges.values()]
            ev.params.areaRngLbl = ["all"] + list(ranges)
        ev.params.catIds = list(self.category_ids)
        with contextlib.redirect_stdout(io.StringIO()):
            ev.evaluate()
            ev.accumulate()
        return {
            label: CocoResult(
                precision=ev.eval["precision"][:, :, :, a, -1],
                iou_thresholds=np.asarray(ev.params.iouThrs),
                recall_thresholds=np.asarray(ev.params.recThrs),
                category_ids=list(ev.params.catIds),
            )
            for a, label in enumerate(ev.params.areaRngLbl)
        }
