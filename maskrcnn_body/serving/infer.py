"""``maskrcnn-body predict``: images, folders, videos and webcams -> drawings and JSON.

* an image: ``OUT/<name>.png`` (the drawing of ``draw.py``) and ``OUT/<name>.json`` (the JSON of
  :mod:`maskrcnn_body.inference.results`);
* a video: ``OUT/<name>.mp4`` (every frame drawn; ``.avi`` when the mp4 codec is missing) and
  ``OUT/<name>.jsonl``, one JSON row per frame (``frame``, ``time_s`` and the image JSON) whose
  persons carry a ``track_id`` that stays the same across frames
  (:class:`~maskrcnn_body.inference.tracking.IouTracker`);
* a webcam (``webcam >= 0``): the same as a video, shown live with ``show``.

Frames run through the model ``batch_size`` at a time. Video and webcam need OpenCV
(``pip install "maskrcnn_body[video]"``).
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from typing import Dict, Iterator, List, Optional, Sequence

import numpy as np

from maskrcnn_body.errors import UserError
from maskrcnn_body.inference.api import Model, Result, make_result
from maskrcnn_body.inference.tracking import IouTracker
from maskrcnn_body.serving import media
from maskrcnn_body.utils.files import safe_file_name
from maskrcnn_body.utils.progress import ProgressBar

WINDOW = "maskrcnn-body"


def render_png(image: np.ndarray, det: Dict[str, np.ndarray], score_threshold: float = 0.5) -> bytes:
    """PNG bytes of the drawn prediction (parts, boxes with scores, skeleton, legend)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(make_result(image, det, score_threshold).plot()).save(buf, "PNG")
    return buf.getvalue()


def predict_json(predictor, image: np.ndarray, name: str = "", score_threshold: float = 0.5) -> dict:
    """The JSON of one image (``predictor``: a single-image callable returning detections)."""
    return make_result(image, predictor(image), score_threshold, name).to_json()


def _chunks(items: Iterator, n: int) -> Iterator[List]:
    chunk: List = []
    for item in items:
        chunk.append(item)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class VideoOutput:
    """Annotated frames -> a video file (mp4v ``.mp4``, else MJPG ``.avi``) and a ``.jsonl`` of rows."""

    def __init__(self, out_dir: str, stem: str, fps: float):
        self.out_dir, self.stem, self.fps = out_dir, stem, fps if fps and fps > 0 else 25.0
        self.writer = None
        self.video_path: Optional[str] = None
        self.jsonl_path = os.path.join(out_dir, stem + ".jsonl")
        self.rows = open(self.jsonl_path, "w")

    def _open(self, frame: np.ndarray) -> None:
        import cv2

        h, w = frame.shape[:2]
        for ext, codec in ((".mp4", "mp4v"), (".avi", "MJPG")):
            path = os.path.join(self.out_dir, self.stem + ext)
            writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*codec), self.fps, (w, h))
            if writer.isOpened():
                self.writer, self.video_path = writer, path
                return
        raise RuntimeError(f"OpenCV can write neither mp4v nor MJPG video to {self.out_dir}")

    def write(self, index: int, result: Result, drawing: np.ndarray) -> None:
        import cv2

        if self.writer is None:
            self._open(drawing)
        self.writer.write(cv2.cvtColor(drawing, cv2.COLOR_RGB2BGR))
        row = {"frame": index, "time_s": round(index / self.fps, 4), **result.to_json()}
        self.rows.write(json.dumps(row) + "\n")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
        self.rows.close()


def _show(drawing: np.ndarray) -> bool:
    """Shows a drawing in a window; False when the user pressed q or Esc."""
    import cv2

    cv2.imshow(WINDOW, cv2.cvtColor(drawing, cv2.COLOR_RGB2BGR))
    return (cv2.waitKey(1) & 0xFF) not in (ord("q"), 27)


