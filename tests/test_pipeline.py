"""tf.data pipeline: parsing, flip/scale geometry, box-frame masks, batch format, corrupt input.

Most records are hand-built 48x64 scenes (see ``_scene``): person 0 is a grey body rectangle
facing the camera, with the subject's LEFT arm red on the image's RIGHT and the right arm
green on the image's left, and the wrist keypoints on those arms; other persons are small
blue rectangles. Colours make image/mask/keypoint alignment checkable after resize + flip.
"""

import numpy as np
import pytest
import tensorflow as tf

from maskrcnn_body import constants
from maskrcnn_body.config import InputConfig
from maskrcnn_body.data import augment, pipeline, schema, synthetic, writer

H, W = 48, 64
LA, RA = constants.CHANNEL_INDEX["left_arm"], constants.CHANNEL_INDEX["right_arm"]
LW, RW = constants.KEYPOINT_INDEX["left_wrist"], constants.KEYPOINT_INDEX["right_wrist"]
BOX0 = [10.0, 5.0, 30.0, 40.0]
CFG = dict(min_size=64, max_size=96, max_persons=3, gt_mask_size=16, shuffle_buffer=8)


def _scene(n_small=1, sid="scene", parts_valid=(1,) * 7):
    img = np.zeros((H, W, 3), np.uint8)
    parts = np.zeros((H, W), np.uint8)
    parts[5:40, 10:30] = 1
    img[5:40, 10:30] = 128
    parts[10:26, 26:30] |= 1 << LA
    img[10:26, 26:30] = (255, 0, 0)
    parts[10:26, 10:14] |= 1 << RA
    img[10:26, 10:14] = (0, 255, 0)
    kp = np.zeros((constants.NUM_KEYPOINTS, 3), np.float32)
    kp[LW] = (28.0, 24.0, 2)
    kp[RW] = (12.0, 24.0, 1)
    persons = [schema.make_person(parts, parts_valid, kp)]
    for k in range(n_small):  # areas 144, 120, 96: strictly smaller than person 0 (700)
        p = np.zeros((H, W), np.uint8)
        p[20 : 44 - 4 * k, 34 + 8 * k : 40 + 8 * k] = 1
        img[20 : 44 - 4 * k, 34 + 8 * k : 40 + 8 * k] = (0, 0, 255)
        persons.append(schema.make_person(p, [1] + [0] * 6))
    return schema.ImageRecord(schema.encode_png(img), b"png", H, W, sid, "synthetic", persons)


def _write(tmp_path, name, records):
    (path,) = writer.write_records(str(tmp_path / name), [schema.encode_example(r) for r in records])
    return path


def _parse(record):
    return pipeline.parse_example(tf.constant(schema.encode_example(record)))


def _tamper(serialized, key, values, kind):
    ex = tf.train.Example.FromString(serialized)
    field = getattr(ex.features.feature[key], kind)
    field.ClearField("value")
    field.value.extend(values)
    return ex.SerializeToString()


def _batches(ds):
    return [{k: v.numpy() for k, v in b.items()} for b in ds]


# --------------------------------------------------------------------------- parsing and flip
def test_parse_matches_numpy_decoder():
    rec = _scene(n_small=2)
    ex = _parse(rec)
    ref = schema.decode_example(schema.encode_example(rec), decode_image=True)
    np.testing.assert_array_equal(ex["image"].numpy(), ref.decode_image())
    np.testing.assert_array_equal(ex["parts"].numpy(), np.stack([p.parts for p in ref.persons]))
    np.testing.assert_array_equal(ex["boxes"].numpy(), np.stack([p.bbox for p in ref.persons]))
    np.testing.assert_array_equal(ex["parts_valid"].numpy(), np.stack([p.parts_valid for p in ref.persons]))
    np.testing.assert_array_equal(ex["keypoints"].numpy(), np.stack([p.keypoints for p in ref.persons]))
    assert ex["parts"].dtype == tf.uint8 and ex["parts_valid"].dtype == tf.int32
    assert ex["source_id"].numpy() == b"scene" and ex["dataset"].numpy() == b"synthetic"


