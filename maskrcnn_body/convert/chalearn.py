"""ChaLearn LAP 2014 Track 1 (human pose recovery) -> schema v1, one record per frame.

Sequences ``SeqNN`` under ``root`` in either ground-truth layout (both accepted):

1. starting kit: ``SeqNN/imagesjpg/NN_FFFF.jpg`` + ``SeqNN/maskspng/NN_FFFF_<actor>_<limb>.png``
   (one binary PNG per actor and limb, limb 1..14 without zero padding);
2. final release (nested zip folder): ``SeqNN/SeqNN/imagesjpg/NN_FFFF.jpg`` +
   ``SeqNN/SeqNN/masks/NN_FFFF_<actor>.png``, one panoramic PNG per actor with the 14 limb
   masks side by side, each a full tile of the frame width (480 px): limb k (1-based) is
   columns ``[(k-1)*W, k*W)``.

Masks are thresholded at > 127 (values 0/255). Actors 1 and 2: an actor is present when its
GT files exist and the union of its limbs is not empty; that union is channel 0. Limbs map
to channels per :data:`LIMB_CHANNELS` (sides are the subject's own, as named by the
dataset; assumed, not verified on real files). All 7 channels are valid; no keypoints.
A sequence without GT folder is unlabelled and skipped (reason "no ground truth").
``frame_step`` keeps frames 1, 1 + step, ... of each sequence.
"""

from __future__ import annotations

import os
import re
from typing import Dict, List, Optional, Tuple

import numpy as np

from maskrcnn_body import constants
from maskrcnn_body.data import conversion
from maskrcnn_body.errors import InvalidArgument

LIMB_NAMES = (
    "head",
    "torso",
    "lhand",
    "rhand",
    "lforearm",
    "rforearm",
    "larm",
    "rarm",
    "lfoot",
    "rfoot",
    "lleg",
    "rleg",
    "lthigh",
    "rthigh",
)
"""The 14 limbs, limb id = index + 1 (``getLimbsName`` of the starting kit)."""
LIMB_CHANNELS: Dict[int, int] = {
    1: constants.CHANNEL_INDEX["head"],
    2: constants.CHANNEL_INDEX["torso"],
    3: constants.CHANNEL_INDEX["left_arm"],
    5: constants.CHANNEL_INDEX["left_arm"],
    7: constants.CHANNEL_INDEX["left_arm"],
    4: constants.CHANNEL_INDEX["right_arm"],
    6: constants.CHANNEL_INDEX["right_arm"],
    8: constants.CHANNEL_INDEX["right_arm"],
    9: constants.CHANNEL_INDEX["left_leg"],
    11: constants.CHANNEL_INDEX["left_leg"],
    13: constants.CHANNEL_INDEX["left_leg"],
    10: constants.CHANNEL_INDEX["right_leg"],
    12: constants.CHANNEL_INDEX["right_leg"],
    14: constants.CHANNEL_INDEX["right_leg"],
}
NUM_LIMBS = len(LIMB_NAMES)
ACTORS = (1, 2)
THRESHOLD = 127
SEQ_RE = re.compile(r"^Seq(\d+)$")
FRAME_RE = re.compile(r"^(\d+)_(\d+)\.jpg$")


