"""ADE20K -> schema v1, for both on-disk layouts (one item per ``*_seg.png``).

Per image ``X`` the files are ``X.jpg``, ``X_seg.png``, ``X_parts_N.png`` (N = 1, 2, ...), and
either ``X.json`` + ``X/instance_NNN_X.png`` (2021 layout, read when present) or
``X_atr.txt`` (2016/2017 layout, also datumaro's ``ade20k2017``).

Label PNG encoding (``_seg`` and ``_parts_N``): ``class = (R // 10) * 256 + G`` computed in
int32 (ids go above 255), ``instance = rank of B`` within the image. Label maps are never
resized.

Persons (class name :data:`PERSON_NAME`, never a hard-coded id):

* 2021: objects of the json with that ``name`` and ``part_level`` 0; body = the 255 region
  of the object's instance PNG; its parts are the level-1 objects whose ``ispartof`` is the
  person's ``id`` (their 255 regions, clipped to the body).
* 2016 with an index (``index_ade20k.mat``, its ``objectnames``): person id = 1-based
  position of :data:`PERSON_NAME`; every B rank of ``_seg`` inside ``class == id`` is one
  person. Part names come from the part class ids of ``_parts_1``.
* 2016 without an index (e.g. datumaro assets, whose class values are not real): the
  ``_atr.txt`` level-0 lines named :data:`PERSON_NAME` give the person instance numbers
  ``k``, and instance ``k`` is B rank ``k`` of ``_seg`` (datumaro's convention, only checked
  on synthetic files). Level-1 line ``k`` names B rank ``k`` of ``_parts_1``.

In the 2016 layout nothing links a part to its person: each part pixel goes to the person
whose body it lies on. Level-2 parts (``_parts_2``: eyes, ...) are parts of parts and are
not used.

Part names -> channels: :data:`PART_CHANNELS` (the sided 2016 names). The unsided names in
:data:`UNSIDED_PARTS` (arm, hand, leg, foot) cannot be given a side, so they are left out and
the two channels they would feed (3+4 or 5+6) are marked unknown for that person. Any other
part name on a person is an error (skip with reason; error in strict mode).

``parts_valid``: a person without any part annotation is body only. A person with parts has
channels 1-6 valid, except the torso, which ADE20K often leaves unannotated: it is valid
only when a torso/back/neck part exists, or with ``derive_torso`` (torso = largest
connected blob of the body minus all other parts, as the legacy code did). Keypoints: none.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
from typing import Dict, Iterator, List, Optional, Sequence, Set, Tuple

import numpy as np

from maskrcnn_body import constants
from maskrcnn_body.data import conversion
from maskrcnn_body.errors import InvalidArgument, optional_import

PERSON_NAME = "person, individual, someone, somebody, mortal, soul"

PART_CHANNELS: Dict[str, int] = {}
for _channel, _names in {
    "head": ["head"],
    "torso": ["torso", "back", "neck"],
    "left_arm": ["left arm", "left hand", "left shoulder"],
    "right_arm": ["right arm", "right hand", "right shoulder"],
    "left_leg": ["left leg", "left foot"],
    "right_leg": ["right leg", "right foot"],
}.items():
    PART_CHANNELS.update(dict.fromkeys(_names, constants.CHANNEL_INDEX[_channel]))
"""ADE20K person part names (2016 index) -> channel (datasets.md section 3)."""

UNSIDED_PARTS: Dict[str, Tuple[int, int]] = {
    "arm": (3, 4),
    "hand": (3, 4),
    "leg": (5, 6),
    "foot": (5, 6),
}
"""Unsided part names -> the channel pair they make unknown."""


# --------------------------------------------------------------------------- file parsing
def read_png(path: str, mode: str) -> np.ndarray:
    """A PNG as uint8 (H, W, 3) (``mode='RGB'``) or (H, W) (``'L'``); SkipItem when unreadable."""
    from PIL import Image

    if not os.path.isfile(path):
        raise conversion.SkipItem(f"missing annotation: {path} does not exist")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert(mode))
    except Exception as e:
        raise conversion.SkipItem(f"corrupt annotation: {path} ({type(e).__name__}: {e})") from None


def decode_label_png(rgb: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) uint8 ``_seg``/``_parts_N`` -> (class int32 (H, W), instance rank int32 (H, W))."""
    rgb = np.asarray(rgb)
    cls = (rgb[..., 0].astype(np.int32) // 10) * 256 + rgb[..., 1].astype(np.int32)
    inst = np.unique(rgb[..., 2], return_inverse=True)[1].reshape(rgb.shape[:2]).astype(np.int32)
    return cls, inst


@dataclasses.dataclass(frozen=True)
class AtrLine:
    """One ``_atr.txt`` line: instance number (restarts per level), part level, names."""

    instance: int
    level: int
    occluded: bool
    wordnet: str
    raw: str
    attributes: Tuple[str, ...]


def read_atr(path: str) -> List[AtrLine]:
    """Parses ``X_atr.txt``: 6 ``#``-separated fields, the last in double quotes."""
    if not os.path.isfile(path):
        raise conversion.SkipItem(f"missing annotation: {path} does not exist")
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            fields = [x.strip() for x in line.split("#")]
            attr = fields[-1] if fields else ""
            if len(fields) != 6 or not (len(attr) >= 2 and attr[0] == attr[-1] == '"'):
                raise conversion.SkipItem(
                    f"corrupt annotation: {path} line {n} has {len(fields)} '#' fields "
                    f"(expected 6, the last in double quotes): {line.strip()!r}"
                )
            try:
                inst, level, occ = int(fields[0]), int(fields[1]), bool(int(fields[2]))
            except ValueError:
                raise conversion.SkipItem(
                    f"corrupt annotation: {path} line {n}: instance/level/occluded are not integers: {line.strip()!r}"
                ) from None
            attrs = tuple(a.strip() for a in attr[1:-1].split(",") if a.strip())
            out.append(AtrLine(inst, level, occ, fields[3], fields[4], attrs))
    return out


def _as_int(value) -> Optional[int]:
    """MATLAB-style json values: ``[]`` -> None, ``'3'``/3/[3] -> 3."""
    if isinstance(value, list):
        return _as_int(value[0]) if len(value) == 1 else None
    if value is None or value == "":
        return None
    return int(value)


def read_json_objects(path: str) -> List[dict]:
    """2021 ``X.json`` objects as ``{id, name, name_ndx, level, ispartof, instance_mask}`` dicts."""
    try:
        with open(path, encoding="utf-8") as f:
            objects = json.load(f)["annotation"]["object"]
        out = []
        for o in objects:
            parts = o.get("parts") or {}
            out.append(
                {
                    "id": int(o["id"]),
                    "name": str(o["name"]),
                    "name_ndx": int(o["name_ndx"]),
                    "level": _as_int(parts.get("part_level")) or 0,
                    "ispartof": _as_int(parts.get("ispartof")),
                    "instance_mask": str(o.get("instance_mask") or ""),
                }
            )
    except Exception as e:
        raise conversion.SkipItem(f"corrupt annotation: {path} ({type(e).__name__}: {e})") from None
    return out


def read_index_names(path: str) -> List[str]:
    """``objectnames`` of a 2016 ``index_ade20k.mat`` (class id k = names[k - 1])."""
    scipy_io = optional_import("scipy.io", "convert", "reading the dataset's .mat annotations")

    index = scipy_io.loadmat(path)["index"][0, 0]
    return [str(np.asarray(n).ravel()[0]) if np.asarray(n).size else "" for n in index["objectnames"].ravel()]


# --------------------------------------------------------------------------- scene -> persons
@dataclasses.dataclass
class AdePerson:
    """A person found in an image: body (H, W) bool and its level-1 parts (name, (H, W) bool)."""

    body: np.ndarray
    parts: List[Tuple[str, np.ndarray]] = dataclasses.field(default_factory=list)


def _name_candidates(name: str) -> List[str]:
    name = name.strip().lower()
    return [name, name.split(",")[0].strip()]


def person_channels(person: AdePerson, derive_torso: bool, key: str) -> Tuple[Dict[int, np.ndarray], Tuple[int, ...]]:
    """Maps a person's named parts to ({channel: mask}, valid channels); see the module doc."""
    parts: Dict[int, np.ndarray] = {}
    unknown_channels: Set[int] = set()
    for name, mask in person.parts:
        cands = _name_candidates(name)
        ch = next((PART_CHANNELS[c] for c in cands if c in PART_CHANNELS), None)
        if ch is not None:
            parts[ch] = parts.get(ch, False) | mask
            continue
        pair = next((UNSIDED_PARTS[c] for c in cands if c in UNSIDED_PARTS), None)
        if pair is None:
            raise conversion.SkipItem(
                f"unknown part name: {key} has a part named {name!r}, not in "
                f"ade20k.PART_CHANNELS / UNSIDED_PARTS; add it to a table"
            )
        unknown_channels.update(pair)
    if not person.parts:
        return {}, conversion.BODY_ONLY
    torso = constants.CHANNEL_INDEX["torso"]
    if torso not in parts and derive_torso:
        parts[torso] = _derive_torso(person.body, parts)
    if torso not in parts:
        unknown_channels.add(torso)
    valid = tuple(c for c in conversion.ALL_VALID if c not in unknown_channels)
    return parts, valid


def _derive_torso(body: np.ndarray, parts: Dict[int, np.ndarray]) -> np.ndarray:
    ndimage = optional_import("scipy.ndimage", "convert", "deriving the torso mask")

    rest = body.copy()
    for m in parts.values():
        rest &= ~m
    labels, n = ndimage.label(rest)
    if n == 0:
        return rest
    sizes = np.bincount(labels.ravel())[1:]
    return labels == (1 + int(np.argmax(sizes)))


def assign_parts_by_pixel(
    bodies: Sequence[np.ndarray], part_cls: np.ndarray, part_inst: np.ndarray, name_of
) -> List[List[Tuple[str, np.ndarray]]]:
    """Gives each level-1 part pixel to the person whose body it lies on.

    ``name_of(class_id, instance_rank) -> str``; returns per person a list of (name, mask).
    """
    out: List[List[Tuple[str, np.ndarray]]] = [[] for _ in bodies]
    labelled = part_inst > 0
    for i, body in enumerate(bodies):
        on = labelled & body
        for rank in np.unique(part_inst[on]):
            m = on & (part_inst == rank)
            cls = int(np.bincount(part_cls[m]).argmax())
            out[i].append((name_of(cls, int(rank)), m))
    return out


class Ade20kConverter(conversion.Converter):
    dataset = "ade20k"

    def __init__(
        self,
        root: str,
        split: str = "all",
        index: Optional[str] = None,
        derive_torso: bool = False,
        keep_negatives: bool = False,
    ):
        self.root, self.split, self.derive_torso, self.keep_negatives = root, split, derive_torso, keep_negatives
        if index is None:
            auto = glob.glob(os.path.join(root, "index_ade20k.mat")) + glob.glob(
                os.path.join(root, "*", "index_ade20k.mat")
            )
            index = auto[0] if auto else None
        self.index = index
        self._names: Optional[List[str]] = None

    def items(self) -> Iterator[conversion.Item]:
        if not os.path.isdir(self.root):
            raise FileNotFoundError(f"--root {self.root} is not a directory")
        segs = sorted(glob.glob(os.path.join(self.root, "**", "*_seg.png"), recursive=True))
        for seg in segs:
            base = seg[: -len("_seg.png")]
            rel = os.path.relpath(base, self.root)
            if self.split != "all" and self.split not in rel.split(os.sep):
                continue
            yield conversion.Item(rel, base)

    def _index_names(self) -> Optional[List[str]]:
        if self.index and self._names is None:
            self._names = read_index_names(self.index)
        return self._names

    # ---- layouts
    def find_persons(self, base: str, image: conversion.SourceImage) -> List[AdePerson]:
        """The persons of image ``base`` (path without suffix) with their named level-1 parts."""
        if os.path.isfile(base + ".json"):
            return self._persons_2021(base, image)
        return self._persons_2016(base, image)

    def _persons_2021(self, base: str, image: conversion.SourceImage) -> List[AdePerson]:
        objects = read_json_objects(base + ".json")
        folder = os.path.dirname(base)

        def mask_of(o) -> np.ndarray:
            path = (
                os.path.join(folder, o["instance_mask"])
                if o["instance_mask"]
                else os.path.join(base, f"instance_{o['id']:03d}_{os.path.basename(base)}.png")
            )
            m = read_png(path, "L")
            conversion.check_mask_shape(m, image, f"instance mask {path}")
            return m == 255

        persons = []
        for o in objects:
            if o["name"] == PERSON_NAME and o["level"] == 0:
                body = mask_of(o)
                parts = [
                    (p["name"], mask_of(p) & body) for p in objects if p["ispartof"] == o["id"] and p["level"] == 1
                ]
                persons.append(AdePerson(body, parts))
        return persons

    def _persons_2016(self, base: str, image: conversion.SourceImage) -> List[AdePerson]:
        seg = read_png(base + "_seg.png", "RGB")
        conversion.check_mask_shape(seg[..., 0], image, base + "_seg.png")
        cls, inst = decode_label_png(seg)
        names = self._index_names()
        parts_path = base + "_parts_1.png"
        atr = read_atr(base + "_atr.txt") if names is None else []
        if names is not None:
            if PERSON_NAME not in names:
                raise InvalidArgument(f"{self.index}: objectnames has no {PERSON_NAME!r}; is this an ADE20K index?")
            person_id = names.index(PERSON_NAME) + 1
            ranks = [int(r) for r in np.unique(inst[cls == person_id])]
            bodies = [(cls == person_id) & (inst == r) for r in ranks]

            def name_of(c, rank):
                return names[c - 1] if 1 <= c <= len(names) else f"<class {c}>"
        else:
            person_ranks = [a.instance for a in atr if a.level == 0 and a.wordnet == PERSON_NAME]
            bodies = [inst == k for k in person_ranks]
            part_names = {a.instance: a.wordnet for a in atr if a.level == 1}

            def name_of(c, rank):
                if rank not in part_names:
                    raise conversion.SkipItem(
                        f"corrupt annotation: {parts_path} part instance {rank} has no level-1 line in {base}_atr.txt"
                    )
                return part_names[rank]

        if not os.path.isfile(parts_path) or not bodies:
            return [AdePerson(b) for b in bodies]
        prgb = read_png(parts_path, "RGB")
        conversion.check_mask_shape(prgb[..., 0], image, parts_path)
        pcls, pinst = decode_label_png(prgb)
        per_person = assign_parts_by_pixel(bodies, pcls, pinst, name_of)
        return [AdePerson(b, p) for b, p in zip(bodies, per_person)]

    def convert(self, item: conversion.Item):
        base = item.data
        image = conversion.load_image(base + ".jpg")
        persons = []
        for i, p in enumerate(self.find_persons(base, image)):
            key = f"{item.key}#person{i}"
            parts, valid = person_channels(p, self.derive_torso, key)
            try:
                persons.append(conversion.build_person(p.body, parts, valid))
            except conversion.SkipItem as e:
                yield conversion.Skipped(key, str(e))
        yield conversion.record_or_negative(image, item.key, item.key, self.dataset, persons, self.keep_negatives)
