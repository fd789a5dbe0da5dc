"""Your own annotations (maskrcnn_body/annotations v1, docs/DATASETS.md): the converter on the hand-made
fixture tests/data/custom (labels/train.json: one file for a split; labels/c.json: one file per image),
the validator's messages and ``maskrcnn-body convert custom``."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from maskrcnn_body import constants
from maskrcnn_body.convert import custom
from maskrcnn_body.data import conversion

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "data" / "custom"
C = constants.CHANNEL_INDEX
K = constants.KEYPOINT_INDEX


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    prefix = str(tmp_path_factory.mktemp("custom") / "c")
    s = conversion.run_conversion(custom.CustomConverter(str(FIXTURE / "labels")), prefix, progress=False)
    assert s.skipped == []
    return prefix, {r.source_id: r for r in conversion.load_records(prefix)}


def test_fixture_converts(records):
    _, recs = records
    assert sorted(recs) == ["images/a", "images/b", "images/c"]
    assert recs["images/c"].persons == []  # an image labelled with nobody: a negative
    (a,) = recs["images/a"].persons
    assert a.parts_valid.tolist() == [1, 1, 1, 1, 1, 0, 0]  # legs not annotated: unknown
    np.testing.assert_array_equal(a.bbox, [14, 4, 50, 46])  # the body's tight box (pixel-edge polygons)
    left = a.channel(C["left_arm"])
    assert left.sum() == 10 * 16 and left[14:30, 40:50].all()  # polygon 40..50 x 14..30
    assert a.channel(C["right_arm"])[14:30, 14:24].all()
    np.testing.assert_allclose(a.keypoints[K["left_wrist"]], [48.5, 28.5, 2])
    assert a.keypoints[K["left_ankle"]].tolist() == [0, 0, 0]
    p0, p1 = recs["images/b"].persons
    # no body: body unknown, its bit = the parts; the box is the given one
    assert p0.parts_valid.tolist() == [0, 1, 0, 0, 0, 1, 0]
    np.testing.assert_array_equal(p0.bbox, [4, 4, 20, 44])
    head = p0.channel(C["head"])
    assert head.sum() == 48 and head[4:10, 8:16].all()  # the hand-written uncompressed RLE (column-major)
    assert not p0.channel(C["left_leg"]).any()  # annotated, not visible
    assert p1.parts_valid.tolist() == [0] * 7 and p1.keypoints[K["left_ankle"]].tolist() == [40.5, 44.5, 1]
    np.testing.assert_array_equal(p1.bbox, [26, 10, 44, 46])


def test_pipeline_and_flip(records):
    import tensorflow as tf

    from maskrcnn_body.config import InputConfig
    from maskrcnn_body.data import augment, pipeline, writer

    prefix, _ = records
    cfg = InputConfig(min_size=64, max_size=96, max_persons=3, gt_mask_size=16)
    batches = list(pipeline.build_dataset(prefix + "-*", cfg, batch_size=3, training=False))
    assert sorted(b for batch in batches for b in batch["num_gt"].numpy().tolist()) == [0, 1, 2]
    (path,) = writer.existing_shards(prefix)
    for s in tf.data.TFRecordDataset(path):
        ex = pipeline.parse_example(s)
        if ex["source_id"].numpy() == b"images/a":
            break
    fl = augment.flip_example(ex)
    parts, flipped = ex["parts"].numpy()[0], fl["parts"].numpy()[0]
    bit = lambda m, k: (m >> k) & 1  # noqa: E731
    np.testing.assert_array_equal(bit(flipped, C["left_arm"]), bit(parts, C["right_arm"])[:, ::-1])
    assert fl["parts_valid"].numpy()[0].tolist() == [1, 1, 1, 1, 1, 0, 0]


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return str(path)


def test_validator_names_file_image_person_and_field(tmp_path):
    shutil.copytree(FIXTURE / "images", tmp_path / "images")
    good = json.loads((FIXTURE / "labels" / "train.json").read_text())
    bad = json.loads(json.dumps(good))
    a = bad["images"][0]["persons"][0]
    a["parts"]["left_hand"] = {"polygons": []}  # not a channel
    a["parts"]["torso"] = {"polygons": [[1, 2, 3, 4, 5]]}  # odd count
    a["keypoints"]["left_wrist"] = [48.5, 28.5, 3]  # v not 0/1/2
    a["keypoints"]["nose"] = [1, 2, 2]  # not one of our joints
    a["box"] = [14, 4, 36, 42]  # fine: the body gives the box
    b0, b1 = bad["images"][1]["persons"]
    b0["box"] = [4, 4, 16, 3]  # x, y, w, h by mistake
    b0["parts"]["head"]["rle"]["size"] = [40, 48]
    del b1["box"]  # no box and no body
    bad["images"].append({"image": "../images/missing.png", "persons": []})
    bad["images"].append({"image": "../images/a.png", "persons": [], "width": 64, "height": 48})
    f = _write(tmp_path / "labels" / "bad.json", bad)
    images, persons, problems = custom.validate_files([f])
    assert (images, persons) == (4, 3)
    where_a, where_b = f"{f}: image 0 (../images/a.png): person 0: ", f"{f}: image 1 (../images/b.png): person "
    expected = [
        where_a + "parts.left_hand: unknown channel (expected one of body, head, torso",
        where_a + "parts.torso: polygons[0]: 5 numbers; expected an even count >= 6",
        where_a + "keypoints.left_wrist: expected [x, y, v] with v 0, 1 or 2",
        where_a + "keypoints.nose: unknown joint",
        where_b
        + "0: box: [4, 4, 16, 3] has x2 <= x1 or y2 <= y1; expected [x1, y1, x2, y2] (not x, y, width, height?)",
        where_b + "0: parts.head: rle.counts: uncompressed runs must be non-negative ints summing to H * W = 1920",
        where_b + "1: box: missing (required unless parts.body is given)",
        f"{f}: image 2 (../images/missing.png): image: {tmp_path / 'images' / 'missing.png'} does not exist",
        f"{f}: image 3 (../images/a.png): image: {tmp_path / 'images' / 'a.png'} is also annotated at {f}: image 0",
    ]
    for e in expected:
        assert any(p.startswith(e) for p in problems), (e, problems)
    assert len(problems) == len(expected)
    # file-level problems
    f2 = _write(tmp_path / "labels" / "v2.json", dict(good, version=2, extra=1))
    f3 = _write(tmp_path / "labels" / "broken.json", '{"format": "maskrcnn_body/annotations",\n "version": 1,,}')
    _, _, problems = custom.validate_files([f2, f3])
    assert f"{f2}: version: 2 is not supported (this package reads version 1)" in problems
    assert f"{f2}: unknown top-level keys ['extra'] (allowed: ['format', 'version', 'images'])" in problems
    assert problems[-1].startswith(f"{f3}: not valid JSON (line 2, column 15")
    one = dict(good["images"][0], format="maskrcnn_body/annotations", version=1, width=64, height=40)
    one["persons"][0]["parts"]["head"] = {"rle": {"size": [48, 64], "counts": "PP"}}
    _, _, problems = custom.validate_files([_write(tmp_path / "labels" / "one.json", one)])
    where = f"{tmp_path / 'labels' / 'one.json'}: image 0 (../images/a.png): person 0: "
    assert problems == [
        where + "box: [14, 4, 50, 46] lies outside the 64x40 image (x1, y1, x2, y2 in pixels)",
        where + "parts.head: rle.size: [48, 64] is not the image's [height, width] [40, 64]",
    ]


def test_size_mismatch_is_skipped(tmp_path):
    shutil.copytree(FIXTURE / "images", tmp_path / "images")
    data = json.loads((FIXTURE / "labels" / "train.json").read_text())
    data["images"][0]["width"] = 60
    f = _write(tmp_path / "labels" / "t.json", data)
    s = conversion.run_conversion(custom.CustomConverter(f), str(tmp_path / "o"), progress=False)
    assert [(x.key, x.kind) for x in s.skipped] == [(f"{f}:0:../images/a.png", "size mismatch")]


def _cli(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    cmd = [sys.executable, "convert_data/convert_custom.py", "--noprogress", *map(str, args)]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)


def test_cli(tmp_path):
    r = _cli("--input", FIXTURE / "labels", "--out", tmp_path / "c", "--check")
    assert r.returncode == 0, r.stderr
    assert "2 annotation file(s) valid: 3 images, 3 persons" in r.stdout and not list(tmp_path.iterdir())
    r = _cli("--input", f"{FIXTURE / 'labels' / 'train.json'},{FIXTURE / 'labels' / 'c.json'}", "--out", tmp_path / "c")
    assert r.returncode == 0, r.stderr
    assert "3 images written (1 without persons), 3 persons" in r.stdout
    bad = json.loads((FIXTURE / "labels" / "train.json").read_text())
    bad["images"][0]["persons"][0]["parts"]["left_hand"] = {"polygons": []}
    shutil.copytree(FIXTURE / "images", tmp_path / "images")
    f = _write(tmp_path / "labels" / "bad.json", bad)
    r = _cli("--input", f, "--out", tmp_path / "bad")
    assert r.returncode == 2
    assert "1 problem(s) in the annotation files; nothing was converted:" in r.stderr
    assert f"{f}: image 0 (../images/a.png): person 0: parts.left_hand: unknown channel" in r.stderr
    assert not list(tmp_path.glob("bad*"))
    r = _cli("--input", tmp_path / "nothing*.json", "--out", tmp_path / "x")
    assert r.returncode == 2 and "no annotation files match" in r.stderr


def test_draw_records_shows_parts_of_a_person_without_body(records, tmp_path):
    """``draw --records``: person 0 of images/b has a head and no body annotation; its head is drawn."""
    from PIL import Image

    from maskrcnn_body.drawing import people
    from maskrcnn_body.workflows.draw import draw_records

    prefix, _ = records
    pics = {os.path.basename(p): p for p in draw_records(prefix + "-*", str(tmp_path))}
    im = np.asarray(Image.open(pics["00002_custom_images_b.png"]).convert("RGB")).astype(int)[:-60]
    skin = np.array((230, 190, 150))  # the head's pixels in b.png
    drawn = (1 - people.PART_ALPHA) * skin + people.PART_ALPHA * np.array(constants.PART_COLOURS[C["head"]])
    assert (np.abs(im - drawn).sum(-1) < 12).sum() > 100


def test_cvat_export(records, tmp_path):
    """``--cvat``: a hand-made "CVAT for images 1.1" export of the fixture's images a and b (groups = persons,
    polygons named by channel, points and skeleton points named by joint) gives the same people as train.json."""
    _, recs = records
    labels = tmp_path / "labels" / "cvat.json"
    r = _cli(
        "--cvat", FIXTURE / "cvat" / "annotations.xml", "--cvat_images", FIXTURE / "images",
        "--input", labels, "--out", tmp_path / "cvat",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "2 images written to" in r.stdout and "2 images written (0 without persons), 3 persons" in r.stdout
    data = json.loads(labels.read_text())
    assert data["images"][0]["image"] == os.path.relpath(FIXTURE / "images" / "a.png", labels.parent)
    cvat = {x.source_id.rsplit("/", 1)[-1]: x for x in conversion.load_records(str(tmp_path / "cvat"))}
    a, (a2,) = recs["images/a"].persons[0], cvat["a"].persons
    np.testing.assert_array_equal(a.parts, a2.parts)
    np.testing.assert_array_equal(a.parts_valid, a2.parts_valid)
    np.testing.assert_array_equal(a.keypoints, a2.keypoints)
    p0, p1 = cvat["b"].persons
    assert p0.parts_valid.tolist() == [0, 1, 0, 0, 0, 0, 0] and p0.channel(C["head"])[4:10, 8:16].all()
    assert p1.keypoints[K["left_ankle"]].tolist() == [40.5, 44.5, 1] and p1.keypoints[K["right_ankle"], 2] == 0
    bad = (FIXTURE / "cvat" / "annotations.xml").read_text().replace('label="head"', 'label="hat"', 1)
    (tmp_path / "bad.xml").write_text(bad)
    with pytest.raises(ValueError, match=r"bad.xml: image 'a.png': a <polygon label='hat'> is not read"):
        custom.from_cvat_xml(str(tmp_path / "bad.xml"), str(FIXTURE / "images"), str(tmp_path))
