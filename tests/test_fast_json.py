"""The fast bytes -> JSON path: COCO RLE from the crop only, single-threaded BLAS pasting, image bytes
as input, and the fast-inference aims of the benchmark report (no TensorFlow needed)."""

import io

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from bench import report
from maskrcnn_body.inference import result_json as results
from maskrcnn_body.inference.api import load_image
from maskrcnn_body.ops import paste
from maskrcnn_body.utils.threads import single_threaded_blas


def test_rle_from_the_crop_equals_pycocotools_on_the_full_image():
    rng = np.random.default_rng(0)
    for t in range(400):
        H, W = int(rng.integers(1, 40)), int(rng.integers(1, 40))
        h, w = int(rng.integers(0, H + 1)), int(rng.integers(0, W + 1))
        y0, x0 = int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1))
        values = rng.uniform(size=(h, w, 7)) < rng.uniform()
        if t % 4 == 0:
            values[:] = t % 8 == 0  # all set / all clear
        crop = paste.PastedCrop(y0, x0, values)
        full = crop.full(H, W)
        want = mask_utils.encode(np.asfortranarray(full.astype(np.uint8)))
        got = results.encode_crop(crop, H, W)
        assert [r["counts"] for r in got] == [r["counts"].decode() for r in want], (H, W, h, w, y0, x0)
        assert all(r["size"] == [H, W] for r in got)


def test_json_is_the_full_image_encoding_and_pasting_is_the_same_single_threaded():
    rng = np.random.default_rng(1)
    det = {
        "boxes": np.array([[3.2, 5.1, 60.7, 90.3], [40.0, 10.0, 99.5, 70.2]], np.float32),
        "scores": np.array([0.9, 0.7], np.float32),
        "masks": rng.uniform(size=(2, 28, 28, 7)).astype(np.float32),
        "keypoints": rng.uniform(0, 60, (2, 15, 3)).astype(np.float32),
    }
    js = results.detections_to_json(det, 96, 100)
    full = paste.paste_masks(det["masks"], det["boxes"], 96, 100)
    np.testing.assert_array_equal(results.json_to_masks(js), full)
    a = paste.paste_probabilities(det["masks"], det["boxes"], 96, 100)
    with single_threaded_blas():
        b = paste.paste_probabilities(det["masks"], det["boxes"], 96, 100)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.values, y.values)


def test_image_bytes_and_file_objects_are_inputs():
    img = np.random.default_rng(2).integers(0, 256, (20, 30, 3), np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    got, _source = load_image(buf.getvalue())
    np.testing.assert_array_equal(got, img)
    buf.seek(0)
    np.testing.assert_array_equal(load_image(buf)[0], img)


def _fake_results():
    def res(t, mem, outputs=None):
        return {"median_s": t, "cpu_median_s": 2 * t, "peak_rss_mb": mem, "outputs": outputs}

    stages = {"decode": 1.0, "model": 15.0, "paste": 1.5, "rle": 0.5, "json": 0.2, "total": 18.2}
    summary = {
        "box": {"AP": 0.5},
        "mask": {ch: {"AP": 0.4} for ch in ("body", "head", "torso", "left_arm", "right_arm", "left_leg", "right_leg")},
        "keypoints": {"AP": 0.3},
        "parsing": {"mIoU": 0.6},
    }
    low = {**summary, "box": {"AP": 0.45}}
    return {
        "backends": {
            "backends": ["tensorflow", "tensorflow_bf16"],
            "prepare": {},
            "rows": [
                {
                    "size": 800,
                    "detections": 20,
                    "results": {"tensorflow": res(2.0, 1000), "tensorflow_bf16": res(0.6, 900)},
                    "maskrcnn": res(2.5, 1200),
                    "match": {
                        "tensorflow_bf16": {"score_max_diff": 0.01, "box_iou_median": 0.99, "box_iou_ge_0.9": 1.0}
                    },
                }
            ],
        },
        "api": {
            "model": "m",
            "records": "r",
            "fastest": "onnxruntime",
            "latency": {
                "tensorflow": {
                    "stages_ms": {**stages, "total": 30.0},
                    "images": 8,
                    "image_size": [256, 256],
                    "persons_mean": 6,
                    "runs": 40,
                },
                "onnxruntime": {"stages_ms": stages},
            },
            "server": {"onnxruntime": {"server_ms": {"/v1/predict": 25.0, "/v1/render": 40.0}}},
            "batch": {"tensorflow": {"batch": {"1": {"images_per_s": 30.0}, "8": {"images_per_s": 40.0}}}},
        },
        "quant": {
            "rows": {
                "tflite_float32": {"summary": summary, "median_ms": 20.0, "file_mb": 10.0},
                "tflite_int8": {"summary": low, "median_ms": 15.0, "file_mb": 3.0},
            },
            "checkpoint": "ckpt-1",
            "max_images": 100,
            "records": "r",
            "calib_images": 32,
        },
    }


def test_report_renders_the_fast_inference_aims_and_verdicts():
    text = report.render(_fake_results())
    assert "0.24x (TensorFlow bfloat16), memory 0.75x | met" in text
    assert "18.2 ms (ONNX Runtime) | met" in text and "25.0 ms (ONNX Runtime) | met" in text
    assert "| box | 50.0 | 45.0 (-5.0) |" in text
    assert "| **bytes -> JSON** | 30.0 | 18.2 |" in text
    assert "| TensorFlow float32 | 30.0 | 40.0 |" in text
