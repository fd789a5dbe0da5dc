"""Client for the inference server (``train/test.py``): images, folders, videos and webcam frames.

Uses only the standard library for HTTP; OpenCV (``pip install -e ".[video]"``) is needed only for video
files and webcams. Frames from OpenCV are BGR and are converted to RGB before encoding, so the server
always receives an RGB image (the original client/server swapped colour channels on both ends).
"""
from __future__ import annotations

import io
import json
import os
import urllib.error
import urllib.request
from typing import Iterator, Tuple

import numpy as np

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm")


class ServerError(RuntimeError):
    def __init__(self, status: int, message: str):
        super().__init__(f"server answered {status}: {message}")
        self.status = status


def post_image(server: str, path: str, body: bytes, content_type: str = "image/jpeg",
               timeout: float = 120.0) -> Tuple[bytes, str]:
    """POSTs image bytes to ``server + path``; returns (body, content type) or raises :class:`ServerError`."""
    req = urllib.request.Request(server.rstrip("/") + path, data=body, method="POST",
                                 headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        data = e.read()
        try:
            msg = json.loads(data)["error"]
        except Exception:
            msg = data[:200].decode("utf-8", "replace")
        raise ServerError(e.code, msg) from None


def predict(server: str, image_bytes: bytes, content_type: str = "image/jpeg") -> dict:
    body, _ = post_image(server, "/v1/predict", image_bytes, content_type)
    return json.loads(body)


def render(server: str, image_bytes: bytes, content_type: str = "image/jpeg") -> bytes:
    body, _ = post_image(server, "/v1/render", image_bytes, content_type)
    return body


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _content_type(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    return {".png": "image/png", ".bmp": "image/bmp", ".webp": "image/webp"}.get(ext, "image/jpeg")


def iter_inputs(inputs, webcam: int = -1, max_frames: int = 0, frame_step: int = 1
                ) -> Iterator[Tuple[str, bytes, str]]:
    """Yields (name, encoded image bytes, content type) for image files, folders, videos, or a webcam."""
    if webcam >= 0:
        yield from _iter_video(webcam, f"webcam{webcam}", max_frames, frame_step)
        return
    for inp in inputs:
        if os.path.isdir(inp):
            for f in sorted(os.listdir(inp)):
                if f.lower().endswith(IMAGE_EXTS):
                    p = os.path.join(inp, f)
                    yield p, open(p, "rb").read(), _content_type(p)
        elif inp.lower().endswith(VIDEO_EXTS):
            yield from _iter_video(inp, os.path.splitext(os.path.basename(inp))[0], max_frames, frame_step)
        elif os.path.isfile(inp):
            yield inp, open(inp, "rb").read(), _content_type(inp)
        else:
            raise FileNotFoundError(f"input {inp!r} is not an image, a folder or a video file")


def _iter_video(source, name, max_frames, frame_step):
    try:
        import cv2
    except ImportError:
        raise RuntimeError("video and webcam input need OpenCV: pip install -e '.[video]'") from None
    cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        raise RuntimeError(f"cannot open video source {source!r}")
    i = n = 0
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if i % frame_step == 0:
                rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)  # OpenCV frames are BGR
                yield f"{name}_{i:06d}", encode_jpeg(rgb), "image/jpeg"
                n += 1
                if max_frames and n >= max_frames:
                    break
            i += 1
    finally:
        cap.release()
