"""JHMDB converter on the real clip (shared/fixtures/jhmdb) and on small synthetic clips
(puppet_flow parts, split files, bad inputs: the fixture has no flow or split file)."""

import numpy as np
import pytest
import scipy.io
from PIL import Image

from maskrcnn_body import constants
from maskrcnn_body.convert.jhmdb import JhmdbConverter, matlab_to_keypoints
from maskrcnn_body.data import conversion

VIDEO = "Goal_Keeping_Tips_catch_f_cm_np1_fr_med_2"
K = constants.KEYPOINT_INDEX


@pytest.fixture(scope="module")
def converted(fixtures_dir, tmp_path_factory):
    prefix = str(tmp_path_factory.mktemp("jh") / "jh")
    summary = conversion.run_conversion(JhmdbConverter(str(fixtures_dir / "jhmdb")), prefix, progress=False)
    return summary, conversion.load_records(prefix)


def test_forty_frames_one_person_body_only(converted, fixtures_dir):
    summary, recs = converted
    assert summary.images_written == 40 and summary.skipped == []
    assert [r.source_id for r in recs] == [f"{VIDEO}/{t:05d}" for t in range(1, 41)]
    mask = scipy.io.loadmat(str(fixtures_dir / "jhmdb" / "puppet_mask" / "catch" / VIDEO / "puppet_mask.mat"))
    for t in (0, 39):
        (p,) = recs[t].persons
        np.testing.assert_array_equal(p.channel(0), mask["part_mask"][:, :, t] != 0)
        assert list(p.parts_valid) == [1, 0, 0, 0, 0, 0, 0]  # no puppet_flow in the fixture
        assert (recs[t].height, recs[t].width, recs[t].image_format) == (240, 320, b"png")


def test_joints_shifted_in_order_inside_image(converted, fixtures_dir):
    _, recs = converted
    pos = scipy.io.loadmat(str(fixtures_dir / "jhmdb" / "joint_positions" / "catch" / VIDEO / "joint_positions.mat"))[
        "pos_img"
    ]
    for t, rec in enumerate(recs):
        kp = rec.persons[0].keypoints
        assert (kp[:, 2] == 2).all()
        np.testing.assert_allclose(kp[:, :2], pos[:, :, t].T - 0.5, atol=1e-4)
        assert (kp[:, 0] >= 0).all() and (kp[:, 0] < 320).all() and (kp[:, 1] >= 0).all() and (kp[:, 1] < 240).all()
    kp = recs[0].persons[0].keypoints
    # front-view clip: the subject's right side is on the image's left
    assert kp[K["right_shoulder"], 0] < kp[K["left_shoulder"], 0]
    assert kp[K["right_hip"], 0] < kp[K["left_hip"], 0]
    assert kp[K["face"], 1] < kp[K["neck"], 1] < kp[K["belly"], 1]


def test_outside_joints_unlabelled():
    pos = np.full((2, 15), 5.0)
    pos[0, 3] = 0.2  # x_schema = -0.3: outside
    pos[1, 4] = 10.5  # y_schema = 10.0 == H: outside (exclusive)
    pos[0, 5] = np.nan
    kp = matlab_to_keypoints(pos, height=10, width=20)
    assert list(np.nonzero(kp[:, 2] == 0)[0]) == [3, 4, 5]
    assert (kp[[3, 4, 5]] == 0).all() and np.allclose(kp[0], [4.5, 4.5, 2])


