"""Per-image quantities every metric needs, computed once from a dump (numpy only)."""
from __future__ import annotations

import dataclasses
from typing import Dict, List

import numpy as np

from maskrcnn_body import constants as C
from maskrcnn_body.data.schema import unpack_channels
from maskrcnn_body.evaluation import matching, paste


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


def prepare(dump: Dict[str, object]) -> PreparedImage:
    """Pastes the detections (``paste`` rules) and intersects them with the ground truth."""
    h, w = dump["image"].shape[:2]
    probs = paste.paste_probabilities(dump["masks"], dump["boxes"], h, w)
    pred = [paste.PastedCrop(p.y0, p.x0, paste.binarize(p.values)) for p in probs]
    gt = unpack_channels(dump["gt_parts"])                                    # (G, H, W, 7)
    gt_flip = gt[..., list(C.CHANNEL_FLIP_PERM)]
    r, g = len(pred), gt.shape[0]
    inter = np.zeros((r, g, C.NUM_CHANNELS), np.int64)
    inter_flip = np.zeros_like(inter)
    pred_area = np.zeros((r, C.NUM_CHANNELS), np.int64)
    for i, p in enumerate(pred):
        ph, pw = p.values.shape[:2]
        pred_area[i] = p.values.sum(axis=(0, 1))
        region = (slice(None), slice(p.y0, p.y0 + ph), slice(p.x0, p.x0 + pw))
        inter[i] = (gt[region] & p.values[None]).sum(axis=(1, 2))
        inter_flip[i] = (gt_flip[region] & p.values[None]).sum(axis=(1, 2))
    return PreparedImage(
        source_id=str(dump["source_id"]), height=h, width=w,
        scores=np.asarray(dump["scores"], np.float64), boxes=np.asarray(dump["boxes"], np.float64),
        keypoints=np.asarray(dump["keypoints"], np.float64), probs=probs, pred=pred,
        gt_boxes=np.asarray(dump["gt_boxes"], np.float64),
        gt_keypoints=np.asarray(dump["gt_keypoints"], np.float64),
        gt=gt, gt_valid=np.asarray(dump["gt_valid"]) != 0,
        pred_area=pred_area, gt_area=gt.sum(axis=(1, 2)).astype(np.int64),
        inter=inter, inter_flip=inter_flip,
        box_iou=matching.box_iou(dump["boxes"], dump["gt_boxes"]))
