"""Human-parsing metrics (numpy only): the CIHP / MHP-v2 reference definitions and stricter variants.

Two families are reported (``docs/METRICS.md`` has the full text and what they can be compared with).

**Reference definitions** (``mIoU``, ``APp50``, ``APp_vol``, ``PCP50``): computed the way the
benchmarks' published evaluation code computes them (``ZhaoJ9014/Multi-Human-Parsing``
``Evaluation/Multi-Human-Parsing/v2/eval_mhp.py``; ``soeaver/Parsing-R-CNN``
``utils/data/evaluation/parsing_eval.py``), on label maps with 7 classes: 0 background, k = 1..6
part channel k.

* **Label map of one person.** Prediction: the detection's pasted masks (``paste`` rules:
  probability >= 0.5, parts clipped to the body); a pixel with several part channels set takes the
  part first in :data:`paste.PART_PRIORITY` (head, left arm, right arm, left leg, right leg,
  torso); a body pixel without any part, and every pixel outside the body, is background (0).
  Ground truth: the same priority over the person's *annotated* part channels; pixels of the
  person that carry no annotated part (the body rim outside all parts, or an unannotated part) are
  :data:`IGNORE` (255) and drop out of every confusion matrix, as labels outside ``0..n-1`` do in the
  reference's ``fast_hist``. "Pixels of the person" is the body mask (channel 0) when it is
  annotated; otherwise, if some part channel is unannotated, the pixels whose centre lies in the
  person's box; otherwise none.
* **Person IoU.** For detection d and person g, a 7 x 7 confusion matrix over the *whole image*
  (ground-truth map of g against prediction map of d), class IoU = diag / (row + column - diag),
  NaN when a class is absent from both; pIoU(d, g) = ``nanmean`` of the class IoUs, background
  included. Classes that g does not annotate are set to NaN (left out); the reference has no such
  notion (every class is annotated there), so on fully annotated data this is the reference.
* **APp@t.** Only people whose map holds at least one part pixel are evaluated (MHP-v2 drops
  people with empty maps in the same way); their number is the recall denominator. All detections,
  by decreasing score (stable order), each take the evaluated person of its image with the highest
  pIoU (the first on ties, already-matched people included); the detection is a true positive
  when that pIoU is **> t** and the person is not yet matched, else a false positive. VOC
  all-point interpolated AP. **APp50** = APp@0.5, **APp_vol** = mean of APp@0.1, 0.2, ..., 0.9.
  Addition for people without any annotated part (e.g. COCO people, body only): a detection that
  is not a true positive and whose box overlaps such a person with box IoU >= 0.5 is left out
  (neither true nor false positive), like VOC's "difficult" objects.
* **PCP50.** For each true positive at t = 0.5: (parts of g's map whose IoU with the detection is
  > 0.5) / (part labels present in g's map); unmatched evaluated people count 0; the mean over all
  evaluated people.
* **mIoU.** One image-level map per image. Prediction: detections with score >=
  ``score_threshold`` (0.5); a pixel takes the part label of the highest-scoring detection that
  has a part label there (equal scores: the earlier detection), as the reference paints people in
  increasing score order, each over the others only where it has a part; else background.
  Ground truth: each pixel takes its label in the first person (dump order) whose map is not
  background there (a part, or IGNORE). One 7 x 7 confusion matrix over all images (IGNORE pixels
  left out); mIoU = ``nanmean`` of the class IoUs, **background included**; a part class that no
  person of the whole set annotates is left out. ``IoU_per_part`` / ``IoU_background`` are the class
  IoUs of that matrix.

**Parts-only variants** (``mIoU_parts``, ``APp50_parts``, ``APp_vol_parts``, ``PCP50_parts``):
stricter, per channel mask, no background class.

* **mIoU_parts**: multi-person part label maps (``paste.part_label_map``: a pixel belongs to the
  highest-scoring detection whose *body* covers it); one confusion matrix of background + 6 parts
  over all images; the mean IoU of the 6 *part* classes only (background is a class of the
  confusion, not of the mean); classes absent from prediction and ground truth of the whole set
  are left out. Prediction map: detections with score >= ``score_threshold``, a body pixel with no
  part is background. Ground truth map: annotated channels only; body pixels without part ignored.
* **pIoU_parts(d, g)**: mean over g's annotated parts that are non-empty in g or d of the
  per-channel mask IoU (overlapping channels each count in full, no priority, no background).
* **APp@t_parts**: detections by decreasing score match greedily the still-unmatched person with
  the highest pIoU_parts >= t (COCO-style); VOC all-point AP; people without annotated non-empty
  part are ignored (a detection matching none of the others that overlaps one with box IoU >= 0.5
  is dropped). **APp50_parts** = @0.5, **APp_vol_parts** = mean over 0.1, ..., 0.9.
* **PCP50_parts**: per evaluated person, the fraction of its annotated non-empty parts whose IoU
  with its APp@0.5_parts match is >= 0.5 (0 when unmatched), averaged over those people.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np

from maskrcnn_body import constants
from maskrcnn_body.evaluation import matching
from maskrcnn_body.evaluation.prepared import PreparedImage
from maskrcnn_body.ops import paste

PARTS = np.asarray(constants.PART_CHANNELS)
NUM_CLASSES = len(PARTS) + 1
"""Classes of a parsing label map: 0 background, k = 1..6 part channel k."""
APP_THRESHOLDS = tuple(np.round(np.arange(1, 10) / 10.0, 1))
PCP_THRESHOLD = 0.5
IGNORE = 255
IGNORED_PERSON_BOX_IOU = 0.5
"""A non-matching detection overlapping a person without evaluated parts this much is left out."""


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


def class_iou(confusion: np.ndarray) -> np.ndarray:
    """float64 (n,) IoU per class of an (n, n) confusion matrix (rows ground truth); NaN when a class
    is in neither the ground truth nor the prediction."""
    c = np.asarray(confusion, np.float64)
    inter = np.diag(c)
    union = c.sum(0) + c.sum(1) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), np.nan)


def confusion_matrix(gt: np.ndarray, pred: np.ndarray, n: int = NUM_CLASSES) -> np.ndarray:
    """int64 (n, n) counts of (ground-truth label, predicted label) pairs; ground-truth labels
    outside ``0..n-1`` (e.g. :data:`IGNORE`) are left out."""
    gt = np.asarray(gt).ravel().astype(np.int64)
    pred = np.asarray(pred).ravel().astype(np.int64)
    ok = (gt >= 0) & (gt < n)
    return np.bincount(gt[ok] * n + pred[ok], minlength=n * n).reshape(n, n)


def prediction_labels(crop: paste.PastedCrop) -> paste.PastedCrop:
    """A detection's reference label map over its crop: uint8, 0 background (including body
    pixels without a part), k = 1..6 the :data:`paste.PART_PRIORITY` winner of the set parts."""
    labels = paste.person_part_labels(crop.values)
    labels[labels == paste.BODY_ONLY] = 0
    return paste.PastedCrop(crop.y0, crop.x0, labels.astype(np.uint8))


def _box_pixels(box, height: int, width: int) -> np.ndarray:
    x1, y1, x2, y2 = (float(v) for v in box)
    ys = np.arange(height) + 0.5
    xs = np.arange(width) + 0.5
    return ((ys >= y1) & (ys < y2))[:, None] & ((xs >= x1) & (xs < x2))[None, :]


def gt_person_labels(channels: np.ndarray, valid: np.ndarray, box) -> np.ndarray:
    """uint8 (H, W) reference label map of one ground-truth person (module doc): 0 background,
    k = 1..6 the :data:`paste.PART_PRIORITY` winner of the annotated parts, :data:`IGNORE` for the
    person's pixels without an annotated part.

    Args:
      channels: bool (H, W, 7).  valid: bool (7,) ``gt_valid``.  box: x1, y1, x2, y2.
    """
    channels = np.asarray(channels, bool)
    valid = np.asarray(valid, bool)
    h, w = channels.shape[:2]
    out = np.zeros((h, w), np.uint8)
    if valid[constants.BODY]:
        out[channels[..., constants.BODY]] = IGNORE
    elif not valid[PARTS].all():
        out[_box_pixels(box, h, w)] = IGNORE
    for k in reversed(paste.PART_PRIORITY):  # last write = highest priority
        if valid[k]:
            out[channels[..., k]] = k
    return out


def _rect(mask: np.ndarray) -> Optional[Tuple[int, int, int, int]]:
    """(y0, y1, x0, x1) bounding rectangle of a 2-D mask's True pixels, None when empty."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if not rows.size:
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def person_confusion(gt_map: np.ndarray, gt_rect, pred: paste.PastedCrop) -> np.ndarray:
    """:func:`confusion_matrix` of one person's full-image map against one detection's labels,
    counted only over the union of the two supports (every other pixel is background in both)."""
    h, w = gt_map.shape
    rects = [] if gt_rect is None else [gt_rect]
    ph, pw = pred.values.shape[:2]
    if ph and pw:
        rects.append((pred.y0, pred.y0 + ph, pred.x0, pred.x0 + pw))
    conf = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    area = 0
    if rects:
        y0, y1 = min(r[0] for r in rects), max(r[1] for r in rects)
        x0, x1 = min(r[2] for r in rects), max(r[3] for r in rects)
        conf += confusion_matrix(gt_map[y0:y1, x0:x1], pred.window(y0, y1, x0, x1))
        area = (y1 - y0) * (x1 - x0)
    conf[0, 0] += h * w - area
    return conf


