"""COCO person keypoints -> schema v1 (body mask + 15 keypoints; no parts).

Layout under ``root``: ``annotations/person_keypoints_<split>.json`` and
``<split>/<file_name>`` (e.g. ``val2017/000000000139.jpg``). ``--split all`` converts every
``person_keypoints_*.json`` found.

* Persons: annotations with ``category_id == 1`` and ``iscrowd == 0``. Channel 0 = the
  decoded segmentation (polygons or RLE, pycocotools); channels 1-6 unknown.
* Crowd regions (``iscrowd == 1``) are not instances, and schema v1 has no ignore regions:
  writing such an image would teach "background" on a crowd of people. So images with a
  crowd annotation are skipped (reason "crowd region") unless ``keep_crowd_images``, which
  writes them with the crowd simply left out.
* Keypoints: COCO-17 -> our 15 by :data:`COCO_TO_JHMDB` (neck = mid shoulders, belly = mid of
  neck and mid hips, face = nose). A derived joint is labelled only when all its sources are
  (v > 0); its v is the minimum of theirs. COCO keypoint x/y are integer pixel indices (the
  pixel whose centre is meant), so x_schema = x_coco + 0.5 (as detectron2 does). v = 0 joints
  are written as (0, 0, 0).
* Images without persons are skipped ("no persons") unless ``keep_negatives``.
"""

from __future__ import annotations

import glob
import json
import os
from typing import Dict, List, Optional, Tuple

import numpy as np

from maskrcnn_body import constants
from maskrcnn_body.data import conversion, schema
from maskrcnn_body.errors import InvalidArgument, optional_import

PERSON_CATEGORY = 1
COCO_KEYPOINTS = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
_K = {n: i for i, n in enumerate(COCO_KEYPOINTS)}
COCO_TO_JHMDB: Dict[str, Tuple[str, ...]] = {
    "face": ("nose",),
    "right_shoulder": ("right_shoulder",),
    "left_shoulder": ("left_shoulder",),
    "right_hip": ("right_hip",),
    "left_hip": ("left_hip",),
    "right_elbow": ("right_elbow",),
    "left_elbow": ("left_elbow",),
    "right_knee": ("right_knee",),
    "left_knee": ("left_knee",),
    "right_wrist": ("right_wrist",),
    "left_wrist": ("left_wrist",),
    "right_ankle": ("right_ankle",),
    "left_ankle": ("left_ankle",),
}
"""Directly copied joints (ours -> COCO source names); neck and belly are derived."""
COCO_TO_SCHEMA = 0.5  # x_schema = x_coco + 0.5


