"""Keypoint metrics: COCO OKS AP with JHMDB-15 sigmas, and PCK@0.2 (numpy + pycocotools).

* **OKS AP**: pycocotools' COCOeval with ``iouType="keypoints"`` and
  ``params.kpt_oks_sigmas = constants.KEYPOINT_SIGMAS`` (JHMDB has no official sigmas; the values
  and their origin are stated in ``constants``). The object scale is the ground-truth person's
  body-mask area (its box area when the body mask is empty), as COCO uses the segment area.
  Only joints with ``v > 0`` count; people with no labelled joint are ignored (COCO's rule).
  COCO's keypoint defaults hold: 20 detections per image, area range ``all``.
* **PCK@0.2** (JHMDB convention): a labelled ground-truth joint (``v > 0``) is correct when the
  predicted joint of the detection matched to that person lies within ``0.2 * max(w, h)`` of the
  person's ground-truth box. Detections match people greedily by decreasing score on box IoU
  >= 0.5; the joints of an unmatched person are all wrong. PCK = correct / labelled joints.
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from maskrcnn_body import constants
from maskrcnn_body.evaluation import matching
from maskrcnn_body.evaluation.coco import CocoSet
from maskrcnn_body.evaluation.metrics import PERSON_CATEGORY, xywh
from maskrcnn_body.evaluation.prepared import PreparedImage

PCK_ALPHA = 0.2
MATCH_IOU = 0.5


def pck_hits(pred_xy: Optional[np.ndarray], gt_kp: np.ndarray, gt_box: np.ndarray, alpha: float = PCK_ALPHA):
    """(correct bool (15,), labelled bool (15,)) for one person; pred_xy (15, 2) or None (unmatched)."""
    labelled = gt_kp[:, 2] > 0
    if pred_xy is None:
        return np.zeros_like(labelled), labelled
    size = max(gt_box[2] - gt_box[0], gt_box[3] - gt_box[1])
    dist = np.linalg.norm(pred_xy - gt_kp[:, :2], axis=-1)
    return labelled & (dist <= alpha * size), labelled


class KeypointMetrics:
    """Accumulates :class:`PreparedImage` s for OKS AP and PCK@0.2."""

    def __init__(self):
        self.coco = CocoSet([PERSON_CATEGORY])
        self.correct = 0
        self.labelled = 0

    def add(self, img: PreparedImage) -> None:
        iid = self.coco.add_image(img.height, img.width)
        for j in range(img.num_gt):
            kp = img.gt_keypoints[j]
            bb = xywh(img.gt_boxes[j])
            area = float(img.gt_area[j, constants.BODY]) or max(bb[2], 0) * max(bb[3], 0)
            self.coco.add_gt(
                image_id=iid,
                category_id=PERSON_CATEGORY,
                bbox=bb,
                area=area,
                keypoints=kp.reshape(-1).tolist(),
                num_keypoints=int((kp[:, 2] > 0).sum()),
            )
        for r in range(img.num_pred):
            bb = xywh(img.boxes[r])
            kp = img.keypoints[r].copy()
            kp[:, 2] = 1
            self.coco.add_dt(
                image_id=iid,
                category_id=PERSON_CATEGORY,
                bbox=bb,
                area=max(bb[2], 0) * max(bb[3], 0),
                keypoints=kp.reshape(-1).tolist(),
                score=float(img.scores[r]),
            )
        match = matching.greedy_match(img.box_iou, img.scores, MATCH_IOU)
        for j in range(img.num_gt):
            d = np.flatnonzero(match == j)
            pred: Optional[np.ndarray] = img.keypoints[d[0], :, :2] if d.size else None
            ok, lab = pck_hits(pred, img.gt_keypoints[j], img.gt_boxes[j])
            self.correct += int(ok.sum())
            self.labelled += int(lab.sum())

    def result(self) -> Dict[str, Optional[float]]:
        """``{"AP", "PCK@0.2"}`` in [0, 1]; None where no joint is labelled."""
        ap = self.coco.evaluate("keypoints", kpt_oks_sigmas=constants.KEYPOINT_SIGMAS).ap(PERSON_CATEGORY)["AP"]
        return {"AP": ap, "PCK@0.2": self.correct / self.labelled if self.labelled else None}
