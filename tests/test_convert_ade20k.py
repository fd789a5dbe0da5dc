"""ADE20K converter: datumaro 2017 fixtures (synthetic 4x3), real 2021 fixtures, and the person-part
mapping on SYNTHETIC images built with the real label encoding (the real fixtures' persons have no parts)."""

import json

import numpy as np
import pytest
import scipy.io
from PIL import Image

from maskrcnn_body import constants
from maskrcnn_body.convert.ade20k import PERSON_NAME, Ade20kConverter, decode_label_png, read_atr
from maskrcnn_body.data import conversion

STREET = "ADE20K_2021_17_01/images/ADE/training/urban/street"
CH = constants.CHANNEL_INDEX


def test_atr_parsing(fixtures_dir):
    lines = read_atr(str(fixtures_dir / "ade20k_2017" / "validation" / "2_atr.txt"))  # no final newline
    assert [(a.instance, a.level, a.raw) for a in lines] == [
        (1, 0, "sky"),
        (2, 0, "person"),
        (1, 1, "license plate"),
        (1, 2, "rim"),
    ]
    assert lines[1].wordnet == PERSON_NAME
    assert read_atr(str(fixtures_dir / "ade20k_2017" / "training" / "street" / "1_atr.txt"))[1].attributes == (
        "walkin",
    )


def test_bad_atr_line(tmp_path):
    p = tmp_path / "x_atr.txt"
    p.write_text("001 # 0 # 0 # sky # sky\n")
    with pytest.raises(conversion.SkipItem, match="line 1 has 5"):
        read_atr(str(p))


def test_datumaro_2017_fixtures(fixtures_dir, tmp_path):
    root = str(fixtures_dir / "ade20k_2017")
    conv = Ade20kConverter(root)
    base = str(fixtures_dir / "ade20k_2017" / "training" / "street" / "1")
    img = conversion.load_image(base + ".jpg")
    (person,) = conv.find_persons(base, img)  # person by the atr name (class values are not real)
    np.testing.assert_array_equal(np.nonzero(person.body.any(0))[0], [2, 3])
    assert person.body.all(0)[2:].all()
    ((name, mask),) = person.parts
    assert name == "license plate" and np.nonzero(mask.any(0))[0].tolist() == [3]
    (person,) = conv.find_persons(str(fixtures_dir / "ade20k_2017" / "validation" / "2"), img)
    assert np.nonzero(person.body.any(0))[0].tolist() == [2] and person.parts == []
    prefix = str(tmp_path / "a17")
    s = conversion.run_conversion(conv, prefix, progress=False)
    (rec,) = conversion.load_records(prefix)
    assert rec.source_id == "validation/2" and list(rec.persons[0].parts_valid) == [1, 0, 0, 0, 0, 0, 0]
    (skip,) = s.skipped  # a licence plate on a person is not a body part: fail loudly
    assert skip.key == "training/street/1" and skip.kind == "unknown part name" and "license plate" in skip.reason


def test_real_2021_fixtures(fixtures_dir, tmp_path):
    prefix = str(tmp_path / "a21")
    s = conversion.run_conversion(
        Ade20kConverter(str(fixtures_dir / "ade20k_2021"), split="training"), prefix, progress=False
    )
    recs = {r.source_id.rsplit("/", 1)[1]: r for r in conversion.load_records(prefix)}
    assert {k: len(r.persons) for k, r in recs.items()} == {"ADE_train_00016869": 9, "ADE_train_00016900": 4}
    assert [x.key.rsplit("/", 1)[1] for x in s.skipped] == ["ADE_train_00016964"]
    assert s.skipped[0].reason == "no persons"
    seg = np.asarray(Image.open(fixtures_dir / "ade20k_2021" / STREET / "ADE_train_00016869_seg.png"))
    cls, inst = decode_label_png(seg)
    ndx = {
        o["name_ndx"]
        for o in json.loads((fixtures_dir / "ade20k_2021" / STREET / "ADE_train_00016869.json").read_text())[
            "annotation"
        ]["object"]
    }
    assert cls.dtype == np.int32 and cls.max() > 255 and set(np.unique(cls)) - {0} <= ndx  # no mod-256 wrap
    union = np.zeros(cls.shape, bool)
    for p in recs["ADE_train_00016869"].persons:
        body = p.channel(0)
        assert (cls[body] == 1831).all() and len(np.unique(inst[body])) == 1  # one B rank of the person class
        assert list(p.parts_valid) == [1, 0, 0, 0, 0, 0, 0]
        union |= body
    np.testing.assert_array_equal(union, cls == 1831)


# ----------------------------------------------------------------------------- synthetic, real encoding
NAMES = ["sky", PERSON_NAME, "head", "left arm", "right arm", "left leg", "right leg", "torso", "arm", "license plate"]
ID = {n: i + 1 for i, n in enumerate(NAMES)}  # 1-based class ids as in index_ade20k.mat
H, W = 10, 12