def _synthetic_clip(root, action, video, frames=3, flow=True, h=8, w=10, t_joints=None):
    """A tiny clip in the JHMDB layout: the person fills rows 1..6, cols 2..7."""
    (root / "Rename_Images" / action / video).mkdir(parents=True)
    for t in range(frames):
        Image.fromarray(np.full((h, w, 3), 40 * t, np.uint8)).save(
            root / "Rename_Images" / action / video / f"{t + 1:05d}.png"
        )
    body = np.zeros((h, w, frames), np.uint8)
    body[1:7, 2:8] = 1
    labels = np.zeros((h, w, frames), np.uint8)
    labels[1, 2:8] = 2  # head
    labels[2:4, 3:7] = 1  # torso
    labels[2:4, 2] = 3  # right upper arm: image left (front view)
    labels[2:4, 7] = 4  # left upper arm
    labels[4:7, 3] = 9  # right lower leg
    labels[4:7, 6] = 10  # left lower leg
    pos = np.full((2, 15, t_joints or frames), 4.0)
    for d, name, var, arr in (
        ("joint_positions", "joint_positions.mat", "pos_img", pos),
        ("puppet_mask", "puppet_mask.mat", "part_mask", body),
        ("puppet_flow_com", "puppet_flow.mat", "part_mask", labels),
    ):
        if d == "puppet_flow_com" and not flow:
            continue
        (root / d / action / video).mkdir(parents=True)
        scipy.io.savemat(str(root / d / action / video / name), {var: arr})
    return body, labels


def test_synthetic_flow_parts_and_splits(tmp_path):
    root = tmp_path / "jhmdb"
    _synthetic_clip(root, "wave", "v_front_1")
    _synthetic_clip(root, "wave", "v_test_2", flow=False)
    (root / "splits").mkdir()
    (root / "splits" / "wave_test_split1.txt").write_text("v_front_1.avi 1\nv_test_2.avi 2\n")
    prefix = str(tmp_path / "train1")
    s = conversion.run_conversion(JhmdbConverter(str(root), split="train1"), prefix, progress=False)
    recs = conversion.load_records(prefix)
    assert s.images_written == 3 and {r.source_id.split("/")[0] for r in recs} == {"v_front_1"}
    p = recs[0].persons[0]
    assert list(p.parts_valid) == [1] * 7
    ch = constants.CHANNEL_INDEX
    assert p.channel(ch["head"])[1, 2:8].all() and p.channel(ch["torso"])[2:4, 3:7].all()
    assert p.channel(ch["right_arm"])[2:4, 2].all() and p.channel(ch["left_arm"])[2:4, 7].all()
    assert p.channel(ch["right_leg"])[4:7, 3].all() and p.channel(ch["left_leg"])[4:7, 6].all()
    assert p.channel(ch["right_arm"]).sum() == 2
    s = conversion.run_conversion(JhmdbConverter(str(root), split="test1"), str(tmp_path / "test1"), progress=False)
    assert s.images_written == 3
    assert all(
        list(r.persons[0].parts_valid) == [1, 0, 0, 0, 0, 0, 0]
        for r in conversion.load_records(str(tmp_path / "test1"))
    )
    s = conversion.run_conversion(JhmdbConverter(str(root), split="train2"), str(tmp_path / "t2"), progress=False)
    assert s.images_written == 0 and s.skipped[0].kind == "missing split file"
    with pytest.raises(ValueError, match="train1..3"):
        JhmdbConverter(str(root), split="training")


def test_synthetic_bad_inputs(tmp_path):
    root = tmp_path / "jhmdb"
    _synthetic_clip(root, "run", "ok")
    _synthetic_clip(root, "run", "misaligned", t_joints=2)  # joints for 2 frames, masks for 3
    _synthetic_clip(root, "run", "corrupt")
    (root / "puppet_mask" / "run" / "corrupt" / "puppet_mask.mat").write_bytes(b"not a mat file")
    (root / "Rename_Images" / "run" / "ok" / "00002.png").unlink()  # annotation without its image
    m = scipy.io.loadmat(str(root / "puppet_mask" / "run" / "ok" / "puppet_mask.mat"))["part_mask"]
    m[:, :, 2] = 0  # empty mask in frame 3
    scipy.io.savemat(str(root / "puppet_mask" / "run" / "ok" / "puppet_mask.mat"), {"part_mask": m})
    s = conversion.run_conversion(JhmdbConverter(str(root)), str(tmp_path / "out"), progress=False)
    kinds = {x.key: x.kind for x in s.skipped}
    assert kinds == {
        "run/misaligned": "frame count mismatch",
        "run/corrupt": "corrupt annotation",
        "ok/00002": "missing image",
        "ok/00003": "empty person mask",
    }
    assert s.images_written == 1
