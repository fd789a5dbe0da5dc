"""tf.data input pipeline: read shards, parse + validate, augment (flip / scale), pad, batch.

``build_dataset(patterns, input_cfg, batch_size, training)`` yields the batch dict documented
in ``docs/DESIGN.md`` ("Pipeline batch"); ``parse_example(serialized)`` gives the unbatched
full-resolution example (see :mod:`maskrcnn_body.data.augment` for its keys).

Corrupt input (schema v1 records written by :mod:`maskrcnn_body.data.writer`, uncompressed):

* A record whose fields break the schema (wrong value counts, image/parts size mismatch,
  not a PNG/JPEG, ...) raises ``tf.errors.InvalidArgumentError`` whose message starts with the
  field name and names the record's ``source_id`` and shard file.
* A truncated or corrupt shard: ``tf.data.TFRecordDataset`` itself raises ``DataLossError``
  *without* the file name, so each shard is read with its read errors suppressed and the
  bytes read are compared with the file size once the shard ends; a short read raises
  ``InvalidArgumentError`` "TFRecord shard <path> is truncated or corrupt ...". Records before
  the damage are still delivered (as TFRecordDataset does).
* With ``input_cfg.skip_corrupt=True`` both are skipped instead, counted in a
  :class:`CorruptCounter` and reported on stderr. Nothing is ever silently replaced.
"""

from __future__ import annotations

import random
import sys
from typing import Dict, Optional

import tensorflow as tf

from maskrcnn_body import constants
from maskrcnn_body.constants import SIZE_DIVISOR
from maskrcnn_body.data import augment, schema
from maskrcnn_body.data.writer import expand_patterns

_TFRECORD_OVERHEAD = 16  # per record: uint64 length + uint32 length crc + data + uint32 data crc
_FIX_HINT = "fix or re-convert the data, or set input.skip_corrupt=True to skip and count such records"


class CorruptCounter:
    """What the pipeline left out, as int64 ``tf.Variable`` s updated from inside tf.data.

    Attributes (read them as ints with :meth:`as_dict` or the properties):
      skipped_records: records dropped because they failed parsing/validation
        (``skip_corrupt=True`` only). Exact for every record up to the last one delivered,
        and exact in total once a finite dataset has been fully iterated.
      truncated_shards: shard passes that ended early because the file is truncated or
        corrupt (``skip_corrupt=True`` only); a repeated shard counts once per pass.
      dropped_persons: persons beyond ``input_cfg.max_persons`` (smallest boxes dropped).
      records_read / records_delivered: records that entered / left the parser.

    Use one counter per dataset (counts are totals over everything it was passed to).
    """

    _NAMES = ("skipped_records", "truncated_shards", "dropped_persons", "records_read", "records_delivered")

    def __init__(self):
        with tf.device("/cpu:0"):
            self._vars = {n: tf.Variable(0, dtype=tf.int64, trainable=False, name=n) for n in self._NAMES}

    def add(self, name: str, amount) -> tf.Operation:
        return self._vars[name].assign_add(tf.cast(amount, tf.int64))

    def assign(self, name: str, value) -> tf.Operation:
        return self._vars[name].assign(tf.cast(value, tf.int64))

    def read(self, name: str) -> tf.Tensor:
        return self._vars[name].read_value()

    def as_dict(self) -> Dict[str, int]:
        return {n: int(v.numpy()) for n, v in self._vars.items()}

    skipped_records = property(lambda self: int(self._vars["skipped_records"].numpy()))
    truncated_shards = property(lambda self: int(self._vars["truncated_shards"].numpy()))
    dropped_persons = property(lambda self: int(self._vars["dropped_persons"].numpy()))

    def __repr__(self):
        return f"CorruptCounter({self.as_dict()})"


# --------------------------------------------------------------------------- parsing
def _format(template: str, *args) -> tf.Tensor:
    """String tensor: ``template`` with each ``{}`` replaced by an argument, unquoted
    (strings as they are, numbers via ``as_string``, vectors joined with "x", e.g. ``48x64``)."""
    pieces = template.split("{}")
    if len(pieces) != len(args) + 1:
        raise ValueError(f"template {template!r} has {len(pieces) - 1} slots for {len(args)} arguments")
    out = [pieces[0]]
    for arg, piece in zip(args, pieces[1:]):
        t = tf.convert_to_tensor(arg)
        t = t if t.dtype == tf.string else tf.strings.as_string(t)
        out += [tf.strings.reduce_join(tf.reshape(t, [-1]), separator="x"), piece]
    return tf.strings.join(out)


