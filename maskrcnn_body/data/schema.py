"""The maskrcnn_body TFRecord schema (version 1): one ``tf.train.Example`` per image.

Keys (exact names; tools outside the package read them):

==========================  =======  ==========================================================
key                         type     meaning
==========================  =======  ==========================================================
``schema/version``          int64    ``SCHEMA_VERSION`` (absent in no record we write)
``image/encoded``           bytes    PNG or JPEG bytes (source bytes kept when already PNG/JPEG)
``image/format``            bytes    ``b"png"`` or ``b"jpeg"``
``image/height``            int64    H
``image/width``             int64    W
``image/source_id``         bytes    e.g. ``b"2008_000700"``
``image/dataset``           bytes    one of ``constants.DATASETS``
``person/count``            int64    N >= 0
``person/bbox``             float    4N: x1, y1, x2, y2 (pixels, x2/y2 exclusive, tight on body)
``person/parts_png``        bytes    N single-channel 8-bit PNGs of size HxW; bit k = channel k
``person/parts_valid``      int64    7N: 1 = channel annotated, 0 = unknown for this dataset
``person/keypoints``        float    45N: 15 JHMDB joints as (x, y, v); v 0/1/2
==========================  =======  ==========================================================

Coordinates follow ``constants`` (continuous pixel-edge frame, origin at the top-left
corner). The numpy-side :class:`ImageRecord` / :class:`Person` are what converters build and
what :func:`decode_example` returns; the tf.data pipeline parses the same keys with
:data:`TF_FEATURES`.
"""

from __future__ import annotations

import dataclasses
import io
from typing import List, Optional, Sequence

import numpy as np

from maskrcnn_body import constants
from maskrcnn_body.errors import UserError

SCHEMA_VERSION = 1
IMAGE_FORMATS = (b"png", b"jpeg")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8"


class RecordError(UserError, ValueError):
    """A record does not follow the schema. The message names the record and the field."""


# --------------------------------------------------------------------------- numpy side
@dataclasses.dataclass
class Person:
    """One annotated person.

    Attributes:
      bbox: float32 (4,) x1, y1, x2, y2, tight around ``parts & 1`` (x2/y2 exclusive).
      parts: uint8 (H, W); bit k set = pixel belongs to channel k (see ``constants.CHANNELS``).
      parts_valid: int64 (7,); 1 where channel k is annotated.
      keypoints: float32 (15, 3) as (x, y, v); all zeros when the dataset has no joints.
    """

    bbox: np.ndarray
    parts: np.ndarray
    parts_valid: np.ndarray
    keypoints: np.ndarray

    def channel(self, k: int) -> np.ndarray:
        """Boolean (H, W) mask of channel ``k``."""
        return (self.parts & (1 << k)) != 0


@dataclasses.dataclass
class ImageRecord:
    """One image with its people; ``image_bytes`` is PNG or JPEG."""

    image_bytes: bytes
    image_format: bytes
    height: int
    width: int
    source_id: str
    dataset: str
    persons: List[Person] = dataclasses.field(default_factory=list)

    def decode_image(self) -> np.ndarray:
        """The image as RGB uint8 (H, W, 3)."""
        return decode_image_bytes(self.image_bytes)


def bbox_from_mask(mask: np.ndarray) -> np.ndarray:
    """Tight box (x1, y1, x2, y2), x2/y2 exclusive, of a boolean (H, W) mask; zeros if empty."""
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    if ys.size == 0:
        return np.zeros(4, np.float32)
    return np.array([xs[0], ys[0], xs[-1] + 1, ys[-1] + 1], np.float32)


def pack_channels(channels: np.ndarray) -> np.ndarray:
    """(..., H, W, 7) boolean channels -> (..., H, W) uint8 bit field."""
    channels = np.asarray(channels).astype(bool)
    weights = (1 << np.arange(constants.NUM_CHANNELS)).astype(np.uint8)
    return (channels.astype(np.uint8) * weights).sum(axis=-1).astype(np.uint8)


def unpack_channels(parts: np.ndarray) -> np.ndarray:
    """(..., H, W) uint8 bit field -> (..., H, W, 7) boolean channels."""
    parts = np.asarray(parts, np.uint8)
    return ((parts[..., None] >> np.arange(constants.NUM_CHANNELS, dtype=np.uint8)) & 1).astype(bool)


