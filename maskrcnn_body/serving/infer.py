"""``maskrcnn-body predict``: images, folders, videos and webcams -> drawings and JSON.

* an image: ``OUT/<name>.png`` (:meth:`Result.plot <maskrcnn_body.inference.api.Result.plot>`, the
  input's size) and ``OUT/<name>.json`` (the JSON of :mod:`maskrcnn_body.inference.results`);
* a video: ``OUT/<name>.mp4``, every frame drawn with its people's track ids, H.264 (yuv420p,
  ``+faststart``: browsers play it) at the source's frame rate (divided by ``frame_step``) and size
  (odd sizes padded by one pixel: H.264 4:2:0 needs even sizes), written with PyAV; without PyAV,
  OpenCV's ``mp4v`` with a warning (browsers do not play it). Beside it ``OUT/<name>.jsonl``, one
  JSON row per frame (``frame``, ``time_s`` and the image JSON, each person with a ``track_id``,
  ``null`` until the track is confirmed; :class:`~maskrcnn_body.inference.tracking.Tracker`), and
  ``OUT/<name>.coco.json``, the same detections as a COCO results list
  (:func:`maskrcnn_body.inference.results.coco_results`; ``image_id`` = frame index);
* a webcam (``webcam >= 0``): the same as a video, shown live with ``show``.

Inputs that share a name (``a/x.jpg`` and ``b/x.png``) get distinct outputs: ``x``, ``x_2``, ...
in input order (each JSON's ``source`` names its input). Frames run through the model
``batch_size`` at a time. Video and webcam input need OpenCV, H.264 output PyAV (``pip install
"maskrcnn_body[video]"`` installs both).
"""

from __future__ import annotations

import fractions
import io
import json
import os
import sys
import time
from typing import Dict, Iterator, List, Optional, Sequence, Set

import numpy as np

from maskrcnn_body.errors import UserError
from maskrcnn_body.inference.api import Model, Result, make_result
from maskrcnn_body.inference.results import coco_results
from maskrcnn_body.inference.tracking import TrackerConfig
from maskrcnn_body.serving import media
from maskrcnn_body.utils.files import safe_file_name
from maskrcnn_body.utils.progress import ProgressBar

WINDOW = "maskrcnn-body"
H264_OPTIONS = {"crf": "20", "preset": "veryfast"}
"""libx264 settings of the annotated videos: constant quality 20 (visually lossless for drawings),
the ``veryfast`` preset (encoding stays a small part of the time per frame)."""