def _require(ok, field: str, detail: str, *args, record=None, where=None) -> tf.Operation:
    """Assert ``ok``; the error reads "<field>: <detail formatted with args> (record .. in ..); hint"."""
    template = f"{field}: {detail}" + " (record {} in {}); " + _FIX_HINT
    return tf.debugging.Assert(ok, [_format(template, *args, record, where)])


def _side_effects_if(pred, fn) -> tf.Tensor:
    """Runs the ops returned (as a list) by ``fn()`` only when ``pred``; returns a dummy tensor to depend on."""

    def yes():
        with tf.control_dependencies(fn()):
            return tf.constant(0)

    return tf.cond(pred, yes, lambda: tf.constant(0))


def _has_image_magic(data: tf.Tensor) -> tf.Tensor:
    head = tf.strings.substr(data, 0, 8)
    return tf.logical_or(tf.equal(head, schema.PNG_MAGIC), tf.equal(tf.strings.substr(head, 0, 2), schema.JPEG_MAGIC))


def parse_example(serialized: tf.Tensor, where="<record>") -> Dict[str, tf.Tensor]:
    """Parses and validates one schema v1 record (scalar string) at full resolution.

    Args:
      serialized: a serialised ``tf.train.Example``.
      where: string (tensor) naming the source, e.g. the shard path, for error messages.

    Returns a dict: ``image`` uint8 (H, W, 3) RGB; ``parts`` uint8 (N, H, W) bit fields;
    ``boxes`` float32 (N, 4) pixel-edge x1, y1, x2, y2; ``parts_valid`` int32 (N, 7);
    ``keypoints`` float32 (N, 15, 3); ``source_id`` and ``dataset`` string scalars.

    Raises ``tf.errors.InvalidArgumentError`` naming the field when ``schema/version`` is not
    supported, a value count does not match ``person/count``, or a PNG/JPEG is not one or has
    the wrong size or channels.
    """
    features = dict(schema.tf_features())
    features["schema/version"] = tf.io.FixedLenFeature([], tf.int64, default_value=schema.SCHEMA_VERSION)
    f = tf.io.parse_single_example(serialized, features)
    sid = f["image/source_id"]
    ctx = dict(record=sid, where=where)
    n = tf.cast(f["person/count"], tf.int32)
    height = tf.cast(f["image/height"], tf.int32)
    width = tf.cast(f["image/width"], tf.int32)
    bbox = f["person/bbox"].values
    pngs = f["person/parts_png"].values
    valid = f["person/parts_valid"].values
    kps = f["person/keypoints"].values
    nk = constants.NUM_KEYPOINTS * 3
    checks = [
        _require(
            tf.equal(f["schema/version"], schema.SCHEMA_VERSION),
            "schema/version",
            "is {}, this package reads {}; upgrade the records or the package",
            f["schema/version"],
            schema.SCHEMA_VERSION,
            **ctx,
        ),
        _require(n >= 0, "person/count", "is {}, must be >= 0", n, **ctx),
        _require(
            tf.logical_and(height > 0, width > 0),
            "image/height,image/width",
            "{}x{} must be positive",
            height,
            width,
            **ctx,
        ),
        _require(
            tf.equal(tf.size(bbox), 4 * n),
            "person/bbox",
            "has {} values, expected 4 * person/count = {}",
            tf.size(bbox),
            4 * n,
            **ctx,
        ),
        _require(
            tf.equal(tf.size(pngs), n),
            "person/parts_png",
            "has {} PNGs, expected person/count = {}",
            tf.size(pngs),
            n,
            **ctx,
        ),
        _require(
            tf.equal(tf.size(valid), constants.NUM_CHANNELS * n),
            "person/parts_valid",
            "has {} values, expected 7 * person/count = {}",
            tf.size(valid),
            constants.NUM_CHANNELS * n,
            **ctx,
        ),
        _require(
            tf.equal(tf.size(kps), nk * n),
            "person/keypoints",
            "has {} values, expected 45 * person/count = {}",
            tf.size(kps),
            nk * n,
            **ctx,
        ),
        _require(_has_image_magic(f["image/encoded"]), "image/encoded", "is not a PNG or JPEG file", **ctx),
    ]
    with tf.control_dependencies(checks):
        image = tf.io.decode_image(f["image/encoded"], channels=3, expand_animations=False)
        image_ok = _require(
            tf.reduce_all(tf.equal(tf.shape(image)[:2], [height, width])),
            "image/encoded",
            "decodes to {} (h x w), image/height x image/width is {}x{}",
            tf.shape(image)[:2],
            height,
            width,
            **ctx,
        )
        boxes = tf.reshape(bbox, [n, 4])
        parts_valid = tf.reshape(tf.cast(valid, tf.int32), [n, constants.NUM_CHANNELS])
        keypoints = tf.reshape(kps, [n, constants.NUM_KEYPOINTS, 3])

    def decode_parts(i):
        data = pngs[i]
        magic = _require(
            tf.equal(tf.strings.substr(data, 0, 8), schema.PNG_MAGIC),
            "person/parts_png[{}]",
            "is not a PNG file",
            i,
            **ctx,
        )
        with tf.control_dependencies([magic]):
            png = tf.io.decode_png(data, channels=0)
        ok = _require(
            tf.reduce_all(tf.equal(tf.shape(png), [height, width, 1])),
            "person/parts_png[{}]",
            "decodes to {} (h x w x channels), expected {}x{}x1",
            i,
            tf.shape(png),
            height,
            width,
            **ctx,
        )
        with tf.control_dependencies([ok]):
            return tf.reshape(png, [height, width])

    with tf.control_dependencies(checks):
        parts = tf.cond(
            n > 0,
            lambda: tf.map_fn(decode_parts, tf.range(n), fn_output_signature=tf.TensorSpec([None, None], tf.uint8)),
            lambda: tf.zeros([0, height, width], tf.uint8),
        )  # map_fn cannot stack 0 unknown shapes
    with tf.control_dependencies([image_ok]):
        image = tf.identity(image)
    return {
        "image": image,
        "parts": tf.reshape(parts, [n, height, width]),
        "boxes": boxes,
        "parts_valid": parts_valid,
        "keypoints": keypoints,
        "source_id": sid,
        "dataset": f["image/dataset"],
    }


