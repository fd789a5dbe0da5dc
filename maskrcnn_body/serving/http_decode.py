"""Image bytes of a request -> RGB pixels, off the event loop, and memory handed back after large ones.

:func:`decode_request_image` maps the decoder's errors (:mod:`maskrcnn_body.data.images`) to HTTP answers
(415/400); :class:`DecodePool` runs its cheap header check in a small thread pool, bounded by
``decode_timeout_s``, so no upload delays ``/healthz``; the full decode runs in the model worker
(:mod:`~maskrcnn_body.serving.http_app`), just before the model call. :func:`release_memory` hands freed heap
back to the system (glibc ``malloc_trim``) after a large request, in that same pool.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import ctypes.util
from typing import Any, Optional

import numpy as np

from maskrcnn_body.data import images
from maskrcnn_body.serving.http_config import ServerConfig
from maskrcnn_body.serving.http_errors import HTTPError


def image_limits(cfg: ServerConfig) -> images.Limits:
    return images.Limits(max_pixels=cfg.max_pixels, min_side=cfg.min_side, max_aspect_ratio=cfg.max_aspect_ratio)


def decode_request_image(body: bytes, cfg: ServerConfig, load: bool = True) -> Optional[np.ndarray]:
    """Image bytes -> RGB uint8 (H, W, 3) in the upright frame (:func:`maskrcnn_body.data.images.decode_image`),
    or :class:`HTTPError` (415: a format other than JPEG, PNG, WebP, BMP; 400: anything else wrong).

    With ``load=False`` only the header is read (format, structure walk, size limits; cheap) and None returned."""
    if not body:
        raise HTTPError(400, "empty body: send the image bytes (JPEG or PNG) as the request body")
    try:
        if not load:
            images.check_image(body, image_limits(cfg), name="the body")
            return None
        return images.decode_image(body, image_limits(cfg), name="the body")
    except images.UnsupportedImageFormat as e:
        raise HTTPError(415 if images.sniff_format(body) else 400, str(e)) from None
    except images.ImageDecodeError as e:
        raise HTTPError(400, str(e)) from None


_libc: Any = None  # the C library once loaded; False where it has no malloc_trim


def release_memory() -> None:
    """Hands freed heap memory back to the system (glibc ``malloc_trim``; nothing elsewhere): after a large
    image the server's RSS returns near its baseline instead of staying at its peak."""
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _libc.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _libc = False
    if _libc:
        _libc.malloc_trim(0)


class DecodePool:
    """Two threads for the work on image bytes that must not run on the event loop."""

    def __init__(self, cfg: ServerConfig):
        self.cfg = cfg
        self.pool = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="decode")

    async def check_image(self, data: bytes) -> None:
        """The cheap header checks of :func:`decode_request_image`, in the pool (never on the event loop),
        bounded by ``decode_timeout_s`` (400 after)."""
        future = asyncio.get_running_loop().run_in_executor(self.pool, decode_request_image, data, self.cfg, False)
        try:
            await asyncio.wait_for(future, self.cfg.decode_timeout_s)
        except asyncio.TimeoutError:
            raise HTTPError(
                400, f"image header not parsed within {self.cfg.decode_timeout_s:g} s; re-encode it"
            ) from None

    def release_memory_soon(self) -> None:
        """:func:`release_memory` in the pool (from the event loop): trimming a large heap takes milliseconds."""
        asyncio.get_running_loop().run_in_executor(self.pool, release_memory)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