def _encode(cls, inst):
    """The real _seg/_parts encoding: R = (class // 256) * 10, G = class % 256, B = spaced instance value."""
    cls = np.asarray(cls, np.int32)
    return np.stack([(cls // 256) * 10, cls % 256, np.asarray(inst) * 5], -1).astype(np.uint8)


def _two_people():
    """Person A (cols 1-4) facing the camera and person B (cols 7-10); class ids offset by 2000 (> 255)."""
    cls = np.zeros((H, W), np.int32)
    inst = np.zeros((H, W), np.int32)
    cls[:, :] = ID["sky"]
    cls[1:9, 1:5] = cls[1:9, 7:11] = ID[PERSON_NAME]
    inst[1:9, 1:5], inst[1:9, 7:11] = 3, 7
    pcls = np.zeros((H, W), np.int32)
    pinst = np.zeros((H, W), np.int32)
    # A: head, right arm on the image's left (col 1), left arm (col 4), legs; no torso
    for rows, cols, name, k in (
        ((1, 3), (2, 4), "head", 1),
        ((3, 6), (1, 2), "right arm", 2),
        ((3, 6), (4, 5), "left arm", 3),
        ((6, 9), (2, 3), "right leg", 4),
        ((6, 9), (3, 4), "left leg", 5),
        # B: a torso and an unsided arm
        ((3, 6), (8, 10), "torso", 6),
        ((3, 6), (7, 8), "arm", 7),
    ):
        pcls[rows[0] : rows[1], cols[0] : cols[1]] = ID[name]
        pinst[rows[0] : rows[1], cols[0] : cols[1]] = k
    return cls, inst, pcls, pinst


def _write_2016(root, cls, inst, pcls, pinst, names):
    d = root / "images" / "training" / "a" / "abbey"
    d.mkdir(parents=True)
    Image.fromarray(np.full((H, W, 3), 128, np.uint8)).save(d / "ADE_train_1.jpg")
    Image.fromarray(_encode(cls, inst)).save(d / "ADE_train_1_seg.png")
    Image.fromarray(_encode(pcls, pinst)).save(d / "ADE_train_1_parts_1.png")
    index = np.empty((1, 1), dtype=[("objectnames", "O")])
    index[0, 0] = (np.array([[np.array([n]) for n in names]], dtype=object),)
    scipy.io.savemat(str(root / "index_ade20k.mat"), {"index": index})


def _check_two_people(recs, derive_torso=False):
    (rec,) = recs
    a, b = sorted(rec.persons, key=lambda p: p.bbox[0])
    assert list(a.bbox) == [1, 1, 5, 9] and list(b.bbox) == [7, 1, 11, 9]
    assert a.channel(CH["right_arm"])[3:6, 1].all() and a.channel(CH["left_arm"])[3:6, 4].all()
    assert a.channel(CH["head"]).sum() == 4 and a.channel(CH["right_leg"])[6:9, 2].all()
    assert list(a.parts_valid) == ([1] * 7 if derive_torso else [1, 1, 0, 1, 1, 1, 1])  # no torso part
    assert list(b.parts_valid) == [1, 1, 1, 0, 0, 1, 1]  # unsided "arm": both arm channels unknown
    assert not b.channel(CH["left_arm"]).any() and not b.channel(CH["right_arm"]).any()
    assert b.channel(CH["torso"]).sum() == 6
    return a


def test_synthetic_2016_layout_with_index(tmp_path):
    root = tmp_path / "ADE20K_2016_07_26"
    cls, inst, pcls, pinst = _two_people()
    cls, pcls = cls + 2000 * (cls > 0), pcls + 2000 * (pcls > 0)  # ids > 255: the mod-256 trap
    _write_2016(root, cls, inst, pcls, pinst, ["x"] * 2000 + NAMES)
    prefix = str(tmp_path / "o16")
    conversion.run_conversion(Ade20kConverter(str(root)), prefix, progress=False)
    _check_two_people(conversion.load_records(prefix))
    conversion.run_conversion(Ade20kConverter(str(root), derive_torso=True), prefix, progress=False)
    a = _check_two_people(conversion.load_records(prefix), derive_torso=True)
    assert a.channel(CH["torso"])[3:6, 2:4].all() and not a.channel(CH["torso"])[1:3].any()


def test_synthetic_2021_layout_json_links(tmp_path):
    cls, inst, pcls, pinst = _two_people()
    d = tmp_path / "ADE20K_2021_17_01" / "images" / "ADE" / "validation" / "x" / "y"
    (d / "ADE_val_1").mkdir(parents=True)
    Image.fromarray(np.full((H, W, 3), 128, np.uint8)).save(d / "ADE_val_1.jpg")
    Image.fromarray(_encode(cls, inst)).save(d / "ADE_val_1_seg.png")
    objects = []

    def add(name, mask, level, parent):
        i = len(objects)
        path = f"ADE_val_1/instance_{i:03d}_ADE_val_1.png"
        Image.fromarray(np.where(mask, 255, 0).astype(np.uint8)).save(d / path)
        objects.append(
            {
                "id": i,
                "name": name,
                "name_ndx": ID[name],
                "raw_name": name,
                "parts": {"hasparts": [], "ispartof": parent if parent is not None else [], "part_level": level},
                "instance_mask": path,
                "occluded": [],
                "crop": "0",
            }
        )
        return i

    pa = add(PERSON_NAME, inst == 3, 0, None)
    pb = add(PERSON_NAME, inst == 7, 0, None)
    for k in range(1, 8):
        m = pinst == k
        add(NAMES[int(pcls[m][0]) - 1], m, 1, pa if k <= 5 else pb)
    add("license plate", np.zeros((H, W), bool), 1, 99)  # a part of another object: not used
    (d / "ADE_val_1.json").write_text(json.dumps({"annotation": {"filename": "ADE_val_1.jpg", "object": objects}}))
    prefix = str(tmp_path / "o21")
    s = conversion.run_conversion(Ade20kConverter(str(tmp_path), split="validation"), prefix, progress=False)
    assert s.skipped == []
    _check_two_people(conversion.load_records(prefix))
    Image.fromarray(np.zeros((H, W + 1), np.uint8)).save(d / objects[pa]["instance_mask"])  # wrong size
    s = conversion.run_conversion(Ade20kConverter(str(tmp_path)), str(tmp_path / "bad"), progress=False)
    assert s.images_written == 0 and s.skipped[0].kind == "size mismatch"
