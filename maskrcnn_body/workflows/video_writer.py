"""Annotated video files: drawn frames -> ``<stem>.mp4`` (H.264 through PyAV, ``yuv420p`` and ``+faststart`` so
browsers play it; without PyAV OpenCV's ``mp4v`` with a warning), ``<stem>.jsonl`` (one JSON row per frame: ``frame``,
``time_s`` and the image JSON, each person with its ``track_id``) and ``<stem>.coco.json`` (a COCO results list,
``image_id`` = frame index). Odd frame sizes are padded by one pixel (H.264 4:2:0 needs even sizes).
"""

from __future__ import annotations

import fractions
import json
import os
import sys
from typing import Any

import numpy as np

from maskrcnn_body.inference.api import Result
from maskrcnn_body.inference.result_json import coco_results

H264_OPTIONS = {"crf": "20", "preset": "veryfast"}
"""libx264 settings of the annotated videos: constant quality 20 (visually lossless for drawings),
the ``veryfast`` preset (encoding stays a small part of the time per frame)."""


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
        self._av: Any = None  # PyAV output container
        self._cv: Any = None  # OpenCV VideoWriter
        self._stream: Any = None
        self.jsonl_path = os.path.join(out_dir, stem + ".jsonl")
        self.coco_path = os.path.join(out_dir, stem + ".coco.json")
        self.rows = open(self.jsonl_path, "w")
        self.coco = open(self.coco_path, "w")
        self.coco.write("[")
        self._coco_rows = 0

    def _open(self, frame: np.ndarray) -> None:
        h, w = frame.shape[:2]
        import importlib.util

        if importlib.util.find_spec("av") is not None:
            import av

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
        fourcc = cv2.VideoWriter.fourcc(*"mp4v")
        self._cv = cv2.VideoWriter(self.video_path, fourcc, self.fps, (w, h))
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
