"""Detections of one image -> the JSON that ``train/infer.py`` writes and ``POST /v1/predict`` answers.

Format::

    {"width": W, "height": H, "source": name,
     "persons": [{"box": [x1, y1, x2, y2], "score": s,
                  "keypoints": [[x, y, score] x 15],          # constants.KEYPOINTS order
                  "masks": {"body": RLE, "head": RLE, ...}}]}  # constants.CHANNELS; COCO RLE
    RLE = {"size": [H, W], "counts": "<COCO compressed string>"}

Coordinates are in the original image's pixel-edge frame (docs/GUIDE.md, Conventions). Masks follow the
pasting rule of :mod:`maskrcnn_body.ops.paste` (bilinear onto the box, >= 0.5, parts clipped
to the body). Decode a mask with ``pycocotools.mask.decode(rle)`` or :func:`maskrcnn_body.evaluation.rle.decode`
(numpy only: the JSON is written without pycocotools, :mod:`maskrcnn_body.evaluation.rle`).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np

from maskrcnn_body import constants
from maskrcnn_body.evaluation import rle as coco_rle
from maskrcnn_body.ops import paste


def rle_counts(crop: paste.PastedCrop, height: int, width: int) -> List[List[int]]:
    """Uncompressed COCO RLE counts (column-major runs, zeros first) of each channel of a bool crop
    placed in a ``height x width`` image, computed from the crop's own pixels only (equal to
    ``pycocotools.mask.encode`` of :meth:`PastedCrop.full`, without building the full image)."""
    values = np.asarray(crop.values, bool)
    h, w = values.shape[:2]
    c = values.shape[2] if values.ndim == 3 else constants.NUM_CHANNELS
    total = height * width
    if h == 0 or w == 0:
        return [[total] for _ in range(c)]
    y0, x0 = crop.y0, crop.x0
    # the image columns x0 .. x0 + w - 1, column-major: (w, height) per channel
    cols = np.zeros((c, w, height), bool)
    cols[:, :, y0 : y0 + h] = values.transpose(2, 1, 0)
    lead, trail = x0 * height, total - (x0 + w) * height
    out = []
    for k in range(c):
        v = cols[k].reshape(-1)
        change = np.flatnonzero(v[1:] != v[:-1]) + 1
        runs = np.diff(np.concatenate(([0], change, [v.size])))
        counts = runs.tolist()
        if v[0]:
            counts.insert(0, 0)
        counts[0] += lead
        if v[-1]:
            if trail:
                counts.append(trail)
        else:
            counts[-1] += trail
        out.append(counts)
    return out


def encode_crop(crop: paste.PastedCrop, height: int, width: int) -> List[dict]:
    """``{"size": [H, W], "counts": "<COCO compressed string>"}`` per channel of a bool crop."""
    return [
        {"size": [int(height), int(width)], "counts": coco_rle.compress(c)} for c in rle_counts(crop, height, width)
    ]


def detections_to_json(
    det: Dict[str, np.ndarray],
    height: int,
    width: int,
    source: str = "",
    threshold: float = 0.5,
    crops: Optional[Sequence[paste.PastedCrop]] = None,
    rles: Optional[Sequence[List[dict]]] = None,
) -> dict:
    """Args: det with ``boxes`` (R, 4), ``scores`` (R,), ``masks`` (R, M, M, 7), ``keypoints`` (R, 15, 3)
    for the R kept detections, in original image pixels. ``crops`` / ``rles``: the pasted crops
    (:func:`~maskrcnn_body.ops.paste.paste_crops` at ``threshold``) and their
    :func:`encode_crop`, when the caller already has them."""
    boxes = np.asarray(det["boxes"], np.float32).reshape(-1, 4)
    scores = np.asarray(det["scores"], np.float32).reshape(-1)
    kps = np.asarray(det["keypoints"], np.float32).reshape(-1, constants.NUM_KEYPOINTS, 3)
    if crops is None:
        crops = (
            paste.paste_crops(np.asarray(det["masks"], np.float32), boxes, height, width, threshold)
            if len(boxes)
            else []
        )
    if rles is None:
        rles = [encode_crop(crop, height, width) for crop in crops]
    persons = []
    for r, rle in enumerate(rles):
        persons.append(
            {
                "box": [round(float(v), 2) for v in boxes[r]],
                "score": round(float(scores[r]), 4),
                "keypoints": [[round(float(x), 2), round(float(y), 2), round(float(s), 4)] for x, y, s in kps[r]],
                "masks": dict(zip(constants.CHANNELS, rle)),
            }
        )
    return {"width": int(width), "height": int(height), "source": source, "persons": persons}


def json_to_masks(result: dict) -> Optional[np.ndarray]:
    """Inverse helper for clients/tests: bool (R, H, W, 7) from a result's RLEs (None if no persons)."""
    if not result["persons"]:
        return None
    out = []
    for p in result["persons"]:
        chans = [coco_rle.decode(p["masks"][n]) for n in constants.CHANNELS]
        out.append(np.stack(chans, -1).astype(bool))
    return np.stack(out)


def coco_results(image_json: dict, image_id: int, category_id: int = 1) -> List[dict]:
    """The persons of one image's JSON (:func:`detections_to_json`) as COCO results entries (what
    ``pycocotools.coco.COCO.loadRes`` reads): ``image_id``, ``category_id`` (1, person), ``bbox``
    [x, y, width, height], ``score``, ``keypoints`` [x1, y1, s1, ...] (the 15 joints of
    ``constants.KEYPOINTS`` with their scores, not COCO's 17), ``segmentation`` (the body mask's
    compressed RLE), plus ``track_id`` when the person has the key (tracked video frames)."""
    out = []
    for p in image_json["persons"]:
        x1, y1, x2, y2 = p["box"]
        entry = {
            "image_id": int(image_id),
            "category_id": int(category_id),
            "bbox": [x1, y1, round(x2 - x1, 2), round(y2 - y1, 2)],
            "score": p["score"],
            "keypoints": [v for joint in p["keypoints"] for v in joint],
            "segmentation": p["masks"][constants.CHANNELS[constants.BODY]],
        }
        if "track_id" in p:
            entry["track_id"] = p["track_id"]
        out.append(entry)
    return out