# --------------------------------------------------------------------------- per-example transform
def keep_largest_persons(example: Dict[str, tf.Tensor], max_persons: int):
    """Keeps the ``max_persons`` persons with the largest box area (original order kept).

    Returns ``(example, num_dropped)`` with ``num_dropped`` an int32 scalar.
    """
    boxes = example["boxes"]
    n = tf.shape(boxes)[0]
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = tf.sort(tf.math.top_k(area, k=tf.minimum(n, max_persons)).indices)
    out = dict(example)
    for key in ("parts", "boxes", "parts_valid", "keypoints"):
        out[key] = tf.gather(example[key], keep)
    return out, n - tf.size(keep)


def _pad_rows(x: tf.Tensor, rows: int) -> tf.Tensor:
    """Zero-pads the first axis of ``x`` to ``rows`` (which must be >= its length)."""
    pad = [[0, rows - tf.shape(x)[0]]] + [[0, 0]] * (x.shape.rank - 1)
    return tf.pad(x, pad)


def to_batch_element(
    example: Dict[str, tf.Tensor],
    input_cfg,
    training: bool,
    seed: tf.Tensor,
    counter: Optional[CorruptCounter] = None,
    warn_dropped: bool = True,
) -> Dict[str, tf.Tensor]:
    """Full-resolution parsed example -> one (unbatched) element of the documented batch dict.

    Training: random flip (p=0.5, if ``input_cfg.flip``) and scale jitter ``U(scale_jitter)``,
    both drawn from the stateless ``seed`` (int32/int64 (2,)); a draw that makes the image larger than
    ``pad_size`` is capped to fit, unless ``input_cfg.zoom_in``: then it zooms in and a random
    ``pad_size`` window of the resized image is kept (``crop_offset``; people left with less than 2 px
    of box are dropped, boxes clipped to the window). Masks are cropped from the
    (possibly flipped) full-resolution parts with the (clipped) boxes mapped back to the original
    image, so image, boxes, masks and keypoints stay exactly consistent.
    """
    P, S, MS = input_cfg.max_persons, input_cfg.pad_size, input_cfg.gt_mask_size
    flip_seed, jitter_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    crop_seed = tf.random.experimental.stateless_fold_in(jitter_seed, 1)  # the flip/jitter draws stay as before
    example, dropped = keep_largest_persons(example, P)
    effects = []
    if counter is not None:
        effects.append(counter.add("dropped_persons", dropped))
    if warn_dropped:
        effects.append(
            _side_effects_if(
                dropped > 0,
                lambda: [
                    tf.print(
                        "maskrcnn_body pipeline: dropped",
                        dropped,
                        "persons beyond max_persons =",
                        P,
                        "in record",
                        example["source_id"],
                        output_stream=sys.stderr,
                    )
                ],
            )
        )
    if training and input_cfg.flip:
        example = augment.random_flip(example, flip_seed)
    lo, hi = input_cfg.scale_jitter
    jitter = tf.random.stateless_uniform([], jitter_seed, lo, hi) if training and lo != hi else 1.0
    shape = tf.shape(example["image"])
    zoom_in = training and input_cfg.zoom_in
    scale = augment.resize_scale(shape[0], shape[1], input_cfg.min_size, input_cfg.max_size, S, jitter, zoom_in)
    size = augment.resized_size(shape[0], shape[1], scale)
    image = augment.resize_image(example["image"], scale, size)
    boxes, keypoints = augment.scale_coordinates(example["boxes"], example["keypoints"], scale)
    parts, parts_valid, crop_offset = example["parts"], example["parts_valid"], tf.zeros([2], tf.float32)
    original_boxes = example["boxes"]
    if zoom_in:  # evaluation never zooms in: the resized image fits the canvas, nothing is cut
        offset = augment.random_crop_offset(size, S, crop_seed)
        image, boxes, keypoints, keep, size = augment.crop_example(image, boxes, keypoints, offset, S)
        parts, parts_valid = tf.boolean_mask(parts, keep), tf.boolean_mask(parts_valid, keep)
        crop_offset = tf.cast(offset[::-1], tf.float32)  # (x, y)
        # the schema boxes clipped to the window in the original frame (unclipped sides stay exact)
        lo = crop_offset / scale
        hi = (crop_offset + tf.cast(size[::-1], tf.float32)) / scale
        original_boxes = tf.clip_by_value(
            tf.boolean_mask(tf.cast(original_boxes, tf.float32), keep), tf.concat([lo, lo], 0), tf.concat([hi, hi], 0)
        )
    image = augment.pad_to_multiple(image, SIZE_DIVISOR)
    # the masks come from the full-resolution parts, cropped to the (clipped) boxes in the original frame
    masks = augment.crop_box_masks(parts, original_boxes, MS)
    with tf.control_dependencies(effects):
        num_gt = tf.shape(boxes)[0]
    return {
        "images": tf.ensure_shape(image, [None, None, 3]),
        "image_shape": size,
        "scale": scale,
        "crop_offset": crop_offset,
        "original_shape": shape[:2],
        "source_id": example["source_id"],
        "num_gt": num_gt,
        "gt_boxes": tf.ensure_shape(_pad_rows(boxes, P), [P, 4]),
        "gt_masks": tf.ensure_shape(_pad_rows(masks, P), [P, MS, MS, constants.NUM_CHANNELS]),
        "gt_parts_valid": tf.ensure_shape(_pad_rows(tf.cast(parts_valid, tf.float32), P), [P, constants.NUM_CHANNELS]),
        "gt_keypoints": tf.ensure_shape(_pad_rows(keypoints, P), [P, constants.NUM_KEYPOINTS, 3]),
    }


