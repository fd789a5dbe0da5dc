"""The one image decoder of the Python API, the command line and the HTTP server.

:func:`decode_image` turns encoded bytes (or a file) into RGB uint8 (H, W, 3) in the **upright frame**:

* Formats: only :data:`FORMATS` (JPEG, PNG, WebP, BMP) are handed to Pillow. The format is recognised from
  the bytes (never from a file name or Content-Type); anything else (GIF, TIFF, EPS/PostScript, PDF, ...) is
  an :class:`UnsupportedImageFormat` before Pillow sees it, so no other parser (and no external
  interpreter such as Ghostscript) ever runs on the input.
* EXIF orientation is applied (like Detectron2's ``read_image``): a phone photo with orientation 6 comes
  out portrait, as every viewer shows it, and boxes, masks and keypoints are in that frame.
* 16-bit greyscale (PNG ``I;16``) is scaled to 8 bits (value * 255 / 65535, rounded); palette, grey,
  grey+alpha, RGBA and CMYK become RGB (alpha dropped).
* Limits, checked from the header before any pixel is decoded (:func:`check_image`): at most ``max_pixels``
  pixels, both sides at least ``min_side``, aspect ratio at most ``max_aspect_ratio`` (0 = any).
* Bounded parsing: the container structure is walked first with a bound on the work
  (:func:`walk_structure`): a PNG with more chunks than 64 + bytes / 1024 (real encoders write chunks of
  8 KB and more), a JPEG with more than :data:`MAX_JPEG_JUNK` stray bytes between its markers, more than
  :data:`MAX_JPEG_SEGMENTS` header segments or more than :data:`MAX_JPEG_SCANS` scans is refused, so
  Pillow's Python-level chunk and marker loops never run for long.

Every refusal is an :class:`ImageDecodeError` (a :class:`~maskrcnn_body.errors.UserError` and ValueError)
whose message names the input, what is wrong and what to do.
"""

from __future__ import annotations

import dataclasses
import io
import os
import struct
from typing import BinaryIO, Optional, Union

import numpy as np

from maskrcnn_body.errors import UserError

FORMATS = ("JPEG", "PNG", "WEBP", "BMP")
"""Pillow format names that are decoded; everything else is refused."""
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
"""File name endings of the accepted formats (how folders are walked)."""
MIME_TYPES = ("image/jpeg", "image/jpg", "image/png", "image/webp", "image/bmp")
DEFAULT_MAX_PIXELS = 40_000_000
MAX_JPEG_JUNK = 4096
MAX_JPEG_SEGMENTS = 1024
MAX_JPEG_SCANS = 256

# magic bytes -> format name, for the allow-list and for naming refused formats
_MAGIC = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"BM", "BMP"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"%!PS", "PostScript/EPS"),
    (b"\xc5\xd0\xd3\xc6", "PostScript/EPS"),
    (b"%PDF", "PDF"),
    (b"8BPS", "PSD"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"qoif", "QOI"),
    (b"\x00\x00\x00\x0cJXL ", "JPEG XL"),
    (b"\xff\x0a", "JPEG XL"),
)

Source = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]", BinaryIO]


class ImageDecodeError(UserError, ValueError):
    """The input is not an image this project decodes, is over a limit, or is corrupt."""


class UnsupportedImageFormat(ImageDecodeError):
    """The bytes are not one of :data:`FORMATS` (a known other format, or not an image at all)."""


class ImageLimitError(ImageDecodeError):
    """The image is over a size limit (pixels, sides, aspect ratio) or its structure is pathological."""


@dataclasses.dataclass(frozen=True)
class Limits:
    """What :func:`check_image` accepts. ``max_aspect_ratio`` 0 = any."""

    max_pixels: int = DEFAULT_MAX_PIXELS
    min_side: int = 1
    max_aspect_ratio: float = 0.0


