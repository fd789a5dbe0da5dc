"""ChaLearn LAP 2014 Track 1 converter on small SYNTHETIC sequences in both GT layouts
(no real ChaLearn files are available)."""

import numpy as np
from PIL import Image

from maskrcnn_body import constants
from maskrcnn_body.convert.chalearn import LIMB_NAMES, ChalearnConverter
from maskrcnn_body.data import conversion

H, W = 6, 8  # frame size; real frames are 480 px wide = one panorama tile
CH = constants.CHANNEL_INDEX


def _pixel(actor, k):
    """Actor 1 in columns 0-2, actor 2 in columns 7, 6, 5 (the last column of each tile is used)."""
    return (k - 1) // 3, (k - 1) % 3 if actor == 1 else W - 1 - (k - 1) % 3


def _limbs(actor):
    """14 (H, W) uint8 0/255 limb masks: limb k is one pixel at _pixel(actor, k)."""
    out = []
    for k in range(1, 15):
        m = np.zeros((H, W), np.uint8)
        m[_pixel(actor, k)] = 255
        out.append(m)
    return out


def _sequence(root, nested, frames=4, actors=(1, 2)):
    seq = root / "Seq01" / ("Seq01" if nested else "")
    (seq / "imagesjpg").mkdir(parents=True)
    gt = seq / ("masks" if nested else "maskspng")
    gt.mkdir()
    for f in range(1, frames + 1):
        Image.fromarray(np.full((H, W, 3), 30 * f, np.uint8)).save(seq / "imagesjpg" / f"01_{f:04d}.jpg")
        for a in actors:
            limbs = _limbs(a)
            if nested:  # one panoramic RGB PNG per actor: 14 full tiles side by side
                Image.fromarray(np.repeat(np.concatenate(limbs, 1)[..., None], 3, 2)).save(gt / f"01_{f:04d}_{a}.png")
            else:
                for k, m in enumerate(limbs, 1):
                    Image.fromarray(m).save(gt / f"01_{f:04d}_{a}_{k}.png")
    return seq


def _check(recs):
    for rec in recs:
        assert len(rec.persons) == 2
        for a, p in zip((1, 2), rec.persons):
            assert list(p.parts_valid) == [1] * 7
            assert p.channel(0).sum() == 14  # union of the 14 limbs
            for k, name in enumerate(LIMB_NAMES, 1):
                r, c = _pixel(a, k)
                ch = {"head": "head", "torso": "torso"}.get(name) or ("left_" if name[0] == "l" else "right_") + (
                    "arm" if name[1:] in ("hand", "forearm", "arm") else "leg"
                )
                assert p.channel(CH[ch])[r, c], (a, name)
                assert p.parts[r, c] == 1 | (1 << CH[ch])  # exactly one part channel


def test_starting_kit_layout_and_frame_step(tmp_path):
    _sequence(tmp_path / "ck", nested=False)
    prefix = str(tmp_path / "o1")
    s = conversion.run_conversion(ChalearnConverter(str(tmp_path / "ck"), frame_step=2), prefix, progress=False)
    recs = conversion.load_records(prefix)
    assert [r.source_id for r in recs] == ["Seq01/0001", "Seq01/0003"] and s.skipped == []
    _check(recs)


def test_panorama_layout_full_tiles(tmp_path):
    _sequence(tmp_path / "fr", nested=True, frames=2)
    prefix = str(tmp_path / "o2")
    conversion.run_conversion(ChalearnConverter(str(tmp_path / "fr")), prefix, progress=False)
    recs = conversion.load_records(prefix)
    assert len(recs) == 2
    _check(recs)  # actor 2 uses each tile's last column: a W-1 column slice would lose it


def test_missing_actor_unlabelled_and_bad_inputs(tmp_path):
    root = tmp_path / "mix"
    seq = _sequence(root, nested=False, frames=3, actors=(1,))
    (root / "Seq02" / "imagesjpg").mkdir(parents=True)  # no GT folder: unlabelled sequence
    (seq / "maskspng" / "01_0002_1_5.png").unlink()  # one limb file missing
    (seq / "imagesjpg" / "01_0003.jpg").write_bytes(b"\xff\xd8 truncated")  # corrupt JPEG
    s = conversion.run_conversion(ChalearnConverter(str(root)), str(tmp_path / "o3"), progress=False)
    recs = conversion.load_records(str(tmp_path / "o3"))
    assert [len(r.persons) for r in recs] == [1]  # actor 2 absent, not an error
    assert {x.key: x.kind for x in s.skipped} == {
        "Seq02": "no ground truth",
        "Seq01/0002": "missing mask",
        "Seq01/0003": "corrupt image",
    }
    assert [x.bad for x in s.skipped] == [False, True, True]
