"""Drawing: part colours, outlines, skeleton sides, legend, side-by-side layout, plots and the CLIs.

Scenes are the hand-built stick figures of ``tests/helpers/scenes.py`` (people facing the camera, so the
subject's left limbs are on the image's right).
"""

import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from helpers import scenes
from maskrcnn_body import constants
from maskrcnn_body.data.schema import unpack_channels
from maskrcnn_body.drawing import draw, plots
from maskrcnn_body.evaluation import dumps, evaluate

ROOT = pathlib.Path(__file__).resolve().parents[1]
H, W, M = 64, 96, 36
BOXES = [(6, 14, 42, 50), (50, 10, 86, 46)]
LEFT_ARM, RIGHT_LEG = constants.CHANNEL_INDEX["left_arm"], constants.CHANNEL_INDEX["right_leg"]


def dump(seed=0):
    s = scenes.make_scene(H, W, BOXES, seed=seed)
    return dict(s, **scenes.perfect_predictions(s, M))


def test_skeleton_colours_follow_the_subjects_sides():
    kp = constants.KEYPOINT_INDEX
    assert draw.segment_colour(kp["left_elbow"], kp["left_wrist"]) == constants.PART_COLOURS[LEFT_ARM]
    assert (
        draw.segment_colour(kp["neck"], kp["right_shoulder"])
        == constants.PART_COLOURS[constants.CHANNEL_INDEX["right_arm"]]
    )
    assert draw.segment_colour(kp["right_knee"], kp["right_ankle"]) == constants.PART_COLOURS[RIGHT_LEG]
    assert (
        draw.segment_colour(kp["belly"], kp["left_hip"]) == constants.PART_COLOURS[constants.CHANNEL_INDEX["left_leg"]]
    )
    assert draw.segment_colour(kp["face"], kp["neck"]) == draw.CENTRE
    assert len(set(constants.PART_COLOURS.values())) == 6


def test_overlay_colours_parts_outlines_body_and_keeps_background():
    d = dump()
    pasted = unpack_channels(d["gt_parts"])
    out = draw.overlay_parts(d["image"], pasted)
    img = d["image"].astype(np.float32)
    # a pixel inside the first person's left arm (image right side of its box), away from the outline
    y, x = 14 + 15, 6 + 32
    assert pasted[0, y, x, LEFT_ARM] and not draw._outline(pasted[0, ..., 0])[y, x]
    want = (1 - draw.PART_ALPHA) * img[y, x] + draw.PART_ALPHA * np.array(constants.PART_COLOURS[LEFT_ARM])
    np.testing.assert_allclose(out[y, x], want, atol=1)
    assert tuple(out[49, 6 + 12]) == draw.OUTLINE  # bottom row of the right leg is on the outline
    np.testing.assert_array_equal(out[0, 0], d["image"][0, 0])  # background untouched


def test_rendered_skeleton_is_not_mirrored():
    d = dump()
    scale = draw.auto_scale(H, W, 256)
    pic = np.asarray(draw.render_dump(d, side_by_side=False))
    kp = d["keypoints"][0]
    for a, b in constants.SKELETON_INDEX:
        mid = (kp[a, :2] + kp[b, :2]) / 2 * scale
        px = pic[int(mid[1]), int(mid[0])]
        assert tuple(px) == draw.segment_colour(a, b), (constants.KEYPOINTS[a], constants.KEYPOINTS[b])
    # the left wrist is drawn on the image's right half of the person's box (facing the camera)
    cx = (BOXES[0][0] + BOXES[0][2]) / 2
    assert kp[constants.KEYPOINT_INDEX["left_wrist"], 0] > cx > kp[constants.KEYPOINT_INDEX["right_wrist"], 0]


