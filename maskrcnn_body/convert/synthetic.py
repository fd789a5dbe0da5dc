"""The built-in synthetic dataset -> schema v1 record files (the renderer is :mod:`maskrcnn_body.data.synthetic`).

One item is one image index of one split; :class:`SyntheticConverter` turns it into the record
:func:`maskrcnn_body.data.synthetic.render_image` renders (a pure function of ``(seed, split, index,
size)``), so the files do not depend on the number of workers or shards.

Files: :func:`write_dataset` with ``out_prefix=PREFIX`` writes ``PREFIX_train-0000i-of-0000K.tfrecord``
and ``PREFIX_val-0000i-of-0000K.tfrecord`` (schema v1, PNG images, ``image/dataset = "synthetic"``,
``image/source_id = "synthetic_<split>_<index:06d>"``), the per-split summaries
``PREFIX_train.summary.json`` / ``PREFIX_val.summary.json`` and the combined ``PREFIX.summary.json``
(seed, size, speed). Writing, workers and progress are :func:`maskrcnn_body.data.conversion.run_conversion`'s;
TensorFlow is imported (by the writer, in the writing process) only to serialise and write records.

Channels, keypoints, sides and visibility: :mod:`maskrcnn_body.data.synthetic`'s docstring.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Dict, Iterator, List, Optional

from maskrcnn_body.data import conversion, schema
from maskrcnn_body.data.synthetic import DATASET, SPLIT_KEYS, render_image, source_id
from maskrcnn_body.utils.files import write_text_atomic


class SyntheticConverter(conversion.Converter):
    """Renders images ``0 .. num - 1`` of one split (a :class:`maskrcnn_body.data.conversion.Converter`)."""

    dataset = DATASET

    def __init__(self, split: str, num: int, seed: int = 0, height: int = 256, width: int = 256):
        if split not in SPLIT_KEYS:
            raise ValueError(f"split {split!r} is not one of {tuple(SPLIT_KEYS)}")
        self.split, self.num, self.seed, self.height, self.width = split, int(num), int(seed), height, width

    def items(self) -> List[conversion.Item]:
        return [conversion.Item(source_id(self.split, i), i) for i in range(self.num)]

    def convert(self, item: conversion.Item) -> Iterator[schema.ImageRecord]:
        yield render_image(self.seed, self.split, item.data, self.height, self.width)


def summary_path(out_prefix: str) -> str:
    """The combined summary of :func:`write_dataset` (each split also has its own)."""
    return conversion.summary_path(out_prefix)


def write_split(
    out_prefix: str,
    split: str,
    num: int,
    seed: int = 0,
    size: int = 256,
    num_shards: int = 4,
    num_workers: Optional[int] = None,
    progress: bool = True,
) -> Dict[str, Any]:
    """Renders and writes ``num`` images of ``split`` (train, val or calib: ``data.synthetic.SPLIT_KEYS``) as
    ``{out_prefix}_{split}-0000i-of-0000K.tfrecord`` (``K = min(num_shards, num)``) with its
    ``{out_prefix}_{split}.summary.json``; returns that summary as a dict. Images depend only on
    ``(seed, split, index, size)``: the splits never share an image."""
    num_workers = (os.cpu_count() or 1) if num_workers is None else max(1, int(num_workers))
    result = conversion.run_conversion(
        SyntheticConverter(split, num, seed, size, size),
        f"{out_prefix}_{split}",
        num_shards=min(num_shards, num),
        num_workers=num_workers,
        strict=True,
        progress=progress,
    )
    return result.as_dict()


def write_dataset(
    out_prefix: str,
    num_train: int,
    num_val: int,
    seed: int = 0,
    size: int = 256,
    num_shards: int = 4,
    num_workers: Optional[int] = None,
    progress: bool = True,
    num_calib: int = 0,
) -> dict:
    """Renders and writes the train, val (and calib) splits with :func:`write_split`.

    Writes ``{out_prefix}_train-0000i-of-0000K.tfrecord``, ``{out_prefix}_val-...`` and
    ``{out_prefix}_calib-...`` with ``K = min(num_shards, images in the split)`` (a split with 0 images
    writes nothing), each with its ``{out_prefix}_<split>.summary.json``, plus the combined
    ``{out_prefix}.summary.json``. Records depend only on ``seed`` and ``size`` (not on
    ``num_shards``/``num_workers``).

    Args:
      out_prefix: path prefix, e.g. ``data/records/synthetic``.
      num_train, num_val, num_calib: number of images per split.
      seed: dataset seed. size: images are ``size`` x ``size`` pixels.
      num_shards: shards per split. num_workers: rendering processes (default ``os.cpu_count()``;
        1 renders in this process). progress: progress bar on stderr.

    Returns:
      The combined summary: ``dataset, seed, size, num_workers, seconds, images_per_second`` and
      ``splits[name]`` = that split's ``maskrcnn_body.data.conversion.Summary.as_dict()``.
    """
    if num_train < 0 or num_val < 0 or num_calib < 0 or size < 32 or num_shards < 1:
        raise ValueError(
            f"need num_train >= 0, num_val >= 0, num_calib >= 0, size >= 32, num_shards >= 1; got "
            f"{num_train}, {num_val}, {num_calib}, {size}, {num_shards}"
        )
    num_workers = (os.cpu_count() or 1) if num_workers is None else max(1, int(num_workers))
    start = time.monotonic()
    summary: Dict[str, Any] = {
        "dataset": DATASET,
        "seed": int(seed),
        "size": int(size),
        "num_workers": num_workers,
        "splits": {},
    }
    for split, num in (("train", num_train), ("val", num_val), ("calib", num_calib)):
        if num > 0:
            summary["splits"][split] = write_split(
                out_prefix, split, num, seed, size, num_shards, num_workers, progress
            )
    secs = time.monotonic() - start
    summary["seconds"] = round(secs, 2)
    summary["images_per_second"] = round((num_train + num_val + num_calib) / max(secs, 1e-9), 1)
    path = summary_path(out_prefix)
    write_text_atomic(path, json.dumps(summary, indent=1))
    return summary
