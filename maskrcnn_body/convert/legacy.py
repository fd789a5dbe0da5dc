"""Upgrade of the 2017 project's TFRecords (``Iftimie/MaskRCNN_body``) to schema v1.

Legacy records (ZLIB-compressed TFRecord files, one ``tf.train.Example`` per image); the
keys are those written by the legacy ``convert_data/convert_*.py`` scripts:

=========================  ======  ===========================================================
key                        type    content
=========================  ======  ===========================================================
``image/img_id``           int64   image id (often always 0: not used as id)
``image/encoded``          bytes   raw pixels uint8 (H, W, 3), RGB (VOC, via PIL) or BGR (cv2)
``image/height``           int64   H
``image/width``            int64   W
``label/num_instances``    int64   N
``label/gt_boxes``         bytes   float32 (N, 5): x1, y1, x2, y2, class (cv2.boundingRect)
``label/gt_masks``         bytes   uint8 (N, H, W, 7) 0/1: body, head, torso, l/r arm, l/r leg
``label/encoded``          bytes   deprecated visualisation mask (ignored)
``label/keypoints``        bytes   optional float32 (2, 15): JHMDB joints of the (single) person
=========================  ======  ===========================================================

Conversion: the image is re-encoded as PNG (RGB; ``bgr=True`` reverses the channel order of
datasets read with cv2: JHMDB, ADE20K, ChaLearn). Masks are packed into the parts bit field
(channel 0 = body; part pixels outside the body are added to it by ``make_person``); boxes are
recomputed tight on the body (the legacy boxes are used only to undo the keypoint
normalisation). ``valid_channels`` says which channels the legacy set annotated (the legacy
VOC and JHMDB converters on master zeroed channels 1-6: upgrade those with ``(0,)``).

Keypoints: the legacy JHMDB converter mapped each MATLAB 1-based joint x into
``[-1, 1]`` over the legacy box ``[x1, x2]`` (``u = 2 (x - x1) / (x2 - x1) - 1``; the legacy reader
wrongly read them back as ``[-10, 10]``). Inverse, then the JHMDB shift to the pixel-edge
frame (see ``convert.jhmdb``)::

    x_schema = x1 + (u + 1) / 2 * (x2 - x1) - 0.5

``keypoint_range`` is the half-range used when writing (1.0). The (2, 15) joints belong to
person 0; joints outside the image get v = 0, the others v = 2.
"""

from __future__ import annotations

import glob
import os
from typing import Iterator, Sequence

import numpy as np

from maskrcnn_body import constants
from maskrcnn_body.convert.jhmdb import MATLAB_TO_SCHEMA
from maskrcnn_body.data import conversion
from maskrcnn_body.errors import InvalidArgument


def _scalar(f, key, name):
    if key not in f or not f[key].int64_list.value:
        raise conversion.SkipItem(f"corrupt record: {name} lacks int64 field {key!r}")
    return int(f[key].int64_list.value[0])


def _raw(f, key, name, dtype, shape):
    if key not in f or not f[key].bytes_list.value:
        raise conversion.SkipItem(f"corrupt record: {name} lacks bytes field {key!r}")
    buf = f[key].bytes_list.value[0]
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if len(buf) != n:
        raise conversion.SkipItem(
            f"corrupt record: {name} field {key!r} has {len(buf)} bytes, expected {n} "
            f"for {np.dtype(dtype).name} {tuple(shape)}"
        )
    return np.frombuffer(buf, dtype).reshape(shape)


def legacy_keypoints(
    kp: np.ndarray, box: np.ndarray, height: int, width: int, keypoint_range: float = 1.0
) -> np.ndarray:
    """(2, 15) box-normalised legacy joints + legacy box (x1, y1, x2, y2) -> (15, 3) schema."""
    x1, y1, x2, y2 = (float(b) for b in box[:4])
    u = np.asarray(kp, np.float64) / keypoint_range
    x = x1 + (u[0] + 1) / 2 * (x2 - x1) + MATLAB_TO_SCHEMA
    y = y1 + (u[1] + 1) / 2 * (y2 - y1) + MATLAB_TO_SCHEMA
    inside = np.isfinite(x) & np.isfinite(y) & (x >= 0) & (x < width) & (y >= 0) & (y < height)
    out = np.zeros((constants.NUM_KEYPOINTS, 3), np.float32)
    out[inside, 0], out[inside, 1], out[inside, 2] = x[inside], y[inside], constants.KP_VISIBLE
    return out


