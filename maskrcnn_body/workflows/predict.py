"""The predict workflow: images, folders, videos and webcams -> drawings and JSON files.

    from maskrcnn_body.workflows.predict import predict
    summary = predict(mb.load("output/mask_rcnn"), ["photo.jpg", "folder/", "clip.mp4"], "output/predictions")

* an image: ``OUT/<name>.png`` (:meth:`Result.plot <maskrcnn_body.inference.api.Result.plot>`, the input's size)
  and ``OUT/<name>.json`` (the JSON of :mod:`maskrcnn_body.inference.result_json`);
* a folder: its images (:func:`maskrcnn_body.data.inputs.expand`, the one input walker);
* a video or a webcam (``webcam >= 0``): :func:`maskrcnn_body.workflows.track.track` (annotated H.264 video,
  JSON Lines with track ids, COCO results).

Inputs that share a name (``a/x.jpg`` and ``b/x.png``) get distinct outputs: ``x``, ``x_2``, ... in input order
(each JSON's ``source`` names its input). Frames run through the model ``batch_size`` at a time. Video and webcam
input need OpenCV, H.264 output PyAV (``pip install "maskrcnn_body[video]"`` installs both).
``maskrcnn-body predict`` is :func:`predict` with flags.
"""

from __future__ import annotations

import os
import time
from typing import Any, Dict, List, Optional, Sequence, Set

from maskrcnn_body.data import inputs as input_walker
from maskrcnn_body.data import video
from maskrcnn_body.errors import UserError
from maskrcnn_body.inference.api import Model, video_stem
from maskrcnn_body.inference.tracking import TrackerConfig
from maskrcnn_body.utils.files import safe_file_name
from maskrcnn_body.workflows import track as track_workflow


def unique_stem(stem: str, used: Set[str]) -> str:
    """``stem``, or ``stem_2``, ``stem_3``, ... the first not in ``used`` (which it is added to)."""
    name, k = stem, 1
    while name in used:
        k += 1
        name = f"{stem}_{k}"
    used.add(name)
    return name


def predict(
    model: Model,
    inputs: Sequence[str],
    out_dir: str,
    webcam: int = -1,
    max_frames: int = 0,
    frame_step: int = 1,
    batch_size: int = 8,
    display: bool = False,
    progress: bool = True,
    score_threshold: Optional[float] = None,
    tracker: Optional[TrackerConfig] = None,
    draw: Optional[dict] = None,
) -> dict:
    """Runs ``model`` on ``inputs`` (image files, folders, videos) and/or a webcam; writes into ``out_dir``
    (module docstring); returns a summary (``images``, ``persons``, ``videos``, ``out_dir``, ``seconds``).
    ``score_threshold``: persons kept (default: the model's); ``tracker``: the video tracker's settings;
    ``draw``: :meth:`Result.plot <maskrcnn_body.inference.api.Result.plot>` options of every drawing;
    ``display``: show each drawing in a window (q or Esc stops)."""
    if batch_size < 1:
        raise UserError(f"batch_size must be >= 1, got {batch_size}")
    if not inputs and webcam < 0:
        raise UserError("give inputs (images, folders, videos) or a webcam index")
    os.makedirs(out_dir, exist_ok=True)
    t0 = time.time()
    summary: dict = {"images": 0, "persons": 0, "videos": [], "out_dir": out_dir}
    video_args: Dict[str, Any] = dict(
        max_frames=max_frames,
        frame_step=frame_step,
        batch_size=batch_size,
        display=display,
        progress=progress,
        score_threshold=score_threshold,
        tracker=tracker,
        draw=draw,
    )
    if webcam >= 0:
        v = track_workflow.track(model, webcam, out_dir, **video_args)
        summary["videos"].append(v)
        summary["images"], summary["persons"] = v["frames"], v["persons"]
    images: List[str] = []
    video_stems: Set[str] = set()
    for item in map(str, input_walker.expand([os.fspath(i) for i in inputs])):
        if video.is_video(item):
            if not os.path.isfile(item):
                raise FileNotFoundError(f"video {item!r} not found")
            stem = unique_stem(safe_file_name(video_stem(item)), video_stems)
            v = track_workflow.track(model, item, out_dir, name=stem, **video_args)
            summary["videos"].append(v)
            summary["images"] += v["frames"]
            summary["persons"] += v["persons"]
        elif isinstance(item, str) and os.path.isfile(item):
            images.append(item)
        else:
            raise FileNotFoundError(f"input {item!r} is not an image, a folder or a video file")
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
            if display and not track_workflow.show(drawing):
                break
    if summary["images"] == 0:
        raise UserError(f"no images or video frames found in {list(inputs)!r}")
    summary["seconds"] = time.time() - t0
    return summary


def predict_paths(
    model: str,
    inputs: Sequence[str],
    out_dir: str,
    webcam: int = -1,
    load_options: Optional[dict] = None,
    score_threshold: float = 0.5,
    tracker: Optional[TrackerConfig] = None,
    **options,
) -> dict:
    """:func:`predict` with the model loaded from the path ``model`` (:func:`maskrcnn_body.workflows.model.load`
    with ``load_options``). With videos or a webcam among the inputs the model keeps detections down to
    ``min(score_threshold, tracker.low_score)`` (the tracker's second pass needs them); ``options``: the rest of
    :func:`predict`'s."""
    from maskrcnn_body.workflows.model import load

    tracker = tracker or TrackerConfig()
    has_video = webcam >= 0 or any(video.is_video(i) for i in inputs)
    loaded = load(
        model,
        score_threshold=min(score_threshold, tracker.low_score) if has_video else score_threshold,
        **(load_options or {}),
    )
    return predict(loaded, inputs, out_dir, webcam, score_threshold=score_threshold, tracker=tracker, **options)
