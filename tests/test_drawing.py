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
from maskrcnn_body.drawing import people, plots
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
    assert people.segment_colour(kp["left_elbow"], kp["left_wrist"]) == constants.PART_COLOURS[LEFT_ARM]
    assert (
        people.segment_colour(kp["neck"], kp["right_shoulder"])
        == constants.PART_COLOURS[constants.CHANNEL_INDEX["right_arm"]]
    )
    assert people.segment_colour(kp["right_knee"], kp["right_ankle"]) == constants.PART_COLOURS[RIGHT_LEG]
    assert (
        people.segment_colour(kp["belly"], kp["left_hip"])
        == constants.PART_COLOURS[constants.CHANNEL_INDEX["left_leg"]]
    )
    assert people.segment_colour(kp["face"], kp["neck"]) == people.CENTRE
    assert len(set(constants.PART_COLOURS.values())) == 6


def test_overlay_colours_parts_outlines_body_and_keeps_background():
    d = dump()
    pasted = unpack_channels(d["gt_parts"])
    out = people.overlay_parts(d["image"], pasted)
    img = d["image"].astype(np.float32)
    # a pixel inside the first person's left arm (image right side of its box), away from the outline
    y, x = 14 + 15, 6 + 32
    assert pasted[0, y, x, LEFT_ARM] and not people._outline(pasted[0, ..., 0])[y, x]
    want = (1 - people.PART_ALPHA) * img[y, x] + people.PART_ALPHA * np.array(constants.PART_COLOURS[LEFT_ARM])
    np.testing.assert_allclose(out[y, x], want, atol=1)
    assert tuple(out[49, 6 + 12]) == people.OUTLINE  # bottom row of the right leg is on the outline
    np.testing.assert_array_equal(out[0, 0], d["image"][0, 0])  # background untouched


def test_rendered_skeleton_is_not_mirrored():
    d = dump()
    scale = people.auto_scale(H, W, 256)
    pic = np.asarray(people.render_dump(d, side_by_side=False))
    kp = d["keypoints"][0]
    for a, b in constants.SKELETON_INDEX:
        mid = (kp[a, :2] + kp[b, :2]) / 2 * scale
        px = pic[int(mid[1]), int(mid[0])]
        assert tuple(px) == people.segment_colour(a, b), (constants.KEYPOINTS[a], constants.KEYPOINTS[b])
    # the left wrist is drawn on the image's right half of the person's box (facing the camera)
    cx = (BOXES[0][0] + BOXES[0][2]) / 2
    assert kp[constants.KEYPOINT_INDEX["left_wrist"], 0] > cx > kp[constants.KEYPOINT_INDEX["right_wrist"], 0]


def test_side_by_side_layout_and_legend():
    d = dump()
    single = people.render_dump(d)
    both = people.render_dump(d, side_by_side=True)
    scale = people.auto_scale(H, W, 256)
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
    pic = np.asarray(people.render_dump(d, score_threshold=0.5))
    scale = people.auto_scale(H, W, 256)
    x1, y1, x2, y2 = (v * scale for v in BOXES[1])
    assert not (pic[y1 + 4 : y2 - 4, x1 + 4 : x2 - 4] == constants.PART_COLOURS[LEFT_ARM]).all(-1).any()


def test_boxes_thinner_than_a_pixel_are_drawn():
    """An untrained model predicts boxes under one pixel high; drawing them must not fail (PIL refuses a
    rectangle whose bottom is above its top)."""
    pasted = np.zeros((2, H, W, 7), bool)
    boxes = np.array([[10, 20.2, 30, 20.6], [5, 5, 5.5, 40]], np.float32)
    pic = people.draw_people(np.zeros((H, W, 3), np.uint8), pasted, boxes=boxes, scores=[0.3, 0.2], scale=1)
    assert np.asarray(pic).any()
    # issue 25: a 16x320 image's boxes of height 0.5 px made /v1/render answer 500 (PIL: y1 < y0)
    image = np.full((16, 320, 3), 90, np.uint8)
    boxes = np.array([[10.0, 15.5, 200.0, 16.0], [50.0, 2.0, 50.4, 12.0]], np.float32)
    pic = people.draw_people(image, np.zeros((2, 16, 320, 7), bool), boxes, scores=[0.9, 0.8])
    assert pic.size == (320, 16) and (np.asarray(pic) != 90).any()


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
        people.ground_truth_panel(
            s["image"], s["gt_parts"], s["gt_valid"], s["gt_boxes"], s["gt_keypoints"], 4, title=None
        )
    )
    scale = 4
    # same drawing code: identical pixels below the title bar
    np.testing.assert_array_equal(pic[40 : H * scale], gt_panel[40 : H * scale])


# --------------------------------------------------------------------------- Result.plot and its options
def _result(seed=0, track_ids=None):
    from maskrcnn_body.inference.api import make_result

    d = dump(seed)
    det = {k: d[k] for k in ("boxes", "scores", "masks", "keypoints")}
    r = make_result(d["image"], det, 0.0)
    for p, t in zip(r.persons, track_ids or []):
        p.track_id = t
    return r, d


