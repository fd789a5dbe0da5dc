"""Multi-object tracking metrics: IDF1 (Ristani et al. 2016) and the CLEAR MOT counts (ID switches,
MOTA; Bernardin & Stiefelhagen 2008), with the definitions of py-motmetrics. numpy + scipy.

A frame is ``(ids, boxes)``: int ids (N,) and boxes (N, 4) x1, y1, x2, y2; a ground-truth object
and a hypothesis can be matched in a frame when their IoU >= ``iou_threshold`` (0.5, as MOTChallenge).

* **IDF1**: one global one-to-one assignment of ground-truth trajectories to hypothesis
  trajectories maximising IDTP, the number of frames where an assigned pair is matchable. IDFN =
  ground-truth boxes - IDTP, IDFP = hypothesis boxes - IDTP, IDF1 = 2 IDTP / (2 IDTP + IDFP + IDFN).
* **CLEAR MOT**, frame by frame: last frame's pairs are kept while still matchable; the rest are
  paired by optimal assignment on IoU. An **ID switch** is a ground-truth object matched to a
  hypothesis id other than the one it was last matched to (in any earlier frame). MOTA = 1 - (FN +
  FP + IDSW) / ground-truth boxes.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Dict, Sequence, Tuple

import numpy as np

from maskrcnn_body.evaluation.matching import box_iou

Frame = Tuple[np.ndarray, np.ndarray]  # ids (N,), boxes (N, 4)


def _frame(frame: Frame) -> Tuple[np.ndarray, np.ndarray]:
    ids, boxes = frame
    ids = np.asarray(ids, np.int64).reshape(-1)
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if len(ids) != len(boxes):
        raise ValueError(f"a frame needs as many ids as boxes, got {len(ids)} ids and {len(boxes)} boxes")
    return ids, boxes


def mot_metrics(gt: Sequence[Frame], hyp: Sequence[Frame], iou_threshold: float = 0.5) -> Dict[str, float]:
    """Tracking metrics of hypotheses ``hyp`` against ground truth ``gt`` (same number of frames).

    Returns ``idf1``, ``idp``, ``idr``, ``idtp``, ``idfp``, ``idfn``, ``id_switches``, ``mota``,
    ``matches``, ``fp``, ``fn``, ``num_gt``, ``num_hyp``, ``num_gt_ids``, ``num_hyp_ids``.
    """
    from scipy.optimize import linear_sum_assignment

    if len(gt) != len(hyp):
        raise ValueError(f"ground truth has {len(gt)} frames, the hypotheses {len(hyp)}")
    pair_frames: Dict[Tuple[int, int], int] = defaultdict(int)  # (gt id, hyp id) -> matchable frames
    last: Dict[int, int] = {}  # gt id -> hyp id it was last matched to
    prev: Dict[int, int] = {}  # gt id -> hyp id, the previous frame's pairs
    num_gt = num_hyp = matches = switches = 0
    gt_ids, hyp_ids = set(), set()
    for g_frame, h_frame in zip(gt, hyp):
        g_ids, g_boxes = _frame(g_frame)
        h_ids, h_boxes = _frame(h_frame)
        num_gt, num_hyp = num_gt + len(g_ids), num_hyp + len(h_ids)
        gt_ids.update(g_ids.tolist())
        hyp_ids.update(h_ids.tolist())
        iou = box_iou(g_boxes, h_boxes)
        ok = iou >= iou_threshold
        for i, j in zip(*np.nonzero(ok)):
            pair_frames[(int(g_ids[i]), int(h_ids[j]))] += 1
        # CLEAR MOT: keep last frame's pairs that are still matchable, assign the rest
        pairs: Dict[int, int] = {}  # gt row -> hyp column
        h_index = {int(h): j for j, h in enumerate(h_ids)}
        for i, g in enumerate(g_ids.tolist()):
            j = h_index.get(prev.get(g, -1))
            if j is not None and ok[i, j] and j not in pairs.values():
                pairs[i] = j
        free_g = [i for i in range(len(g_ids)) if i not in pairs]
        free_h = [j for j in range(len(h_ids)) if j not in pairs.values()]
        if free_g and free_h:
            sub = ok[np.ix_(free_g, free_h)]
            cost = np.where(sub, 1.0 - iou[np.ix_(free_g, free_h)], 2.0)
            for a, b in zip(*linear_sum_assignment(cost)):
                if sub[a, b]:
                    pairs[free_g[a]] = free_h[b]
        prev = {}
        for i, j in pairs.items():
            g, h = int(g_ids[i]), int(h_ids[j])
            if g in last and last[g] != h:
                switches += 1
            last[g] = prev[g] = h
        matches += len(pairs)
    # IDF1: the trajectory assignment maximising the identity true positives
    g_list, h_list = sorted(gt_ids), sorted(hyp_ids)
    idtp = 0
    if g_list and h_list:
        m = np.zeros((len(g_list), len(h_list)))
        g_pos = {g: k for k, g in enumerate(g_list)}
        h_pos = {h: k for k, h in enumerate(h_list)}
        for (g, h), count in pair_frames.items():
            m[g_pos[g], h_pos[h]] = count
        rows, cols = linear_sum_assignment(-m)
        idtp = int(m[rows, cols].sum())
    idfp, idfn = num_hyp - idtp, num_gt - idtp
    fp, fn = num_hyp - matches, num_gt - matches
    return {
        "idf1": 2 * idtp / max(2 * idtp + idfp + idfn, 1),
        "idp": idtp / max(num_hyp, 1),
        "idr": idtp / max(num_gt, 1),
        "idtp": idtp,
        "idfp": idfp,
        "idfn": idfn,
        "id_switches": switches,
        "mota": 1.0 - (fn + fp + switches) / max(num_gt, 1),
        "matches": matches,
        "fp": fp,
        "fn": fn,
        "num_gt": num_gt,
        "num_hyp": num_hyp,
        "num_gt_ids": len(g_list),
        "num_hyp_ids": len(h_list),
    }