def run_video(
    model: Model,
    source,
    name: str,
    out_dir: str,
    max_frames: int = 0,
    frame_step: int = 1,
    batch_size: int = 8,
    show: bool = False,
    progress: bool = True,
) -> dict:
    """A video file (path) or a webcam (int): annotated video + JSON Lines with track ids."""
    fps, total = media.video_info(source)
    fps = fps / max(frame_step, 1) if fps else 0.0
    frames = media.iter_video(source, name, max_frames, frame_step)
    out = VideoOutput(out_dir, safe_file_name(name), fps)
    tracker = IouTracker()
    count = min(total // max(frame_step, 1), max_frames or total) if total else 0
    bar = ProgressBar(count, stream=sys.stderr) if progress and count > 1 else None
    n = persons = 0
    tracks = set()
    try:
        for chunk in _chunks(frames, batch_size):
            results = model([frame for _, frame in chunk], batch_size=batch_size, progress=False)
            for (frame_name, _), result in zip(chunk, results):
                result.source = frame_name
                tracker.update(result.persons)
                tracks.update(p.track_id for p in result.persons)
                drawing = result.plot()
                out.write(n, result, drawing)
                n += 1
                persons += len(result.persons)
                if show and not _show(drawing):
                    raise KeyboardInterrupt
            if bar:
                bar.update(n, {"persons": float(persons)})
    except KeyboardInterrupt:
        if not show:
            raise
    finally:
        out.close()
        if bar:
            bar.close()
    return {"frames": n, "persons": persons, "tracks": len(tracks), "video": out.video_path, "jsonl": out.jsonl_path}


def run(
    model: Model,
    inputs: Sequence[str],
    out_dir: str,
    webcam: int = -1,
    max_frames: int = 0,
    frame_step: int = 1,
    batch_size: int = 8,
    show: bool = False,
    progress: bool = True,
) -> dict:
    """Runs ``model`` on ``inputs`` (image files, folders, videos) or a webcam; writes into
    ``out_dir`` (module docstring); returns a summary."""
    os.makedirs(out_dir, exist_ok=True)
    t0 = time.time()
    summary = {"images": 0, "persons": 0, "videos": [], "out_dir": out_dir}
    if webcam >= 0:
        v = run_video(model, webcam, f"webcam{webcam}", out_dir, max_frames, frame_step, batch_size, show, progress)
        summary["videos"].append(v)
        summary["images"], summary["persons"] = v["frames"], v["persons"]
    images: List[str] = []
    for inp in inputs:
        if os.path.isdir(inp):
            images += [os.path.join(inp, f) for f in sorted(os.listdir(inp)) if f.lower().endswith(media.IMAGE_EXTS)]
        elif inp.lower().endswith(media.VIDEO_EXTS):
            if not os.path.isfile(inp):
                raise FileNotFoundError(f"video {inp!r} not found")
            stem = os.path.splitext(os.path.basename(inp))[0]
            v = run_video(model, inp, stem, out_dir, max_frames, frame_step, batch_size, show, progress)
            summary["videos"].append(v)
            summary["images"] += v["frames"]
            summary["persons"] += v["persons"]
        elif os.path.isfile(inp):
            images.append(inp)
        else:
            raise FileNotFoundError(f"input {inp!r} is not an image, a folder or a video file")
    if images:
        for result in model.iter_results(images, batch_size=batch_size, progress=progress and len(images) > 1):
            stem = safe_file_name(os.path.splitext(os.path.basename(result.source))[0])
            result.save(os.path.join(out_dir, stem + ".json"))
            drawing = result.plot()
            from PIL import Image

            Image.fromarray(drawing).save(os.path.join(out_dir, stem + ".png"))
            summary["images"] += 1
            summary["persons"] += len(result.persons)
            if show and not _show(drawing):
                break
    if summary["images"] == 0:
        raise UserError(f"no images or video frames found in {list(inputs)!r}")
    summary["seconds"] = time.time() - t0
    return summary