def read_binary_png(path: str) -> np.ndarray:
    """A GT PNG (grey or colour) as bool (H, W): any channel > 127. SkipItem if unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            a = np.asarray(im)
    except Exception as e:
        raise conversion.SkipItem(f"corrupt mask: {path} ({type(e).__name__}: {e})") from None
    if a.ndim == 3:
        a = a[..., :3].max(axis=2)
    return a > THRESHOLD


def split_panorama(pano: np.ndarray, tile_width: int, path: str) -> List[np.ndarray]:
    """(H, 14 * W) bool -> 14 (H, W) limb masks (full tiles: columns [(k-1)W, kW))."""
    if pano.shape[1] != NUM_LIMBS * tile_width:
        raise conversion.SkipItem(
            f"size mismatch: {path} is {pano.shape[1]} px wide, expected "
            f"{NUM_LIMBS} tiles x {tile_width} px = {NUM_LIMBS * tile_width}"
        )
    return [pano[:, k * tile_width : (k + 1) * tile_width] for k in range(NUM_LIMBS)]


def find_sequences(root: str) -> List[Tuple[str, str]]:
    """[(SeqNN, folder holding imagesjpg/)] for both layouts, sorted by name."""
    out = []
    for name in sorted(os.listdir(root)):
        if not SEQ_RE.match(name):
            continue
        for folder in (os.path.join(root, name), os.path.join(root, name, name)):
            if os.path.isdir(os.path.join(folder, "imagesjpg")):
                out.append((name, folder))
                break
    return out


class ChalearnConverter(conversion.Converter):
    dataset = "chalearn"

    def __init__(self, root: str, split: str = "all", frame_step: int = 1):
        if frame_step < 1:
            raise InvalidArgument(f"frame_step must be >= 1, got {frame_step}")
        self.root, self.split, self.frame_step = root, split, frame_step

    def items(self):
        root, wanted = self.root, None
        if self.split != "all":
            if os.path.isdir(os.path.join(self.root, self.split)):
                root = os.path.join(self.root, self.split)
            else:
                wanted = {s.strip() for s in self.split.split(",") if s.strip()}
        if not os.path.isdir(root):
            raise FileNotFoundError(f"--root {root} is not a directory")
        seqs = find_sequences(root)
        if wanted is not None:
            missing = wanted - {s for s, _ in seqs}
            if missing:
                raise FileNotFoundError(f"--split: sequences {sorted(missing)} not found under {root}")
            seqs = [(s, f) for s, f in seqs if s in wanted]
        for seq, folder in seqs:
            layout = self._layout(folder)
            if layout is None:
                yield conversion.Skipped(
                    seq, f"no ground truth: {folder} has neither maskspng/ nor masks/ (unlabelled sequence)", bad=False
                )
                continue
            frames = []
            for f in os.listdir(os.path.join(folder, "imagesjpg")):
                m = FRAME_RE.match(f)
                if m:
                    frames.append((int(m.group(2)), m.group(1), m.group(2)))
            for num, nn, ffff in sorted(frames):
                if (num - 1) % self.frame_step == 0:
                    yield conversion.Item(f"{seq}/{ffff}", (folder, layout, nn, ffff))

    @staticmethod
    def _layout(folder: str) -> Optional[str]:
        for layout in ("maskspng", "masks"):
            if os.path.isdir(os.path.join(folder, layout)):
                return layout
        return None

    def _actor_limbs(
        self, folder: str, layout: str, stem: str, actor: int, image: conversion.SourceImage
    ) -> Optional[List[np.ndarray]]:
        """The actor's 14 limb masks, or None when the actor has no GT file in this frame."""
        if layout == "masks":
            path = os.path.join(folder, "masks", f"{stem}_{actor}.png")
            if not os.path.isfile(path):
                return None
            pano = read_binary_png(path)
            if pano.shape[0] != image.height:
                raise conversion.SkipItem(f"size mismatch: {path} is {pano.shape[0]} px high, image {image.height}")
            return split_panorama(pano, image.width, path)
        paths = [os.path.join(folder, "maskspng", f"{stem}_{actor}_{k}.png") for k in range(1, NUM_LIMBS + 1)]
        present = [os.path.isfile(p) for p in paths]
        if not any(present):
            return None
        if not all(present):
            raise conversion.SkipItem(
                f"missing mask: actor {actor} of {stem} lacks limb files "
                f"{[os.path.basename(p) for p, ok in zip(paths, present) if not ok]}"
            )
        limbs = [read_binary_png(p) for p in paths]
        for p, m in zip(paths, limbs):
            conversion.check_mask_shape(m, image, p)
        return limbs

    def convert(self, item: conversion.Item):
        folder, layout, nn, ffff = item.data
        stem = f"{nn}_{ffff}"
        image = conversion.load_image(os.path.join(folder, "imagesjpg", f"{stem}.jpg"))
        persons = []
        for actor in ACTORS:
            limbs = self._actor_limbs(folder, layout, stem, actor, image)
            if limbs is None:
                continue
            body = np.logical_or.reduce(limbs)
            if not body.any():
                continue  # actor not in this frame
            parts: Dict[int, np.ndarray] = {}
            for k, mask in enumerate(limbs, 1):
                ch = LIMB_CHANNELS[k]
                parts[ch] = parts.get(ch, False) | mask
            persons.append(conversion.build_person(body, parts, conversion.ALL_VALID))
        yield conversion.record_or_negative(image, item.key, item.key, self.dataset, persons)