@pytest.mark.parametrize(
    "key,values,kind,msg",
    [
        ("schema/version", [2], "int64_list", "schema/version: is 2, this package reads 1"),
        (
            "person/parts_valid",
            [1] * 13,
            "int64_list",
            "person/parts_valid: has 13 values, expected 7 * person/count = 14",
        ),
        (
            "image/width",
            [65],
            "int64_list",
            "image/encoded: decodes to 48x64 (h x w), image/height x image/width is 48x65",
        ),
        ("person/parts_png", [b"nope", b"nope"], "bytes_list", "person/parts_png[0]: is not a PNG file"),
    ],
)
def test_parse_errors_name_the_field(key, values, kind, msg):
    bad = _tamper(schema.encode_example(_scene(1, "rec9")), key, values, kind)
    with pytest.raises(tf.errors.InvalidArgumentError) as e:
        pipeline.parse_example(tf.constant(bad), "shard3.tfrecord")
    assert msg in e.value.message and "(record rec9 in shard3.tfrecord)" in e.value.message


def test_flip_twice_is_identity():
    ex = _parse(_scene(n_small=2, parts_valid=(1, 1, 0, 1, 0, 0, 1)))
    twice = augment.flip_example(augment.flip_example(ex))
    for key in ("image", "parts", "boxes", "parts_valid", "keypoints"):
        np.testing.assert_array_equal(twice[key].numpy(), ex[key].numpy(), err_msg=key)


def test_flip_mirrors_and_swaps_sides():
    ex = _parse(_scene(n_small=1, parts_valid=(1, 1, 1, 1, 0, 0, 1)))
    fl = {k: v.numpy() for k, v in augment.flip_example(ex).items()}
    ex = {k: v.numpy() for k, v in ex.items()}
    np.testing.assert_array_equal(fl["image"], ex["image"][:, ::-1])
    ch = schema.unpack_channels(ex["parts"])  # (N, H, W, 7) original
    fch = schema.unpack_channels(fl["parts"])
    np.testing.assert_array_equal(fch[..., LA], ch[:, :, ::-1, RA])
    np.testing.assert_array_equal(fch[..., RA], ch[:, :, ::-1, LA])
    np.testing.assert_array_equal(fch[..., 0], ch[:, :, ::-1, 0])
    # mirrored, the red arm is on the left of the box: for a person facing the camera that is the
    # subject's RIGHT arm, and it is labelled so; the green arm becomes the left arm
    assert (fl["image"][fch[0, ..., RA]] == (255, 0, 0)).all()
    assert (fl["image"][fch[0, ..., LA]] == (0, 255, 0)).all()
    np.testing.assert_array_equal(fl["parts_valid"][0], [1, 1, 1, 0, 1, 1, 0])
    np.testing.assert_array_equal(fl["boxes"][0], [W - 30, 5, W - 10, 40])
    np.testing.assert_array_equal(
        fl["boxes"], np.stack([W - ex["boxes"][:, 2], ex["boxes"][:, 1], W - ex["boxes"][:, 0], ex["boxes"][:, 3]], 1)
    )
    assert fl["keypoints"][0, LW, 0] == W - ex["keypoints"][0, RW, 0]
    np.testing.assert_array_equal(fl["keypoints"][0, LW, 1:], ex["keypoints"][0, RW, 1:])
    np.testing.assert_array_equal(fl["keypoints"][0, RW], [W - 28.0, 24.0, 2])
    np.testing.assert_array_equal(fl["keypoints"][0, constants.KEYPOINT_INDEX["neck"]], [0, 0, 0])  # unlabelled stays


# --------------------------------------------------------------------------- resize and masks
def test_resize_scale_rules():
    def s(h, w, mn, mx, pad, j=1.0):
        return float(augment.resize_scale(h, w, mn, mx, pad, j))

    assert s(48, 64, 64, 96, 96) == pytest.approx(64 / 48)  # shorter side -> min_size
    assert s(48, 64, 64, 70, 96) == pytest.approx(70 / 64)  # longer side capped at max_size
    assert s(48, 64, 64, 96, 96, 1.2) == pytest.approx(96 / 64)  # capped so that it fits pad_size
    assert float(augment.resize_scale(48, 64, 64, 96, 96, 1.2, zoom_in=True)) == pytest.approx(64 / 48 * 1.2)
    assert s(48, 64, 64, 96, 96, 0.8) == pytest.approx(64 / 48 * 0.8)
    np.testing.assert_array_equal(augment.resized_size(48, 64, 64 / 48), [64, 85])


