"""Record production shared by the dataset converters and the synthetic generator: items, skips,
workers, summary, strict mode.

A dataset converter is a :class:`Converter` subclass that only

* lists its work units (:meth:`Converter.items`, cheap: file listing only), and
* turns one unit into schema-v1 :class:`~maskrcnn_body.data.schema.ImageRecord` objects
  (:meth:`Converter.convert`, a generator).

Everything else lives here, once: running items over ``num_workers`` processes, encoding,
the atomic sharded write (:class:`~maskrcnn_body.data.writer.ShardedWriter`), progress on
stderr, skip-with-reason bookkeeping, ``strict`` mode and the summary JSON written beside
the shards as ``PREFIX.summary.json``.

Skips. ``convert`` reports what it cannot convert in two ways:

* ``raise SkipItem(reason)`` (or any other exception): the whole item is dropped;
* ``yield Skipped(key, reason, bad)``: one sub-unit (a person, a frame) is dropped, or the
  item is deliberately not converted (``bad=False``, e.g. "no persons").

``bad`` skips are input problems (corrupt file, missing image, size mismatch, empty person
mask, unknown part name); with ``strict=True`` the first one aborts the conversion with
:class:`ConversionError` and nothing is written under a final shard name. ``bad=False``
skips are filters and never abort. Reasons read ``"<kind>: <details>"``; the summary counts
them by kind.
"""

from __future__ import annotations

import abc
import dataclasses
import io
import json
import multiprocessing
import os
import sys
import time
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from maskrcnn_body import constants
from maskrcnn_body.data import schema
from maskrcnn_body.data.writer import ShardedWriter
from maskrcnn_body.utils.files import write_text_atomic


class SkipItem(Exception):
    """Raised inside :meth:`Converter.convert` (or helpers) to drop the current item/person.

    The message is the reason written to the summary (``"<kind>: <details>"``).
    """


class ConversionError(RuntimeError):
    """A ``strict`` conversion met bad input; the message names the item and the reason."""


@dataclasses.dataclass(frozen=True)
class Item:
    """One unit of work: ``key`` is unique and human readable, ``data`` is picklable."""

    key: str
    data: Any = None


@dataclasses.dataclass(frozen=True)
class Skipped:
    """Something not converted. ``bad``: an input problem (fatal in strict mode) vs a filter."""

    key: str
    reason: str
    bad: bool = True

    @property
    def kind(self) -> str:
        return self.reason.split(":", 1)[0].strip()


class Converter(abc.ABC):
    """Base class of the dataset converters (picklable: keep only plain attributes)."""

    dataset: str = ""  # one of constants.DATASETS

    @abc.abstractmethod
    def items(self) -> Iterable[Union[Item, Skipped]]:
        """Work units in a deterministic order (or :class:`Skipped` for units known bad upfront)."""

    @abc.abstractmethod
    def convert(self, item: Item) -> Iterator[Union[schema.ImageRecord, Skipped]]:
        """Yields the records of ``item`` and :class:`Skipped` entries for dropped sub-units."""


# --------------------------------------------------------------------------- helpers for converters
@dataclasses.dataclass(frozen=True)
class SourceImage:
    """Image bytes as they ship (PNG or JPEG) plus their decoded size."""

    data: bytes
    format: bytes
    height: int
    width: int

    def record(self, source_id: str, dataset: str, persons: Sequence[schema.Person]) -> schema.ImageRecord:
        return schema.ImageRecord(self.data, self.format, self.height, self.width, source_id, dataset, list(persons))


def load_image(path: str) -> SourceImage:
    """Reads an image file keeping its PNG/JPEG bytes; decodes it fully once to check it.

    Other formats (BMP, ...) are re-encoded as PNG (RGB). Raises :class:`SkipItem`
    ("missing image" / "corrupt image") naming ``path``.
    """
    if not os.path.isfile(path):
        raise SkipItem(f"missing image: {path} does not exist")
    with open(path, "rb") as f:
        data = f.read()
    return image_from_bytes(data, path)


