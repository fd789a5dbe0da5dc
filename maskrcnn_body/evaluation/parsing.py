"""Human-parsing metrics as used for MHP / CIHP: part mIoU, APp50, APp-vol and PCP50 (numpy only).

Definitions (parts = channels 1-6; channel masks follow the ``paste`` rules):

* **mIoU**: multi-person part label maps (``paste.part_label_map``) of prediction and ground
  truth; one 7-class confusion matrix (background + 6 parts) accumulated over all images; mIoU is
  the mean IoU of the 6 *part* classes (background is a class of the confusion, not of the mean),
  classes absent from both prediction and ground truth of the whole set are left out. Prediction
  map: detections with score >= ``score_threshold``; a body pixel with no part counts as
  background. Ground-truth map: only annotated channels (``gt_valid``); body pixels that get no
  part label (unannotated parts, or the thin body rim outside all parts) are ignored.
* **pIoU(d, g)**: mean over g's annotated parts that are non-empty in g or d of the per-part mask
  IoU of detection d and person g.
* **APp@t**: person-level AP where detections (all, by decreasing score) match ground-truth
  people greedily on pIoU >= t (each person once); VOC all-point interpolated area under the
  precision-recall curve. People without any annotated, non-empty part are ignored: a detection
  that matches none of the others but overlaps such a person with box IoU >= 0.5 is dropped.
  **APp50** = APp@0.5, **APp_vol** = mean of APp@0.1, 0.2, ..., 0.9.
* **PCP50**: per evaluated ground-truth person, the fraction of its annotated non-empty parts
  whose IoU with its APp@0.5 match is >= 0.5 (0 when unmatched), averaged over those people.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np

from maskrcnn_body import constants as C
from maskrcnn_body.evaluation import matching, paste
from maskrcnn_body.evaluation.prepared import PreparedImage

PARTS = np.asarray(C.PART_CHANNELS)
APP_THRESHOLDS = tuple(np.round(np.arange(1, 10) / 10.0, 1))
IGNORE = 255


def average_precision(scores: np.ndarray, is_tp: np.ndarray, num_positives: int) -> Optional[float]:
    """VOC all-point interpolated AP of detections (scores (N,), is_tp bool (N,)); None if no positives."""
    if num_positives == 0:
        return None
    order = np.argsort(-np.asarray(scores, np.float64), kind="mergesort")
    tp = np.cumsum(np.asarray(is_tp, bool)[order])
    fp = np.cumsum(~np.asarray(is_tp, bool)[order])
    recall = np.concatenate([[0.0], tp / num_positives, [1.0]])
    precision = np.concatenate([[0.0], tp / np.maximum(tp + fp, 1), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def part_iou(img: PreparedImage) -> tuple:
    """(pIoU float64 (R, G), per-part IoU (R, G, 6), evaluated-part mask bool (G, 6))."""
    iou = img.mask_iou()[..., PARTS]                                        # (R, G, 6)
    gt_parts = img.gt_valid[:, PARTS] & (img.gt_area[:, PARTS] > 0)         # (G, 6)
    used = img.gt_valid[None, :, PARTS] & ((img.pred_area[:, None, PARTS] > 0) | gt_parts[None])
    n = used.sum(-1)
    piou = np.where(n > 0, (iou * used).sum(-1) / np.maximum(n, 1), 0.0)
    return piou, iou, gt_parts


class ParsingMetrics:
    """Accumulates :class:`PreparedImage` s for mIoU, APp and PCP."""

    def __init__(self, score_threshold: float = 0.5):
        self.score_threshold = score_threshold
        self.confusion = np.zeros((len(PARTS) + 1,) * 2, np.int64)
        self.scores: List[np.ndarray] = []
        self.tp: List[np.ndarray] = []       # (N, len(APP_THRESHOLDS)) per image
        self.num_positives = 0
        self.pcp: List[float] = []

    def label_maps(self, img: PreparedImage):
        """(prediction, ground truth) int32 (H, W) maps: 0 background, 1..6 parts, 255 ignore (GT)."""
        keep = np.flatnonzero(img.scores >= self.score_threshold)
        pred_map = paste.crops_label_map([img.pred[r] for r in keep], img.scores[keep], img.height, img.width)
        pred_map[pred_map == paste.BODY_ONLY] = 0
        gt_map = paste.part_label_map(img.gt & img.gt_valid[:, None, None, :])
        gt_map[gt_map == paste.BODY_ONLY] = IGNORE
        return pred_map, gt_map

    def add(self, img: PreparedImage) -> None:
        pred_map, gt_map = self.label_maps(img)
        ok = gt_map != IGNORE
        n = len(PARTS) + 1
        self.confusion += np.bincount(gt_map[ok] * n + pred_map[ok], minlength=n * n).reshape(n, n)

        piou, iou, gt_parts = part_iou(img)
        regular = gt_parts.any(-1)
        self.num_positives += int(regular.sum())
        tp = np.zeros((img.num_pred, len(APP_THRESHOLDS)), bool)
        keep = np.ones(img.num_pred, bool)
        overlaps_ignored = (img.box_iou[:, ~regular] >= 0.5).any(-1) if img.num_gt else np.zeros(img.num_pred, bool)
        masked = np.where(regular[None], piou, -1.0)
        for t_i, t in enumerate(APP_THRESHOLDS):
            match = matching.greedy_match(masked, img.scores, t)
            tp[:, t_i] = match >= 0
            if t == 0.5:
                keep = (match >= 0) | ~overlaps_ignored
                for g in np.flatnonzero(regular):
                    d = np.flatnonzero(match == g)
                    good = (iou[d[0], g] >= 0.5) & gt_parts[g] if d.size else np.zeros(len(PARTS), bool)
                    self.pcp.append(good.sum() / gt_parts[g].sum())
        self.scores.append(img.scores[keep])
        self.tp.append(tp[keep])

    def result(self) -> Dict[str, Optional[float]]:
        """``{"mIoU", "APp50", "APp_vol", "PCP50"}`` in [0, 1] (None where undefined)."""
        c = self.confusion.astype(np.float64)
        inter = np.diag(c)[1:]
        union = c.sum(0)[1:] + c.sum(1)[1:] - inter
        miou = float(np.mean(inter[union > 0] / union[union > 0])) if (union > 0).any() else None
        scores = np.concatenate(self.scores) if self.scores else np.zeros(0)
        tp = np.concatenate(self.tp) if self.tp else np.zeros((0, len(APP_THRESHOLDS)), bool)
        aps = [average_precision(scores, tp[:, i], self.num_positives) for i in range(len(APP_THRESHOLDS))]
        return {
            "mIoU": miou,
            "APp50": aps[APP_THRESHOLDS.index(0.5)],
            "APp_vol": None if aps[0] is None else float(np.mean(aps)),
            "PCP50": float(np.mean(self.pcp)) if self.pcp else None,
        }
