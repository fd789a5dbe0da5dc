"""Inference on user inputs: per image or frame, a drawn PNG and a JSON of persons.

The JSON format is :mod:`maskrcnn_body.inference.results`; the drawing is the evaluation drawing
(:func:`maskrcnn_body.drawing.draw.render_dump`), so what ``infer.py`` shows is what ``draw.py`` shows.
"""
from __future__ import annotations

import io
import json
import os
import sys
import time
from typing import Dict, Sequence

import numpy as np

from maskrcnn_body.drawing.draw import render_dump
from maskrcnn_body.inference import results
from maskrcnn_body.serving import media
from maskrcnn_body.utils.files import safe_file_name
from maskrcnn_body.utils.progress import ProgressBar


def render_png(image: np.ndarray, det: Dict[str, np.ndarray], score_threshold: float = 0.5) -> bytes:
    """PNG bytes of the drawn prediction (parts, boxes with scores, skeleton, legend)."""
    pic = render_dump({"image": image, **det}, side_by_side=False, score_threshold=score_threshold, min_size=0)
    buf = io.BytesIO()
    pic.save(buf, "PNG")
    return buf.getvalue()


def keep_confident(det: Dict[str, np.ndarray], score_threshold: float) -> Dict[str, np.ndarray]:
    """The detections with ``score >= score_threshold``."""
    keep = det["scores"] >= score_threshold
    return {k: v[keep] for k, v in det.items()}


def predict_json(predictor, image: np.ndarray, name: str = "", score_threshold: float = 0.5) -> dict:
    det = keep_confident(predictor(image), score_threshold)
    return results.detections_to_json(det, image.shape[0], image.shape[1], name)


def run(predictor, inputs: Sequence[str], out_dir: str, score_threshold: float = 0.5, webcam: int = -1,
        max_frames: int = 0, frame_step: int = 1, progress: bool = True) -> dict:
    """Writes ``out_dir/<name>.png`` and ``<name>.json`` per image/frame; returns a summary."""
    os.makedirs(out_dir, exist_ok=True)
    total = media.count_sources(inputs) if webcam < 0 else 0
    if max_frames and total:
        total = min(total, max_frames) if any(i.lower().endswith(media.VIDEO_EXTS) for i in inputs) else total
    bar = ProgressBar(total, stream=sys.stderr) if progress and total > 1 else None
    n = persons = 0
    t0 = time.time()
    for name, payload in media.iter_sources(inputs, webcam, max_frames, frame_step):
        image = media.load_rgb(payload)
        det = keep_confident(predictor(image), score_threshold)
        stem = safe_file_name(os.path.splitext(os.path.basename(name))[0])
        with open(os.path.join(out_dir, stem + ".json"), "w") as f:
            json.dump(results.detections_to_json(det, image.shape[0], image.shape[1], name), f)
        with open(os.path.join(out_dir, stem + ".png"), "wb") as f:
            f.write(render_png(image, det, score_threshold))
        n += 1
        persons += len(det["scores"])
        if bar:
            bar.update(n, {"persons": float(persons)})
    if bar:
        bar.close()
    if n == 0:
        raise FileNotFoundError(f"no images found in {list(inputs)!r}")
    return {"images": n, "persons": persons, "seconds": time.time() - t0, "out_dir": out_dir}