def image_from_bytes(data: bytes, name: str) -> SourceImage:
    """:class:`SourceImage` from encoded bytes (see :func:`load_image`); ``name`` is used in errors."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            width, height = im.size
            if schema.sniff_format(data) is None:
                data = schema.encode_png(np.asarray(im.convert("RGB")))
    except Exception as e:
        raise SkipItem(f"corrupt image: {name} does not decode ({type(e).__name__}: {e})") from None
    fmt = schema.sniff_format(data)
    if fmt is None:  # encode_png above: never
        raise SkipItem(f"corrupt image: {name} has no known format")
    return SourceImage(data, fmt, int(height), int(width))


def image_from_array(rgb: np.ndarray) -> SourceImage:
    """:class:`SourceImage` (PNG) from an RGB uint8 (H, W, 3) array."""
    rgb = np.asarray(rgb, np.uint8)
    return SourceImage(schema.encode_png(rgb), b"png", int(rgb.shape[0]), int(rgb.shape[1]))


def check_mask_shape(mask: np.ndarray, image: SourceImage, what: str) -> None:
    """Raises :class:`SkipItem` ("size mismatch") when a (H, W) mask is not the image size."""
    if mask.ndim != 2 or mask.shape != (image.height, image.width):
        raise SkipItem(f"size mismatch: {what} has shape {mask.shape}, image is {image.height}x{image.width} (HxW)")


def channels_valid(channels: Iterable[int]) -> np.ndarray:
    """int64 (7,) ``parts_valid`` with 1 at the given channel indices."""
    valid = np.zeros(constants.NUM_CHANNELS, np.int64)
    valid[list(channels)] = 1
    return valid


ALL_VALID = tuple(range(constants.NUM_CHANNELS))
BODY_ONLY = (constants.BODY,)


def build_person(
    body: np.ndarray,
    parts: Optional[Mapping[int, np.ndarray]] = None,
    valid: Iterable[int] = BODY_ONLY,
    keypoints: Optional[np.ndarray] = None,
) -> schema.Person:
    """One :class:`~maskrcnn_body.data.schema.Person` from a body mask and per-channel part masks.

    Args:
      body: bool/uint8 (H, W), the dataset's own person mask (channel 0).
      parts: {channel 1..6: bool (H, W)}; several masks per channel may be OR-ed by the
        caller. Part pixels are clipped to ``body`` (channel 0 is never grown).
      valid: channel indices annotated for this person (others are "unknown").
      keypoints: optional float32 (15, 3) x, y, v in the pixel-edge frame.

    Raises :class:`SkipItem` ("empty person mask") when ``body`` has no pixel.
    """
    body = np.asarray(body).astype(bool)
    if not body.any():
        raise SkipItem("empty person mask: the person's body mask has no pixel")
    packed = body.astype(np.uint8)
    for ch, mask in (parts or {}).items():
        if not 1 <= ch < constants.NUM_CHANNELS:
            raise ValueError(f"part channel must be in 1..{constants.NUM_CHANNELS - 1}, got {ch}")
        packed |= (np.asarray(mask).astype(bool) & body).astype(np.uint8) << ch
    return schema.make_person(packed, list(channels_valid(valid)), keypoints)


def record_or_negative(
    image: SourceImage,
    key: str,
    source_id: str,
    dataset: str,
    persons: Sequence[schema.Person],
    keep_negatives: bool = False,
):
    """The image's record, or ``Skipped(key, "no persons", bad=False)`` when it has no person
    and negatives are not kept."""
    if not persons and not keep_negatives:
        return Skipped(key, "no persons", bad=False)
    return image.record(source_id, dataset, persons)


# --------------------------------------------------------------------------- running
@dataclasses.dataclass
class Summary:
    """What a conversion did; ``as_dict()`` is the ``PREFIX.summary.json`` content."""

    dataset: str
    out_prefix: str
    items: int = 0
    images_written: int = 0
    persons: int = 0
    negative_images: int = 0
    skipped: List[Skipped] = dataclasses.field(default_factory=list)
    shards: List[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> Dict[str, Any]:
        by_kind: Dict[str, int] = {}
        for s in self.skipped:
            by_kind[s.kind] = by_kind.get(s.kind, 0) + 1
        return {
            "dataset": self.dataset,
            "out_prefix": self.out_prefix,
            "shards": self.shards,
            "items": self.items,
            "images_written": self.images_written,
            "persons": self.persons,
            "negative_images": self.negative_images,
            "skipped": len(self.skipped),
            "bad_inputs": sum(s.bad for s in self.skipped),
            "skipped_by_reason": dict(sorted(by_kind.items())),
            "skipped_items": [dataclasses.asdict(s) for s in self.skipped],
            "seconds": round(self.seconds, 2),
        }

    def text(self, max_lines: int = 10) -> str:
        d = self.as_dict()
        lines = [
            f"{self.dataset}: {d['images_written']} images written ({d['negative_images']} without persons), "
            f"{d['persons']} persons, {d['skipped']} skipped ({d['bad_inputs']} bad inputs) "
            f"from {d['items']} items in {d['seconds']} s"
        ]
        lines += [f"  skipped [{k}]: {n}" for k, n in d["skipped_by_reason"].items()]
        for s in self.skipped[:max_lines]:
            lines.append(f"  - {s.key}: {s.reason}")
        if len(self.skipped) > max_lines:
            lines.append(f"  ... {len(self.skipped) - max_lines} more in the summary JSON")
        return "\n".join(lines)


def summary_path(out_prefix: str) -> str:
    return f"{out_prefix}.summary.json"


def _convert_item(converter: Converter, item: Item) -> List[Tuple]:
    """Runs one item (in a worker): ("record", ImageRecord, parts PNGs) / ("skip", Skipped) tuples.

    The costly part (decoding, masks, PNG encoding of the parts) happens here; the cheap
    ``tf.train.Example`` serialisation is left to the writing process, so workers never
    import TensorFlow.
    """
    out: List[Tuple] = []
    try:
        for r in converter.convert(item):
            if isinstance(r, Skipped):
                out.append(("skip", r))
            else:
                schema.validate_record(r)
                out.append(("record", r, [schema.encode_png(p.parts) for p in r.persons]))
    except SkipItem as e:
        out.append(("skip", Skipped(item.key, str(e))))
    except Exception as e:  # any failure of one item is reported, never kills the run
        out.append(("skip", Skipped(item.key, f"error: {type(e).__name__}: {e}")))
    return out


_WORKER_CONVERTER: Optional[Converter] = None


def _init_worker(converter: Converter) -> None:
    global _WORKER_CONVERTER
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _WORKER_CONVERTER = converter


def _worker(item: Item) -> List[Tuple]:
    assert _WORKER_CONVERTER is not None, "the pool's initializer sets the converter"
    return _convert_item(_WORKER_CONVERTER, item)


class _Progress:
    """A one-line progress bar on stderr, redrawn at most every 0.5 s."""

    def __init__(self, total: int, label: str, enabled: bool):
        self.total, self.label, self.enabled = total, label, enabled
        self.done, self._last = 0, 0.0

    def update(self, done: int, images: int, skipped: int, force: bool = False) -> None:
        self.done = done
        now = time.monotonic()
        if not self.enabled or (not force and now - self._last < 0.5):
            return
        self._last = now
        frac = done / self.total if self.total else 1.0
        bar = "#" * int(frac * 30)
        sys.stderr.write(f"\r{self.label} [{bar:<30}] {done}/{self.total} items, {images} images, {skipped} skipped")
        sys.stderr.flush()

    def finish(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


def run_conversion(
    converter: Converter,
    out_prefix: str,
    num_shards: int = 1,
    num_workers: int = 1,
    strict: bool = False,
    progress: bool = True,
) -> Summary:
    """Converts every item of ``converter`` into ``out_prefix-0000i-of-0000K.tfrecord``.

    Shards are renamed into place only when the whole conversion succeeded and at least one
    image was written (a previous output is replaced atomically; with nothing converted, old
    shards are left untouched). The summary is written to ``PREFIX.summary.json`` in every
    case except a strict-mode abort. Raises :class:`ConversionError` in ``strict`` mode at the
    first bad input.
    """
    if converter.dataset not in constants.DATASETS:
        raise ValueError(f"converter dataset {converter.dataset!r} is not one of {constants.DATASETS}")
    start = time.monotonic()
    summary = Summary(converter.dataset, out_prefix)
    items: List[Item] = []
    for it in converter.items():
        if isinstance(it, Skipped):
            _record_skip(summary, it, strict)
        else:
            items.append(it)
    summary.items = len(items) + len(summary.skipped)
    bar = _Progress(len(items), converter.dataset, progress)
    pool = None
    try:
        if num_workers > 1 and len(items) > 1:
            ctx = multiprocessing.get_context("forkserver")
            pool = ctx.Pool(min(num_workers, len(items)), initializer=_init_worker, initargs=(converter,))
            results: Iterator[List[Tuple]] = pool.imap(_worker, items, chunksize=1)
        else:
            results = (_convert_item(converter, it) for it in items)
        writer: Optional[ShardedWriter] = None  # opened at the first record (imports TensorFlow)
        try:
            for done, outputs in enumerate(results, 1):
                for out in outputs:
                    if out[0] == "skip":
                        _record_skip(summary, out[1], strict)
                        continue
                    if writer is None:
                        writer = ShardedWriter(out_prefix, num_shards)
                    record, parts_png = out[1], out[2]
                    writer.write(schema.encode_example(record, parts_png))
                    summary.images_written += 1
                    summary.persons += len(record.persons)
                    summary.negative_images += not record.persons
                bar.update(done, summary.images_written, len(summary.skipped))
            bar.update(len(items), summary.images_written, len(summary.skipped), force=True)
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        if writer is not None:
            summary.shards = writer.close()
    finally:
        bar.finish()
        if pool is not None:
            pool.terminate()
            pool.join()
    summary.seconds = time.monotonic() - start
    write_summary(summary)
    return summary


def _record_skip(summary: Summary, skipped: Skipped, strict: bool) -> None:
    summary.skipped.append(skipped)
    if strict and skipped.bad:
        raise ConversionError(
            f"{summary.dataset}: {skipped.key}: {skipped.reason} "
            f"(strict mode: fix the input or run without --strict to skip it)"
        )


def write_summary(summary: Summary) -> str:
    """Writes ``PREFIX.summary.json`` atomically; returns its path."""
    return write_text_atomic(summary_path(summary.out_prefix), json.dumps(summary.as_dict(), indent=1))


def load_records(out_prefix: str) -> List[schema.ImageRecord]:
    """Decodes every record a conversion wrote under ``out_prefix`` (for checks and tests)."""
    from maskrcnn_body.data.writer import existing_shards, iterate_records

    shards = existing_shards(out_prefix)
    if not shards:
        return []
    return [schema.decode_example(s, f"{p}:{i}", decode_image=True) for p, i, s in iterate_records(shards)]
