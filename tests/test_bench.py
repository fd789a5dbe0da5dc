"""The benchmark harness (bench/): helpers, the report's ratios and verdicts, and a smoke run of
``bench.run_all`` at minimal sizes so the harness never rots (one tiny subprocess per worker)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from bench import common, report, report_torchvision

pytestmark = pytest.mark.slow  # benchmark smoke runs: `make test-fast` leaves these out

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_time_runs_counts_calls_and_reports_median():
    calls = []
    res = common.time_runs(lambda: calls.append(1), repeats=3, warmup=2)
    assert len(calls) == 5
    assert len(res["times_s"]) == 3 and len(res["cpu_times_s"]) == 3
    assert res["median_s"] == sorted(res["times_s"])[1]
    assert res["min_s"] <= res["median_s"]
    with pytest.raises(ValueError, match="repeats"):
        common.time_runs(lambda: None, repeats=0)


def test_synthetic_people_masks_fill_their_boxes():
    gt = common.synthetic_people(96, num_people=3)
    assert gt["image"].shape == (96, 96, 3) and gt["masks"].shape == (3, 96, 96)
    for box, mask, kps in zip(gt["boxes"], gt["masks"], gt["keypoints"]):
        x1, y1, x2, y2 = box
        assert 0 <= x1 < x2 <= 96 and 0 <= y1 < y2 <= 96
        ys, xs = np.nonzero(mask)
        assert xs.min() == int(x1) and ys.min() == int(y1) and xs.max() == int(x2) - 1
        assert np.all((kps[:, 0] >= x1) & (kps[:, 0] < x2) & (kps[:, 1] >= y1) & (kps[:, 1] < y2))
        assert np.all(kps[:, 2] == 2)
    # people do not overlap
    assert gt["masks"].sum(0).max() == 1


def test_run_worker_reports_failures_with_the_command():
    res = common.run_worker("bench.no_such_worker", {"size": 1}, timeout_s=60)
    assert "no_such_worker" in res["command"] and "exit code" in res["error"]


def _res(t, cpu=None, mem=1000.0, **kw):
    return {
        "median_s": t,
        "cpu_median_s": cpu if cpu is not None else 2 * t,
        "peak_rss_mb": mem,
        "setup_rss_mb": mem / 2,
        "num_detections": 100,
        **kw,
    }


def _fake_results():
    return {
        "machine": {"cpu_model": "Test CPU", "cores": 2, "gpu": "none visible"},
        "settings": {"repeats": 5, "warmup": 1, "threads": 2, "preset": "r50_fpn", "quick": False},
        "skipped": [],
        "infer": [
            {
                "size": 800,
                "detections": 100,
                "ours": _res(3.0, mem=1500.0),
                "maskrcnn": _res(4.0),
                "keypointrcnn": _res(2.0),
            },
            {
                "size": 512,
                "detections": 20,
                "ours": _res(1.0),
                "maskrcnn": _res(0.5),
                "keypointrcnn": {"error": "exit code 1, no result line: boom", "command": "python -m x"},
            },
        ],
        "train": {"size": 512, "ours": _res(2.0, cpu=3.0, optimizer="sgd"), "maskrcnn": _res(1.0, cpu=4.0)},
        "stages": {
            "size": 800,
            "detections": 100,
            "ours": _res(
                3.0,
                stages=[
                    ["backbone+FPN", 2.0],
                    ["mask RoIAlign (shared with keypoints)", 0.5],
                    ["keypoint head+decode", 0.5],
                ],
            ),
            "maskrcnn": _res(4.0, stages=[["transform", 0.1], ["backbone+FPN", 3.0], ["mask RoIAlign+head", 0.9]]),
        },
        "profile": {
            "size": 512,
            "logdir": "output/bench/profile",
            "rows": [
                {
                    "label": "ours (preset)",
                    "result": {"parts": [["backbone", 0.5, 1.0], ["mask head", 0.1, 0.2]], "total_s": 1.8},
                },
                {"label": "old head", "result": {"error": "exit code 1", "command": "python -m y"}},
            ],
        },
        "pipeline": [
            {
                "label": "512 px",
                "result": {
                    "images_per_s": 10.0,
                    "first_batch_s": 1.0,
                    "pad_size": 512,
                    "records": 2,
                    "record_size": 64,
                    "batch_size": 2,
                    "batches": 2,
                },
            }
        ],
    }


def test_aims_use_same_run_ratios_at_the_largest_size():
    rows = report_torchvision.aim_rows(_fake_results())
    by_name = {r[0]: r for r in rows}
    alone = by_name["inference <= 1.0x torchvision Mask R-CNN alone"]
    assert alone[1] == "800x800, D=100" and alone[2] == pytest.approx(0.75)
    together = by_name["inference <= 0.5x Mask R-CNN + Keypoint R-CNN together"]
    assert together[2] == pytest.approx(0.5) and together[3] == pytest.approx(0.5)
    train = by_name["training step <= 1.0x torchvision Mask R-CNN"]
    assert train[2] == pytest.approx(2.0) and train[3] == pytest.approx(0.75)
    assert report_torchvision.verdict(*train[2:]) == "met by one measure only"
    assert report_torchvision.verdict(0.75, 0.8, 1.0) == "met" and report_torchvision.verdict(1.2, 1.1, 1.0) == "missed"
    assert report_torchvision.verdict(None, None, 1.0) == "not measured"


def test_render_tables_missing_peers_and_failures():
    md = report.render(_fake_results(), notes="Backbone dominates.")
    assert (
        "| 800x800 | 100 | 3.000 (6.000) | 4.000 (8.000) | 2.000 (4.000) | 0.75x (0.75x) | 1.50x (1.50x) "
        "| 0.50x (0.50x) |" in md
    )
    # a failed peer renders as "-" and is listed with its command
    assert "| 512x512 | 20 | 1.000 (2.000) | 0.500 (1.000) | - | 2.00x (2.00x) | - | - |" in md
    assert "## Failures" in md and "`python -m x`" in md
    assert "| 800x800 | 100 | 1500 (750) | 1000 (500) | 1000 (500) | 1.50x | 0.75x |" in md
    # pipeline headroom = 10 images/s vs our 0.5 steps/s at batch 1
    assert "| 512 px | 512 | 10.000 | 1.000 | 20.00x |" in md
    assert "## Analysis" in md and "Backbone dominates." in md
    assert "No GPU" in md
    assert "| backbone + FPN | 2.000 | 3.000 |" in md and "| mask branch | 0.500 | 0.900 |" in md
    assert "| keypoint branch | 0.500 | - |" in md and "| **sum of stages** | 3.000 | 4.000 |" in md
    assert "| backbone | 1.500 (0.500 + 1.000) |" in md and "| **all ops** | **1.800** |" in md
    assert "- old head: exit code 1" in md
    assert report_torchvision.stage_category("keypoint RoIAlign+head+decode") == "keypoint branch"
    assert report_torchvision.stage_category("mask RoIAlign (shared with keypoints)") == "mask branch"


def _summary(box, body, arm, kp):
    chans = ("body", "head", "torso", "left_arm", "right_arm", "left_leg", "right_leg")
    mask = {ch: {"AP": body if ch == "body" else arm} for ch in chans}
    return {"box": {"AP": box}, "mask": mask, "keypoints": {"AP": kp}, "parsing": {"mIoU": 0.5}}


def test_render_deploy_preset_and_quantised_accuracy_verdicts():
    """Issue 30's tables: the deployed preset's backends against Mask R-CNN, and every quantised export labelled
    by whether it loses more than 1 AP on box, body, an arm or keypoints against float32."""
    results = _fake_results()
    results["deploy"] = {
        "preset": "r50_fpn_imagenet",
        "overrides": {"model.backbone.weights": None},
        "backends": ["tensorflow", "onnxruntime"],
        "rows": [
            {
                "size": 800,
                "detections": 20,
                "results": {"tensorflow": _res(1.0), "onnxruntime": _res(0.8)},
                "maskrcnn": _res(2.0),
            }
        ],
    }
    row = lambda box, body, arm, kp, ms: {"summary": _summary(box, body, arm, kp), "median_ms": ms}  # noqa: E731
    results["quant"] = {
        "checkpoint": "ckpt-3000",
        "max_images": 100,
        "records": "val",
        "calib_images": 32,
        "rows": {
            "tflite_float32": row(0.60, 0.66, 0.24, 0.62, 30.0),
            "onnxruntime_int8": row(0.599, 0.665, 0.25, 0.615, 20.0),
            "tflite_int8": row(0.0, 0.0, 0.0, 0.0, 16.0),
        },
    }
    md = report.render(results)
    deploy = md.split("## The deployed preset (issue 30)")[1].split("\n## ")[0]
    assert "Preset `r50_fpn_imagenet` with `model.backbone.weights=None` (frozen BatchNorm folded" in deploy
    assert (
        "| 800x800 | 20 | 1.000 (2.000) 0.50x | 0.800 (1.600) 0.40x | 2.000 (4.000) | 0.40x (ONNX Runtime) |" in deploy
    )
    quant = md.split("## Quantised and bfloat16 exports")[1].split("\n## ")[0]
    verdicts = "| box / body / arm / keypoint AP | - | kept (<= 1 AP) | **loses > 1 AP** (box AP, body AP, left arm"
    assert verdicts in quant
    assert "ONNX Runtime int8 (convolutions)" in quant


def test_render_live_configuration_against_cpu_small_with_its_latency_verdicts():
    """Issue 30's live configuration: each export's float32 / int8 accuracy beside cpu_small as trained in one
    table, and the <= 20 ms API / <= 25 ms server aims judged on the fastest file, named with its size."""
    results = _fake_results()
    results["quant"] = {
        "checkpoint": "ckpt-3000",
        "max_images": 100,
        "records": "val",
        "calib_images": 32,
        "rows": {"onnxruntime": {"summary": _summary(0.60, 0.66, 0.24, 0.62), "median_ms": 30.0}},
    }

    def figures(shift):
        names = ("box AP", "body AP", "left arm AP", "right arm AP", "keypoint OKS AP")
        return [
            {"name": n, "float32": f - shift, "quantised": f - shift - 0.5, "change": -0.5}
            for n, f in zip(names, (59.0, 65.0, 24.0, 22.0, 61.0))
        ]

    def stages(total):
        return {
            "stages_ms": {"decode": 0.5, "model": total - 2.5, "paste": 1.0, "rle": 0.8, "json": 0.2, "total": total}
        }

    def conf(size, shift, api, srv):
        return {
            "size": size,
            "export": {
                "overrides": {"model.rpn.post_nms_topk_test": 50, "input.min_size": size},
                "max_detections": 10,
                "accuracy": {"images": 100, "records": ["val"], "figures": figures(shift)},
            },
            "latency": {"onnxruntime": stages(api[0]), "onnxruntime_int8": stages(api[1])},
            "server": {"onnxruntime": {"server_ms": {"/v1/predict": srv}}, "onnxruntime_int8": {"error": "crashed"}},
        }

    results["live"] = {
        "model": "output/mask_rcnn",
        "configs": [conf(256, 0.0, (23.0, 22.5), 26.0), conf(192, 10.0, (21.0, 19.4), 25.5)],
    }
    md = report.render(results)
    live = md.split("## The live configuration (issue 30)")[1].split("\n## ")[0]
    assert "--set model.rpn.post_nms_topk_test=50 --max_detections 10 --onnx_quant int8" in live
    assert "| cpu_small as trained | 256 px ONNX Runtime | 256 px" in live
    assert "| box AP | 60.0 | 59.0 | 58.5 | 49.0 | 48.5 |" in live
    assert "| server POST /v1/predict ms | - | 26.0 | - | 25.5 | - |" in live
    aims = md.split("## Aims (issue 17")[1].split("\n## ")[0]
    api_row = aims.split("| live configuration bytes -> JSON (Python API) <= 20 ms |")[1].split("\n")[0]
    assert "19.4 ms (192 px, " in api_row and api_row.endswith("| met |")
    srv_row = aims.split("| live configuration through the server (one client) <= 25 ms |")[1].split("\n")[0]
    assert "25.5 ms (192 px, " in srv_row and srv_row.endswith("| missed |")
    results["live"] = {"error": "no trained model at --api_model='output/mask_rcnn'"}
    assert "Not measured: no trained model" in report.render(results)


def test_run_all_quick_smoke(tmp_path):
    """The real harness end to end: our tiny preset at 64 px (and the torchvision peer at 64 px when
    torch is installed), 1 repeat; checks the JSON figures and the markdown table exist."""
    out, raw = tmp_path / "B.md", tmp_path / "r.json"
    cmd = [
        sys.executable,
        "-m",
        "bench.run_all",
        "--quick",
        "--parts=infer",
        "--detections=1",
        "--peers=maskrcnn",
        f"--out={out}",
        f"--json_out={raw}",
        "--notes=",
        "--timeout=240",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(raw.read_text())
    row = res["infer"][0]
    assert (row["size"], row["detections"]) == (64, 1)
    ours = row["ours"]
    assert "error" not in ours, ours
    assert ours["median_s"] > 0 and ours["peak_rss_mb"] > ours["setup_rss_mb"] * 0.5
    assert ours["output_shapes"]["masks"][1:] == [1, 112, 112, 7]  # cpu_small's point head refines 56 -> 112
    if common.torch_available():
        assert "error" not in row["maskrcnn"], row["maskrcnn"]
        assert row["maskrcnn"]["num_detections"] <= 1
    md = out.read_text()
    assert "QUICK RUN" in md and "| 64x64 | 1 |" in md


def test_trace_sums_op_time_by_model_part_and_direction(tmp_path):
    """A real tf.profiler trace of a tiny two-part Keras model's training step."""
    import keras
    import tensorflow as tf

    from bench import trace

    x_in = keras.Input((16, 16, 3))
    backbone = keras.Sequential([keras.layers.Conv2D(32, 3, padding="same")], name="backbone")
    head = keras.Sequential([keras.layers.Conv2D(8, 3, padding="same")], name="mask_head")
    model = keras.Model(x_in, head(backbone(x_in)))
    x = tf.random.normal((4, 16, 16, 3))

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(model(x) ** 2)
        return tape.gradient(loss, model.trainable_variables)

    step()
    path = trace.profile(step, str(tmp_path), steps=2)
    s = trace.summarize(path, steps=2)
    parts = {name: (f, b) for name, f, b in s["parts"]}
    assert parts["backbone"][0] > 0 and parts["backbone"][1] > 0  # forward and backward ops found
    assert parts["mask head"][0] > 0 and parts["mask head"][1] > 0
    # each figure is rounded to 1e-4 s on its own, so their sum may pass the total by the rounding
    assert s["total_s"] >= sum(f + b for f, b in parts.values()) - 1e-4 * len(parts)
    assert trace.part_of("gradient_tape/maskrcnn_body/backbone_resnet50/conv1_conv/Conv2D") == ("backbone", "backward")
    assert trace.part_of("maskrcnn_body/fpn/fpn_output2/BiasAdd") == ("FPN", "forward")
    assert trace.part_of("maskrcnn_body/NonMaxSuppressionV5") == ("other", "forward")