def _jitter_draws(zoom_in: bool, n: int = 200):
    """(scale, image_shape, batch) of ``n`` training draws of cpu_small's U(0.8, 1.2) jitter (no flip) on a
    256 px image with a tall person and a small one in the corner."""
    from maskrcnn_body.config import get_config

    cfg = get_config("cpu_small", **{"input.flip": False, "input.zoom_in": zoom_in}).input
    image = np.zeros((256, 256, 3), np.uint8)
    parts = np.zeros((2, 256, 256), np.uint8)
    parts[0, 20:240, 100:160] = 1  # a tall person
    parts[1, 0:8, 0:8] = 1  # a small one in the corner, cut away by most zoom-ins
    boxes = np.array([[100, 20, 160, 240], [0, 0, 8, 8]], np.float32)
    kps = np.zeros((2, 15, 3), np.float32)
    kps[0, 0] = (130, 30, 2)
    kps[1, 0] = (4, 4, 2)
    example = {
        "image": tf.constant(image),
        "parts": tf.constant(parts),
        "boxes": tf.constant(boxes),
        "parts_valid": tf.ones((2, 7), tf.int32),
        "keypoints": tf.constant(kps),
        "source_id": tf.constant("jitter"),
    }
    element = tf.function(lambda seed: pipeline.to_batch_element(example, cfg, True, seed, warn_dropped=False))
    for i in range(n):
        yield boxes, {k: v.numpy() for k, v in element(tf.constant([i, 7], tf.int64)).items()}


def test_scale_jitter_is_capped_to_the_canvas_by_default():
    """cpu_small's U(0.8, 1.2) on its own 256 px images without input.zoom_in: draws above 1 give exactly the
    base scale (half the samples; the issue-26 ablation measured zooming in worse), draws below shrink."""
    zooms = np.array([float(b["scale"]) for _, b in _jitter_draws(zoom_in=False)])
    assert 0.40 < np.mean(zooms == 1.0) < 0.60 and zooms.max() == 1.0 and zooms.min() < 0.85


def test_scale_jitter_zooms_in_as_often_as_out_with_zoom_in():
    """With input.zoom_in the effective zoom (resized / base size) follows the draw on both sides of 1: the
    image is resized past the canvas and a random 256 px window is kept, with its annotations cut
    consistently."""
    zooms, shapes = [], []
    for boxes, b in _jitter_draws(zoom_in=True):
        zooms.append(float(b["scale"]))
        shapes.append(b["image_shape"])
        n = int(b["num_gt"])
        assert (b["image_shape"] <= 256).all() and b["images"].shape[0] <= 256
        box = b["gt_boxes"][0]
        expected = np.clip(boxes[0] * b["scale"] - np.tile(b["crop_offset"], 2), 0, 256)
        np.testing.assert_allclose(box, expected, atol=1e-3)
        assert (b["gt_masks"][0, ..., 0] > 0.99).all()  # the (clipped) box stays filled by the body
        if n == 1:  # the corner person was cut away with its joint
            assert b["crop_offset"].max() > 0
    zooms = np.array(zooms)
    assert np.mean(zooms == 1.0) < 0.02  # 0.5 when capped
    assert 0.40 < np.mean(zooms > 1.0) < 0.60 and zooms.max() > 1.15 and zooms.min() < 0.85
    assert np.mean([s.max() == 256 for s in shapes]) > 0.4  # zoom-ins fill the canvas


def test_resize_image_is_bilinear_with_exact_scale():
    img = tf.random.stateless_uniform([48, 64, 3], [1, 2], 0, 255)
    for scale in (0.5, 2.0):
        out = augment.resize_image(img, scale, augment.resized_size(48, 64, scale))
        ref = tf.image.resize(img, [int(48 * scale), int(64 * scale)], method="bilinear")
        np.testing.assert_allclose(out.numpy(), ref.numpy(), atol=1e-3)


