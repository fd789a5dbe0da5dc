"""Walking user inputs: image files, folders of images, video files and webcams.

:func:`iter_sources` yields ``(name, payload)`` where ``payload`` is either a file path (an image
file, read as it is) or an RGB uint8 (H, W, 3) frame (video/webcam, decoded with OpenCV and
converted from OpenCV's BGR to RGB here, once). OpenCV is optional (``pip install -e ".[video]"``).
"""

from __future__ import annotations

import os
from typing import Iterator, Sequence, Tuple, Union

import numpy as np

from maskrcnn_body.data.images import IMAGE_EXTS, decode_image

VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm")
Payload = Union[str, np.ndarray]


def iter_sources(
    inputs: Sequence[str], webcam: int = -1, max_frames: int = 0, frame_step: int = 1
) -> Iterator[Tuple[str, Payload]]:
    if webcam >= 0:
        yield from iter_video(webcam, f"webcam{webcam}", max_frames, frame_step)
        return
    for inp in inputs:
        if os.path.isdir(inp):
            for f in sorted(os.listdir(inp)):
                if f.lower().endswith(IMAGE_EXTS):
                    yield os.path.join(inp, f), os.path.join(inp, f)
        elif inp.lower().endswith(VIDEO_EXTS):
            yield from iter_video(inp, os.path.splitext(os.path.basename(inp))[0], max_frames, frame_step)
        elif os.path.isfile(inp):
            yield inp, inp
        else:
            raise FileNotFoundError(f"input {inp!r} is not an image, a folder or a video file")


def count_sources(inputs: Sequence[str]) -> int:
    """Number of items :func:`iter_sources` will yield for files/folders (video frames counted via
    OpenCV when available; 0 = unknown)."""
    n = 0
    for inp in inputs:
        if os.path.isdir(inp):
            n += sum(f.lower().endswith(IMAGE_EXTS) for f in os.listdir(inp))
        elif inp.lower().endswith(VIDEO_EXTS):
            try:
                import cv2

                cap = cv2.VideoCapture(inp)
                n += int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
                cap.release()
            except ImportError:
                return 0
        else:
            n += 1
    return n


def video_info(source):
    """``(frames per second, frame count)`` of a video file or webcam (0 where unknown)."""
    try:
        import cv2
    except ImportError:
        raise RuntimeError("video and webcam input need OpenCV: pip install 'maskrcnn_body[video]'") from None
    cap = cv2.VideoCapture(source)
    try:
        if not cap.isOpened():
            raise RuntimeError(f"cannot open video source {source!r}")
        return float(cap.get(cv2.CAP_PROP_FPS) or 0.0), max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0)
    finally:
        cap.release()


def iter_video(source, name: str, max_frames: int = 0, frame_step: int = 1) -> Iterator[Tuple[str, np.ndarray]]:
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
                yield f"{name}_{i:06d}", cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)  # OpenCV frames are BGR
                n += 1
                if max_frames and n >= max_frames:
                    break
            i += 1
    finally:
        cap.release()


def load_rgb(payload: Payload) -> np.ndarray:
    """RGB uint8 (H, W, 3) of a path (:func:`maskrcnn_body.data.images.decode_image`: upright, allow-listed
    formats) or a frame."""
    if isinstance(payload, np.ndarray):
        return payload
    return decode_image(payload)


def content_type(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    return {".png": "image/png", ".bmp": "image/bmp", ".webp": "image/webp"}.get(ext, "image/jpeg")
