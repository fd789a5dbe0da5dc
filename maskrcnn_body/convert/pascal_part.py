"""Pascal-Part (Chen et al. 2014, on PASCAL VOC 2010) -> schema v1.

Layout under ``root``::

    Annotations_Part/<imname>.mat      # Pascal-Part trainval.tar.gz
    JPEGImages/<imname>.jpg            # VOC 2010
    ImageSets/Main/<split>.txt         # VOC 2010 split lists (only needed for --split != all)

Every object whose ``class`` is ``'person'`` becomes one person:

* channel 0 = the object's own ``mask`` (not the union of parts, which is slightly smaller);
* channels 1-6 = OR of the part masks in :data:`PART_CHANNELS` (clipped to the body). Sides
  are the subject's own: ``l*`` parts are the person's left, which is on the image's right
  for someone facing the camera;
* ``parts_valid``: Pascal-Part annotates every visible part of a person, so a person with at
  least one part gets all 7 channels valid (a missing part = not visible = all-zero channel).
  A person whose ``parts`` array is empty (shape (0, 0)) was not part-annotated: body only.
* keypoints: none (all zero, v = 0).

Unknown part names on a person raise (skip with reason, error in strict mode), since a new
name would otherwise silently become background. Images without persons are skipped
("no persons", not a bad input) unless ``keep_negatives``.
"""

from __future__ import annotations

import os
from typing import Dict, Iterator, List, Optional

import numpy as np

from maskrcnn_body import constants
from maskrcnn_body.data import conversion
from maskrcnn_body.errors import optional_import

PART_CHANNELS: Dict[str, int] = {}
for _channel, _names in {
    "head": "head hair leye reye lear rear lebrow rebrow nose mouth",
    "torso": "torso neck",
    "left_arm": "luarm llarm lhand",
    "right_arm": "ruarm rlarm rhand",
    "left_leg": "luleg llleg lfoot",
    "right_leg": "ruleg rlleg rfoot",
}.items():
    PART_CHANNELS.update(dict.fromkeys(_names.split(), constants.CHANNEL_INDEX[_channel]))
"""The 24 Pascal-Part person part names -> channel (datasets.md section 1)."""

PERSON_CLASS = "person"


def read_annotation(path: str) -> List[dict]:
    """Objects of one ``Annotations_Part/*.mat`` file.

    Returns a list of ``{"class": str, "mask": uint8 (H, W), "parts": [(name, uint8 (H, W))]}``.
    Uses ``loadmat`` without squeezing so single-object / single-part files keep their
    array shape; an empty ``parts`` (shape (0, 0)) becomes ``[]``. Raises
    :class:`~maskrcnn_body.convert.conversion.SkipItem` ("corrupt annotation") on unreadable files.
    """
    scipy_io = optional_import("scipy.io", "convert", "reading the dataset's .mat annotations")

    try:
        anno = scipy_io.loadmat(path)["anno"][0, 0]
        objects = []
        for o in anno["objects"][0] if anno["objects"].size else []:
            parts = o["parts"][0] if o["parts"].size else []
            objects.append(
                {
                    "class": str(o["class"][0]) if o["class"].size else "",
                    "mask": np.asarray(o["mask"]),
                    "parts": [(str(p["part_name"][0]), np.asarray(p["mask"])) for p in parts],
                }
            )
    except Exception as e:
        raise conversion.SkipItem(f"corrupt annotation: {path} ({type(e).__name__}: {e})") from None
    return objects


class PascalPartConverter(conversion.Converter):
    dataset = "pascal_part"

    def __init__(self, root: str, split: str = "all", keep_negatives: bool = False):
        self.root, self.split, self.keep_negatives = root, split, keep_negatives

    def items(self) -> Iterator[conversion.Item]:
        anno_dir = os.path.join(self.root, "Annotations_Part")
        if not os.path.isdir(anno_dir):
            raise FileNotFoundError(
                f"{anno_dir} not found: --root must contain Annotations_Part/ "
                f"(Pascal-Part trainval.tar.gz) and JPEGImages/ (VOC 2010)"
            )
        names = sorted(f[:-4] for f in os.listdir(anno_dir) if f.endswith(".mat"))
        wanted = self._split_names()
        for name in names:
            if wanted is None or name in wanted:
                yield conversion.Item(name, name)

    def _split_names(self) -> Optional[set]:
        if self.split == "all":
            return None
        path = os.path.join(self.root, "ImageSets", "Main", f"{self.split}.txt")
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"split file {path} not found: VOC 2010 splits are train, val, trainval "
                f"(from VOCtrainval_03-May-2010.tar); use --split all otherwise"
            )
        with open(path) as f:
            return {line.split()[0] for line in f if line.strip()}

    def convert(self, item: conversion.Item):
        name = item.data
        objects = read_annotation(os.path.join(self.root, "Annotations_Part", f"{name}.mat"))
        image = conversion.load_image(os.path.join(self.root, "JPEGImages", f"{name}.jpg"))
        persons = []
        for i, obj in enumerate(o for o in objects if o["class"] == PERSON_CLASS):
            key = f"{name}#person{i}"
            conversion.check_mask_shape(obj["mask"], image, f"{key} mask")
            channels: Dict[int, np.ndarray] = {}
            for part_name, mask in obj["parts"]:
                if part_name not in PART_CHANNELS:
                    raise conversion.SkipItem(
                        f"unknown part name: {key} has part {part_name!r}, not in "
                        f"pascal_part.PART_CHANNELS; add it to the table"
                    )
                conversion.check_mask_shape(mask, image, f"{key} part {part_name!r}")
                ch = PART_CHANNELS[part_name]
                channels[ch] = channels.get(ch, False) | (mask != 0)
            valid = conversion.ALL_VALID if obj["parts"] else conversion.BODY_ONLY
            try:
                persons.append(conversion.build_person(obj["mask"] != 0, channels, valid))
            except conversion.SkipItem as e:
                yield conversion.Skipped(key, str(e))
        yield conversion.record_or_negative(image, name, name, self.dataset, persons, self.keep_negatives)
