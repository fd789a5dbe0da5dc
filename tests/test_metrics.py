"""Evaluation: dumps format, COCO box/mask AP, parsing, keypoint, left/right and legacy metrics.

All scenes are tiny hand-built stick figures (``tests/helpers/scenes.py``), 64 x 96 pixels.
"""

import contextlib
import functools
import io
import json
import operator
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from helpers import scenes
from maskrcnn_body import constants
from maskrcnn_body.data.schema import unpack_channels
from maskrcnn_body.evaluation import dumps, evaluate, keypoints, matching, prepared, run_metrics
from maskrcnn_body.evaluation.parsing import average_precision
from maskrcnn_body.ops import paste

ROOT = pathlib.Path(__file__).resolve().parents[1]
H, W, M = 64, 96, 36
BOXES = [(6, 14, 42, 50), (50, 10, 86, 46)]  # 36 px squares: crop/paste at M = 36 is exact
LIMB_CHANNELS = ("left_arm", "right_arm", "left_leg", "right_leg")


def make_scenes(n=2):
    return [scenes.make_scene(H, W, BOXES, seed=i) for i in range(n)]


def perfect(scene):
    return dict(scene, **scenes.perfect_predictions(scene, M))


def all_values(summary):
    """Every leaf value of the metrics JSON except the left/right confusion figure."""
    out = {f"box.{k}": v for k, v in summary["box"].items()}
    out.update({f"mask.{c}.{k}": v for c, d in summary["mask"].items() for k, v in d.items()})
    for sec in ("parsing", "keypoints", "legacy"):
        for k, v in summary[sec].items():
            out.update({f"{sec}.{k}.{n}": x for n, x in v.items()} if isinstance(v, dict) else {f"{sec}.{k}": v})
    return out


# --------------------------------------------------------------------------- prepared
def test_channel_overlaps_and_areas_match_brute_force():
    rng = np.random.default_rng(5)
    gt = rng.integers(0, 128, (3, 10, 12), dtype=np.uint8)
    pred = rng.integers(0, 128, (10, 12), dtype=np.uint8)
    inter, inter_flip = prepared.channel_overlaps(gt, pred)
    g, p = unpack_channels(gt), unpack_channels(pred)
    np.testing.assert_array_equal(inter, (g & p[None]).sum(axis=(1, 2)))
    np.testing.assert_array_equal(inter_flip, (g[..., list(constants.CHANNEL_FLIP_PERM)] & p[None]).sum(axis=(1, 2)))
    np.testing.assert_array_equal(prepared.channel_areas(gt), g.sum(axis=(1, 2)))


# --------------------------------------------------------------------------- dumps
def test_dump_roundtrip_and_dtypes(tmp_path):
    s = perfect(make_scenes(1)[0])
    s["masks"] = s["masks"].astype(np.float32)  # write_dump converts to the format's float16
    p = dumps.write_dump(str(tmp_path / "a.npz"), **s)
    d = dumps.read_dump(p)
    assert d["source_id"] == "synthetic_0" and d["masks"].dtype == np.float16
    np.testing.assert_array_equal(d["gt_parts"], s["gt_parts"])
    assert [x["source_id"] for x in dumps.iter_dumps(str(tmp_path))] == ["synthetic_0"]
    assert not list(tmp_path.glob("*.tmp-*"))


def test_dump_validation_names_key_and_shape(tmp_path):
    s = perfect(make_scenes(1)[0])
    with pytest.raises(dumps.DumpError, match="'scores' has shape"):
        dumps.write_dump(str(tmp_path / "b.npz"), **dict(s, scores=np.zeros(5, np.float32)))
    with pytest.raises(dumps.DumpError, match="missing keys .*gt_valid"):
        dumps.write_dump(str(tmp_path / "b.npz"), **{k: v for k, v in s.items() if k != "gt_valid"})


def test_empty_dump_dir_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no .npz dumps"):
        run_metrics(str(tmp_path))


# --------------------------------------------------------------------------- whole-metric behaviour
def test_perfect_predictions_score_one_everywhere():
    r = evaluate([perfect(s) for s in make_scenes()])
    for name, v in all_values(r.summary).items():
        assert v == pytest.approx(1.0), name
    assert r.summary["left_right_confusion"] == {"arm": 0.0, "leg": 0.0}


