"""COCO person-keypoints converter on a small SYNTHETIC annotation file in the exact COCO format."""

import json

import numpy as np
from PIL import Image

from maskrcnn_body import constants
from maskrcnn_body.convert.coco import COCO_KEYPOINTS, CocoConverter, coco_to_keypoints
from maskrcnn_body.data import conversion

K = constants.KEYPOINT_INDEX


def _kps(**joints):
    """51 COCO numbers; joints name=(x, y, v)."""
    k = np.zeros((17, 3))
    for name, v in joints.items():
        k[COCO_KEYPOINTS.index(name)] = v
    return k.ravel().tolist()


def test_keypoint_mapping_and_half_pixel():
    kp = coco_to_keypoints(
        _kps(
            nose=(10, 5, 2),
            left_shoulder=(14, 10, 2),
            right_shoulder=(6, 10, 1),
            left_hip=(13, 20, 2),
            right_hip=(7, 20, 2),
            left_wrist=(16, 18, 2),
        )
    )
    np.testing.assert_allclose(kp[K["face"]], [10.5, 5.5, 2])
    np.testing.assert_allclose(kp[K["left_shoulder"]], [14.5, 10.5, 2])
    np.testing.assert_allclose(kp[K["right_shoulder"]], [6.5, 10.5, 1])
    np.testing.assert_allclose(kp[K["neck"]], [10.5, 10.5, 1])  # v = min of the sources
    np.testing.assert_allclose(kp[K["belly"]], [10.5, 15.5, 1])  # mid(neck, mid hips)
    np.testing.assert_allclose(kp[K["left_wrist"]], [16.5, 18.5, 2])
    assert (kp[K["right_wrist"]] == 0).all()
    kp = coco_to_keypoints(_kps(left_shoulder=(14, 10, 2), left_hip=(13, 20, 2), right_hip=(7, 20, 2)))
    assert kp[K["neck"], 2] == 0 and kp[K["belly"], 2] == 0  # derived only when all sources are labelled


def _dataset(root, h=20, w=30):
    (root / "annotations").mkdir(parents=True)
    (root / "val2017").mkdir()
    images = []
    for i in range(1, 6):
        images.append({"id": i, "file_name": f"{i:012d}.jpg", "height": h, "width": w})
        if i != 4:  # image 4: annotation without its image file
            Image.fromarray(np.full((h, w, 3), 20 * i, np.uint8)).save(root / "val2017" / f"{i:012d}.jpg")
    poly = [[2.0, 2.0, 12.0, 2.0, 12.0, 16.0, 2.0, 16.0]]  # square x in [2, 12], y in [2, 16]
    rle_mask = np.zeros((h, w), np.uint8, order="F")
    rle_mask[5:9, 20:25] = 1
    from pycocotools import mask as mu

    rle = mu.encode(rle_mask)
    rle["counts"] = rle["counts"].decode()
    anns = [
        {
            "id": 1,
            "image_id": 1,
            "category_id": 1,
            "iscrowd": 0,
            "segmentation": poly,
            "area": 140.0,
            "bbox": [2, 2, 10, 14],
            "num_keypoints": 2,
            "keypoints": _kps(left_shoulder=(9, 4, 2), right_shoulder=(4, 4, 2)),
        },
        {
            "id": 2,
            "image_id": 1,
            "category_id": 1,
            "iscrowd": 0,
            "segmentation": rle,
            "area": 20.0,
            "bbox": [20, 5, 5, 4],
            "num_keypoints": 0,
            "keypoints": [0] * 51,
        },
        {
            "id": 3,
            "image_id": 2,
            "category_id": 1,
            "iscrowd": 1,
            "segmentation": rle,
            "area": 20.0,
            "bbox": [20, 5, 5, 4],
            "num_keypoints": 0,
            "keypoints": [0] * 51,
        },
        {
            "id": 4,
            "image_id": 2,
            "category_id": 1,
            "iscrowd": 0,
            "segmentation": poly,
            "area": 140.0,
            "bbox": [2, 2, 10, 14],
            "num_keypoints": 0,
            "keypoints": [0] * 51,
        },
        {
            "id": 5,
            "image_id": 4,
            "category_id": 1,
            "iscrowd": 0,
            "segmentation": poly,
            "area": 140.0,
            "bbox": [2, 2, 10, 14],
            "num_keypoints": 0,
            "keypoints": [0] * 51,
        },
        {
            "id": 6,
            "image_id": 5,
            "category_id": 1,
            "iscrowd": 0,
            "segmentation": [],
            "area": 0.0,
            "bbox": [0, 0, 0, 0],
            "num_keypoints": 0,
            "keypoints": [0] * 51,
        },
    ]
    (root / "annotations" / "person_keypoints_val2017.json").write_text(
        json.dumps(
            {
                "images": images,
                "annotations": anns,
                "categories": [{"id": 1, "name": "person", "keypoints": list(COCO_KEYPOINTS), "skeleton": [[16, 14]]}],
            }
        )
    )


def test_conversion(tmp_path):
    _dataset(tmp_path / "coco")
    prefix = str(tmp_path / "o")
    s = conversion.run_conversion(CocoConverter(str(tmp_path / "coco"), split="val2017"), prefix, progress=False)
    recs = {r.source_id: r for r in conversion.load_records(prefix)}
    assert sorted(recs) == ["000000000001"]
    a, b = recs["000000000001"].persons
    np.testing.assert_array_equal(a.bbox, [2, 2, 12, 16])  # polygon edges at 2..12 / 2..16 (pixel-edge frame)
    np.testing.assert_array_equal(b.bbox, [20, 5, 25, 9])  # RLE
    assert list(a.parts_valid) == [1, 0, 0, 0, 0, 0, 0]
    np.testing.assert_allclose(a.keypoints[K["neck"]], [7.0, 4.5, 2])
    assert (b.keypoints == 0).all()
    kinds = {x.key: x.kind for x in s.skipped}
    assert kinds == {
        "val2017/000000000002.jpg": "crowd region",
        "val2017/000000000003.jpg": "no persons",
        "val2017/000000000004.jpg": "missing image",
        "val2017/000000000005.jpg#ann6": "empty person mask",
        "val2017/000000000005.jpg": "no persons",
    }
    s = conversion.run_conversion(
        CocoConverter(str(tmp_path / "coco"), keep_crowd_images=True, keep_negatives=True), prefix, progress=False
    )
    recs = {r.source_id: r for r in conversion.load_records(prefix)}
    assert {k: len(r.persons) for k, r in recs.items()} == {
        "000000000001": 2,
        "000000000002": 1,
        "000000000003": 0,
        "000000000005": 0,
    }
