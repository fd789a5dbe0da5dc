"""Writes this folder's DensePose-COCO fixture (run from the repository root:
``python tests/data/densepose_coco/make_fixture.py``); README.md says what it holds and why.

The files follow the published format (DensePose ``challenge/2019_COCO_DensePose/data_format.md``):
COCO 2014 layout, ``dp_masks`` = 14 RLEs (``counts`` string, ``size`` [256, 256]) in the box frame,
in DensePose's part order. The people are drawn figures: each is drawn into its image from the same
256x256 part map its ``dp_masks`` encode (cell -> pixel under the centre rule of
``maskrcnn_body.convert.densepose_coco``), so a picture of the converted record shows where each
part went.
"""

import json
import os

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

HERE = os.path.dirname(os.path.abspath(__file__))
COCO_KEYPOINTS = [
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle",
]  # fmt: skip
# A person facing the camera, in the 256x256 box frame (cols, rows): their own right side is on the image's
# left. Label = 1-based index in DensePose's dp_masks order.
FIGURE = [  # (label, c0, c1, r0, r1)
    (1, 80, 176, 56, 150),  # torso
    (11, 40, 80, 56, 110),  # upper arm right
    (13, 40, 72, 110, 150),  # lower arm right
    (2, 40, 72, 150, 172),  # right hand
    (10, 176, 216, 56, 110),  # upper arm left
    (12, 184, 216, 110, 150),  # lower arm left
    (3, 184, 216, 150, 172),  # left hand
    (6, 84, 124, 150, 200),  # upper leg right
    (8, 84, 124, 200, 240),  # lower leg right
    (5, 80, 124, 240, 256),  # right foot
    (7, 132, 172, 150, 200),  # upper leg left
    (9, 132, 172, 200, 240),  # lower leg left
    (4, 132, 176, 240, 256),  # left foot
]
HEAD = (14, 128, 30, 26)  # label, centre col, centre row, radius
JOINTS = {  # COCO keypoint -> (col, row) in the box frame
    "nose": (128, 30),
    "right_shoulder": (70, 64),
    "left_shoulder": (186, 64),
    "right_elbow": (58, 112),
    "left_elbow": (198, 112),
    "right_wrist": (56, 160),
    "left_wrist": (200, 160),
    "right_hip": (104, 150),
    "left_hip": (152, 150),
    "right_knee": (104, 200),
    "left_knee": (152, 200),
    "right_ankle": (104, 244),
    "left_ankle": (152, 244),
}
COLOURS = {1: (40, 90, 200), 14: (230, 190, 150)}  # torso shirt, skin; limbs: sleeves/trousers below
for lab in (11, 13, 10, 12):
    COLOURS[lab] = (60, 120, 220)
for lab in (2, 3):
    COLOURS[lab] = (230, 190, 150)
for lab in (6, 8, 7, 9):
    COLOURS[lab] = (60, 60, 60)
for lab in (4, 5):
    COLOURS[lab] = (120, 60, 20)


def figure_labels(drop=()):
    lab = np.zeros((256, 256), np.uint8)
    for k, c0, c1, r0, r1 in FIGURE:
        if k not in drop:
            lab[r0:r1, c0:c1] = k
    k, cc, rc, r = HEAD
    yy, xx = np.mgrid[:256, :256]
    lab[(xx + 0.5 - cc) ** 2 + (yy + 0.5 - rc) ** 2 <= r * r] = k
    return lab


def dp_masks(lab):
    out = []
    for k in range(1, 15):
        m = lab == k
        if not m.any():
            out.append([])
            continue
        rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        out.append({"counts": rle["counts"].decode("ascii"), "size": [256, 256]})
    return out


def paste(lab, box, h, w):
    x, y, bw, bh = box
    cols = np.floor((np.arange(w) + 0.5 - x) * 256 / bw).astype(int)
    rows = np.floor((np.arange(h) + 0.5 - y) * 256 / bh).astype(int)
    ok = ((rows >= 0) & (rows < 256))[:, None] & ((cols >= 0) & (cols < 256))[None, :]
    out = lab[np.clip(rows, 0, 255)[:, None], np.clip(cols, 0, 255)[None, :]]
    out[~ok] = 0
    return out