def upgrade_example(
    serialized: bytes,
    name: str,
    source_id: str,
    dataset: str,
    bgr: bool = False,
    valid_channels: Sequence[int] = conversion.ALL_VALID,
    keypoint_range: float = 1.0,
):
    """One legacy serialised example -> (ImageRecord, [Skipped for dropped persons])."""
    import tensorflow as tf

    try:
        f = tf.train.Example.FromString(serialized).features.feature
    except Exception as e:
        raise conversion.SkipItem(f"corrupt record: {name} is not a tf.train.Example ({e})") from None
    h, w = _scalar(f, "image/height", name), _scalar(f, "image/width", name)
    n = _scalar(f, "label/num_instances", name)
    if h <= 0 or w <= 0 or n < 0:
        raise conversion.SkipItem(f"corrupt record: {name} has image {h}x{w}, {n} instances")
    rgb = _raw(f, "image/encoded", name, np.uint8, (h, w, 3))
    if bgr:
        rgb = rgb[..., ::-1]
    masks = _raw(f, "label/gt_masks", name, np.uint8, (n, h, w, constants.NUM_CHANNELS))
    boxes = _raw(f, "label/gt_boxes", name, np.float32, (n, 5))
    kps = None
    if "label/keypoints" in f and f["label/keypoints"].bytes_list.value and n > 0:
        kps = _raw(f, "label/keypoints", name, np.float32, (2, constants.NUM_KEYPOINTS))
    persons, skipped = [], []
    for i in range(n):
        kp = legacy_keypoints(kps, boxes[0], h, w, keypoint_range) if (kps is not None and i == 0) else None
        ch = masks[i] != 0
        parts = {k: ch[..., k] for k in range(1, constants.NUM_CHANNELS) if k in valid_channels}
        body = ch[..., 0] | np.logical_or.reduce([ch[..., k] for k in parts], initial=False) if parts else ch[..., 0]
        try:
            persons.append(conversion.build_person(body, parts, valid_channels, kp))
        except conversion.SkipItem as e:
            skipped.append(conversion.Skipped(f"{source_id}#person{i}", str(e)))
    image = conversion.image_from_array(np.ascontiguousarray(rgb))
    return image.record(source_id, dataset, persons), skipped


class LegacyConverter(conversion.Converter):
    """Items are legacy shard files (``pattern`` = glob(s), comma-separated)."""

    def __init__(
        self,
        pattern: str,
        dataset: str,
        bgr: bool = False,
        valid_channels: Sequence[int] = conversion.ALL_VALID,
        compression: str = "ZLIB",
        keypoint_range: float = 1.0,
    ):
        if dataset not in constants.DATASETS:
            raise InvalidArgument(f"--dataset {dataset!r} is not one of {constants.DATASETS}")
        if 0 not in valid_channels:
            raise InvalidArgument("valid_channels must include channel 0 (the body)")
        self.pattern, self.dataset, self.bgr = pattern, dataset, bgr
        self.valid_channels = tuple(sorted(set(valid_channels)))
        self.compression, self.keypoint_range = compression, keypoint_range

    def items(self):
        paths = sorted({p for pat in self.pattern.split(",") if pat for p in glob.glob(pat)})
        if not paths:
            raise FileNotFoundError(f"no legacy TFRecord files match {self.pattern!r}")
        for p in paths:
            yield conversion.Item(os.path.basename(p), p)

    def convert(self, item: conversion.Item) -> Iterator:
        import tensorflow as tf

        stem = os.path.splitext(item.key)[0]
        i = 0
        try:
            for serialized in tf.data.TFRecordDataset(item.data, compression_type=self.compression).as_numpy_iterator():
                source_id = f"{stem}/{i:06d}"
                try:
                    rec, skipped = upgrade_example(
                        serialized,
                        f"{item.data}:{i}",
                        source_id,
                        self.dataset,
                        self.bgr,
                        self.valid_channels,
                        self.keypoint_range,
                    )
                    yield from skipped
                    yield rec
                except conversion.SkipItem as e:
                    yield conversion.Skipped(source_id, str(e))
                i += 1
        except tf.errors.DataLossError as e:
            yield conversion.Skipped(
                f"{stem}/{i:06d}",
                f"corrupt shard: {item.data} after record {i} ({e.message.splitlines()[0]}; wrong --compression?)",
            )
