"""The one input walker: what the Python API, ``maskrcnn-body predict`` and the HTTP client accept.

:func:`expand` turns "one input or a list of them" into a flat list: a folder becomes its image files
(names ending in :data:`~maskrcnn_body.data.images.IMAGE_EXTS`, sorted; videos in a folder are not
walked), every other item is kept as it is (an image path, a video path, bytes, a file object, a PIL
image, an RGB array). :func:`content_type` names an image file's media type for uploads.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any, List, Union

import numpy as np

from maskrcnn_body.data.images import IMAGE_EXTS
from maskrcnn_body.data.video import VIDEO_EXTS, is_video
from maskrcnn_body.errors import UserError

__all__ = [
    "ACCEPTED",
    "IMAGE_EXTS",
    "VIDEO_EXTS",
    "InputError",
    "content_type",
    "expand",
    "folder_images",
    "is_single",
    "is_video",
]

Item = Union[str, os.PathLike, bytes, np.ndarray, Any]  # Any: a PIL image or a binary file object
ACCEPTED = (
    "give a path (image, folder of images or video), image bytes, a PIL image or an RGB uint8 array (H, W, 3), "
    "or a list of them"
)


class InputError(UserError, ValueError):
    """An input that is not an image, a folder or a video (the message says what is accepted)."""


def is_single(item) -> bool:
    """Whether ``item`` is one input (not a list of them)."""
    return (
        isinstance(item, (str, os.PathLike, np.ndarray, bytes, bytearray, memoryview, int))
        or hasattr(item, "read")
        or (hasattr(item, "convert") and hasattr(item, "size"))
    )


def folder_images(folder: Union[str, os.PathLike]) -> List[str]:
    """The image files of ``folder`` (not recursive), sorted by name."""
    return [str(p) for p in sorted(pathlib.Path(folder).iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_EXTS]


def expand(inputs) -> List[Item]:
    """A single input or an iterable of them -> a flat list, folders replaced by :func:`folder_images`."""
    if is_single(inputs):
        inputs = [inputs]
    try:
        items = list(inputs)
    except TypeError:
        raise InputError(f"cannot use {type(inputs).__name__} as an image: {ACCEPTED}") from None
    out: List[Item] = []
    for item in items:
        if isinstance(item, (str, os.PathLike)) and os.path.isdir(item):
            out.extend(folder_images(item))
        else:
            out.append(item)
    return out


def content_type(path: str) -> str:
    """The media type of an image file, from its name (JPEG when unknown)."""
    ext = os.path.splitext(path)[1].lower()
    return {".png": "image/png", ".bmp": "image/bmp", ".webp": "image/webp"}.get(ext, "image/jpeg")