def test_crop_box_masks_equals_resize_of_box_crop():
    rng = np.random.default_rng(3)
    parts = rng.integers(0, 128, (4, 30, 40), dtype=np.uint8)
    boxes = np.array([[3, 4, 13, 9], [0, 0, 40, 30], [17, 2, 18, 3], [5, 6, 38, 29]], np.float32)
    for size in (8, 20):  # down- and up-sampling
        got = augment.crop_box_masks(tf.constant(parts), tf.constant(boxes), size).numpy()
        ch = schema.unpack_channels(parts).astype(np.float32)
        for i, (x1, y1, x2, y2) in enumerate(boxes.astype(int)):
            ref = tf.image.resize(ch[i, y1:y2, x1:x2], (size, size), method="bilinear").numpy()
            np.testing.assert_allclose(got[i], ref, atol=1e-5, err_msg=f"box {i} size {size}")


def test_mask_filling_its_box_stays_one_and_nothing_leaks_in():
    parts = np.zeros((1, 20, 30), np.uint8)
    parts[0, 4:11, 7:19] = 1  # body fills the box exactly
    parts[0, :, 19:] = 1 << 2  # torso pixels just outside the box must not leak in
    got = augment.crop_box_masks(tf.constant(parts), tf.constant([[7, 4, 19, 11]], tf.float32), 32).numpy()
    assert (got[0, ..., 0] == 1.0).all() and (got[0, ..., 1:] == 0.0).all()


# --------------------------------------------------------------------------- batches
def test_batch_format_padding_zero_persons(tmp_path):
    empty = schema.ImageRecord(
        schema.encode_png(np.zeros((H, W, 3), np.uint8)), b"png", H, W, "none", "synthetic", []
    )  # a zero-person image
    path = _write(tmp_path, "b", [_scene(0, "one"), empty, _scene(2, "three")])
    cfg = InputConfig(**CFG)
    b1, b2 = _batches(pipeline.build_dataset(path, cfg, 2, training=False))
    P, MS = cfg.max_persons, cfg.gt_mask_size
    # 48x64 -> 64x85 valid, padded to the batch's largest valid size rounded up to 32: 64x96 (not 96x96)
    expect = {
        "images": (np.float32, (2, 64, 96, 3)),
        "image_shape": (np.int32, (2, 2)),
        "scale": (np.float32, (2,)),
        "crop_offset": (np.float32, (2, 2)),
        "original_shape": (np.int32, (2, 2)),
        "source_id": (object, (2,)),
        "num_gt": (np.int32, (2,)),
        "gt_boxes": (np.float32, (2, P, 4)),
        "gt_masks": (np.float32, (2, P, MS, MS, 7)),
        "gt_parts_valid": (np.float32, (2, P, 7)),
        "gt_keypoints": (np.float32, (2, P, 15, 3)),
    }
    assert set(b1) == set(expect)
    for k, (dtype, shape) in expect.items():
        assert b1[k].dtype == dtype and b1[k].shape == shape, k
    assert list(b1["source_id"]) == [b"one", b"none"] and list(b2["source_id"]) == [b"three"]
    np.testing.assert_array_equal(b1["num_gt"], [1, 0])
    np.testing.assert_array_equal(b2["num_gt"], [3])
    np.testing.assert_allclose(b1["scale"], [64 / 48] * 2)
    np.testing.assert_array_equal(b1["image_shape"], [[64, 85]] * 2)
    np.testing.assert_array_equal(b1["original_shape"], [[H, W]] * 2)
    np.testing.assert_allclose(b1["gt_boxes"][0, 0], np.array(BOX0) * 64 / 48, rtol=1e-6)
    for k in ("gt_boxes", "gt_masks", "gt_parts_valid", "gt_keypoints"):
        assert not b1[k][0, 1:].any() and not b1[k][1].any(), f"{k}: padding rows must be zero"
    img = b1["images"][0]
    assert not img[64:].any() and not img[:, 85:].any() and img[:64, :85].max() == 255
    assert not b1["images"][1].any()


def test_batches_are_padded_to_their_largest_image_not_a_square(tmp_path):
    """A portrait and a landscape image in one batch: the canvas is the larger of each side,
    rounded up to 32; each image is padded bottom/right with zeros."""
    tall = schema.ImageRecord(schema.encode_png(np.full((W, H, 3), 7, np.uint8)), b"png", W, H, "tall", "synthetic", [])
    wide = schema.ImageRecord(schema.encode_png(np.full((H, W, 3), 9, np.uint8)), b"png", H, W, "wide", "synthetic", [])
    path = _write(tmp_path, "pw", [tall, wide])
    (b,) = _batches(pipeline.build_dataset(path, InputConfig(**CFG), 2, training=False))
    np.testing.assert_array_equal(b["image_shape"], [[85, 64], [64, 85]])
    assert b["images"].shape == (2, 96, 96, 3)  # ceil32(max(85, 64)) on both sides
    assert (b["images"][0, :85, :64] == 7).all() and not b["images"][0, 85:].any() and not b["images"][0, :, 64:].any()
    (one,) = _batches(pipeline.build_dataset(str(tmp_path / "pw*"), InputConfig(**CFG), 1, training=False).take(1))
    assert one["images"].shape == (1, 96, 64, 3)  # alone: its own size rounded up to 32


