"""Detections of one image -> the JSON that ``train/infer.py`` writes and ``POST /v1/predict`` answers.

Format::

    {"width": W, "height": H, "source": name,
     "persons": [{"box": [x1, y1, x2, y2], "score": s,
                  "keypoints": [[x, y, score] x 15],          # constants.KEYPOINTS order
                  "masks": {"body": RLE, "head": RLE, ...}}]}  # constants.CHANNELS; COCO RLE
    RLE = {"size": [H, W], "counts": "<COCO compressed string>"}

Coordinates are in the original image's pixel-edge frame (README, Conventions). Masks follow the
pasting rule of :mod:`maskrcnn_body.evaluation.paste` (bilinear onto the box, >= 0.5, parts clipped
to the body). Decode a mask with ``pycocotools.mask.decode(rle)``.
"""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np
from pycocotools import mask as mask_utils

from maskrcnn_body import constants
from maskrcnn_body.evaluation import paste


def detections_to_json(det: Dict[str, np.ndarray], height: int, width: int, source: str = "",
                       threshold: float = 0.5) -> dict:
    """Args: det with ``boxes`` (R, 4), ``scores`` (R,), ``masks`` (R, M, M, 7), ``keypoints`` (R, 15, 3)
    for the R kept detections, in original image pixels."""
    boxes = np.asarray(det["boxes"], np.float32).reshape(-1, 4)
    scores = np.asarray(det["scores"], np.float32).reshape(-1)
    kps = np.asarray(det["keypoints"], np.float32).reshape(-1, constants.NUM_KEYPOINTS, 3)
    crops = paste.paste_crops(np.asarray(det["masks"], np.float32), boxes, height, width, threshold) \
        if len(boxes) else []
    persons = []
    for r, crop in enumerate(crops):
        full = crop.full(height, width)  # (H, W, 7) bool
        rles = mask_utils.encode(np.asfortranarray(full.astype(np.uint8)))
        masks = {}
        for k, name in enumerate(constants.CHANNELS):
            rle = rles[k]
            masks[name] = {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}
        persons.append({"box": [round(float(v), 2) for v in boxes[r]], "score": round(float(scores[r]), 4),
                        "keypoints": [[round(float(x), 2), round(float(y), 2), round(float(s), 4)]
                                      for x, y, s in kps[r]],
                        "masks": masks})
    return {"width": int(width), "height": int(height), "source": source, "persons": persons}


def json_to_masks(result: dict) -> Optional[np.ndarray]:
    """Inverse helper for clients/tests: bool (R, H, W, 7) from a result's RLEs (None if no persons)."""
    if not result["persons"]:
        return None
    out = []
    for p in result["persons"]:
        chans = [mask_utils.decode({"size": p["masks"][n]["size"], "counts": p["masks"][n]["counts"].encode()})
                 for n in constants.CHANNELS]
        out.append(np.stack(chans, -1).astype(bool))
    return np.stack(out)
