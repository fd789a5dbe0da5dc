"""Choosing the per-channel mask decoding thresholds on a calibration split (numpy only).

A fixed 0.5 cut, then parts ANDed with the thresholded body, erodes thin parts: for calibrated
probabilities the IoU-optimal cut of an arm is ~0.33-0.39 (issue 26). This module picks, for each of
the 7 channels, the threshold from :data:`GRID` that maximises the mean mask IoU of the detections
matched to a ground-truth person (box IoU >= 0.5, greedy by score), with the body decoded as
``max(body, parts)`` (``model.postprocess.mask_body_union``). The dumps must come from a model whose
decoding is the identity (every threshold 0.5, no union: :func:`raw_decoding_overrides`) and from a
split that is *not* the reporting val split (the default run generates ``synthetic_calib``: seed-1
images, disjoint from the seed-0 val split).

:mod:`maskrcnn_body.workflows.calibrate` runs the model on the calibration split and writes the chosen
values into the training directory's ``config.json`` (``model.postprocess.mask_thresholds``,
``mask_body_union``), so ``mb.load``, ``evaluate``, ``predict``, ``serve`` and every export use them.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np

from maskrcnn_body import constants
from maskrcnn_body.evaluation import dumps as dumps_lib
from maskrcnn_body.evaluation import matching
from maskrcnn_body.ops import paste

GRID = tuple(np.round(np.arange(0.20, 0.701, 0.025), 3))
"""Candidate thresholds."""

MATCH_IOU = 0.5


def raw_decoding_overrides() -> Dict[str, object]:
    """Config overrides under which the model's mask outputs are plain sigmoid probabilities."""
    return {
        "model.postprocess.mask_thresholds": (0.5,) * constants.NUM_CHANNELS,
        "model.postprocess.mask_body_union": False,
    }


def _pairs(dump) -> List[tuple]:
    """(pasted probabilities (h, w, 7), y0, x0, gt channels bool (H, W, 7), gt valid (7,)) of every
    detection matched to a ground-truth person."""
    from maskrcnn_body.data.schema import unpack_channels

    h, w = dump["image"].shape[:2]
    if not len(dump["boxes"]) or not len(dump["gt_boxes"]):
        return []
    match = matching.greedy_match(matching.box_iou(dump["boxes"], dump["gt_boxes"]), dump["scores"], MATCH_IOU)
    probs = paste.paste_probabilities(dump["masks"], dump["boxes"], h, w)
    gt = unpack_channels(np.asarray(dump["gt_parts"], np.uint8))
    valid = np.asarray(dump["gt_valid"]) != 0
    return [(probs[r].values, probs[r].y0, probs[r].x0, gt[g], valid[g]) for r, g in enumerate(match) if g >= 0]


def _ious(pred: np.ndarray, y0: int, x0: int, gt: np.ndarray) -> np.ndarray:
    """IoU of bool ``pred`` (T, h, w) placed at (y0, x0) with bool ``gt`` (H, W) for each of T masks."""
    h, w = pred.shape[1:3]
    window = gt[y0 : y0 + h, x0 : x0 + w]
    inter = (pred & window[None]).sum((1, 2))
    union = pred.sum((1, 2)) + gt.sum() - inter
    return np.where(union > 0, inter / np.maximum(union, 1), np.nan)


class ThresholdSearch:
    """Accumulates, per channel and candidate threshold, the IoU of matched detections."""

    def __init__(self, grid: Sequence[float] = GRID):
        self.grid = np.asarray(grid, np.float64)
        self.sums = np.zeros((constants.NUM_CHANNELS, len(self.grid)))
        self.counts = np.zeros(constants.NUM_CHANNELS)
        self.part_thresholds: Optional[np.ndarray] = None

    def add_parts(self, dump) -> None:
        """Pass 1: the parts (channels 1-6), each on its own."""
        for values, y0, x0, gt, valid in _pairs(dump):
            for k in range(1, constants.NUM_CHANNELS):
                if valid[k] and gt[..., k].any():
                    self.sums[k] += np.nan_to_num(
                        _ious(values[None, ..., k] >= self.grid[:, None, None], y0, x0, gt[..., k])
                    )
                    self.counts[k] += 1

    def choose_parts(self) -> None:
        best = np.argmax(self.sums[1:], axis=1)
        self.part_thresholds = np.where(self.counts[1:] > 0, self.grid[best], 0.5)

    def add_body(self, dump) -> None:
        """Pass 2: the body as ``(body >= t) | any part >= its chosen threshold``."""
        assert self.part_thresholds is not None, "call choose_parts() after the first pass"
        for values, y0, x0, gt, valid in _pairs(dump):
            if valid[0] and gt[..., 0].any():
                parts = (values[..., 1:] >= self.part_thresholds).any(-1)
                body = (values[None, ..., 0] >= self.grid[:, None, None]) | parts[None]
                self.sums[0] += np.nan_to_num(_ious(body, y0, x0, gt[..., 0]))
                self.counts[0] += 1

    def result(self) -> Dict[str, object]:
        """``{"mask_thresholds": (7 floats), "mask_body_union": True, "mean_iou": {channel: (at 0.5,
        at the chosen threshold)}, "pairs": {channel: count}}``."""
        assert self.part_thresholds is not None
        body = self.grid[int(np.argmax(self.sums[0]))] if self.counts[0] else 0.5
        chosen = np.concatenate([[body], self.part_thresholds])
        half = int(np.argmin(np.abs(self.grid - 0.5)))
        mean = self.sums / np.maximum(self.counts[:, None], 1)
        return {
            "mask_thresholds": tuple(float(t) for t in chosen),
            "mask_body_union": True,
            "mean_iou": {
                name: (round(float(mean[k, half]), 4), round(float(mean[k, list(self.grid).index(chosen[k])]), 4))
                for k, name in enumerate(constants.CHANNELS)
            },
            "pairs": {name: int(self.counts[k]) for k, name in enumerate(constants.CHANNELS)},
        }


def choose_thresholds(dump_dir: str, grid: Sequence[float] = GRID) -> Dict[str, object]:
    """:class:`ThresholdSearch` over every dump in ``dump_dir`` (two passes)."""
    search = ThresholdSearch(grid)
    for d in dumps_lib.iter_dumps(dump_dir):
        search.add_parts(d)
    search.choose_parts()
    for d in dumps_lib.iter_dumps(dump_dir):
        search.add_body(d)
    return search.result()
