"""Pasting box-frame masks into the image (numpy only; shared by metrics, drawing and the model helper).

Coordinate convention (``constants``): continuous pixel-edge frame, pixel column ``i`` covers
``[i, i + 1)`` with centre ``i + 0.5``; boxes are ``x1, y1, x2, y2`` with ``x2``/``y2`` exclusive.

A detection's mask is an ``M x M`` grid that covers its box: mask cell ``j`` covers the box-frame
interval ``[j, j + 1)`` in units of ``(x2 - x1) / M`` pixels, centre ``j + 0.5``. Pasting:

1. The image pixels that receive a value are those whose centre lies in the box:
   columns ``i`` with ``x1 <= i + 0.5 < x2`` (rows likewise); every other pixel is 0.
2. Pixel centre ``i + 0.5`` maps to the mask coordinate ``u = (i + 0.5 - x1) * M / (x2 - x1)``,
   i.e. the sample position ``s = u - 0.5`` in cell-index space; the value is the bilinear
   interpolation of the two neighbouring cells ``floor(s)`` and ``floor(s) + 1`` (separably in y
   and x), with ``s`` clamped to ``[0, M - 1]`` (edge cells replicate: half-pixel centres, the
   ``align_corners=False`` convention of TF ``resize`` and OpenCV). When the box is exactly ``M``
   pixels wide and starts on a pixel edge this is the identity.
3. The result is thresholded (``prob >= threshold``, 0.5 by default) and parts 1-6 are clipped to
   the pasted body (channel 0).
"""

from __future__ import annotations

from typing import List, NamedTuple, Optional, Sequence, Union

import numpy as np

from maskrcnn_body import constants
from maskrcnn_body.utils.threads import single_threaded_blas

Scores = Union[Sequence[float], np.ndarray]
"""Per-detection scores (N,): a list or a float array."""

BODY_ONLY = constants.NUM_CHANNELS
"""Label of a body pixel that belongs to no part in :func:`part_label_map` (7)."""

PART_PRIORITY = (
    constants.CHANNEL_INDEX["head"],
    constants.CHANNEL_INDEX["left_arm"],
    constants.CHANNEL_INDEX["right_arm"],
    constants.CHANNEL_INDEX["left_leg"],
    constants.CHANNEL_INDEX["right_leg"],
    constants.CHANNEL_INDEX["torso"],
)
"""Which part wins where one person's part masks overlap: first in this tuple wins (limbs are
usually in front of the torso, and the head rarely hides behind anything)."""