def make_person(parts: np.ndarray, parts_valid: Sequence[int], keypoints: Optional[np.ndarray] = None) -> Person:
    """Builds a :class:`Person` from a parts bit field, computing the box from channel 0.

    Part pixels outside the body are added to the body bit, so that "every part pixel is
    also a body pixel" holds (callers that must not grow the body clip before calling).
    """
    parts = np.asarray(parts, np.uint8).copy()
    any_part = (parts & 0xFE) != 0
    parts[any_part] |= 1
    kp = (
        np.zeros((constants.NUM_KEYPOINTS, 3), np.float32)
        if keypoints is None
        else np.asarray(keypoints, np.float32).reshape(constants.NUM_KEYPOINTS, 3)
    )
    return Person(
        bbox=bbox_from_mask((parts & 1) != 0),
        parts=parts,
        parts_valid=np.asarray(parts_valid, np.int64).reshape(constants.NUM_CHANNELS),
        keypoints=kp,
    )


def encode_png(array: np.ndarray, compress_level: int = 1) -> bytes:
    """PNG bytes of a uint8 (H, W) or (H, W, 3) array."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def sniff_format(data: bytes) -> Optional[bytes]:
    """``b"png"``, ``b"jpeg"`` or None from the magic bytes."""
    if data[:8] == PNG_MAGIC:
        return b"png"
    if data[:2] == JPEG_MAGIC:
        return b"jpeg"
    return None


def decode_image_bytes(data: bytes) -> np.ndarray:
    """PNG/JPEG bytes -> RGB uint8 (H, W, 3) (grey and RGBA are converted)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def _decode_png_gray(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        if im.mode not in ("L", "P", "1"):
            raise ValueError(f"parts PNG has mode {im.mode}, expected single-channel 8-bit (L)")
        return np.asarray(im.convert("L") if im.mode != "L" else im)


# --------------------------------------------------------------------------- tf.train.Example
def _bytes(values):
    import tensorflow as tf

    return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def _ints(values):
    import tensorflow as tf

    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def _floats(values):
    import tensorflow as tf

    return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))


def encode_example(record: ImageRecord, parts_png: Optional[Sequence[bytes]] = None) -> bytes:
    """Serialises an :class:`ImageRecord` to ``tf.train.Example`` bytes.

    Args:
      record: the image and its persons (validated first; see :func:`validate_record`).
      parts_png: optional already-encoded parts PNGs (one per person) to avoid re-encoding.
    """
    import tensorflow as tf

    validate_record(record)
    n = len(record.persons)
    if parts_png is None:
        parts_png = [encode_png(p.parts) for p in record.persons]
    feats = {
        "schema/version": _ints([SCHEMA_VERSION]),
        "image/encoded": _bytes([record.image_bytes]),
        "image/format": _bytes([record.image_format]),
        "image/height": _ints([record.height]),
        "image/width": _ints([record.width]),
        "image/source_id": _bytes([record.source_id.encode("utf-8")]),
        "image/dataset": _bytes([record.dataset.encode("utf-8")]),
        "person/count": _ints([n]),
        "person/bbox": _floats(np.concatenate([p.bbox for p in record.persons]) if n else []),
        "person/parts_png": _bytes(parts_png),
        "person/parts_valid": _ints(np.concatenate([p.parts_valid for p in record.persons]) if n else []),
        "person/keypoints": _floats(np.concatenate([p.keypoints.reshape(-1) for p in record.persons]) if n else []),
    }
    # deterministic=True: map fields are otherwise serialised in a per-process order
    return tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString(deterministic=True)


def validate_record(record: ImageRecord) -> None:
    """Raises :class:`RecordError` if the numpy-side record breaks the schema."""
    where = f"record {record.source_id!r}"
    if record.image_format not in IMAGE_FORMATS:
        raise RecordError(f"{where}: image/format is {record.image_format!r}, expected one of {IMAGE_FORMATS}")
    if sniff_format(record.image_bytes) != record.image_format:
        raise RecordError(f"{where}: image/encoded is not a {record.image_format.decode()} file")
    if record.dataset not in constants.DATASETS:
        raise RecordError(f"{where}: image/dataset {record.dataset!r} is not one of {constants.DATASETS}")
    if record.height <= 0 or record.width <= 0:
        raise RecordError(f"{where}: image size {record.height}x{record.width} must be positive")
    for i, p in enumerate(record.persons):
        if p.parts.shape != (record.height, record.width):
            raise RecordError(
                f"{where}: person/parts_png[{i}] is {p.parts.shape}, image is {(record.height, record.width)}"
            )
        if (
            p.bbox.shape != (4,)
            or p.parts_valid.shape != (constants.NUM_CHANNELS,)
            or p.keypoints.shape != (constants.NUM_KEYPOINTS, 3)
        ):
            raise RecordError(
                f"{where}: person {i} has bbox {p.bbox.shape}, parts_valid "
                f"{p.parts_valid.shape}, keypoints {p.keypoints.shape}; expected (4,), (7,), (15, 3)"
            )


