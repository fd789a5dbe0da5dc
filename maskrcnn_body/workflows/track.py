"""The track workflow: a video file or a webcam -> people with identities, written as an annotated video.

    from maskrcnn_body.workflows.track import track
    summary = track(mb.load("output/mask_rcnn", score_threshold=0.1), "clip.mp4", "output/predictions")
    # output/predictions/clip.mp4 (H.264), clip.jsonl (one row per frame, track ids), clip.coco.json

The frames run through :meth:`Model.track <maskrcnn_body.inference.api.Model.track>` (ByteTrack-style, docs/TRACKING.md)
and are written by :class:`~maskrcnn_body.workflows.video_writer.VideoOutput`. ``maskrcnn-body predict`` on a video
or a webcam is this function.
"""

from __future__ import annotations

import os
import sys
from typing import List, Optional, Set, Union

import numpy as np

from maskrcnn_body.data import video
from maskrcnn_body.inference.api import Model, video_stem
from maskrcnn_body.inference.tracking import TrackerConfig
from maskrcnn_body.utils.progress import ProgressBar
from maskrcnn_body.workflows.video_writer import VideoOutput

WINDOW = "maskrcnn-body"


def show(drawing: np.ndarray) -> bool:
    """Shows a drawing in a window (OpenCV); False when the user pressed q or Esc."""
    import cv2

    cv2.imshow(WINDOW, cv2.cvtColor(drawing, cv2.COLOR_RGB2BGR))
    return (cv2.waitKey(1) & 0xFF) not in (ord("q"), 27)


def track(
    model: Model,
    source: Union[str, int],
    out_dir: str,
    name: Optional[str] = None,
    max_frames: int = 0,
    frame_step: int = 1,
    batch_size: int = 8,
    display: bool = False,
    progress: bool = True,
    score_threshold: Optional[float] = None,
    tracker: Optional[TrackerConfig] = None,
    draw: Optional[dict] = None,
) -> dict:
    """A video file (path) or a webcam (int): annotated video + JSON Lines + COCO results with track ids in
    ``out_dir``, named ``name`` (default: the file's stem, ``webcam<N>``). The model runs at
    ``min(score_threshold, tracker.low_score)`` so the tracker's second pass sees the low-score detections; the
    outputs keep the persons scoring at least ``score_threshold`` (default: the model's) and the lower ones that
    extended a track. ``draw``: :meth:`Result.plot <maskrcnn_body.inference.api.Result.plot>` options;
    ``display``: show each frame in a window (q or Esc stops). Returns a summary (frames, persons, tracks, paths)."""
    if isinstance(source, int) and not isinstance(source, bool):
        name = name or f"webcam{source}"
    else:
        source = os.fspath(str(source))
        if not os.path.isfile(source):
            raise FileNotFoundError(f"video {source!r} not found")
        name = name or video_stem(source)
    os.makedirs(out_dir, exist_ok=True)
    fps, total = video.video_info(source)
    fps = fps / max(frame_step, 1) if fps else 0.0
    out = VideoOutput(out_dir, name, fps)
    count = min(total // max(frame_step, 1), max_frames or total) if total else 0
    bar = ProgressBar(count, stream=sys.stderr) if progress and count > 1 else None
    n = persons = 0
    tracks: Set[int] = set()
    frames = video.iter_video(source, name, max_frames, frame_step)
    names: List[str] = []

    def images():
        for frame_name, frame in frames:
            names.append(frame_name)
            yield frame

    try:
        for result in model.track(images(), batch_size, score_threshold, tracker):
            result.source = names[n]
            tracks.update(p.track_id for p in result.persons if p.track_id is not None)
            drawing = result.plot(**(draw or {}))
            out.write(n, result, drawing)
            n += 1
            persons += len(result.persons)
            if display and not show(drawing):
                raise KeyboardInterrupt
            if bar and (n % batch_size == 0 or n == count):
                bar.update(n, {"persons": float(persons)})
    except KeyboardInterrupt:
        if not display:
            raise
    finally:
        out.close()
        if bar:
            bar.close()
    return {
        "frames": n,
        "persons": persons,
        "tracks": len(tracks),
        "video": out.video_path,
        "codec": out.codec,
        "fps": round(out.fps, 4),
        "jsonl": out.jsonl_path,
        "coco": out.coco_path,
    }
