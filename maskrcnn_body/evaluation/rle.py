"""COCO run-length encoding in numpy: the compressed ``counts`` strings of ``pycocotools.mask``.

The JSON of ``predict`` / ``POST /v1/predict`` (:mod:`maskrcnn_body.inference.result_json`) carries each mask as
a COCO RLE ``{"size": [H, W], "counts": "<compressed string>"}``. Encoding it here, byte for byte what
``pycocotools.mask.encode`` writes, keeps the inference install free of pycocotools (which brings
matplotlib); the metrics still use pycocotools (the ``[eval]`` extra).

Format (pycocotools ``maskApi.c``): the mask is read column-major (down each column, left to right); the
counts are the lengths of alternating runs starting with zeros (a mask starting with a one starts with a
zero-length run). The string stores each count (from the fourth on, as the difference to the count two
before it) as little-endian groups of 5 bits, 6 bits per character: the ``0x20`` bit says another group
follows, the ``0x10`` bit of the last group is the sign, and 48 is added to make it printable.
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Union

import numpy as np

RLE = Dict[str, Union[List[int], str]]


def mask_counts(mask: np.ndarray) -> List[int]:
    """Uncompressed counts of a (H, W) mask (nonzero = in): column-major runs, zeros first."""
    v = np.asarray(mask).astype(bool).reshape(-1, order="F")
    if v.size == 0:
        return [0]
    change = np.flatnonzero(v[1:] != v[:-1]) + 1
    counts = np.diff(np.concatenate(([0], change, [v.size]))).tolist()
    return ([0] + counts) if v[0] else counts


def compress(counts: Sequence[int]) -> str:
    """The COCO compressed string of uncompressed counts (``pycocotools`` ``rleToString``)."""
    out = []
    for i, count in enumerate(counts):
        x = int(count) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            c = x & 0x1F
            x >>= 5  # arithmetic shift: negative differences keep their sign
            more = x != -1 if c & 0x10 else x != 0
            out.append(chr(c + 48 + (0x20 if more else 0)))
    return "".join(out)


def decompress(text: Union[str, bytes]) -> List[int]:
    """Uncompressed counts of a COCO compressed string (``pycocotools`` ``rleFrString``)."""
    data = text.encode("ascii") if isinstance(text, str) else bytes(text)
    counts: List[int] = []
    p = 0
    while p < len(data):
        x = k = 0
        more = True
        while more:
            c = data[p] - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p, k = p + 1, k + 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def encode(mask: np.ndarray) -> RLE:
    """``{"size": [H, W], "counts": str}`` of a (H, W) mask: ``pycocotools.mask.encode`` with the counts
    decoded to ``str`` (as the JSON stores them)."""
    h, w = np.shape(mask)[:2]
    return {"size": [int(h), int(w)], "counts": compress(mask_counts(mask))}


def decode(rle: RLE) -> np.ndarray:
    """(H, W) uint8 0/1 mask of a COCO RLE whose counts are a compressed string (``str`` or ``bytes``) or a
    list of uncompressed counts (``pycocotools.mask.decode``); a ValueError when the counts do not add up to
    H * W."""
    h, w = (int(v) for v in rle["size"])
    counts = rle["counts"]
    runs = decompress(counts) if isinstance(counts, (str, bytes)) else [int(c) for c in counts]
    if sum(runs) != h * w or min(runs, default=0) < 0:
        raise ValueError(f"RLE counts add up to {sum(runs)} pixels, not {h}x{w} = {h * w}")
    values = np.zeros(len(runs), np.uint8)
    values[1::2] = 1
    return np.repeat(values, runs).reshape((h, w), order="F")
