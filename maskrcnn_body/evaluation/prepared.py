"""Per-image quantities every metric needs, computed once from a dump (numpy only)."""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List

import numpy as np

from maskrcnn_body import constants
from maskrcnn_body.data.schema import pack_channels, unpack_channels
from maskrcnn_body.evaluation import matching
from maskrcnn_body.ops import paste


@dataclasses.dataclass
class PreparedImage:
    """One dump, pasted and intersected with its ground truth.

    Attributes (R detections, G ground-truth people, image H x W, 7 channels):
      source_id: str.  height, width: int.
      scores: float64 (R,).  boxes: float64 (R, 4).  keypoints: float64 (R, 15, 3) x, y, score.
      probs: R :class:`paste.PastedCrop` with float32 probabilities (for other thresholds).
      pred: R :class:`paste.PastedCrop` with bool masks (pasting rule, threshold 0.5).
      gt_boxes: float64 (G, 4).  gt_keypoints: float64 (G, 15, 3) x, y, v.
      gt: bool (G, H, W, 7) ground-truth channels.  gt_valid: bool (G, 7).
      pred_area: int64 (R, 7).  gt_area: int64 (G, 7).
      inter: int64 (R, G, 7) ``|pred_k & gt_k|``.
      inter_flip: int64 (R, G, 7) ``|pred_k & gt_flip(k)|`` with ``flip = CHANNEL_FLIP_PERM``.
      box_iou: float64 (R, G).
    """

    source_id: str
    height: int
    width: int
    scores: np.ndarray
    boxes: np.ndarray
    keypoints: np.ndarray
    probs: List[paste.PastedCrop]
    pred: List[paste.PastedCrop]
    gt_boxes: np.ndarray
    gt_keypoints: np.ndarray
    gt: np.ndarray
    gt_valid: np.ndarray
    pred_area: np.ndarray
    gt_area: np.ndarray
    inter: np.ndarray
    inter_flip: np.ndarray
    box_iou: np.ndarray

    @property
    def num_pred(self) -> int:
        return len(self.scores)

    @property
    def num_gt(self) -> int:
        return len(self.gt_boxes)

    def mask_iou(self) -> np.ndarray:
        """float64 (R, G, 7) per-channel mask IoU (0 where both masks are empty)."""
        union = self.pred_area[:, None, :] + self.gt_area[None, :, :] - self.inter
        return np.where(union > 0, self.inter / np.maximum(union, 1), 0.0)


_BITS = unpack_channels(np.arange(1 << constants.NUM_CHANNELS, dtype=np.uint8)).astype(np.int64)  # (128, 7)
_NCODES = 1 << constants.NUM_CHANNELS


def channel_areas(codes: np.ndarray) -> np.ndarray:
    """int64 (N, 7) pixel count per channel of N uint8 bit-field maps (N, ...)."""
    codes = np.asarray(codes, np.uint8).reshape(len(codes), -1) & (_NCODES - 1)
    offset = np.arange(len(codes), dtype=np.int64)[:, None] * _NCODES
    hist = np.bincount((codes + offset).ravel(), minlength=len(codes) * _NCODES).reshape(-1, _NCODES)
    return hist @ _BITS


def channel_overlaps(gt_codes: np.ndarray, pred_codes: np.ndarray):
    """Per-channel intersections of G ground-truth bit fields (G, h, w) with one predicted bit
    field (h, w) over the same window: ``(|gt_k & pred_k|, |gt_flip(k) & pred_k|)``, int64 (G, 7) each.

    One joint histogram of (gt code, pred code) pairs per person, then bit tables: linear in the
    window size whatever the number of channels.
    """
    g = len(gt_codes)
    joint = (gt_codes.astype(np.int64) & (_NCODES - 1)) * _NCODES + pred_codes
    joint += np.arange(g, dtype=np.int64)[:, None, None] * _NCODES * _NCODES
    hist = np.bincount(joint.ravel(), minlength=g * _NCODES * _NCODES).reshape(g, _NCODES, _NCODES)
    per_gt_code = hist @ _BITS  # (G, 128 gt codes, 7 pred bits)
    inter = np.einsum("gak,ak->gk", per_gt_code, _BITS)
    inter_flip = np.einsum("gak,ak->gk", per_gt_code, _BITS[:, list(constants.CHANNEL_FLIP_PERM)])
    return inter, inter_flip


def prepare(dump: Dict[str, Any]) -> PreparedImage:
    """Pastes the detections (``paste`` rules) and intersects them with the ground truth."""
    h, w = dump["image"].shape[:2]
    probs = paste.paste_probabilities(dump["masks"], dump["boxes"], h, w)
    pred = [paste.PastedCrop(p.y0, p.x0, paste.binarize(p.values)) for p in probs]
    gt_parts = np.asarray(dump["gt_parts"], np.uint8)
    r, g = len(pred), len(gt_parts)
    inter = np.zeros((r, g, constants.NUM_CHANNELS), np.int64)
    inter_flip = np.zeros_like(inter)
    pred_area = np.zeros((r, constants.NUM_CHANNELS), np.int64)
    for i, p in enumerate(pred):
        ph, pw = p.values.shape[:2]
        codes = pack_channels(p.values)  # (h, w) uint8
        pred_area[i] = channel_areas(codes[None])[0]
        if g:
            inter[i], inter_flip[i] = channel_overlaps(gt_parts[:, p.y0 : p.y0 + ph, p.x0 : p.x0 + pw], codes)
    return PreparedImage(
        source_id=str(dump["source_id"]),
        height=h,
        width=w,
        scores=np.asarray(dump["scores"], np.float64),
        boxes=np.asarray(dump["boxes"], np.float64),
        keypoints=np.asarray(dump["keypoints"], np.float64),
        probs=probs,
        pred=pred,
        gt_boxes=np.asarray(dump["gt_boxes"], np.float64),
        gt_keypoints=np.asarray(dump["gt_keypoints"], np.float64),
        gt=unpack_channels(gt_parts),
        gt_valid=np.asarray(dump["gt_valid"]) != 0,
        pred_area=pred_area,
        gt_area=channel_areas(gt_parts) if g else np.zeros((0, constants.NUM_CHANNELS), np.int64),
        inter=inter,
        inter_flip=inter_flip,
        box_iou=matching.box_iou(dump["boxes"], dump["gt_boxes"]),
    )