def test_swapped_left_right_scores_low_on_limbs_and_high_on_confusion():
    preds = []
    for s in make_scenes():
        p = perfect(s)
        p["masks"] = p["masks"][..., list(constants.CHANNEL_FLIP_PERM)]
        preds.append(p)
    sm = evaluate(preds).summary
    for ch in LIMB_CHANNELS:
        assert sm["mask"][ch]["AP"] == 0.0 and sm["legacy"][ch] == 0.0
    for ch in ("body", "head", "torso"):
        assert sm["mask"][ch]["AP"] == pytest.approx(1.0)
    assert sm["left_right_confusion"] == {"arm": 1.0, "leg": 1.0}
    p = sm["parsing"]
    assert p["APp50"] == 0.0 and p["PCP50"] == 0.0 and p["APp50_parts"] == 0.0 and p["PCP50_parts"] == 0.0
    assert p["mIoU"] == pytest.approx(3 / 7)  # background, head and torso right, 4 limbs wrong
    assert p["mIoU_parts"] == pytest.approx(2 / 6)  # head and torso right, 4 limbs wrong
    assert p["IoU_per_part"] == pytest.approx(
        {"head": 1, "torso": 1, "left_arm": 0, "right_arm": 0, "left_leg": 0, "right_leg": 0}
    )


def test_empty_predictions_score_zero():
    sm = evaluate([dict(s, **scenes.empty_predictions(M)) for s in make_scenes()]).summary
    bg = sm["parsing"]["IoU_background"]  # all background predicted: right outside the people
    assert 0 < bg < 1 and sm["parsing"]["mIoU"] == pytest.approx(bg / 7)
    for name, v in all_values(sm).items():
        if name not in ("parsing.IoU_background", "parsing.mIoU"):
            assert v == 0.0, name
    assert sm["left_right_confusion"] == {"arm": None, "leg": None}


def test_unannotated_channels_are_ignored_not_missed():
    s1, s2 = make_scenes()
    s2 = dict(s2, gt_valid=s2["gt_valid"].copy(), gt_parts=s2["gt_parts"].copy())
    arms = [constants.CHANNEL_INDEX["left_arm"], constants.CHANNEL_INDEX["right_arm"]]
    s2["gt_valid"][0, arms] = 0
    for k in arms:  # unannotated channels are stored as zeros, as converters write them
        s2["gt_parts"][0] &= np.uint8(~(1 << k) & 0xFF)
    p2 = perfect(s2)
    p2["masks"][0] = perfect(make_scenes()[1])["masks"][0]  # the model still predicts arms there
    p2["scores"][0] = 0.99  # with the highest score
    sm = evaluate([perfect(s1), p2]).summary
    for ch in ("left_arm", "right_arm", "complete"):
        assert sm["mask"][ch]["AP"] == pytest.approx(1.0), ch
    assert sm["legacy"]["left_arm"] == pytest.approx(1.0)
    for key in ("mIoU", "APp50", "APp_vol", "PCP50", "mIoU_parts", "APp50_parts", "APp_vol_parts", "PCP50_parts"):
        assert sm["parsing"][key] == pytest.approx(1.0), key


def test_legacy_metric_hand_case():
    s1, s2 = make_scenes()
    p = perfect(s1)
    p1 = dict(
        p,
        boxes=np.concatenate([p["boxes"], [[44, 0, 94, 12], [45, 20, 75, 50], [0, 0, 96, 64]]]).astype(np.float32),
        scores=np.array([0.9, 0.8, 0.9, 0.95, 0.3], np.float32),
        masks=np.concatenate([p["masks"], np.ones((3, M, M, 7), np.float16)]),
        keypoints=np.concatenate([p["keypoints"], np.zeros((3, 15, 3), np.float32)]),
    )
    # extra detections not counted: 50 x 12 = 600 px and 30 x 30 = 900 px boxes (area <= 1000),
    # and the whole-image box (probability 0.3 <= 0.5); the two perfect people are good.
    sm = evaluate([p1, perfect(s2)]).summary["legacy"]
    assert sm["complete"] == pytest.approx(1.0)
    p1["boxes"][2] = [40, 0, 96, 30]  # 56 x 30 = 1680 px, box IoU 0.32 with person 1: a counted miss
    sm = evaluate([p1, perfect(s2)]).summary["legacy"]
    for row in ("complete", "body", "head", "left_leg"):
        assert sm[row] == pytest.approx((2 / 3 + 1) / 2), row