def _pixel_in_part(d, channel):
    """(y, x) of a pixel of person 0's ``channel``, away from its body outline."""
    pasted = unpack_channels(d["gt_parts"])[0]
    ys, xs = np.nonzero(pasted[..., channel] & ~people._outline(pasted[..., 0]))
    return ys[len(ys) // 2], xs[len(xs) // 2]


def test_plot_is_the_input_size_by_default_and_the_legend_is_an_option():
    r, _ = _result()
    plain = r.plot()
    assert plain.shape == (H, W, 3) and plain.dtype == np.uint8
    with_legend = r.plot(legend=True)
    assert with_legend.shape[1] == W and with_legend.shape[0] > H
    np.testing.assert_array_equal(with_legend[:H], plain)
    for colour in constants.PART_COLOURS.values():
        assert (with_legend[H:] == colour).all(-1).any(), colour


def test_plot_parts_alpha_and_which_parts():
    r, d = _result()
    image = d["image"]
    plot = lambda **kw: r.plot(boxes=False, keypoints=False, **kw)  # noqa: E731  (the parts alone)
    y, x = _pixel_in_part(d, LEFT_ARM)
    head = _pixel_in_part(d, constants.CHANNEL_INDEX["head"])
    want = (1 - people.PART_ALPHA) * image[y, x] + people.PART_ALPHA * np.array(constants.PART_COLOURS[LEFT_ARM])
    np.testing.assert_allclose(plot()[y, x], want, atol=1)
    np.testing.assert_array_equal(plot(parts=False)[y, x], image[y, x])
    np.testing.assert_array_equal(plot(alpha=0.0)[y, x], image[y, x])
    assert tuple(plot(alpha=1.0)[y, x]) == constants.PART_COLOURS[LEFT_ARM]
    only_head = plot(parts=["head"])
    np.testing.assert_array_equal(only_head[y, x], image[y, x])
    assert tuple(only_head[head]) != tuple(image[head])
    with pytest.raises(ValueError, match="unknown channel"):
        r.plot(parts=["tail"])
    with pytest.raises(ValueError, match="alpha"):
        r.plot(alpha=1.5)


def test_plot_boxes_line_width_and_track_ids():
    r, _ = _result()
    x1, y1, _, y2 = BOXES[1]
    ym = (y1 + y2) // 2
    plot = lambda r, **kw: r.plot(parts=False, keypoints=False, **kw)  # noqa: E731  (the boxes alone)
    assert tuple(plot(r)[ym, x1]) == people.BOX and tuple(plot(r)[ym, x1 + 1]) != people.BOX
    assert tuple(plot(r, boxes=False)[ym, x1]) != people.BOX
    thick = plot(r, line_width=3)
    assert all(tuple(thick[ym, x1 + i]) == people.BOX for i in range(3))
    tracked, _ = _result(track_ids=[7, 3])
    pic = plot(tracked)
    assert tuple(pic[ym, x1]) == people.track_colour(3) != people.BOX
    # the label "#3 0.80" in the track's colour, wider than the score alone
    near = lambda a, colour: np.abs(a[: y1 - 1, x1:].astype(int) - colour).sum(-1) < 150  # noqa: E731 (anti-aliased)
    label, plain = near(pic, people.track_colour(3)), near(plot(r), people.BOX)
    assert np.flatnonzero(label.any(0)).max() > np.flatnonzero(plain.any(0)).max() + 5


def test_plot_draws_joints_above_kpt_thr_only():
    r, d = _result()
    j = constants.KEYPOINT_INDEX["left_wrist"]
    r.persons[0].keypoints[j, 2] = 0.01  # below the default threshold
    x, y = (int(v) for v in d["keypoints"][0, j, :2])
    colour = people.joint_colour("left_wrist")
    near = lambda pic: (pic[y - 1 : y + 2, x - 1 : x + 2] == colour).all(-1).any()  # noqa: E731
    assert people.KEYPOINT_THRESHOLD > 0.01 and not near(r.plot()) and near(r.plot(kpt_thr=0.0))
    assert not near(r.plot(keypoints=False, kpt_thr=0.0))


def test_save_writes_the_plot_with_its_options_and_render_png_is_the_same_drawing(tmp_path):
    import io

    from maskrcnn_body.inference.api import render_png

    r, d = _result()
    assert Image.open(r.save(tmp_path / "a.png")).size == (W, H)
    assert Image.open(r.save(tmp_path / "b.png", legend=True)).size[1] > H
    with pytest.raises(TypeError, match="apply to pictures"):
        r.save(tmp_path / "a.json", legend=True)
    det = {k: d[k] for k in ("boxes", "scores", "masks", "keypoints")}
    png = np.asarray(Image.open(io.BytesIO(render_png(d["image"], det, 0.0))))
    np.testing.assert_array_equal(png, r.plot())
