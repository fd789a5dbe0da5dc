"""Box overlap and one-to-one matching of detections to ground-truth people (numpy only)."""

from __future__ import annotations

import numpy as np


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (N, 4) and (M, 4) boxes x1, y1, x2, y2 (x2/y2 exclusive, area = w * h).

    Returns float64 (N, M); a pair whose union is empty has IoU 0.
    """
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def greedy_match(
    overlap: np.ndarray, scores: np.ndarray, threshold: float, gt_ignore: np.ndarray | None = None
) -> np.ndarray:
    """COCO/VOC-style greedy matching.

    Detections are visited by decreasing score; each takes the still-unmatched ground truth
    with the highest ``overlap`` if that overlap is ``>= threshold``.

    Args:
      overlap: (R, G) overlap (box IoU, mask IoU, mean part IoU, ...).
      scores: (R,) detection scores.
      threshold: minimum overlap of a match.
      gt_ignore: optional (G,) bool; ignored ground truth is matched only when no regular one
        qualifies (as in COCOeval) and can be matched by several detections.
    Returns:
      int64 (R,) index of the matched ground truth, -1 for none.
    """
    overlap = np.asarray(overlap, np.float64)
    r, g = overlap.shape
    ignore = np.zeros(g, bool) if gt_ignore is None else np.asarray(gt_ignore, bool)
    out = np.full(r, -1, np.int64)
    taken = np.zeros(g, bool)
    for d in np.argsort(-np.asarray(scores, np.float64), kind="stable"):
        for pool in (~ignore & ~taken, ignore):
            cand = np.where(pool & (overlap[d] >= threshold), overlap[d], -np.inf)
            if g and np.isfinite(cand.max()):
                j = int(np.argmax(cand))
                out[d] = j
                taken[j] |= not ignore[j]
                break
    return out