def test_side_by_side_layout_and_legend():
    d = dump()
    single = draw.render_dump(d)
    both = draw.render_dump(d, side_by_side=True)
    scale = draw.auto_scale(H, W, 256)
    assert scale == 4 and single.width == W * scale and single.height > H * scale
    assert both.width == 2 * W * scale + 4 and H * scale < both.height <= single.height
    legend = np.asarray(both)[H * scale :]
    for colour in constants.PART_COLOURS.values():
        assert (legend == colour).all(-1).any(), colour
    # perfect predictions: away from titles and score labels, both halves are the same picture
    left, right = np.asarray(both)[: H * scale, : W * scale], np.asarray(both)[: H * scale, W * scale + 4 :]
    np.testing.assert_array_equal(left[H * scale // 2], right[H * scale // 2])  # perfect prediction == GT row


def test_low_scores_are_not_drawn():
    d = dump()
    d["scores"] = np.array([0.9, 0.1], np.float32)
    pic = np.asarray(draw.render_dump(d, score_threshold=0.5))
    scale = draw.auto_scale(H, W, 256)
    x1, y1, x2, y2 = (v * scale for v in BOXES[1])
    assert not (pic[y1 + 4 : y2 - 4, x1 + 4 : x2 - 4] == constants.PART_COLOURS[LEFT_ARM]).all(-1).any()


def test_plots_written(tmp_path):
    r = evaluate([dump(0), dict(dump(1), **scenes.empty_predictions(M))])
    paths = plots.save_plots(r, str(tmp_path))
    for p in paths:
        im = Image.open(p)
        assert im.width > 300 and im.height > 200
        assert len(np.unique(np.asarray(im.convert("RGB")).reshape(-1, 3), axis=0)) > 10


def _run(script, *args):
    code = (
        f"import runpy, sys; sys.argv = {[script] + list(args)!r}\n"
        f"try:\n    runpy.run_path({script!r}, run_name='__main__')\nexcept SystemExit as e:\n"
        "    assert not e.code, e.code\nprint('TF_IMPORTED' if 'tensorflow' in sys.modules else 'NO_TF')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(ROOT))
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def test_draw_cli_without_tensorflow(tmp_path):
    for i in range(2):
        dumps.write_dump(str(tmp_path / "dumps" / f"{i}.npz"), **dump(i))
    out = _run(
        "draw/draw.py", "--dumps", str(tmp_path / "dumps"), "--out_dir", str(tmp_path / "pics"), "--side_by_side"
    )
    assert out.strip().endswith("NO_TF")
    names = sorted(p.name for p in (tmp_path / "pics").glob("*.png"))
    assert names == ["00000_synthetic_0.png", "00001_synthetic_1.png", "part_ap.png", "pr_curves.png"]


def test_visualize_records_draws_ground_truth(tmp_path):
    pytest.importorskip("tensorflow")
    from maskrcnn_body.data import schema, writer

    s = scenes.make_scene(H, W, BOXES)
    persons = [schema.make_person(p, v, k) for p, v, k in zip(s["gt_parts"], s["gt_valid"], s["gt_keypoints"])]
    rec = schema.ImageRecord(schema.encode_png(s["image"]), b"png", H, W, "a/b", "synthetic", persons)
    writer.write_records(str(tmp_path / "r"), [schema.encode_example(rec)] * 3)
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "convert_data" / "visualize_records.py"),
            "--records",
            str(tmp_path / "r-*.tfrecord"),
            "--out_dir",
            str(tmp_path / "out"),
            "--max",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    paths = sorted(str(p) for p in (tmp_path / "out").glob("*.png"))
    assert [pathlib.Path(p).name for p in paths] == ["00000_synthetic_a_b.png", "00001_synthetic_a_b.png"]
    pic = np.asarray(Image.open(paths[0]))
    gt_panel = np.asarray(
        draw.ground_truth_panel(
            s["image"], s["gt_parts"], s["gt_valid"], s["gt_boxes"], s["gt_keypoints"], 4, title=None
        )
    )
    scale = 4
    # same drawing code: identical pixels below the title bar
    np.testing.assert_array_equal(pic[40 : H * scale], gt_panel[40 : H * scale])


def test_boxes_thinner_than_a_pixel_are_drawn():
    """Issue 25: a box of height 0.5 px (thin images) made /v1/render answer 500 (PIL: y1 < y0)."""
    image = np.full((16, 320, 3), 90, np.uint8)
    boxes = np.array([[10.0, 15.5, 200.0, 16.0], [50.0, 2.0, 50.4, 12.0]], np.float32)
    pic = draw.draw_people(image, np.zeros((2, 16, 320, 7), bool), boxes, scores=[0.9, 0.8])
    assert pic.size == (320, 16) and (np.asarray(pic) != 90).any()
