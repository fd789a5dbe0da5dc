"""The infer/server JSON: masks as COCO RLE follow the pasting rule exactly; keypoints in order."""

import json

import numpy as np

from maskrcnn_body import constants
from maskrcnn_body.inference import result_json as results
from maskrcnn_body.ops import paste


def test_json_roundtrip_matches_pasting_rule():
    rng = np.random.default_rng(0)
    det = {
        "boxes": np.array([[3, 4, 20, 30], [0.5, 0, 31.5, 39]], np.float32),
        "scores": np.array([0.9, 0.4], np.float32),
        "masks": rng.random((2, 8, 8, 7)).astype(np.float32),
        "keypoints": rng.random((2, 15, 3)).astype(np.float32),
    }
    out = json.loads(json.dumps(results.detections_to_json(det, 40, 32, "img")))
    assert (out["width"], out["height"], out["source"]) == (32, 40, "img")
    assert [p["score"] for p in out["persons"]] == [0.9, 0.4]
    assert list(out["persons"][0]["masks"]) == list(constants.CHANNELS)
    assert len(out["persons"][1]["keypoints"]) == constants.NUM_KEYPOINTS
    np.testing.assert_array_equal(results.json_to_masks(out), paste.paste_masks(det["masks"], det["boxes"], 40, 32))
    body = results.json_to_masks(out)[..., 0]
    assert not (results.json_to_masks(out)[..., 1:] & ~body[..., None]).any()  # parts inside body


def test_no_detections():
    det = {
        "boxes": np.zeros((0, 4)),
        "scores": np.zeros(0),
        "masks": np.zeros((0, 8, 8, 7)),
        "keypoints": np.zeros((0, 15, 3)),
    }
    out = results.detections_to_json(det, 10, 10)
    assert out["persons"] == [] and results.json_to_masks(out) is None