# --------------------------------------------------------------------------- reading shards
def _read_shard(path: tf.Tensor, size: tf.Tensor, strict: bool, counter: CorruptCounter) -> tf.data.Dataset:
    """(path, serialized) for every record of one shard; a short read raises or is counted.

    ``TFRecordDataset`` read errors are suppressed and a sentinel after the last record checks
    that the records consumed (data + 16 framing bytes each) add up to the file size.
    """
    records = tf.data.TFRecordDataset(path).ignore_errors().map(lambda r: (r, False))
    marked = records.concatenate(tf.data.Dataset.from_tensors((tf.constant(b""), True)))

    def consume(total, elem):
        rec, is_end = elem
        nbytes = tf.cast(tf.strings.length(rec), tf.int64) + _TFRECORD_OVERHEAD
        total = total + tf.where(is_end, tf.constant(0, tf.int64), nbytes)
        return total, (rec, is_end, total)

    def keep(rec, is_end, total):
        complete = tf.logical_or(tf.logical_not(is_end), tf.equal(total, size))
        msg = _format("TFRecord shard {} is truncated or corrupt: read {} of {} bytes", path, total, size)
        if strict:
            check = tf.debugging.Assert(complete, [msg + "; re-create the shard, or set input.skip_corrupt=True"])
        else:
            check = _side_effects_if(
                tf.logical_not(complete),
                lambda: [
                    counter.add("truncated_shards", 1),
                    tf.print("maskrcnn_body pipeline: skipping the rest of", msg, output_stream=sys.stderr),
                ],
            )
        with tf.control_dependencies([check]):
            return tf.logical_not(is_end)

    return marked.scan(tf.constant(0, tf.int64), consume).filter(keep).map(lambda rec, is_end, total: (path, rec))


