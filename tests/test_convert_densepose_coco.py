"""DensePose-COCO converter on tests/data/densepose_coco (files in the published format; see its README):
the 256x256 box frame, the part -> channel table, sides, people without DensePose, crowd regions, the
pipeline's flip, ``maskrcnn-body draw --records`` and the command line."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from maskrcnn_body import constants
from maskrcnn_body.convert import densepose_coco as dp
from maskrcnn_body.data import conversion

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "data" / "densepose_coco"
ANNOTATIONS = FIXTURE / "annotations" / "densepose_coco_2014_minival.json"
C = constants.CHANNEL_INDEX
K = constants.KEYPOINT_INDEX


def _rle(mask):
    r = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"counts": r["counts"].decode("ascii"), "size": list(mask.shape)}


def _cells(c0, c1, r0=0, r1=256):
    m = np.zeros((256, 256), bool)
    m[r0:r1, c0:c1] = True
    return m


def test_box_frame_is_pixel_edge_cells_sampled_at_pixel_centres():
    # box x = 10, w = 32: each image column spans 8 cells; column 10 + i's centre falls in cell 8 i + 4
    lab = np.zeros((256, 256), np.uint8)
    lab[:, 4:12] = 1  # cells 4..11: only column 10's centre (cell 4) is inside
    lab[:, 0:4] = 2  # cells 0..3: no pixel centre
    lab[:, 248:256] = 3  # cells 248..255: column 41's centre (cell 252)
    out = dp.paste_box_labels(lab, [10, 0, 32, 256], 4, 50)
    assert np.flatnonzero(out[0] == 1).tolist() == [10]
    assert 2 not in out
    assert np.flatnonzero(out[0] == 3).tolist() == [41]
    # a non-integer box [10.5, 2.25, 16, 8]: columns whose centre is in [10.5, 26.5) = 10..25, rows 2..9
    out = dp.paste_box_labels(np.ones((256, 256), np.uint8), [10.5, 2.25, 16, 8], 20, 40)
    rows, cols = np.nonzero(out)
    assert (cols.min(), cols.max(), rows.min(), rows.max()) == (10, 25, 2, 9)
    # the top-left cell maps to the top-left pixel, not mirrored or transposed
    lab = np.zeros((256, 256), np.uint8)
    lab[:128, :64] = 1
    out = dp.paste_box_labels(lab, [0, 0, 8, 8], 8, 8)
    assert out[:4, :2].all() and out.sum() == 8
    with pytest.raises(conversion.SkipItem, match="bad box"):
        dp.paste_box_labels(lab, [0, 0, 0, 8], 8, 8)


def test_part_table_keeps_the_persons_own_sides():
    assert len(dp.DP_PARTS) == 14 and set(dp.DP_PART_CHANNEL) == set(dp.DP_PARTS)
    for part, channel in dp.DP_PART_CHANNEL.items():
        for side in ("left", "right"):
            assert (side in part) == (side in channel), (part, channel)
    arms = {p for p, c in dp.DP_PART_CHANNEL.items() if c == "left_arm"}
    assert arms == {"upper_arm_left", "lower_arm_left", "left_hand"}
    legs = {p for p, c in dp.DP_PART_CHANNEL.items() if c == "right_leg"}
    assert legs == {"upper_leg_right", "lower_leg_right", "right_foot"}
    # DensePose's own flip table (detectron2 DensePoseTransformData.MASK_LABEL_SYMMETRIES) maps every part to
    # its mirror; ours must agree: the channel of a part's mirror is the flipped channel of the part
    symmetries = [0, 1, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 14]
    for label in range(1, 15):
        assert dp.LABEL_TO_CHANNEL[symmetries[label]] == constants.CHANNEL_FLIP_PERM[dp.LABEL_TO_CHANNEL[label]]


def test_label_map_later_parts_win_and_empty_parts():
    masks = [[] for _ in range(14)]
    masks[0] = _rle(_cells(0, 100))  # torso
    masks[13] = _rle(_cells(50, 60))  # head over part of it
    lab = dp.dp_label_map(masks)
    assert lab[0, 55] == 14 and lab[0, 10] == 1 and lab[0, 200] == 0
    uncompressed = mask_utils.frPyObjects({"counts": [0, 256 * 3, 256 * 253], "size": [256, 256]}, 256, 256)
    masks[1] = {"counts": [0, 256 * 3, 256 * 253], "size": [256, 256]}  # uncompressed RLE: columns 0..2
    assert (dp.dp_label_map(masks) == 2).sum() == 3 * 256 == mask_utils.decode(uncompressed).sum()
    with pytest.raises(conversion.SkipItem, match="bad dp_masks: expected a list of 14"):
        dp.dp_label_map(masks[:13])
    masks[2] = _rle(np.ones((128, 128), bool))
    with pytest.raises(conversion.SkipItem, match=r"mask 2 \(left_hand\) is 128x128"):
        dp.dp_label_map(masks)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    prefix = str(tmp_path_factory.mktemp("dp") / "dp")
    summary = conversion.run_conversion(dp.DensePoseCocoConverter(str(FIXTURE)), prefix, progress=False)
    return prefix, summary, {r.source_id: r for r in conversion.load_records(prefix)}


def test_conversion(converted):
    _, summary, recs = converted
    assert sorted(recs) == ["COCO_val2014_000000000001", "COCO_val2014_000000000003"]
    assert {s.key: s.kind for s in summary.skipped} == {"minival/COCO_val2014_000000000002.jpg": "crowd region"}
    a, b = recs["COCO_val2014_000000000001"].persons
    assert a.parts_valid.tolist() == [1] * 7
    assert b.parts_valid.tolist() == [1, 0, 0, 0, 0, 0, 0]  # no dp_masks: kept, parts unknown
    assert (b.parts >> 1 == 0).all() and b.keypoints[:, 2].sum() > 0
    # box [8, 10, 48, 112], torso cells cols 80..175, rows 56..149: by hand, the columns whose centre x
    # satisfies 80 <= (x - 8) * 256 / 48 < 176 are 23..40, the rows 34..75
    np.testing.assert_array_equal(conversion_box(a.channel(C["torso"])), [23, 34, 41, 76])
    # keypoints: COCO-17 -> 15, +0.5 (the COCO converter's rule)
    ann = next(x for x in json.loads(ANNOTATIONS.read_text())["annotations"] if x["id"] == 101)
    np.testing.assert_allclose(a.keypoints[K["left_wrist"], :2], np.array(ann["keypoints"][27:29]) + 0.5)
    (c,) = recs["COCO_val2014_000000000003"].persons
    assert c.parts_valid.tolist() == [1] * 7  # legs annotated as absent (empty masks), not unknown
    assert not c.channel(C["left_leg"]).any() and not c.channel(C["right_leg"]).any() and c.channel(C["head"]).any()


def conversion_box(mask):
    from maskrcnn_body.data import schema

    return schema.bbox_from_mask(mask)


def test_body_is_segmentation_united_with_exclusive_parts(converted):
    _, _, recs = converted
    rec = recs["COCO_val2014_000000000001"]
    data = json.loads(ANNOTATIONS.read_text())
    ann = next(x for x in data["annotations"] if x["id"] == 101)
    seg = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(ann["segmentation"], rec.height, rec.width)))
    p = rec.persons[0]
    parts = [p.channel(k) for k in constants.PART_CHANNELS]
    np.testing.assert_array_equal(p.channel(0), seg.astype(bool) | np.any(parts, axis=0))
    assert p.channel(0).sum() > seg.sum()  # the limbs lie outside the torso + head segmentation
    assert (np.sum(parts, axis=0) <= 1).all()  # one label per pixel, as DensePose's label map


def _mean_x(mask):
    return np.nonzero(mask)[1].mean()


def test_sides_and_horizontal_flip(converted):
    """The fixture's figure faces the camera: its own left arm/leg are on the image's right, with the
    left wrist/ankle keypoints on them. The pipeline's flip mirrors the pixels and swaps the channels:
    the mirrored figure still faces the camera, so its left arm is again on the image's right (it is the
    mirror of the old right arm), and the left wrist keypoint is again on it."""
    import tensorflow as tf

    from maskrcnn_body.data import augment, pipeline, writer

    prefix, _, _ = converted
    (path,) = writer.existing_shards(prefix)
    ex = pipeline.parse_example(next(iter(tf.data.TFRecordDataset(path))))
    channels = {}
    for name, example in (("original", ex), ("flipped", augment.flip_example(ex))):
        e = {k: v.numpy() for k, v in example.items()}
        ch = channels[name] = (e["parts"][0][..., None] >> np.arange(7)) & 1
        assert _mean_x(ch[..., C["left_arm"]]) > _mean_x(ch[..., C["right_arm"]]), name
        assert _mean_x(ch[..., C["left_leg"]]) > _mean_x(ch[..., C["right_leg"]]), name
        kp = e["keypoints"][0]
        for joint, channel in (("left_wrist", "left_arm"), ("right_wrist", "right_arm"), ("left_ankle", "left_leg")):
            x, y, v = kp[K[joint]]
            assert v == 2 and ch[int(y), int(x), C[channel]], (name, joint)
        assert e["parts_valid"][0].tolist() == [1] * 7
    for a, b in ((C["left_arm"], C["right_arm"]), (C["left_leg"], C["right_leg"])):
        np.testing.assert_array_equal(channels["flipped"][..., a], channels["original"][:, ::-1, b])


def test_pipeline_batch(converted):
    from maskrcnn_body.config import InputConfig
    from maskrcnn_body.data import pipeline

    prefix, _, _ = converted
    cfg = InputConfig(min_size=64, max_size=128, max_persons=3, gt_mask_size=16)
    (batch,) = list(pipeline.build_dataset(prefix + "-*", cfg, batch_size=2, training=False))
    assert batch["num_gt"].numpy().tolist() == [2, 1]
    assert batch["gt_parts_valid"].numpy()[0, :2].tolist() == [[1] * 7, [1, 0, 0, 0, 0, 0, 0]]
    masks = batch["gt_masks"].numpy()
    assert masks[0, 0, ..., C["left_arm"]].max() > 0.5 and masks[0, 1, ..., 1:].max() == 0


def test_keep_crowd_images_and_bad_dp_masks(tmp_path):
    root = tmp_path / "dp"
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns("*.py", "*.md"))
    data = json.loads(ANNOTATIONS.read_text())
    bad = next(a for a in data["annotations"] if a["image_id"] == 3)
    bad["dp_masks"] = bad["dp_masks"][:13]
    next(a for a in data["annotations"] if a["id"] == 101)["bbox"] = None
    (root / "annotations" / ANNOTATIONS.name).write_text(json.dumps(data))
    s = conversion.run_conversion(
        dp.DensePoseCocoConverter(str(root), split="minival", keep_crowd_images=True),
        str(tmp_path / "o"),
        progress=False,
    )
    recs = {r.source_id: r for r in conversion.load_records(str(tmp_path / "o"))}
    assert len(recs["COCO_val2014_000000000002"].persons) == 1  # the crowd left out
    assert {x.kind for x in s.skipped} == {"bad dp_masks", "bad box", "no persons"}
    assert len(recs["COCO_val2014_000000000001"].persons) == 1  # the person without a box dropped, not the image
    with pytest.raises(FileNotFoundError, match="densepose_coco_2014_train.json"):
        list(dp.DensePoseCocoConverter(str(root), split="train").items())


def test_detectron2_file_names(tmp_path):
    root = tmp_path / "dp"
    shutil.copytree(FIXTURE / "val2014", root / "val2014")
    shutil.copy(ANNOTATIONS, root / "densepose_minival2014.json")  # detectron2's name, in ROOT itself
    (item, *_) = list(dp.DensePoseCocoConverter(str(root)).items())
    assert item.key == "minival/COCO_val2014_000000000001.jpg"


def test_draw_records_and_cli(converted, tmp_path):
    """``maskrcnn-body convert densepose_coco`` then ``draw --records``: the left arm's colour is drawn on the
    image's right half of the figure facing the camera, the right arm's on its left half."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = str(tmp_path / "rec" / "dp")
    cmd = [sys.executable, "convert_data/convert_densepose_coco.py", "--root", str(FIXTURE), "--out", out]
    r = subprocess.run([*cmd, "--noprogress"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr
    assert "2 images written" in r.stdout and "3 persons" in r.stdout and "crowd region" in r.stdout
    pics = tmp_path / "pics"
    r = subprocess.run(
        [sys.executable, "-m", "maskrcnn_body.cli.main", "draw", "--records", out + "-*", "--out_dir", str(pics)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert r.returncode == 0, r.stderr
    (first, _) = sorted(pics.glob("*.png"))
    im = np.asarray(Image.open(first).convert("RGB")).astype(int)
    colour = {
        ch: np.abs(im[:-60] - np.array(constants.PART_COLOURS[C[ch]])).sum(-1) < 40 for ch in ("left_arm", "right_arm")
    }
    assert colour["left_arm"].sum() > 50 and colour["right_arm"].sum() > 50
    assert _mean_x(colour["left_arm"]) > _mean_x(colour["right_arm"])


@pytest.mark.slow  # four processes with ResNet-50: `make test-fast` leaves it out
def test_end_to_end_convert_train_evaluate_predict(tmp_path):
    """docs/TRAINING.md's DensePose-COCO recipe at tiny sizes, through the scripts a user types:
    convert (DensePose-COCO fixture + the hand-made custom fixture, mixed) -> a few steps of
    r50_fpn_imagenet -> evaluate -> predict."""
    from helpers.recipe import ROOT as REPO
    from helpers.recipe import SHRINK, imagenet_standin, run_script

    weights = imagenet_standin(tmp_path / "resnet50_imagenet.weights.h5")
    out = run_script(
        [REPO / "convert_data" / "convert_densepose_coco.py", "--root", FIXTURE, "--split", "minival"]
        + ["--out", "records/densepose_minival", "--keep_crowd_images", "--noprogress"],
        tmp_path,
    )
    assert "3 images written" in out and "4 persons" in out
    out = run_script(
        [REPO / "convert_data" / "convert_custom.py", "--input", REPO / "tests" / "data" / "custom" / "labels"]
        + ["--out", "records/mine", "--noprogress"],
        tmp_path,
    )
    assert "3 images written" in out
    records = "records/densepose_minival-*,records/mine-*"
    out = run_script(
        [REPO / "train" / "train.py", "--preset", "r50_fpn_imagenet", "--set", f"model.backbone.weights={weights}"]
        + ["--records", records, "--val_records", "records/densepose_minival-*", "--batch_size", "1"]
        + ["--max_steps", "3", "--set", "train.checkpoint_every=0", "--train_dir", "run", "--eval_images", "2"]
        + SHRINK,
        tmp_path,
    )
    assert "finished at step 3" in out and "COCO AP" in out
    out = run_script(
        [REPO / "train" / "evaluate.py", "--train_dir", "run", "--records", "records/densepose_minival-*"]
        + ["--dump_dir", "dumps"],
        tmp_path,
    )
    assert "wrote 3 dumps" in out
    metrics = json.loads((tmp_path / "dumps" / "metrics.json").read_text())
    assert set(metrics) >= {"box", "mask", "parsing", "keypoints"}
    out = run_script(
        [REPO / "train" / "infer.py", "--model", "run", "--input", FIXTURE / "val2014", "--output", "pred"]
        + ["--score_threshold", "0"],
        tmp_path,
    )
    results = sorted((tmp_path / "pred").glob("*.json"))
    assert len(results) == 3, out
    assert "persons" in json.loads(results[0].read_text())


@pytest.mark.slow  # the download script's conversion step: three converter processes
def test_download_script_step(tmp_path):
    root = tmp_path / "data" / "densepose_coco"
    (root / "annotations").mkdir(parents=True)
    (root / "train2014").mkdir()
    shutil.copytree(FIXTURE / "val2014", root / "val2014")
    shutil.copytree(FIXTURE / "val2014", root / "train2014", dirs_exist_ok=True)
    for split in ("train", "valminusminival", "minival"):  # the fixture's file standing in for each split
        data = json.loads(ANNOTATIONS.read_text())
        if split == "train":
            for im in data["images"]:
                im["file_name"] = im["file_name"].replace("val2014", "train2014")
                shutil.move(
                    root / "train2014" / im["file_name"].replace("train2014", "val2014"),
                    root / "train2014" / im["file_name"],
                )
        (root / "annotations" / f"densepose_coco_2014_{split}.json").write_text(json.dumps(data))
    script = ROOT / "convert_data" / "download_and_convert_data.sh"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHON=sys.executable)
    cmd = ["bash", str(script), "--no-download", "--data_dir", str(tmp_path / "data"), "--num_workers", "1"]
    r = subprocess.run([*cmd, "densepose_coco"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in (tmp_path / "data" / "records").glob("*.tfrecord"))
    assert names == [f"densepose_coco_{s}-00000-of-00001.tfrecord" for s in ("minival", "train", "valminusminival")]