def decode_example(serialized: bytes, name: str = "<record>", decode_image: bool = False) -> ImageRecord:
    """Parses and validates one serialised example into an :class:`ImageRecord`.

    Raises :class:`RecordError` naming ``name`` and the offending field when a field is
    missing, has the wrong length, or a PNG does not decode / has the wrong size.
    """
    import tensorflow as tf

    try:
        ex = tf.train.Example.FromString(serialized)
    except Exception as e:  # protobuf DecodeError
        raise RecordError(f"{name}: not a tf.train.Example ({e})") from None
    f = ex.features.feature

    def get(key, kind, n=None):
        if key not in f:
            raise RecordError(f"{name}: missing field {key!r}")
        vals = list(getattr(f[key], kind).value)
        if n is not None and len(vals) != n:
            raise RecordError(f"{name}: field {key!r} has {len(vals)} values, expected {n}")
        return vals

    version = int(f["schema/version"].int64_list.value[0]) if "schema/version" in f else SCHEMA_VERSION
    if version != SCHEMA_VERSION:
        raise RecordError(
            f"{name}: schema/version {version} is not supported (this package reads "
            f"{SCHEMA_VERSION}); upgrade the records or the package"
        )
    (height,) = get("image/height", "int64_list", 1)
    (width,) = get("image/width", "int64_list", 1)
    (n,) = get("person/count", "int64_list", 1)
    if n < 0:
        raise RecordError(f"{name}: person/count is {n}")
    (image_bytes,) = get("image/encoded", "bytes_list", 1)
    (fmt,) = get("image/format", "bytes_list", 1)
    source_id = get("image/source_id", "bytes_list", 1)[0].decode("utf-8", "replace")
    dataset = get("image/dataset", "bytes_list", 1)[0].decode("utf-8", "replace")
    name = f"{name} (source_id {source_id!r})"
    bbox = np.asarray(get("person/bbox", "float_list", 4 * n), np.float32).reshape(n, 4)
    pngs = get("person/parts_png", "bytes_list", n)
    valid = np.asarray(get("person/parts_valid", "int64_list", constants.NUM_CHANNELS * n), np.int64).reshape(
        n, constants.NUM_CHANNELS
    )
    kps = np.asarray(get("person/keypoints", "float_list", 3 * constants.NUM_KEYPOINTS * n), np.float32)
    kps = kps.reshape(n, constants.NUM_KEYPOINTS, 3)
    persons = []
    for i in range(n):
        try:
            parts = _decode_png_gray(pngs[i])
        except Exception as e:
            raise RecordError(f"{name}: person/parts_png[{i}] does not decode ({e})") from None
        if parts.shape != (height, width):
            raise RecordError(
                f"{name}: person/parts_png[{i}] is {parts.shape[1]}x{parts.shape[0]}, "
                f"image/width x image/height is {width}x{height}"
            )
        persons.append(Person(bbox=bbox[i], parts=parts, parts_valid=valid[i], keypoints=kps[i]))
    rec = ImageRecord(
        image_bytes=image_bytes,
        image_format=fmt,
        height=int(height),
        width=int(width),
        source_id=source_id,
        dataset=dataset,
        persons=persons,
    )
    try:
        validate_record(rec)
    except RecordError as e:
        raise RecordError(f"{name}: {e}") from None
    if decode_image:
        try:
            img = rec.decode_image()
        except Exception as e:
            raise RecordError(f"{name}: image/encoded does not decode ({e})") from None
        if img.shape[:2] != (height, width):
            raise RecordError(
                f"{name}: image/encoded is {img.shape[1]}x{img.shape[0]}, "
                f"image/width x image/height is {width}x{height}"
            )
    return rec


def tf_features():
    """Feature spec for ``tf.io.parse_single_example`` (variable-length person fields)."""
    import tensorflow as tf

    return {
        "image/encoded": tf.io.FixedLenFeature([], tf.string),
        "image/format": tf.io.FixedLenFeature([], tf.string),
        "image/height": tf.io.FixedLenFeature([], tf.int64),
        "image/width": tf.io.FixedLenFeature([], tf.int64),
        "image/source_id": tf.io.FixedLenFeature([], tf.string, default_value=b""),
        "image/dataset": tf.io.FixedLenFeature([], tf.string, default_value=b""),
        "person/count": tf.io.FixedLenFeature([], tf.int64),
        "person/bbox": tf.io.VarLenFeature(tf.float32),
        "person/parts_png": tf.io.VarLenFeature(tf.string),
        "person/parts_valid": tf.io.VarLenFeature(tf.int64),
        "person/keypoints": tf.io.VarLenFeature(tf.float32),
    }