class ReferenceParsing:
    """Accumulates :class:`PreparedImage` s for the reference mIoU, APp and PCP (module doc)."""

    def __init__(self, score_threshold: float = 0.5):
        self.score_threshold = score_threshold
        self.confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
        self.annotated = np.zeros(NUM_CLASSES, bool)
        self.annotated[0] = True
        self.scores: List[np.ndarray] = []
        self.status: List[np.ndarray] = []  # (N, len(APP_THRESHOLDS)) int8: 1 TP, 0 FP, -1 left out
        self.num_positives = 0
        self.pcp: List[float] = []  # one value per true positive at PCP_THRESHOLD

    def person_ious(self, img: PreparedImage, gt_maps: np.ndarray, preds: List[paste.PastedCrop]) -> np.ndarray:
        """float64 (R, G, 7) class IoUs of every (detection, person) pair; NaN for classes absent
        from both maps and for classes the person does not annotate."""
        ious = np.full((img.num_pred, img.num_gt, NUM_CLASSES), np.nan)
        rects = [_rect(m != 0) for m in gt_maps]
        for g in range(img.num_gt):
            for r, pred in enumerate(preds):
                ious[r, g] = class_iou(person_confusion(gt_maps[g], rects[g], pred))
            ious[:, g, PARTS[~img.gt_valid[g, PARTS]]] = np.nan
        return ious

    def add(self, img: PreparedImage) -> None:
        gt_maps = (
            np.stack([gt_person_labels(img.gt[g], img.gt_valid[g], img.gt_boxes[g]) for g in range(img.num_gt)])
            if img.num_gt
            else np.zeros((0, img.height, img.width), np.uint8)
        )
        preds = [prediction_labels(p) for p in img.pred]
        self._add_image_maps(img, gt_maps, preds)

        present = np.stack([np.isin(PARTS, m) for m in gt_maps]) if img.num_gt else np.zeros((0, len(PARTS)), bool)
        evaluated = np.asarray(present.any(-1), bool)  # (G,)
        self.num_positives += int(evaluated.sum())
        ious = self.person_ious(img, gt_maps, preds)  # (R, G, 7)
        with np.errstate(invalid="ignore"):
            counted: np.ndarray = ~np.isnan(ious)
            piou = np.where(counted.any(-1), np.nansum(ious, -1) / np.maximum(counted.sum(-1), 1), np.nan)
        cand = np.where(evaluated[None] & ~np.isnan(piou), piou, -np.inf)  # (R, G)
        best = cand.argmax(-1) if img.num_gt else np.zeros(img.num_pred, np.int64)
        best_iou = cand.max(-1) if img.num_gt else np.full(img.num_pred, -np.inf)
        near_ignored = (
            np.asarray((img.box_iou[:, ~evaluated] >= IGNORED_PERSON_BOX_IOU).any(-1), bool)
            if img.num_gt
            else np.zeros(img.num_pred, bool)
        )
        status = np.zeros((img.num_pred, len(APP_THRESHOLDS)), np.int8)
        for t_i, t in enumerate(APP_THRESHOLDS):
            taken = np.zeros(img.num_gt, bool)
            for d in np.argsort(-img.scores, kind="stable"):
                j = best[d]
                if best_iou[d] > t and not taken[j]:
                    taken[j] = True
                    status[d, t_i] = 1
                    if t == PCP_THRESHOLD:
                        with np.errstate(invalid="ignore"):
                            self.pcp.append(float(np.sum(ious[d, j, PARTS] > t)) / present[j].sum())
                elif near_ignored[d]:
                    status[d, t_i] = -1
        self.scores.append(img.scores)
        self.status.append(status)

    def _add_image_maps(self, img: PreparedImage, gt_maps: np.ndarray, preds: List[paste.PastedCrop]) -> None:
        pred_map = np.zeros((img.height, img.width), np.uint8)
        for r in np.argsort(-img.scores, kind="stable"):
            if img.scores[r] < self.score_threshold:
                continue
            p = preds[r]
            ph, pw = p.values.shape[:2]
            region = pred_map[p.y0 : p.y0 + ph, p.x0 : p.x0 + pw]  # a view: painted in place
            free = (region == 0) & (p.values > 0)
            region[free] = p.values[free]
        gt_map = np.zeros((img.height, img.width), np.uint8)
        for m in gt_maps:
            free = (gt_map == 0) & (m != 0)
            gt_map[free] = m[free]
        self.confusion += confusion_matrix(gt_map, pred_map)
        self.annotated[PARTS] |= img.gt_valid[:, PARTS].any(0)

    def result(self) -> Dict:
        iou = class_iou(self.confusion)
        use = self.annotated & ~np.isnan(iou)
        scores = np.concatenate(self.scores) if self.scores else np.zeros(0)
        status = np.concatenate(self.status) if self.status else np.zeros((0, len(APP_THRESHOLDS)), np.int8)
        aps = [
            average_precision(scores[status[:, i] >= 0], status[status[:, i] >= 0, i] == 1, self.num_positives)
            for i in range(len(APP_THRESHOLDS))
        ]

        def val(k):
            return float(iou[k]) if use[k] else None

        return {
            "mIoU": float(np.mean(iou[use])) if use.any() else None,
            "IoU_background": val(0),
            "IoU_per_part": {constants.CHANNELS[k]: val(k) for k in PARTS},
            "APp50": aps[APP_THRESHOLDS.index(0.5)],
            "APp_vol": None if aps[0] is None else float(np.mean([a for a in aps if a is not None])),
            "PCP50": float(np.sum(self.pcp) / self.num_positives) if self.num_positives else None,
        }