def sniff_format(data: bytes) -> Optional[str]:
    """The format named by the first bytes of ``data`` (``"JPEG"``, ``"PNG"``, ``"WEBP"``, ``"BMP"``, or a
    refused one such as ``"GIF"``), None when unknown."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    return None


def _png_walk(data: bytes, name: str) -> None:
    max_chunks = 64 + len(data) // 1024
    pos, n = 8, 0
    while pos + 8 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kind = data[pos + 4 : pos + 8]
        n += 1
        if n > max_chunks:
            raise ImageLimitError(
                f"{name}: PNG has more than {max_chunks} chunks in {len(data)} bytes (an image padded to be "
                "slow to parse); re-encode it"
            )
        pos += 12 + length
        if kind == b"IEND":
            return


def _jpeg_walk(data: bytes, name: str) -> None:
    pos, junk, segments = 2, 0, 0
    end = len(data)
    while pos < end:
        if data[pos] != 0xFF:
            nxt = data.find(b"\xff", pos)
            nxt = end if nxt < 0 else nxt
            junk += nxt - pos
            if junk > MAX_JPEG_JUNK:
                raise ImageLimitError(
                    f"{name}: JPEG has more than {MAX_JPEG_JUNK} stray bytes between its markers; re-encode it"
                )
            pos = nxt
            continue
        while pos < end and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= end:
            return
        marker = data[pos]
        pos += 1
        if marker == 0xDA:  # start of scan: the rest is entropy-coded data, libjpeg's (C) business
            scans = data.count(b"\xff\xda", pos - 2)
            if scans > MAX_JPEG_SCANS:
                raise ImageLimitError(f"{name}: JPEG has {scans} scans (at most {MAX_JPEG_SCANS}); re-encode it")
            return
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # standalone markers
            continue
        if marker == 0xD9:
            return
        segments += 1
        if segments > MAX_JPEG_SEGMENTS:
            raise ImageLimitError(f"{name}: JPEG has more than {MAX_JPEG_SEGMENTS} header segments; re-encode it")
        if pos + 2 > end:
            return
        (length,) = struct.unpack_from(">H", data, pos)
        pos += length


def walk_structure(data: bytes, fmt: str, name: str = "the image") -> None:
    """Walks the container of ``data`` (format ``fmt``) with a bound on the work; :class:`ImageLimitError`
    when it is pathological (see the module docstring). Truncation is left to the decoder to report."""
    if fmt == "PNG":
        _png_walk(data, name)
    elif fmt == "JPEG":
        _jpeg_walk(data, name)


def _read_source(source: Source, name: Optional[str]) -> tuple:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), name or "the image bytes"
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        try:
            with open(path, "rb") as f:
                return f.read(), name or repr(path)
        except OSError as e:
            raise ImageDecodeError(f"{path!r} cannot be read: {e.strerror or e}") from None
    if hasattr(source, "read"):
        return source.read(), name or repr(getattr(source, "name", "the file object"))
    raise TypeError(f"cannot decode {type(source).__name__}: give bytes, a path or a binary file object")


def _open(data: bytes, name: str, limits: Limits):
    """Sniff, walk, open the header and check the limits; returns the open PIL image (nothing decoded)."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ImageDecodeError(f"{name} is empty: give the bytes of a JPEG, PNG, WebP or BMP image")
    fmt = sniff_format(data)
    if fmt not in FORMATS:
        what = f"it is a {fmt} file" if fmt else "not an image in a known format"
        raise UnsupportedImageFormat(
            f"{name} cannot be read as an image: {what}; accepted formats: JPEG, PNG, WebP, BMP (convert it)"
        )
    walk_structure(data, fmt, name)
    try:
        im = Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError:
        raise ImageLimitError(f"{name} is above the pixel limit of {limits.max_pixels}; resize it") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, struct.error, EOFError) as e:
        raise ImageDecodeError(f"{name} cannot be read as a {fmt} image: truncated or corrupt ({e})") from None
    w, h = im.size
    if w * h > limits.max_pixels:
        raise ImageLimitError(
            f"{name} is {w}x{h} = {w * h} pixels, above the pixel limit of {limits.max_pixels}; resize it"
        )
    if min(w, h) < max(limits.min_side, 1):
        raise ImageLimitError(f"{name} is {w}x{h}; both sides must be at least {max(limits.min_side, 1)} pixels")
    if limits.max_aspect_ratio and max(w, h) > limits.max_aspect_ratio * min(w, h):
        raise ImageLimitError(
            f"{name} is {w}x{h}, an aspect ratio of {max(w, h) / min(w, h):.0f}:1, above the limit of "
            f"{limits.max_aspect_ratio:g}:1; crop it"
        )
    return im


def check_image(source: Source, limits: Limits = Limits(), name: Optional[str] = None) -> tuple:
    """``(width, height, format)`` of an encoded image, from its header only (format allow-list, bounded
    structure walk, size limits); raises :class:`ImageDecodeError`. The size is the stored one (before
    EXIF orientation)."""
    data, name = _read_source(source, name)
    im = _open(data, name, limits)
    w, h = im.size
    fmt = im.format
    im.close()
    return w, h, fmt


def to_rgb(im) -> np.ndarray:
    """A PIL image -> RGB uint8 (H, W, 3): 16-bit greyscale scaled to 8 bits (not clipped), other modes
    converted by Pillow (alpha dropped)."""
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        a = np.asarray(im).astype(np.float64)
        if im.mode == "I" and a.size and a.max() <= 255:  # 8-bit data stored as 32-bit
            grey = a
        else:
            grey = a * (255.0 / 65535.0)
        grey8 = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey8[..., None], 3, axis=-1))
    if im.mode != "RGB":
        im = im.convert("RGB")
    return np.ascontiguousarray(np.asarray(im))


def decode_image(source: Source, limits: Limits = Limits(), name: Optional[str] = None) -> np.ndarray:
    """Encoded image (bytes, a path or a binary file object) -> RGB uint8 (H, W, 3) in the upright frame
    (EXIF orientation applied); raises :class:`ImageDecodeError` saying what is wrong. ``name`` names the
    input in messages (default: the path, or "the image bytes")."""
    from PIL import ImageOps

    data, name = _read_source(source, name)
    im = _open(data, name, limits)
    try:
        im.load()
        try:
            upright = ImageOps.exif_transpose(im)
        except Exception:  # an unreadable EXIF block: keep the stored orientation rather than refuse
            upright = None
        return to_rgb(upright if upright is not None else im)
    except ImageDecodeError:
        raise
    except Exception as e:  # Pillow reports truncation and corruption with several exception types
        raise ImageDecodeError(f"{name}: image data is truncated or corrupt ({e})") from None
    finally:
        im.close()