def test_max_persons_keeps_largest_and_counts(tmp_path):
    path = _write(tmp_path, "m", [_scene(3, "four")])
    counter = pipeline.CorruptCounter()
    cfg = InputConfig(**dict(CFG, max_persons=2))
    (b,) = _batches(pipeline.build_dataset(path, cfg, 1, training=False, counter=counter))
    assert b["num_gt"][0] == 2 and counter.dropped_persons == 2
    np.testing.assert_allclose(b["gt_boxes"][0] / b["scale"][0], [BOX0, [34, 20, 40, 44]], rtol=1e-6)


@pytest.mark.parametrize("zoom_in", [False, True])
def test_training_batches_stay_consistent_after_resize_and_flip(tmp_path, zoom_in):
    """Image, boxes, masks and keypoints agree under random flip + scale jitter (capped or zooming in)."""
    path = _write(tmp_path, "c", [_scene(1, "c")])
    cfg = InputConfig(**dict(CFG, scale_jitter=(0.8, 1.2), zoom_in=zoom_in))
    batches = _batches(pipeline.build_dataset(path, cfg, 1, training=True, seed=7, repeat=10))
    flips, scales = set(), set()
    for b in batches:
        s, img, MS = b["scale"][0], b["images"][0], cfg.gt_mask_size
        box = b["gt_boxes"][0, 0]
        off = np.tile(b["crop_offset"][0], 2)
        flipped = bool(abs((box[0] + off[0]) / s - (W - 30)) < 1e-3)
        flips.add(flipped)
        scales.add(round(float(s), 4))
        np.testing.assert_allclose((box + off) / s, [W - 30, 5, W - 10, 40] if flipped else BOX0, atol=1e-4)
        masks = b["gt_masks"][0, 0]
        assert (masks[..., 0] == 1.0).all()  # the body fills its box
        # bin centres of the box-frame mask, in resized image pixels
        xs = box[0] + (np.arange(MS) + 0.5) * (box[2] - box[0]) / MS
        ys = box[1] + (np.arange(MS) + 0.5) * (box[3] - box[1]) / MS
        pix = img[np.floor(ys).astype(int)][:, np.floor(xs).astype(int)]  # (MS, MS, 3)
        assert (pix.sum(-1) > 0).all(), "every body bin must land on the person in the image"
        # unflipped the subject's left arm is the red one; mirrored, the green one (see the flip test)
        colour = {LA: 1 if flipped else 0, RA: 0 if flipped else 1}
        for ch, c in colour.items():
            arm = pix[masks[..., ch] == 1.0]
            assert len(arm) and arm[:, c].mean() > 200 and arm[:, 1 - c].mean() < 50, (flipped, ch)
        kp = b["gt_keypoints"][0, 0]
        for j, ch in ((LW, LA), (RW, RA)):  # wrists lie on their own arm
            x, y, v = kp[j]
            assert v > 0 and box[0] <= x <= box[2] and box[1] <= y <= box[3]
            assert img[int(y), int(x)].argmax() == colour[ch] and img[int(y), int(x)].max() > 200
        np.testing.assert_array_equal(kp[[LW, RW], 2], [1, 2] if flipped else [2, 1])
    assert flips == {True, False} and len(scales) > 3


