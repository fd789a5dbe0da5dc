"""Upgrade of legacy (2017) TFRecords: a record written here in the old schema, the old way."""

import numpy as np
import pytest
import tensorflow as tf

from maskrcnn_body import constants
from maskrcnn_body.convert.legacy import LegacyConverter
from maskrcnn_body.data import conversion

H, W = 12, 16


def _legacy_example(rgb, masks, boxes, keypoints=None, drop=None):
    b = lambda v: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))  # noqa: E731
    i = lambda v: tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))  # noqa: E731
    feats = {
        "image/img_id": i(0),
        "image/encoded": b(rgb.tobytes()),
        "image/height": i(rgb.shape[0]),
        "image/width": i(rgb.shape[1]),
        "label/num_instances": i(len(masks)),
        "label/gt_boxes": b(boxes.astype(np.float32).tobytes()),
        "label/gt_masks": b(masks.astype(np.uint8).tobytes()),
        "label/encoded": b(b""),
    }
    if keypoints is not None:
        feats["label/keypoints"] = b(keypoints.astype(np.float32).tobytes())
    feats.pop(drop, None)
    return tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString()


def _write(path, examples, compression="ZLIB"):
    with tf.io.TFRecordWriter(path, tf.io.TFRecordOptions(compression_type=compression)) as w:
        for e in examples:
            w.write(e)


def _person():
    masks = np.zeros((1, H, W, 7), np.uint8)
    masks[0, 2:10, 4:12, 0] = 1
    masks[0, 2:4, 6:10, 1] = 1  # head
    masks[0, 4:7, 4:6, 4] = 1  # right arm (image left)
    # legacy JHMDB keypoints: MATLAB 1-based pos -> [-1, 1] over the cv2.boundingRect box
    x1, y1, x2, y2 = 4, 2, 12, 10
    pos = np.stack([np.linspace(5, 11, 15), np.linspace(3, 9, 15)])
    pos[0, 14] = 30.0  # outside the image after de-normalisation
    u = np.stack([(pos[0] - x1) / (x2 - x1) * 2 - 1, (pos[1] - y1) / (y2 - y1) * 2 - 1])
    return masks, np.array([[x1, y1, x2, y2, 1]], np.float32), pos, u


def test_upgrade_bgr_masks_keypoints(tmp_path):
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[..., 0] = 200  # red
    rgb[..., 2] = 10
    masks, boxes, pos, u = _person()
    src = str(tmp_path / "old.tfrecord")
    _write(
        src,
        [
            _legacy_example(rgb[..., ::-1].copy(), masks, boxes, u),  # stored as BGR
            _legacy_example(rgb[..., ::-1].copy(), masks[:0], boxes[:0]),  # 0 persons
            _legacy_example(rgb, masks, boxes, drop="label/gt_masks"),
        ],
    )  # broken record
    prefix = str(tmp_path / "new")
    s = conversion.run_conversion(LegacyConverter(src, "jhmdb", bgr=True), prefix, progress=False)
    recs = conversion.load_records(prefix)
    assert [r.source_id for r in recs] == ["old/000000", "old/000001"] and recs[0].dataset == "jhmdb"
    np.testing.assert_array_equal(recs[0].decode_image(), rgb)
    (p,) = recs[0].persons
    np.testing.assert_array_equal(p.bbox, [4, 2, 12, 10])
    np.testing.assert_array_equal(p.channel(1), masks[0, ..., 1] == 1)
    np.testing.assert_array_equal(p.channel(constants.CHANNEL_INDEX["right_arm"]), masks[0, ..., 4] == 1)
    assert list(p.parts_valid) == [1] * 7
    np.testing.assert_allclose(p.keypoints[:14, :2], pos[:, :14].T - 0.5, atol=1e-4)
    assert (p.keypoints[:14, 2] == 2).all() and (p.keypoints[14] == 0).all()
    (skip,) = s.skipped
    assert skip.key == "old/000002" and "label/gt_masks" in skip.reason
    # body-only legacy sets: part channels marked unknown and dropped
    conversion.run_conversion(LegacyConverter(src, "pascal_part", valid_channels=[0]), prefix, progress=False)
    (p,) = conversion.load_records(prefix)[0].persons
    assert list(p.parts_valid) == [1, 0, 0, 0, 0, 0, 0] and p.parts.max() == 1


def test_wrong_compression_is_reported(tmp_path):
    masks, boxes, _, _ = _person()
    src = str(tmp_path / "plain.tfrecord")
    _write(src, [_legacy_example(np.zeros((H, W, 3), np.uint8), masks, boxes)], compression="")
    s = conversion.run_conversion(LegacyConverter(src, "jhmdb"), str(tmp_path / "o"), progress=False)
    assert s.images_written == 0 and s.skipped[0].kind == "corrupt shard"
    with pytest.raises(ValueError, match="dataset"):
        LegacyConverter(src, "voc")
