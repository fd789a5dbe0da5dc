"""Pascal-Part converter on the real fixtures (shared/fixtures/pascal_part) + bad inputs."""

import os
import shutil

import numpy as np
import pytest

from maskrcnn_body import constants
from maskrcnn_body.convert.pascal_part import PART_CHANNELS, PascalPartConverter, read_annotation
from maskrcnn_body.data import conversion

HEAD, TORSO, LARM, RARM = (constants.CHANNEL_INDEX[n] for n in ("head", "torso", "left_arm", "right_arm"))


@pytest.fixture(scope="module")
def converted(fixtures_dir, tmp_path_factory):
    prefix = str(tmp_path_factory.mktemp("pp") / "pp")
    summary = conversion.run_conversion(PascalPartConverter(str(fixtures_dir / "pascal_part")), prefix, progress=False)
    return summary, {r.source_id: r for r in conversion.load_records(prefix)}


def test_counts_and_skips(converted):
    summary, recs = converted
    assert sorted(recs) == ["2008_000652", "2008_000700", "2008_000726", "2008_003228", "2010_005243"]
    assert [len(recs[k].persons) for k in sorted(recs)] == [1, 1, 2, 3, 6]
    assert summary.persons == 13
    d = summary.as_dict()
    assert d["skipped_by_reason"] == {"no persons": 3} and d["bad_inputs"] == 0
    assert all(r.image_format == b"jpeg" for r in recs.values())


def test_image_bytes_kept(converted, fixtures_dir):
    _, recs = converted
    src = (fixtures_dir / "pascal_part" / "JPEGImages" / "2008_000700.jpg").read_bytes()
    assert recs["2008_000700"].image_bytes == src


def test_body_is_object_mask_and_parts_inside(converted, fixtures_dir):
    _, recs = converted
    objs = read_annotation(str(fixtures_dir / "pascal_part" / "Annotations_Part" / "2010_005243.mat"))
    masks = [o["mask"] != 0 for o in objs if o["class"] == "person"]
    for p, m in zip(recs["2010_005243"].persons, masks):
        np.testing.assert_array_equal(p.channel(0), m)
        for k in range(1, 7):
            assert not (p.channel(k) & ~p.channel(0)).any()
        ys, xs = np.nonzero(m)
        np.testing.assert_array_equal(p.bbox, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])


def _cx(mask):
    return np.nonzero(mask)[1].mean()


def test_subject_centric_sides_on_climber(converted):
    # 2008_000700: a climber facing the camera: the subject's left arm is on the image's right
    (p,) = converted[1]["2008_000700"].persons
    assert p.channel(LARM).sum() > 500 and p.channel(RARM).sum() > 500
    assert _cx(p.channel(LARM)) > _cx(p.channel(RARM)) + 50
    assert list(p.parts_valid) == [1] * 7


def test_partial_person_only_torso_and_right_arm(converted):
    persons = converted[1]["2008_000726"].persons
    partial = [p for p in persons if not p.channel(HEAD).any()]
    assert len(partial) == 1
    p = partial[0]
    present = [k for k in range(1, 7) if p.channel(k).any()]
    assert present == [TORSO, RARM]
    assert list(p.parts_valid) == [1] * 7  # Pascal-Part: missing part = not visible


def test_part_table_is_complete_and_sided():
    assert len(PART_CHANNELS) == 24
    for name, ch in PART_CHANNELS.items():
        if name[0] == "l" and name not in ("lear", "leye", "lebrow"):
            assert ch in (LARM, constants.CHANNEL_INDEX["left_leg"]), name
        if name[0] == "r" and name not in ("rear", "reye", "rebrow"):
            assert ch in (RARM, constants.CHANNEL_INDEX["right_leg"]), name


def _copy(fixtures_dir, tmp_path, names):
    root = tmp_path / "pp"
    for sub, ext in (("Annotations_Part", ".mat"), ("JPEGImages", ".jpg")):
        (root / sub).mkdir(parents=True)
        for n in names:
            shutil.copy(fixtures_dir / "pascal_part" / sub / (n + ext), root / sub / (n + ext))
    return root