def part_iou(img: PreparedImage) -> tuple:
    """(pIoU_parts float64 (R, G), per-part IoU (R, G, 6), evaluated-part mask bool (G, 6))."""
    iou = img.mask_iou()[..., PARTS]  # (R, G, 6)
    gt_parts = img.gt_valid[:, PARTS] & (img.gt_area[:, PARTS] > 0)  # (G, 6)
    used = img.gt_valid[None, :, PARTS] & ((img.pred_area[:, None, PARTS] > 0) | gt_parts[None])
    n = used.sum(-1)
    piou = np.where(n > 0, (iou * used).sum(-1) / np.maximum(n, 1), 0.0)
    return piou, iou, gt_parts


class PartsParsing:
    """Accumulates :class:`PreparedImage` s for the parts-only variants (module doc)."""

    def __init__(self, score_threshold: float = 0.5):
        self.score_threshold = score_threshold
        self.confusion = np.zeros((NUM_CLASSES,) * 2, np.int64)
        self.scores: List[np.ndarray] = []
        self.tp: List[np.ndarray] = []  # (N, len(APP_THRESHOLDS)) per image
        self.num_positives = 0
        self.pcp: List[float] = []

    def label_maps(self, img: PreparedImage):
        """(prediction, ground truth) int32 (H, W) maps: 0 background, 1..6 parts, 255 ignore (GT)."""
        keep = np.flatnonzero(img.scores >= self.score_threshold)
        pred_map = paste.crops_label_map([img.pred[r] for r in keep], img.scores[keep].tolist(), img.height, img.width)
        pred_map[pred_map == paste.BODY_ONLY] = 0
        gt_map = paste.part_label_map(img.gt & img.gt_valid[:, None, None, :])
        gt_map[gt_map == paste.BODY_ONLY] = IGNORE
        return pred_map, gt_map

    def add(self, img: PreparedImage) -> None:
        pred_map, gt_map = self.label_maps(img)
        self.confusion += confusion_matrix(gt_map, pred_map)

        piou, iou, gt_parts = part_iou(img)
        regular = gt_parts.any(-1)
        self.num_positives += int(regular.sum())
        tp = np.zeros((img.num_pred, len(APP_THRESHOLDS)), bool)
        keep = np.ones(img.num_pred, bool)
        overlaps_ignored = (
            (img.box_iou[:, ~regular] >= IGNORED_PERSON_BOX_IOU).any(-1) if img.num_gt else np.zeros(img.num_pred, bool)
        )
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
        """``{"mIoU_parts", "APp50_parts", "APp_vol_parts", "PCP50_parts"}`` in [0, 1] (None where undefined)."""
        c = self.confusion.astype(np.float64)
        inter = np.diag(c)[1:]
        union = c.sum(0)[1:] + c.sum(1)[1:] - inter
        miou = float(np.mean(inter[union > 0] / union[union > 0])) if (union > 0).any() else None
        scores = np.concatenate(self.scores) if self.scores else np.zeros(0)
        tp = np.concatenate(self.tp) if self.tp else np.zeros((0, len(APP_THRESHOLDS)), bool)
        aps = [average_precision(scores, tp[:, i], self.num_positives) for i in range(len(APP_THRESHOLDS))]
        return {
            "mIoU_parts": miou,
            "APp50_parts": aps[APP_THRESHOLDS.index(0.5)],
            "APp_vol_parts": None if aps[0] is None else float(np.mean([a for a in aps if a is not None])),
            "PCP50_parts": float(np.mean(self.pcp)) if self.pcp else None,
        }


REFERENCE_KEYS = ("mIoU", "IoU_background", "IoU_per_part", "APp50", "APp_vol", "PCP50")
PARTS_KEYS = ("mIoU_parts", "APp50_parts", "APp_vol_parts", "PCP50_parts")


class ParsingMetrics:
    """Both families: :meth:`result` is the ``parsing`` section of the metrics JSON, keys
    :data:`REFERENCE_KEYS` then :data:`PARTS_KEYS` (``IoU_per_part`` is ``{part name: IoU}``)."""

    def __init__(self, score_threshold: float = 0.5):
        self.reference = ReferenceParsing(score_threshold)
        self.parts = PartsParsing(score_threshold)

    def add(self, img: PreparedImage) -> None:
        self.reference.add(img)
        self.parts.add(img)

    def result(self) -> Dict:
        out = self.reference.result()
        out.update(self.parts.result())
        return out