def coco_to_keypoints(kps: List[float]) -> np.ndarray:
    """51 COCO numbers [x, y, v] * 17 -> float32 (15, 3) schema keypoints (see module doc)."""
    k = np.asarray(kps, np.float64).reshape(len(COCO_KEYPOINTS), 3)
    xy, v = k[:, :2] + COCO_TO_SCHEMA, k[:, 2]
    out = np.zeros((constants.NUM_KEYPOINTS, 3), np.float32)

    def put(name, point, vis):
        if vis > 0:
            out[constants.KEYPOINT_INDEX[name]] = (point[0], point[1], vis)

    for ours, (src,) in COCO_TO_JHMDB.items():
        put(ours, xy[_K[src]], v[_K[src]])
    ls, rs, lh, rh = (_K[n] for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip"))
    neck, neck_v = (xy[ls] + xy[rs]) / 2, min(v[ls], v[rs])
    put("neck", neck, neck_v)
    mid_hip, hip_v = (xy[lh] + xy[rh]) / 2, min(v[lh], v[rh])
    put("belly", (neck + mid_hip) / 2, min(neck_v, hip_v))
    return out


def annotation_keypoints(ann: dict) -> Optional[np.ndarray]:
    """The annotation's ``keypoints`` as schema keypoints (:func:`coco_to_keypoints`), None without them."""
    return coco_to_keypoints(ann["keypoints"]) if ann.get("keypoints") else None


def annotation_mask(ann: dict, height: int, width: int) -> np.ndarray:
    """Decoded segmentation (polygons, RLE or uncompressed RLE) as bool (H, W)."""
    mask_utils = optional_import("pycocotools.mask", "convert", "decoding COCO segmentations")

    seg = ann["segmentation"]
    if isinstance(seg, list):
        if not seg:
            return np.zeros((height, width), bool)
        rle = mask_utils.merge(mask_utils.frPyObjects(seg, height, width))
    elif isinstance(seg.get("counts"), list):
        rle = mask_utils.frPyObjects(seg, height, width)
    else:
        rle = seg
    m = mask_utils.decode(rle)
    if m.shape[:2] != (height, width):
        raise conversion.SkipItem(
            f"size mismatch: annotation {ann.get('id')} mask is {m.shape[:2]}, image {height}x{width}"
        )
    return m.astype(bool)


class CocoConverter(conversion.Converter):
    dataset = "coco"

    def __init__(self, root: str, split: str = "all", keep_negatives: bool = False, keep_crowd_images: bool = False):
        self.root, self.split = root, split
        self.keep_negatives, self.keep_crowd_images = keep_negatives, keep_crowd_images

    def image_path(self, split: str, info: dict) -> str:
        """Path of the image of ``info`` (an entry of the file's ``images``) of ``split``."""
        return os.path.join(self.root, split, info["file_name"])

    def person(self, ann: dict, image: conversion.SourceImage) -> schema.Person:
        """One non-crowd person annotation -> :class:`~maskrcnn_body.data.schema.Person` (body + keypoints).

        Raises :class:`~maskrcnn_body.data.conversion.SkipItem` when the person cannot be converted.
        """
        body = annotation_mask(ann, image.height, image.width)
        return conversion.build_person(body, None, conversion.BODY_ONLY, annotation_keypoints(ann))

    def _annotation_files(self) -> List[Tuple[str, str]]:
        adir = os.path.join(self.root, "annotations")
        if self.split == "all":
            files = sorted(glob.glob(os.path.join(adir, "person_keypoints_*.json")))
        else:
            files = [os.path.join(adir, f"person_keypoints_{self.split}.json")]
        files = [f for f in files if os.path.isfile(f)]
        if not files:
            raise FileNotFoundError(
                f"no {adir}/person_keypoints_{self.split if self.split != 'all' else '*'}.json "
                f"(COCO annotations_trainval2017.zip)"
            )
        split_of = lambda f: os.path.basename(f)[len("person_keypoints_") : -len(".json")]  # noqa: E731
        return [(split_of(f), f) for f in files]

    def items(self):
        for split, path in self._annotation_files():
            try:
                with open(path) as f:
                    data = json.load(f)
                images = {im["id"]: im for im in data["images"]}
                anns: Dict[int, list] = {i: [] for i in images}
                for a in data["annotations"]:
                    if a.get("category_id") == PERSON_CATEGORY:
                        anns.setdefault(a["image_id"], []).append(a)
            except Exception as e:
                raise InvalidArgument(f"{path}: not a COCO-format annotation file ({type(e).__name__}: {e})") from None
            for image_id in sorted(anns):
                if image_id not in images:
                    yield conversion.Skipped(
                        f"{split}/{image_id}",
                        f"missing image: annotations refer to image id {image_id}, absent from {path} 'images'",
                    )
                    continue
                info = images[image_id]
                yield conversion.Item(f"{split}/{info['file_name']}", (split, info, anns[image_id]))

    def convert(self, item: conversion.Item):
        split, info, anns = item.data
        image = conversion.load_image(self.image_path(split, info))
        if (image.height, image.width) != (info["height"], info["width"]):
            raise conversion.SkipItem(
                f"size mismatch: {info['file_name']} is {image.height}x{image.width}, "
                f"annotation says {info['height']}x{info['width']}"
            )
        if any(a.get("iscrowd", 0) for a in anns) and not self.keep_crowd_images:
            yield conversion.Skipped(
                item.key,
                "crowd region: image has an iscrowd annotation (no ignore "
                "regions in schema v1; --keep_crowd_images to write it)",
                bad=False,
            )
            return
        persons = []
        for a in anns:
            if a.get("iscrowd", 0):
                continue
            key = f"{item.key}#ann{a.get('id')}"
            try:
                persons.append(self.person(a, image))
            except conversion.SkipItem as e:
                yield conversion.Skipped(key, str(e))
        source_id = os.path.splitext(info["file_name"])[0]
        yield conversion.record_or_negative(image, item.key, source_id, self.dataset, persons, self.keep_negatives)