# --------------------------------------------------------------------------- parity with pycocotools
def _direct_cocoeval(gts, dts, iou_type):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {
            "images": [{"id": i + 1, "height": H, "width": W} for i in range(len(gts))],
            "categories": [{"id": 1}],
            "annotations": [
                dict(a, id=j + 1, image_id=a["image_id"], category_id=1, iscrowd=0)
                for j, a in enumerate(functools.reduce(operator.iadd, gts, []))
            ],
        }
        gt.createIndex()
        dt = gt.loadRes(functools.reduce(operator.iadd, dts, []))
        ev = COCOeval(gt, dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats[:3]


def test_box_and_body_mask_ap_match_direct_pycocotools():
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(3)
    dumps_, gts, dts_box, dts_segm = [], [], [], []
    for i, s in enumerate(make_scenes(3)):
        p = perfect(s)
        # degrade: jitter boxes, erode/grow masks, add a false positive
        p["boxes"] = (p["boxes"] + rng.uniform(-3, 3, p["boxes"].shape)).astype(np.float32)
        p["masks"] = (p["masks"].astype(np.float32) * rng.uniform(0.6, 1.3, p["masks"].shape)).astype(np.float16)
        p["boxes"] = np.concatenate([p["boxes"], [[30, 5, 60, 40]]]).astype(np.float32)
        p["scores"] = np.concatenate([rng.uniform(0.3, 1, 2), [0.7]]).astype(np.float32)
        p["masks"] = np.concatenate([p["masks"], p["masks"][:1]])
        p["keypoints"] = np.concatenate([p["keypoints"], p["keypoints"][:1]])
        dumps_.append(p)
        body = unpack_channels(s["gt_parts"])[..., 0]
        gts.append(
            [
                {
                    "image_id": i + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": float(m.sum()),
                    "segmentation": mask_utils.encode(np.asfortranarray(m.astype(np.uint8))),
                }
                for (x1, y1, x2, y2), m in zip(s["gt_boxes"].tolist(), body)
            ]
        )
        pasted = paste.paste_masks(p["masks"], p["boxes"], H, W)[..., 0]
        for (x1, y1, x2, y2), sc, m in zip(p["boxes"].tolist(), p["scores"].tolist(), pasted):
            dts_box.append({"image_id": i + 1, "category_id": 1, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": sc})
            dts_segm.append(
                {
                    "image_id": i + 1,
                    "category_id": 1,
                    "score": sc,
                    "segmentation": mask_utils.encode(np.asfortranarray(m.astype(np.uint8))),
                }
            )
    sm = evaluate(dumps_).summary
    want_box = _direct_cocoeval(gts, [dts_box], "bbox")
    want_mask = _direct_cocoeval(gts, [dts_segm], "segm")
    np.testing.assert_allclose([sm["box"][k] for k in ("AP", "AP50", "AP75")], want_box, atol=1e-9)
    np.testing.assert_allclose([sm["mask"]["body"][k] for k in ("AP", "AP50", "AP75")], want_mask, atol=1e-9)
    assert 0.05 < sm["mask"]["body"]["AP"] < 0.95  # the case is not trivially perfect or empty


def test_average_precision_hand_case():
    # ranked tp, fp, tp with 3 positives: PR points (1/3, 1), (2/3, 2/3) -> 1/3 * 1 + 1/3 * 2/3
    assert average_precision(np.array([0.9, 0.8, 0.7]), np.array([1, 0, 1], bool), 3) == pytest.approx(5 / 9)
    assert average_precision(np.zeros(0), np.zeros(0, bool), 2) == 0.0
    assert average_precision(np.zeros(0), np.zeros(0, bool), 0) is None


def test_greedy_match_prefers_high_score_and_skips_taken():
    iou = np.array([[0.6, 0.7], [0.9, 0.1]])
    np.testing.assert_array_equal(matching.greedy_match(iou, [0.5, 0.9], 0.5), [1, 0])
    np.testing.assert_array_equal(matching.greedy_match(iou, [0.9, 0.5], 0.5), [1, 0])
    np.testing.assert_array_equal(matching.greedy_match(iou[:, :1], [0.9, 0.5], 0.5), [0, -1])
    np.testing.assert_allclose(matching.box_iou([[0, 0, 2, 2]], [[1, 0, 3, 2], [5, 5, 6, 6]]), [[1 / 3, 0]])


# --------------------------------------------------------------------------- keypoints
def _one_person_keypoint_dump(dx=None):
    """One person with perfect predictions; dx (15,) shifts the predicted joints in x."""
    s = make_scenes(1)[0]
    s = dict(
        s,
        gt_boxes=s["gt_boxes"][:1],
        gt_parts=s["gt_parts"][:1],
        gt_valid=s["gt_valid"][:1],
        gt_keypoints=s["gt_keypoints"][:1],
    )
    p = perfect(s)
    if dx is not None:
        p["keypoints"][0, :, 0] += dx
    return p


@pytest.mark.parametrize("oks,ap", [(0.72, 0.5), (0.94, 0.9), (0.40, 0.0)])
def test_oks_ap_hand_case(oks, ap):
    # every joint j moved by d_j with exp(-d_j^2 / (2 area (2 sigma_j)^2)) = oks, so OKS = oks
    # exactly; AP = fraction of the thresholds 0.50:0.05:0.95 that are <= oks.
    area = float(unpack_channels(_one_person_keypoint_dump()["gt_parts"])[0, ..., 0].sum())
    sigma = np.asarray(constants.KEYPOINT_SIGMAS)
    dx = np.sqrt(-np.log(oks) * 2 * area * (2 * sigma) ** 2)
    assert evaluate([_one_person_keypoint_dump(dx)]).summary["keypoints"]["AP"] == pytest.approx(ap)


def test_pck_threshold_is_fifth_of_max_box_side():
    gt = np.zeros((15, 3))
    gt[:, 2] = 2
    gt[3, 2] = 0  # joint 3 unlabelled
    box = np.array([0, 0, 50, 100.0])  # max side 100 -> radius 20
    pred = gt[:, :2].copy()
    pred[0, 0] += 19.9
    pred[1, 1] += 20.1
    pred[3, 0] += 1000
    ok, lab = keypoints.pck_hits(pred, gt, box)
    assert lab.sum() == 14 and ok.sum() == 13 and ok[0] and not ok[1]
    ok, _ = keypoints.pck_hits(None, gt, box)
    assert ok.sum() == 0
    dx = np.zeros(15)
    dx[constants.KEYPOINT_INDEX["face"]] = 0.21 * 36  # box 36 px -> radius 7.2 px
    dx[constants.KEYPOINT_INDEX["neck"]] = 0.19 * 36
    assert evaluate([_one_person_keypoint_dump(dx)]).summary["keypoints"]["PCK@0.2"] == pytest.approx(14 / 15)


# --------------------------------------------------------------------------- CLI
def test_metric_cli_writes_json_without_tensorflow(tmp_path):
    for i, s in enumerate(make_scenes()):
        dumps.write_dump(str(tmp_path / f"{i}.npz"), **perfect(s))
    out = tmp_path / "m.json"
    code = (
        f"import runpy, sys; sys.argv = ['metric.py', '--dumps', {str(tmp_path)!r}, '--json', {str(out)!r}]\n"
        "try:\n    runpy.run_path('draw/metric.py', run_name='__main__')\nexcept SystemExit as e:\n"
        "    assert not e.code, e.code\nassert 'tensorflow' not in sys.modules, 'metric.py imported TF'\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(ROOT))
    assert r.returncode == 0, r.stderr[-2000:]
    sm = json.loads(out.read_text())
    assert set(sm) == {"box", "mask", "mask_by_size", "parsing", "keypoints", "left_right_confusion", "legacy"}
    assert set(sm["mask"]) == set(constants.CHANNELS) | {"complete"} and sm["mask"]["complete"]["AP"] == pytest.approx(
        1.0
    )
    assert "Full Body" in r.stdout
    assert list(sm["parsing"]) == [
        "mIoU",
        "IoU_background",
        "IoU_per_part",
        "APp50",
        "APp_vol",
        "PCP50",
        "mIoU_parts",
        "APp50_parts",
        "APp_vol_parts",
        "PCP50_parts",
    ]
    assert list(sm["parsing"]["IoU_per_part"]) == list(constants.CHANNELS[1:])
    assert "mIoU 100.0" in r.stdout and "left_arm 100.0" in r.stdout and "APp50_parts 100.0" in r.stdout


def test_mask_ap_by_person_size_separates_small_and_large_people():
    """``mask_by_size`` (box height: small < 80 px, medium 80-160, large >= 160): a large person predicted
    perfectly and a small one with its sides swapped give arms AP 1 for large, 0 for small, undefined
    (None) for medium, while the overall arm AP mixes both."""
    from maskrcnn_body.evaluation.metrics import SIZE_RANGES

    boxes = [(4, 4, 40, 40), (56, 8, 146, 188)]  # heights 36 (small) and 180 (large)
    scene = scenes.make_scene(200, 160, boxes, seed=3)
    pred = scenes.perfect_predictions(scene, 90)
    small = pred["masks"][0].copy()
    pred["masks"][0] = small[..., list(constants.CHANNEL_FLIP_PERM)]
    sm = evaluate([dict(scene, **pred)]).summary
    assert list(sm["mask_by_size"]) == list(SIZE_RANGES) == ["small", "medium", "large"]
    by = sm["mask_by_size"]
    for ch in LIMB_CHANNELS:
        assert by["large"][ch]["AP"] == pytest.approx(1.0) and by["small"][ch]["AP"] == 0.0
        assert by["medium"][ch]["AP"] is None
        assert 0.0 < sm["mask"][ch]["AP"] < 1.0
    assert by["small"]["torso"]["AP"] == pytest.approx(1.0)