def _after_end(ds: tf.data.Dataset, fn) -> tf.data.Dataset:
    """``ds`` followed by a call of ``fn()`` (side effects only) once ``ds`` is exhausted."""

    def run(_):
        with tf.control_dependencies([fn()]):
            return tf.nest.map_structure(
                lambda s: tf.zeros([d if d is not None else 0 for d in s.shape], s.dtype), ds.element_spec
            )

    return ds.concatenate(tf.data.Dataset.from_tensors(0).map(run).filter(lambda *_: False))


def build_dataset(
    patterns,
    input_cfg,
    batch_size: int,
    training: bool,
    seed: Optional[int] = None,
    repeat: Optional[int] = None,
    counter: Optional[CorruptCounter] = None,
) -> tf.data.Dataset:
    """The batched input pipeline (batch dict in docs/DESIGN.md, "Pipeline batch").

    Args:
      patterns: a glob, comma-separated globs or a list (see ``writer.expand_patterns``).
      input_cfg: :class:`maskrcnn_body.config.InputConfig`.
      batch_size: examples per batch; training drops the last partial batch, evaluation keeps it.
      training: shuffle shards and records, interleave shards, random flip + scale jitter.
      seed: makes shuffling and augmentation reproducible (None: random).
      repeat: passes over the data; None = forever when training, once otherwise.
      counter: a :class:`CorruptCounter` to count skipped records, truncated shards and
        dropped persons (one is created internally when None; skips are always reported on stderr).
    """
    paths = expand_patterns(patterns)
    sizes = [tf.io.gfile.stat(p).length for p in paths]
    strict = not input_cfg.skip_corrupt
    warn_dropped = counter is None
    counter = counter if counter is not None else CorruptCounter()
    base_seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
    if repeat is None:
        repeat = -1 if training else 1

    files = tf.data.Dataset.from_tensor_slices((paths, tf.constant(sizes, tf.int64)))
    if training:
        files = files.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    files = files.repeat(repeat)
    read = lambda p, s: _read_shard(p, s, strict, counter)  # noqa: E731
    if training:
        records = files.interleave(
            read, cycle_length=min(len(paths), 8), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
    else:
        records = files.flat_map(read)  # shards in sorted order, records in file order
    if training:
        records = records.shuffle(input_cfg.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)

    def count_read(index, elem):
        with tf.control_dependencies([counter.add("records_read", 1)]):
            return tf.identity(index), elem

    def parse(index, elem):
        where, serialized = elem
        example = parse_example(serialized, where)
        out = to_batch_element(
            example, input_cfg, training, tf.stack([tf.constant(base_seed, tf.int64), index]), counter, warn_dropped
        )
        out["_index"] = index
        return out

    ds = records.enumerate().map(count_read)
    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if not strict:
        ds = ds.ignore_errors()

    def deliver(last, elem):
        """Counts gaps in the record index (records that failed and were dropped)."""
        index = elem.pop("_index")
        gap = index - last - 1
        report = _side_effects_if(
            gap > 0,
            lambda: [
                counter.add("skipped_records", gap),
                tf.print(
                    "maskrcnn_body pipeline: skipped",
                    gap,
                    "corrupt record(s) before",
                    elem["source_id"],
                    output_stream=sys.stderr,
                ),
            ],
        )
        with tf.control_dependencies([report, counter.add("records_delivered", 1)]):
            return tf.identity(index), elem

    ds = ds.scan(tf.constant(-1, tf.int64), deliver)
    if not strict:
        # records that failed after the last delivered one: everything read is resolved now
        ds = _after_end(
            ds,
            lambda: counter.assign("skipped_records", counter.read("records_read") - counter.read("records_delivered")),
        )
    # images are padded to the largest of the batch (each already a multiple of SIZE_DIVISOR):
    # no square canvas, so a 4:3 photo costs its own pixels, not a square's
    ds = ds.padded_batch(batch_size, drop_remainder=training)
    return ds.prefetch(tf.data.AUTOTUNE)
