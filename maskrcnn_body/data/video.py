"""Reading video files and webcams as RGB frames (OpenCV; ``pip install "maskrcnn_body[video]"``).

Frames come out as RGB uint8 (H, W, 3): OpenCV decodes BGR and the conversion happens here, once.
A *source* is a video file path (``str``) or a webcam index (``int`` >= 0).
"""

from __future__ import annotations

import os
from typing import Iterator, Tuple, Union

import numpy as np

from maskrcnn_body.errors import UserError

VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm")
"""File name endings read as videos (by the input walker and :func:`is_video`)."""
INSTALL_HINT = "video and webcam input need OpenCV: pip install 'maskrcnn_body[video]'"

Source = Union[str, int]


class VideoError(UserError, RuntimeError):
    """A video source that cannot be opened (the message names it), or OpenCV missing."""


def is_video(item) -> bool:
    """Whether ``item`` names a video: a path ending in :data:`VIDEO_EXTS` (case-insensitive)."""
    return isinstance(item, (str, os.PathLike)) and os.fspath(item).lower().endswith(VIDEO_EXTS)


def _cv2():
    try:
        import cv2
    except ImportError:
        raise VideoError(INSTALL_HINT) from None
    return cv2


def video_info(source: Source) -> Tuple[float, int]:
    """``(frames per second, frame count)`` of a video file or webcam (0 where unknown)."""
    cv2 = _cv2()
    cap = cv2.VideoCapture(source)
    try:
        if not cap.isOpened():
            raise VideoError(f"cannot open video source {source!r}")
        return float(cap.get(cv2.CAP_PROP_FPS) or 0.0), max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0)
    finally:
        cap.release()


def frame_name(name: str, index: int) -> str:
    """The source name of frame ``index`` of ``name``: ``<name>_<index:06d>`` (the source frame's index)."""
    return f"{name}_{index:06d}"


def iter_video(source: Source, name: str, max_frames: int = 0, frame_step: int = 1) -> Iterator[Tuple[str, np.ndarray]]:
    """Yields ``(frame name, RGB uint8 (H, W, 3))`` for every ``frame_step``-th frame of ``source``, at most
    ``max_frames`` of them (0: all); frame names are :func:`frame_name` of the source frame index."""
    if frame_step < 1:
        raise UserError(f"frame_step must be >= 1, got {frame_step}")
    cv2 = _cv2()
    cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        raise VideoError(f"cannot open video source {source!r}")
    i = n = 0
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if i % frame_step == 0:
                yield frame_name(name, i), cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)  # OpenCV frames are BGR
                n += 1
                if max_frames and n >= max_frames:
                    break
            i += 1
    finally:
        cap.release()