class PastedCrop(NamedTuple):
    """One detection pasted into the image, stored only over its box.

    ``values[y, x, c]`` is the value of image pixel ``(y0 + y, x0 + x)``; pixels outside
    ``[y0, y0 + h) x [x0, x0 + w)`` are 0.
    """

    y0: int
    x0: int
    values: np.ndarray  # (h, w, C): float32 probabilities or bool masks

    def window(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """The values over the image window ``[y0, y1) x [x0, x1)`` (zeros outside the crop)."""
        out = np.zeros((max(y1 - y0, 0), max(x1 - x0, 0)) + self.values.shape[2:], self.values.dtype)
        h, w = self.values.shape[:2]
        ya, yb = max(y0, self.y0), min(y1, self.y0 + h)
        xa, xb = max(x0, self.x0), min(x1, self.x0 + w)
        if ya < yb and xa < xb:
            out[ya - y0 : yb - y0, xa - x0 : xb - x0] = self.values[
                ya - self.y0 : yb - self.y0, xa - self.x0 : xb - self.x0
            ]
        return out

    def full(self, height: int, width: int) -> np.ndarray:
        """The crop placed in a zero (height, width, C) array of the crop's dtype."""
        return self.window(0, height, 0, width)


def _pixel_range(lo: float, hi: float, size: int):
    """Pixel indices ``i`` in ``[0, size)`` whose centre ``i + 0.5`` lies in ``[lo, hi)``."""
    start = max(int(np.ceil(lo - 0.5)), 0)
    stop = min(int(np.ceil(hi - 0.5)), size)
    return start, max(stop, start)


def _bilinear_weights(positions: np.ndarray, n: int) -> np.ndarray:
    """(len(positions), n) float32 weights of linear interpolation on a grid of n samples.

    ``positions`` are in sample-index space (sample j sits at j) and are clamped to [0, n - 1].
    """
    s = np.clip(np.asarray(positions, np.float64), 0.0, n - 1)
    i0 = np.floor(s).astype(np.int64)
    frac = s - i0
    i1 = np.minimum(i0 + 1, n - 1)
    w = np.zeros((len(s), n), np.float64)
    rows = np.arange(len(s))
    np.add.at(w, (rows, i0), 1.0 - frac)
    np.add.at(w, (rows, i1), frac)
    return w.astype(np.float32)


def _interp_matrix(start: int, stop: int, lo: float, hi: float, m: int) -> np.ndarray:
    """(stop - start, m) weights mapping m mask cells spanning [lo, hi) onto pixels start..stop-1."""
    centres = np.arange(start, stop, dtype=np.float64) + 0.5
    return _bilinear_weights((centres - lo) * (m / (hi - lo)) - 0.5, m)


def _check(masks: np.ndarray, boxes: np.ndarray):
    masks = np.asarray(masks)
    boxes = np.asarray(boxes, np.float64)
    if masks.ndim != 4 or masks.shape[1] != masks.shape[2]:
        raise ValueError(f"masks must be (R, M, M, C), got shape {masks.shape}")
    if boxes.shape != (masks.shape[0], 4):
        raise ValueError(f"boxes must be (R, 4) with R = {masks.shape[0]} (masks' R), got shape {boxes.shape}")
    return masks, boxes


def paste_probabilities(masks: np.ndarray, boxes: np.ndarray, height: int, width: int) -> List[PastedCrop]:
    """Bilinearly resizes every box-frame mask onto its box (rules 1-2 of the module doc).

    Args:
      masks: (R, M, M, C) float (float16 in dumps) probabilities in the box frame.
      boxes: (R, 4) float x1, y1, x2, y2 in image pixels (x2/y2 exclusive).
      height, width: image size in pixels.
    Returns:
      R :class:`PastedCrop` with float32 ``values`` (h, w, C); empty (0-size) for a box that is
      degenerate or lies outside the image.
    """
    masks, boxes = _check(masks, boxes)
    with single_threaded_blas():  # tiny products: BLAS threads only spin (utils.threads)
        return _paste_probabilities(masks, boxes, height, width)


def _paste_probabilities(masks: np.ndarray, boxes: np.ndarray, height: int, width: int) -> List[PastedCrop]:
    m = masks.shape[1]
    out = []
    for mask, (x1, y1, x2, y2) in zip(masks, boxes):
        ys, ye = _pixel_range(y1, y2, height)
        xs, xe = _pixel_range(x1, x2, width)
        c = mask.shape[-1]
        if ye <= ys or xe <= xs or x2 <= x1 or y2 <= y1:
            out.append(PastedCrop(ys, xs, np.zeros((0, 0, c), np.float32)))
            continue
        h, w = ye - ys, xe - xs
        wy = _interp_matrix(ys, ye, y1, y2, m)  # (h, M)
        wx = _interp_matrix(xs, xe, x1, x2, m)  # (w, M)
        # two plain 2-D GEMMs (channels first), then back to channels last
        chw = np.ascontiguousarray(mask.astype(np.float32).transpose(2, 0, 1))  # (C, M, M)
        cols = (chw.reshape(c * m, m) @ wx.T).reshape(c, m, w)  # x resized
        cols = np.ascontiguousarray(cols.transpose(1, 0, 2)).reshape(m, c * w)
        vals = (wy @ cols).reshape(h, c, w).transpose(0, 2, 1)  # (h, w, C)
        out.append(PastedCrop(ys, xs, np.ascontiguousarray(vals)))
    return out


def binarize(values: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """(..., 7) probabilities -> bool ``values >= threshold`` with parts 1-6 clipped to channel 0."""
    out = np.asarray(values) >= threshold
    out[..., 1:] &= out[..., :1]
    return out


def paste_crops(
    masks: np.ndarray, boxes: np.ndarray, height: int, width: int, threshold: float = 0.5
) -> List[PastedCrop]:
    """Like :func:`paste_masks` but each detection is kept as a bool crop over its box (memory-light)."""
    return [
        PastedCrop(p.y0, p.x0, binarize(p.values, threshold)) for p in paste_probabilities(masks, boxes, height, width)
    ]


def paste_masks(masks: np.ndarray, boxes: np.ndarray, height: int, width: int, threshold: float = 0.5) -> np.ndarray:
    """The pasting rule of the dumps: bool (R, H, W, 7) full-image masks.

    Args:
      masks: (R, M, M, 7) box-frame probabilities; boxes: (R, 4) x1, y1, x2, y2 image pixels.
      height, width: image size; threshold: ``prob >= threshold`` is foreground.
    """
    masks, boxes = _check(masks, boxes)
    out = np.zeros((masks.shape[0], height, width, masks.shape[-1]), bool)
    for r, p in enumerate(paste_crops(masks, boxes, height, width, threshold)):
        h, w = p.values.shape[:2]
        out[r, p.y0 : p.y0 + h, p.x0 : p.x0 + w] = p.values
    return out


def person_part_labels(channels: np.ndarray) -> np.ndarray:
    """int32 (..., H, W) labels of one person's bool (..., H, W, 7) channels: 0 outside the body,
    the :data:`PART_PRIORITY` winner among set part channels, else :data:`BODY_ONLY`."""
    channels = np.asarray(channels, bool)
    labels = np.where(channels[..., constants.BODY], BODY_ONLY, 0).astype(np.int32)
    for k in reversed(PART_PRIORITY):  # last write = highest priority
        labels[channels[..., k] & channels[..., constants.BODY]] = k
    return labels


def crops_label_map(crops: Sequence[PastedCrop], scores: Optional[Scores], height: int, width: int) -> np.ndarray:
    """:func:`part_label_map` of people given as bool :class:`PastedCrop` s (memory-light)."""
    labels = np.zeros((height, width), np.int32)
    order = range(len(crops)) if scores is None else np.argsort(-np.asarray(scores, np.float64), kind="stable")
    for r in order:
        p = crops[r]
        h, w = p.values.shape[:2]
        region = labels[p.y0 : p.y0 + h, p.x0 : p.x0 + w]  # a view: painted in place
        mine = person_part_labels(p.values)
        free = (region == 0) & (mine > 0)
        region[free] = mine[free]
    return labels


def part_label_map(pasted: np.ndarray, scores: Optional[Scores] = None) -> np.ndarray:
    """Multi-person part label map from per-person channel masks.

    Overlaps resolve in two steps: a pixel belongs to the highest-scoring person whose body
    (channel 0) covers it (ties and ``scores=None``: the earlier person); within that person the
    part first in :data:`PART_PRIORITY` wins.

    Args:
      pasted: bool (R, H, W, 7) (e.g. :func:`paste_masks`, or unpacked ground truth).
      scores: (R,) person scores, or None to use the order of ``pasted``.
    Returns:
      int32 (H, W): 0 background, k = 1..6 part channel k, :data:`BODY_ONLY` (7) body without part.
    """
    pasted = np.asarray(pasted, bool)
    if pasted.ndim != 4 or pasted.shape[-1] != constants.NUM_CHANNELS:
        raise ValueError(f"pasted must be (R, H, W, {constants.NUM_CHANNELS}), got shape {pasted.shape}")
    return crops_label_map([PastedCrop(0, 0, m) for m in pasted], scores, *pasted.shape[1:3])


def crop_masks(channels: np.ndarray, boxes: np.ndarray, mask_size: int) -> np.ndarray:
    """The inverse of pasting: image-frame masks cropped to boxes and resized bilinearly.

    Mask cell ``j`` (centre ``j + 0.5`` in box units) samples the image at
    ``x1 + (j + 0.5) * (x2 - x1) / M``, i.e. pixel-index position ``that - 0.5`` (pixel centres at
    ``i + 0.5``), clamped to the image. A box ``M`` pixels wide starting on a pixel edge is
    cropped exactly, and :func:`paste_masks` of the result restores the input inside the box.

    Args:
      channels: (N, H, W, C) bool or float image-frame masks (e.g. unpacked ground truth).
      boxes: (N, 4) x1, y1, x2, y2 in image pixels.
      mask_size: M.
    Returns:
      float32 (N, M, M, C) values in [0, 1] for binary input.
    """
    channels = np.asarray(channels)
    boxes = np.asarray(boxes, np.float64)
    if channels.ndim != 4 or boxes.shape != (channels.shape[0], 4):
        raise ValueError(f"channels must be (N, H, W, C) and boxes (N, 4); got {channels.shape} and {boxes.shape}")
    n, h, w, c = channels.shape
    m = int(mask_size)
    cells = (np.arange(m) + 0.5) / m
    out = np.zeros((n, m, m, c), np.float32)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        wy = _bilinear_weights(y1 + cells * (y2 - y1) - 0.5, h)  # (M, H)
        wx = _bilinear_weights(x1 + cells * (x2 - x1) - 0.5, w)  # (M, W)
        rows = (wy @ channels[i].astype(np.float32).reshape(h, w * c)).reshape(m, w, c)
        out[i] = np.matmul(rows.transpose(0, 2, 1), wx.T).transpose(0, 2, 1)
    return out
