"""Schema v1 round trip, validation errors, and the atomic sharded writer."""

import os

import numpy as np
import pytest

from maskrcnn_body import constants
from maskrcnn_body.data import schema, writer


def _record(n_persons=2, h=20, w=30, fmt="png"):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    persons = []
    for i in range(n_persons):
        parts = np.zeros((h, w), np.uint8)
        parts[2 + i : 10 + i, 5 + 3 * i : 12 + 3 * i] = 1
        parts[3 + i : 5 + i, 6 + 3 * i : 8 + 3 * i] |= 1 << constants.CHANNEL_INDEX["head"]
        parts[6 + i : 9 + i, 10 + 3 * i : 12 + 3 * i] |= 1 << constants.CHANNEL_INDEX["left_arm"]
        kp = np.zeros((15, 3), np.float32)
        kp[:, 0] = np.arange(15) + 0.5
        kp[:, 1] = 4.5
        kp[:, 2] = 2
        persons.append(schema.make_person(parts, [1] * 7, kp))
    data = schema.encode_png(img)
    return schema.ImageRecord(data, b"png", h, w, f"img_{n_persons}", "synthetic", persons), img


def test_bbox_is_tight_and_exclusive():
    m = np.zeros((10, 10), bool)
    m[3, 5] = True
    np.testing.assert_array_equal(schema.bbox_from_mask(m), [5, 3, 6, 4])


def test_pack_unpack_roundtrip():
    rng = np.random.default_rng(1)
    ch = rng.random((4, 5, 7)) > 0.5
    np.testing.assert_array_equal(schema.unpack_channels(schema.pack_channels(ch)), ch)


def test_roundtrip_bit_exact():
    rec, img = _record()
    out = schema.decode_example(schema.encode_example(rec), "t", decode_image=True)
    assert out.image_bytes == rec.image_bytes and out.image_format == b"png"
    assert (out.height, out.width, out.source_id, out.dataset) == (20, 30, "img_2", "synthetic")
    np.testing.assert_array_equal(out.decode_image(), img)
    assert len(out.persons) == 2
    for a, b in zip(rec.persons, out.persons):
        np.testing.assert_array_equal(a.parts, b.parts)
        np.testing.assert_array_equal(a.bbox, b.bbox)
        np.testing.assert_array_equal(a.parts_valid, b.parts_valid)
        np.testing.assert_array_equal(a.keypoints, b.keypoints)


def test_zero_persons_roundtrip():
    rec, _ = _record(0)
    out = schema.decode_example(schema.encode_example(rec))
    assert out.persons == []


def test_part_pixels_are_body_pixels():
    parts = np.zeros((5, 5), np.uint8)
    parts[1, 1] = 1 << 3  # a left-arm pixel without the body bit
    p = schema.make_person(parts, [1] * 7)
    assert p.parts[1, 1] & 1
    np.testing.assert_array_equal(p.bbox, [1, 1, 2, 2])


def _tamper(serialized, key, values, kind):
    import tensorflow as tf

    ex = tf.train.Example.FromString(serialized)
    feat = ex.features.feature[key]
    getattr(feat, kind).ClearField("value")
    getattr(feat, kind).value.extend(values)
    return ex.SerializeToString()


@pytest.mark.parametrize(
    "key,values,kind,msg",
    [
        ("person/bbox", [1.0, 2.0, 3.0], "float_list", "person/bbox"),
        ("person/count", [3], "int64_list", "person/bbox"),
        ("person/parts_png", [b"not a png", b"x"], "bytes_list", "person/parts_png[0]"),
        ("image/format", [b"gif"], "bytes_list", "image/format"),
        ("image/width", [31], "int64_list", "person/parts_png[0]"),
    ],
)
def test_bad_fields_name_record_and_field(key, values, kind, msg):
    rec, _ = _record()
    bad = _tamper(schema.encode_example(rec), key, values, kind)
    with pytest.raises(schema.RecordError, match="shard7:3") as e:
        schema.decode_example(bad, "shard7:3")
    assert msg in str(e.value)


def test_writer_is_atomic_and_sharded(tmp_path):
    rec, _ = _record()
    prefix = str(tmp_path / "out" / "train")
    with pytest.raises(RuntimeError), writer.ShardedWriter(prefix, 2) as w:
        w.write(schema.encode_example(rec))
        raise RuntimeError("killed")
    assert os.listdir(tmp_path / "out") == []
    paths = writer.write_records(prefix, [schema.encode_example(rec)] * 5, num_shards=2)
    assert [os.path.basename(p) for p in paths] == ["train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord"]
    got = list(writer.iterate_records(prefix + "-*"))
    assert len(got) == 5
    # rewriting with another shard count replaces the old set
    writer.write_records(prefix, [schema.encode_example(rec)], num_shards=1)
    assert sorted(os.listdir(tmp_path / "out")) == ["train-00000-of-00001.tfrecord"]


def test_truncated_shard_raises_or_counts(tmp_path):
    rec, _ = _record()
    prefix = str(tmp_path / "t")
    (path,) = writer.write_records(prefix, [schema.encode_example(rec)] * 3)
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) - 10])
    with pytest.raises(schema.RecordError, match="t-00000-of-00001.tfrecord"):
        list(writer.iterate_records(path))
    stats = {}
    got = list(writer.iterate_records(path, skip_corrupt=True, stats=stats))
    assert len(got) == 2 and len(stats["corrupt_shards"]) == 1