def keypoints(box, h, w, drop=()):
    x, y, bw, bh = box
    k = []
    for name in COCO_KEYPOINTS:
        if name in JOINTS and name not in drop:
            c, r = JOINTS[name]
            px, py = int(x + (c + 0.5) * bw / 256), int(y + (r + 0.5) * bh / 256)  # COCO: the pixel's index
            k += [px, py, 2] if 0 <= px < w and 0 <= py < h else [0, 0, 0]
        else:
            k += [0, 0, 0]
    return k


def polygon_of(mask):
    """A rectangle polygon around a bool mask (pixel-edge coordinates), as COCO's segmentation."""
    ys, xs = np.nonzero(mask)
    x0, x1, y0, y1 = float(xs.min()), float(xs.max() + 1), float(ys.min()), float(ys.max() + 1)
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def main():
    rng = np.random.default_rng(0)
    images, anns = [], []
    specs = {  # image id -> (height, width, [person dicts])
        1: (128, 112, [dict(box=[8.0, 10.0, 48.0, 112.0]), dict(box=[66.0, 20.0, 30.0, 90.0], dp=False)]),
        2: (96, 96, [dict(box=[40.5, 6.25, 40.0, 84.0]), dict(box=[2.0, 50.0, 30.0, 40.0], crowd=True)]),
        3: (80, 64, [dict(box=[10.0, 4.0, 40.0, 72.0], drop=(6, 7, 8, 9, 4, 5))]),  # legs hidden
    }
    ann_id = 100
    for image_id, (h, w, people) in specs.items():
        name = f"COCO_val2014_{image_id:012d}.jpg"
        img = (rng.integers(90, 140, (h, w, 3)) * np.array([0.6, 1.0, 0.6])).astype(np.uint8)  # grass-like noise
        for p in people:
            ann_id += 1
            box = p["box"]
            if p.get("crowd"):
                m = np.zeros((h, w), np.uint8)
                m[int(box[1]) : int(box[1] + box[3]), int(box[0]) : int(box[0] + box[2])] = 1
                img[m > 0] = (150, 150, 150)
                rle = mask_utils.encode(np.asfortranarray(m))
                seg = {"counts": rle["counts"].decode("ascii"), "size": [h, w]}
                anns.append(
                    {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 1, "segmentation": seg,
                     "area": float(m.sum()), "bbox": box, "num_keypoints": 0, "keypoints": [0] * 51}
                )  # fmt: skip
                continue
            lab = figure_labels(p.get("drop", ()))
            img_lab = paste(lab, box, h, w)
            for k, colour in COLOURS.items():
                img[img_lab == k] = colour
            kps = keypoints(
                box, h, w, ("left_knee", "right_knee", "left_ankle", "right_ankle") if p.get("drop") else ()
            )
            a = {
                "id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                # with dp_masks: the torso + head outline only (the body is this united with the parts)
                "segmentation": polygon_of(np.isin(img_lab, (1, 14)) if p.get("dp", True) else img_lab > 0),
                "area": float((img_lab > 0).sum()), "bbox": box,
                "num_keypoints": sum(v > 0 for v in kps[2::3]), "keypoints": kps,
            }  # fmt: skip
            if p.get("dp", True):
                a.update(dp_masks=dp_masks(lab), dp_I=[1.0], dp_U=[0.5], dp_V=[0.5], dp_x=[128.0], dp_y=[100.0])
            anns.append(a)
        os.makedirs(os.path.join(HERE, "val2014"), exist_ok=True)
        Image.fromarray(img).save(os.path.join(HERE, "val2014", name), quality=92)
        images.append({"id": image_id, "file_name": name, "height": h, "width": w, "license": 4,
                       "coco_url": f"http://images.cocodataset.org/val2014/{name}", "flickr_url": "",
                       "date_captured": "2013-11-14 11:18:45"})  # fmt: skip
    data = {
        "images": images,
        "annotations": anns,
        "categories": [
            {"id": 1, "name": "person", "supercategory": "person", "keypoints": COCO_KEYPOINTS,
             "skeleton": [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8],
                          [7, 9], [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7]]}
        ],
    }  # fmt: skip
    os.makedirs(os.path.join(HERE, "annotations"), exist_ok=True)
    with open(os.path.join(HERE, "annotations", "densepose_coco_2014_minival.json"), "w") as f:
        json.dump(data, f)


if __name__ == "__main__":
    main()