def render_png(image: np.ndarray, det: Dict[str, np.ndarray], score_threshold: float = 0.5, **plot_options) -> bytes:
    """PNG bytes of the drawn prediction (:meth:`Result.plot
    <maskrcnn_body.inference.api.Result.plot>` with ``plot_options``: the drawing of ``predict``)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(make_result(image, det, score_threshold).plot(**plot_options)).save(buf, "PNG")
    return buf.getvalue()


def predict_json(predictor, image: np.ndarray, name: str = "", score_threshold: float = 0.5) -> dict:
    """The JSON of one image (``predictor``: a single-image callable returning detections)."""
    return make_result(image, predictor(image), score_threshold, name).to_json()


def unique_stem(stem: str, used: Set[str]) -> str:
    """``stem``, or ``stem_2``, ``stem_3``, ... the first not in ``used`` (which it is added to)."""
    name, k = stem, 1
    while name in used:
        k += 1
        name = f"{stem}_{k}"
    used.add(name)
    return name


def frame_rate(fps: float) -> fractions.Fraction:
    """The exact rate of a frame rate OpenCV reports as a float (29.97002997 -> 30000/1001)."""
    return fractions.Fraction(fps).limit_denominator(1001)


class VideoOutput:
    """Annotated frames -> ``<stem>.mp4`` (H.264 through PyAV; else OpenCV ``mp4v``), ``<stem>.jsonl``
    (one row per frame) and ``<stem>.coco.json`` (a COCO results list); see the module docstring."""

    def __init__(self, out_dir: str, stem: str, fps: float):
        self.out_dir, self.stem, self.fps = out_dir, stem, fps if fps and fps > 0 else 25.0
        self.video_path = os.path.join(out_dir, stem + ".mp4")
        self.codec = ""
        self._av = self._cv = self._stream = None
        self.jsonl_path = os.path.join(out_dir, stem + ".jsonl")
        self.coco_path = os.path.join(out_dir, stem + ".coco.json")
        self.rows = open(self.jsonl_path, "w")
        self.coco = open(self.coco_path, "w")
        self.coco.write("[")
        self._coco_rows = 0

    def _open(self, frame: np.ndarray) -> None:
        h, w = frame.shape[:2]
        try:
            import av
        except ImportError:
            av = None
        if av is not None:
            self._av = av.open(self.video_path, "w", options={"movflags": "+faststart"})
            stream = self._av.add_stream("libx264", rate=frame_rate(self.fps))
            stream.width, stream.height, stream.pix_fmt = w + w % 2, h + h % 2, "yuv420p"
            stream.options = dict(H264_OPTIONS)
            self._stream, self.codec = stream, "h264"
            return
        import cv2

        print(
            "warning: PyAV is not installed, so the video is written with OpenCV's mp4v codec, which browsers "
            "do not play; pip install 'maskrcnn_body[video]' for H.264",
            file=sys.stderr,
        )
        self._cv = cv2.VideoWriter(self.video_path, cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
        if not self._cv.isOpened():
            raise RuntimeError(f"OpenCV cannot write an mp4v video to {self.video_path}")
        self.codec = "mp4v"

    def write(self, index: int, result: Result, drawing: np.ndarray) -> None:
        if self._av is None and self._cv is None:
            self._open(drawing)
        if self._av is not None:
            import av

            h, w = drawing.shape[:2]
            if h % 2 or w % 2:  # H.264 4:2:0 needs even sizes: repeat the last row / column
                drawing = np.pad(drawing, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
            for packet in self._stream.encode(av.VideoFrame.from_ndarray(drawing, format="rgb24")):
                self._av.mux(packet)
        else:
            import cv2

            self._cv.write(cv2.cvtColor(drawing, cv2.COLOR_RGB2BGR))
        image_json = result.to_json()
        for person, p in zip(image_json["persons"], result.persons):
            person["track_id"] = None if p.track_id is None else int(p.track_id)
        row = {"frame": index, "time_s": round(index / self.fps, 4), **image_json}
        self.rows.write(json.dumps(row) + "\n")
        for entry in coco_results(image_json, image_id=index):
            self.coco.write(("," if self._coco_rows else "") + "\n" + json.dumps(entry))
            self._coco_rows += 1

    def close(self) -> None:
        if self._av is not None:
            for packet in self._stream.encode():
                self._av.mux(packet)
            self._av.close()
        if self._cv is not None:
            self._cv.release()
        self.rows.close()
        self.coco.write("\n]\n")
        self.coco.close()


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
    score_threshold: Optional[float] = None,
    tracker: Optional[TrackerConfig] = None,
    draw: Optional[dict] = None,
) -> dict:
    """A video file (path) or a webcam (int): annotated video + JSON Lines + COCO results with track
    ids (module docstring). The model runs at ``min(score_threshold, tracker.low_score)`` so the
    tracker's second pass sees the low-score detections; the outputs keep the persons scoring at
    least ``score_threshold`` (default: the model's) and the lower ones that extended a track."""
    fps, total = media.video_info(source)
    fps = fps / max(frame_step, 1) if fps else 0.0
    names: List[str] = []

    def frames() -> Iterator[np.ndarray]:
        for frame_name, frame in media.iter_video(source, name, max_frames, frame_step):
            names.append(frame_name)
            yield frame

    out = VideoOutput(out_dir, name, fps)
    count = min(total // max(frame_step, 1), max_frames or total) if total else 0
    bar = ProgressBar(count, stream=sys.stderr) if progress and count > 1 else None
    n = persons = 0
    tracks = set()
    try:
        for result in model.track(frames(), batch_size, score_threshold, tracker):
            result.source = names[n]
            tracks.update(p.track_id for p in result.persons if p.track_id is not None)
            drawing = result.plot(**(draw or {}))
            out.write(n, result, drawing)
            n += 1
            persons += len(result.persons)
            if show and not _show(drawing):
                raise KeyboardInterrupt
            if bar and (n % batch_size == 0 or n == count):
                bar.update(n, {"persons": float(persons)})
    except KeyboardInterrupt:
        if not show:
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
    score_threshold: Optional[float] = None,
    tracker: Optional[TrackerConfig] = None,
    draw: Optional[dict] = None,
) -> dict:
    """Runs ``model`` on ``inputs`` (image files, folders, videos) or a webcam; writes into
    ``out_dir`` (module docstring); returns a summary. ``score_threshold``: persons kept (default:
    the model's); ``tracker``: the video tracker's settings; ``draw``: :meth:`Result.plot
    <maskrcnn_body.inference.api.Result.plot>` options of every drawing."""
    os.makedirs(out_dir, exist_ok=True)
    t0 = time.time()
    summary: dict = {"images": 0, "persons": 0, "videos": [], "out_dir": out_dir}
    video_args = dict(
        max_frames=max_frames,
        frame_step=frame_step,
        batch_size=batch_size,
        show=show,
        progress=progress,
        score_threshold=score_threshold,
        tracker=tracker,
        draw=draw,
    )
    if webcam >= 0:
        v = run_video(model, webcam, f"webcam{webcam}", out_dir, **video_args)
        summary["videos"].append(v)
        summary["images"], summary["persons"] = v["frames"], v["persons"]
    images: List[str] = []
    video_stems: Set[str] = set()
    for inp in inputs:
        if os.path.isdir(inp):
            images += [os.path.join(inp, f) for f in sorted(os.listdir(inp)) if f.lower().endswith(media.IMAGE_EXTS)]
        elif inp.lower().endswith(media.VIDEO_EXTS):
            if not os.path.isfile(inp):
                raise FileNotFoundError(f"video {inp!r} not found")
            stem = unique_stem(safe_file_name(os.path.splitext(os.path.basename(inp))[0]), video_stems)
            v = run_video(model, inp, stem, out_dir, **video_args)
            summary["videos"].append(v)
            summary["images"] += v["frames"]
            summary["persons"] += v["persons"]
        elif os.path.isfile(inp):
            images.append(inp)
        else:
            raise FileNotFoundError(f"input {inp!r} is not an image, a folder or a video file")
    if images:
        from PIL import Image

        image_stems: Set[str] = set()
        results = model.iter_results(
            images, batch_size=batch_size, score_threshold=score_threshold, progress=progress and len(images) > 1
        )
        for result in results:
            stem = unique_stem(safe_file_name(os.path.splitext(os.path.basename(result.source))[0]), image_stems)
            result.save(os.path.join(out_dir, stem + ".json"))
            drawing = result.plot(**(draw or {}))
            Image.fromarray(drawing).save(os.path.join(out_dir, stem + ".png"))
            summary["images"] += 1
            summary["persons"] += len(result.persons)
            if show and not _show(drawing):
                break
    if summary["images"] == 0:
        raise UserError(f"no images or video frames found in {list(inputs)!r}")
    summary["seconds"] = time.time() - t0
    return summary
