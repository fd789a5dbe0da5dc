"""Client for the inference server (``train/test.py``): images, folders, videos and webcam frames.

Uses only the standard library for HTTP; OpenCV (``pip install -e ".[video]"``) is needed only for video
files and webcams (:mod:`maskrcnn_body.data.video`). Frames from OpenCV are BGR and are converted to RGB before
encoding, so the server always receives an RGB image (the original client/server swapped colour channels on both ends).
"""

from __future__ import annotations

import io
import json
import os
import urllib.error
import urllib.request
from typing import Iterator, Tuple

import numpy as np

from maskrcnn_body.data import inputs as input_walker
from maskrcnn_body.data import video


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
    """Yields (name, encoded image bytes, content type) of the inputs walked by
    :func:`maskrcnn_body.data.inputs.expand` (folders -> their images): image files are sent as they are, video
    files and the webcam (``webcam >= 0``, then ``inputs`` are ignored) frame by frame (RGB,
    :mod:`maskrcnn_body.data.video`) as JPEG."""
    if webcam >= 0:
        for name, frame in video.iter_video(webcam, f"webcam{webcam}", max_frames, frame_step):
            yield name, encode_jpeg(frame), "image/jpeg"
        return
    for item in map(str, input_walker.expand(list(inputs))):
        if video.is_video(item):
            stem = os.path.splitext(os.path.basename(item))[0]
            for name, frame in video.iter_video(item, stem, max_frames, frame_step):
                yield name, encode_jpeg(frame), "image/jpeg"
        elif os.path.isfile(item):
            with open(item, "rb") as f:
                yield item, f.read(), input_walker.content_type(item)
        else:
            raise FileNotFoundError(f"input {item!r} is not an image, a folder or a video file")


MODES = ("predict", "render", "both")


def send_inputs(
    server: str,
    inputs,
    mode: str = "predict",
    out_dir: str = "",
    webcam: int = -1,
    max_frames: int = 0,
    frame_step: int = 1,
    display: bool = False,
) -> Tuple[int, int]:
    """Sends every input (:func:`iter_inputs`) to ``server``: ``mode`` ``predict`` (the JSON, one line per image
    printed, ``OUT/<name>.json``), ``render`` (the drawing, ``OUT/<name>.png``) or ``both``; ``display`` shows
    each drawing (OpenCV; q stops). A refused image is printed on stderr and the next one is sent. Returns
    ``(answered, errors)``."""
    import sys

    if mode not in MODES:
        raise ValueError(f"mode {mode!r}: choose from {MODES}")
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    answered = errors = 0
    for name, data, ctype in iter_inputs(inputs, webcam, max_frames, frame_step):
        stem = os.path.splitext(os.path.basename(name))[0]
        try:
            if mode in ("predict", "both"):
                result = predict(server, data, ctype)
                print(f"{name}: {len(result['persons'])} person(s)")
                if out_dir:
                    with open(os.path.join(out_dir, stem + ".json"), "w") as f:
                        json.dump(result, f)
            if mode in ("render", "both"):
                png = render(server, data, ctype)
                if out_dir:
                    with open(os.path.join(out_dir, stem + ".png"), "wb") as f:
                        f.write(png)
                if display and not _show_png(png):
                    break
            answered += 1
        except ServerError as e:
            print(f"{name}: {e}", file=sys.stderr)
            errors += 1
    return answered, errors


def _show_png(png: bytes) -> bool:
    """Shows a PNG in a window; False when the user pressed q."""
    import cv2

    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)  # BGR for imshow
    if img is not None:
        cv2.imshow("maskrcnn_body", img)
    return (cv2.waitKey(1) & 0xFF) != ord("q")