def test_bad_inputs_are_skipped_with_reasons(fixtures_dir, tmp_path):
    root = _copy(fixtures_dir, tmp_path, ["2008_000652", "2008_000700", "2008_001978"])
    (root / "Annotations_Part" / "2008_001978.mat").write_bytes(b"MATLAB 5.0 garbage")  # corrupt .mat
    os.remove(root / "JPEGImages" / "2008_000652.jpg")  # annotation without image
    prefix = str(tmp_path / "out" / "pp")
    s = conversion.run_conversion(PascalPartConverter(str(root), keep_negatives=True), prefix, progress=False)
    kinds = {x.key: x.kind for x in s.skipped}
    assert kinds == {"2008_001978": "corrupt annotation", "2008_000652": "missing image"}
    assert s.images_written == 1
    with pytest.raises(conversion.ConversionError, match="2008_00"):
        conversion.run_conversion(
            PascalPartConverter(str(root)), str(tmp_path / "strict" / "pp"), strict=True, progress=False
        )
    assert not os.path.exists(tmp_path / "strict") or not any(
        f.endswith(".tfrecord") for f in os.listdir(tmp_path / "strict")
    )


def test_keep_negatives_writes_empty_images(fixtures_dir, tmp_path):
    root = _copy(fixtures_dir, tmp_path, ["2008_001978", "2010_001199"])  # bird; chairs with (0,0) parts
    prefix = str(tmp_path / "neg")
    s = conversion.run_conversion(PascalPartConverter(str(root), keep_negatives=True), prefix, progress=False)
    assert (s.images_written, s.negative_images, s.persons) == (2, 2, 0)
    s = conversion.run_conversion(PascalPartConverter(str(root)), str(tmp_path / "none"), progress=False)
    assert s.images_written == 0 and not os.path.exists(str(tmp_path / "none") + "-00000-of-00001.tfrecord")


def _write_mat(path, objects):
    """A synthetic Annotations_Part .mat with the real structure: objects = [(class, mask, [(part, mask)])]."""
    import scipy.io

    pdt = [("part_name", "O"), ("mask", "O")]
    objs = np.empty((1, len(objects)), dtype=[("class", "O"), ("class_ind", "O"), ("mask", "O"), ("parts", "O")])
    for i, (cls, mask, parts) in enumerate(objects):
        p = np.empty((1, len(parts)) if parts else (0, 0), dtype=pdt)
        for j, (name, m) in enumerate(parts):
            p[0, j] = (name, m.astype(np.uint8))
        objs[0, i] = (cls, np.array([[15]], np.uint8), mask.astype(np.uint8), p)
    anno = np.empty((1, 1), dtype=[("imname", "O"), ("objects", "O")])
    anno[0, 0] = (os.path.basename(path)[:-4], objs)
    scipy.io.savemat(path, {"anno": anno})


def test_synthetic_empty_parts_unknown_part_and_empty_mask(tmp_path):
    """Synthetic .mat files (the real fixtures have no person with empty parts)."""
    from PIL import Image

    root = tmp_path / "pp"
    (root / "Annotations_Part").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    h, w = 12, 16
    body = np.zeros((h, w), bool)
    body[2:10, 3:9] = True
    head = np.zeros((h, w), bool)
    head[2:4, 4:8] = True
    for name in ("a_noparts", "b_unknown", "c_emptymask", "d_size"):
        Image.fromarray(np.full((h, w, 3), 90, np.uint8)).save(root / "JPEGImages" / f"{name}.jpg")
    _write_mat(
        str(root / "Annotations_Part" / "a_noparts.mat"), [("person", body, []), ("person", body, [("head", head)])]
    )
    _write_mat(str(root / "Annotations_Part" / "b_unknown.mat"), [("person", body, [("tail", head)])])
    _write_mat(
        str(root / "Annotations_Part" / "c_emptymask.mat"),
        [("person", np.zeros((h, w), bool), []), ("person", body, [])],
    )
    _write_mat(str(root / "Annotations_Part" / "d_size.mat"), [("person", body[:, :10], [])])
    prefix = str(tmp_path / "out")
    s = conversion.run_conversion(PascalPartConverter(str(root)), prefix, progress=False)
    recs = {r.source_id: r for r in conversion.load_records(prefix)}
    assert sorted(recs) == ["a_noparts", "c_emptymask"]
    p0, p1 = recs["a_noparts"].persons
    assert list(p0.parts_valid) == [1, 0, 0, 0, 0, 0, 0]  # (0, 0) parts: body only
    assert list(p1.parts_valid) == [1] * 7
    np.testing.assert_array_equal(p1.channel(HEAD), head)
    assert len(recs["c_emptymask"].persons) == 1
    reasons = {x.key: x.reason for x in s.skipped}
    assert "'tail'" in reasons["b_unknown"] and reasons["b_unknown"].startswith("unknown part name")
    assert reasons["c_emptymask#person0"].startswith("empty person mask")
    assert reasons["d_size"].startswith("size mismatch")