def test_synthetic_scenes_sided_joints_on_own_channel(tmp_path):
    rng = np.random.default_rng(11)
    path = _write(tmp_path, "s", [synthetic.render_scene(rng, 96, 128, f"syn{i}") for i in range(4)])
    cfg = InputConfig(min_size=96, max_size=128, max_persons=6, gt_mask_size=64, shuffle_buffer=4)
    ex = pipeline.parse_example(tf.constant(next(iter(writer.iterate_records(path)))[2]))
    twice = augment.flip_example(augment.flip_example(ex))
    np.testing.assert_array_equal(twice["parts"].numpy(), ex["parts"].numpy())
    sided = {
        constants.KEYPOINT_INDEX[f"{s}_{j}"]: constants.CHANNEL_INDEX[f"{s}_{limb}"]
        for s in ("left", "right")
        for j, limb in (("elbow", "arm"), ("wrist", "arm"), ("knee", "leg"), ("ankle", "leg"))
    }
    own, other, total = 0, 0, 0
    for b in _batches(pipeline.build_dataset(path, cfg, 2, training=True, seed=3, repeat=2)):
        for i in range(len(b["num_gt"])):
            for p in range(b["num_gt"][i]):
                box, masks, kps = b["gt_boxes"][i, p], b["gt_masks"][i, p], b["gt_keypoints"][i, p]
                for j, ch in sided.items():
                    x, y, v = kps[j]
                    if v != 2:
                        continue
                    c = np.clip(((np.array([x, y]) - box[:2]) / (box[2:] - box[:2]) * 64).astype(int), 0, 63)
                    total += 1
                    own += masks[c[1], c[0], ch] > 0
                    other += masks[c[1], c[0], constants.CHANNEL_FLIP_PERM[ch]] > masks[c[1], c[0], ch]
    assert total >= 10, "scene seed gave too few visible sided joints"
    assert own >= 0.9 * total and other <= 0.05 * total, (own, other, total)


# --------------------------------------------------------------------------- corrupt input
def _truncated_pair(tmp_path):
    a = _write(tmp_path, "a", [_scene(0, f"a{i}") for i in range(3)])
    b = _write(tmp_path, "b", [_scene(0, f"b{i}") for i in range(2)])
    data = open(a, "rb").read()
    open(a, "wb").write(data[:-10])
    return a, b


def test_truncated_shard_strict_names_file(tmp_path):
    a, b = _truncated_pair(tmp_path)
    ds = pipeline.build_dataset([a, b], InputConfig(**CFG), 1, training=False)
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"TFRecord shard .*a-00000-of-00001\.tfrecord "
        r"is truncated or corrupt",
    ):
        _batches(ds)


def test_truncated_shard_skipped_and_counted(tmp_path):
    a, b = _truncated_pair(tmp_path)
    counter = pipeline.CorruptCounter()
    ds = pipeline.build_dataset(
        f"{a},{b}", InputConfig(**dict(CFG, skip_corrupt=True)), 1, training=False, counter=counter
    )
    ids = [x for batch in _batches(ds) for x in batch["source_id"]]
    assert ids == [b"a0", b"a1", b"b0", b"b1"]
    assert counter.truncated_shards == 1 and counter.skipped_records == 0


def _bad_field_shard(tmp_path):
    good = [schema.encode_example(_scene(1, f"g{i}")) for i in range(2)]
    bad = [
        _tamper(schema.encode_example(_scene(1, f"bad{i}")), "person/bbox", [1.0, 2.0, 3.0], "float_list")
        for i in range(2)
    ]
    (path,) = writer.write_records(str(tmp_path / "f"), [good[0], bad[0], good[1], bad[1]])
    return path


def test_bad_field_strict_names_field_record_and_file(tmp_path):
    path = _bad_field_shard(tmp_path)
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"person/bbox: has 3 values, expected 4 \* person/count = 8 \(record bad0 in "
        r".*f-00000-of-00001\.tfrecord\)",
    ):
        _batches(pipeline.build_dataset(path, InputConfig(**CFG), 1, training=False))


@pytest.mark.parametrize("training", [False, True])
def test_bad_field_skipped_and_counted(tmp_path, training):
    path = _bad_field_shard(tmp_path)
    counter = pipeline.CorruptCounter()
    ds = pipeline.build_dataset(
        path, InputConfig(**dict(CFG, skip_corrupt=True)), 1, training=training, seed=1, repeat=1, counter=counter
    )
    ids = sorted(x for batch in _batches(ds) for x in batch["source_id"])
    assert ids == [b"g0", b"g1"]
    stats = counter.as_dict()
    assert stats["skipped_records"] == 2 and stats["records_read"] == 4 and stats["truncated_shards"] == 0
