"""Client for the inference server (``train/test.py``): images, folders, videos and webcam frames.

Uses only the standard library for HTTP; OpenCV (``pip install -e ".[video]"``) is needed only for video
files and webcams. Frames from OpenCV are BGR and are converted to RGB before encoding, so the server
always receives an RGB image (the original client/server swapped colour channels on both ends).
"""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from typing import Iterator, Tuple

import numpy as np

from maskrcnn_body.serving import media


class ServerError(RuntimeError):
    def __init__(self, status: int, message: str):
        super().__init__(f"server answered {status}: {message}")
        self.status = status


def post_image(
    server: str, path: str, body: bytes, content_type: str = "image/jpeg", timeout: float = 120.0
) -> Tuple[bytes, str]:
    """POSTs image bytes to ``server + path``; returns (body, content type) or raises :class:`ServerError`."""
    req = urllib.request.Request(
        server.rstrip("/") + path, data=body, method="POST", headers={"Content-Type": content_type}
    )
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


def iter_inputs(inputs, webcam: int = -1, max_frames: int = 0, frame_step: int = 1) -> Iterator[Tuple[str, bytes, str]]:
    """Yields (name, encoded image bytes, content type): image files are sent as they are, video and
    webcam frames (RGB, see :mod:`maskrcnn_body.serving.media`) as JPEG."""
    for name, payload in media.iter_sources(inputs, webcam, max_frames, frame_step):
        if isinstance(payload, str):
            with open(payload, "rb") as f:
                yield name, f.read(), media.content_type(payload)
        else:
            yield name, encode_jpeg(payload), "image/jpeg"
