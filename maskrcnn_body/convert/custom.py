"""Your own annotations -> schema v1: the documented JSON format, its validator and its converter.

The format (``"format": "maskrcnn_body/annotations"``, ``"version": 1``; docs/DATASETS.md, "Your own
annotations", is the reference a user reads) holds one image or a list of images::

    {"format": "maskrcnn_body/annotations", "version": 1,
     "images": [                                  # or, one file per image: the image's keys at the top
       {"image": "photos/beach.jpg",              # relative to the JSON file's folder (or absolute)
        "width": 640, "height": 480,              # optional; checked against the file
        "persons": [
          {"box": [x1, y1, x2, y2],               # required unless parts.body is given
           "parts": {"body": SHAPE, "head": SHAPE, "left_arm": SHAPE, ...},   # our channel names
           "keypoints": {"left_wrist": [x, y, v], ...}}                      # our joint names
        ]}]}

    SHAPE = {"polygons": [[x, y, x, y, ...], ...]}          # united; [] = annotated, not visible
          | {"rle": {"size": [H, W], "counts": "..." or [run, ...]}}   # COCO RLE of the whole image

* Coordinates (boxes, polygon vertices, keypoints) are in the pixel-edge frame of
  :mod:`maskrcnn_body.constants` (pixel column i covers [i, i + 1)); boxes are x1, y1, x2, y2 with
  x2/y2 exclusive. Keypoint v: 0 unlabelled, 1 labelled but hidden, 2 visible.
* ``parts_valid``: 1 for each channel named in ``parts`` (an empty shape = annotated, the person has
  none of it), 0 = unknown for the others (never trained as background).
* Body given: parts are clipped to it and the record's box is the body's tight box (the schema's rule).
  Body not given: the body channel is unknown, its pixels are the union of the parts, and the record's
  box is ``box`` (clipped to the image).
* Left/right are the person's own sides (a person facing the camera has the left arm on the image's right).

:func:`validate_files` checks everything that can be checked without decoding images and returns
messages naming the file, the image, the person and the field; :class:`CustomConverter` converts
files that pass.
"""

from __future__ import annotations

import glob
import json
import os
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from maskrcnn_body import constants
from maskrcnn_body.convert import coco
from maskrcnn_body.data import conversion, schema
from maskrcnn_body.errors import UserError

FORMAT = "maskrcnn_body/annotations"
VERSION = 1
TOP_KEYS = ("format", "version", "images")
IMAGE_KEYS = ("image", "width", "height", "persons")
PERSON_KEYS = ("box", "parts", "keypoints")
SHAPE_KEYS = ("polygons", "rle")


class AnnotationFileError(UserError, ValueError):
    """A file does not follow the format; ``problems`` are the messages of :func:`validate_files`."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def expand_inputs(patterns: str) -> List[str]:
    """Sorted JSON files of comma-separated globs, files or folders (every ``*.json`` inside, recursively)."""
    out: List[str] = []
    for p in (x.strip() for x in patterns.split(",")):
        if not p:
            continue
        if os.path.isdir(p):
            out += glob.glob(os.path.join(p, "**", "*.json"), recursive=True)
        elif any(ch in p for ch in "*?["):
            out += glob.glob(p, recursive=True)
        elif os.path.exists(p):
            out.append(p)
    out = sorted({f for f in out if not f.endswith(".summary.json")})
    if not out:
        raise FileNotFoundError(f"no annotation files match {patterns!r} (JSON files, folders of them, or globs)")
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and bool(np.isfinite(v))


def _image_entries(data: Any) -> Tuple[Optional[list], List[str]]:
    """(the file's image entries, problems with the top level)."""
    if not isinstance(data, dict):
        return None, [f"the top level is a {type(data).__name__}; expected an object with 'format', 'version'"]
    problems = []
    if data.get("format") != FORMAT:
        problems.append(f"format: expected {FORMAT!r}, got {data.get('format')!r}")
    if "version" not in data:
        problems.append(f"version: missing; this package reads version {VERSION}")
    elif data["version"] != VERSION:
        problems.append(f"version: {data['version']!r} is not supported (this package reads version {VERSION})")
    if "images" in data:
        unknown = sorted(set(data) - set(TOP_KEYS))
        if unknown:
            problems.append(f"unknown top-level keys {unknown} (allowed: {list(TOP_KEYS)})")
        if not isinstance(data["images"], list):
            return None, problems + [f"images: expected a list of images, got {type(data['images']).__name__}"]
        return data["images"], problems
    if "image" in data:  # one file per image
        unknown = sorted(set(data) - set(TOP_KEYS) - set(IMAGE_KEYS))
        if unknown:
            problems.append(f"unknown top-level keys {unknown} (allowed: {list(TOP_KEYS + IMAGE_KEYS)})")
        return [{k: v for k, v in data.items() if k in IMAGE_KEYS}], problems
    return None, problems + ["neither 'images' (a list of images) nor 'image' (one image per file)"]


def image_path(json_path: str, entry: dict) -> str:
    """The image file of an entry: its ``image`` relative to the JSON file's folder (or absolute)."""
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(json_path)), entry["image"]))


def source_id_of(image: str) -> str:
    """``image/source_id`` of an entry's ``image``: the path without extension, leading ``../`` and ``/``
    (``../photos/beach.jpg`` -> ``photos/beach``)."""
    parts = [
        x
        for x in os.path.normpath(os.path.splitext(image)[0]).replace("\\", "/").split("/")
        if x not in ("", "..", ".")
    ]
    return "/".join(parts)


def _check_shape(shape: Any, size: Optional[Tuple[int, int]]) -> Optional[str]:
    if not isinstance(shape, dict) or len(shape) != 1 or next(iter(shape)) not in SHAPE_KEYS:
        return 'expected {"polygons": [[x, y, x, y, ...], ...]} or {"rle": {"size": [H, W], "counts": ...}}'
    if "polygons" in shape:
        polys = shape["polygons"]
        if not isinstance(polys, list):
            return f"polygons: expected a list of polygons, got {type(polys).__name__}"
        for i, poly in enumerate(polys):
            if not isinstance(poly, list) or not all(_is_number(v) for v in poly):
                return f"polygons[{i}]: expected a flat list of numbers x, y, x, y, ..."
            if len(poly) % 2 or len(poly) < 6:
                return f"polygons[{i}]: {len(poly)} numbers; expected an even count >= 6 (3 or more x, y vertices)"
        return None
    rle = shape["rle"]
    if not isinstance(rle, dict) or set(rle) != {"size", "counts"}:
        return "rle: expected an object with exactly 'size' [H, W] and 'counts'"
    sz = rle["size"]
    if not (isinstance(sz, list) and len(sz) == 2 and all(isinstance(v, int) and v > 0 for v in sz)):
        return f"rle.size: expected [height, width], got {sz!r}"
    if size is not None and tuple(sz) != size:
        return f"rle.size: {sz} is not the image's [height, width] {list(size)}"
    counts = rle["counts"]
    if isinstance(counts, list):
        if not all(isinstance(v, int) and v >= 0 for v in counts) or sum(counts) != sz[0] * sz[1]:
            return f"rle.counts: uncompressed runs must be non-negative ints summing to H * W = {sz[0] * sz[1]}"
    elif not isinstance(counts, str):
        return "rle.counts: expected a compressed string (pycocotools) or a list of run lengths"
    return None


def _check_person(p: Any, size: Optional[Tuple[int, int]]) -> List[str]:
    """Problems of one person entry, each 'field: problem'."""
    if not isinstance(p, dict):
        return [f"expected an object with 'box', 'parts', 'keypoints', got {type(p).__name__}"]
    out = []
    unknown = sorted(set(p) - set(PERSON_KEYS))
    if unknown:
        out.append(f"unknown keys {unknown} (allowed: {list(PERSON_KEYS)})")
    parts = p.get("parts", {})
    if not isinstance(parts, dict):
        out.append(f"parts: expected an object keyed by channel name, got {type(parts).__name__}")
        parts = {}
    if "box" in p:
        box = p["box"]
        if not (isinstance(box, list) and len(box) == 4 and all(_is_number(v) for v in box)):
            out.append(f"box: expected [x1, y1, x2, y2] (4 numbers, pixels), got {box!r}")
        elif not (box[2] > box[0] and box[3] > box[1]):
            out.append(f"box: {box} has x2 <= x1 or y2 <= y1; expected [x1, y1, x2, y2] (not x, y, width, height?)")
        elif size is not None and (box[0] < -1 or box[1] < -1 or box[2] > size[1] + 1 or box[3] > size[0] + 1):
            out.append(f"box: {box} lies outside the {size[1]}x{size[0]} image (x1, y1, x2, y2 in pixels)")
    elif "body" not in parts:
        out.append("box: missing (required unless parts.body is given)")
    for name, shape in parts.items():
        if name not in constants.CHANNEL_INDEX:
            out.append(f"parts.{name}: unknown channel (expected one of {', '.join(constants.CHANNELS)})")
            continue
        problem = _check_shape(shape, size)
        if problem:
            out.append(f"parts.{name}: {problem}")
    kps = p.get("keypoints", {})
    if not isinstance(kps, dict):
        out.append(f"keypoints: expected an object keyed by joint name, got {type(kps).__name__}")
        kps = {}
    for name, k in kps.items():
        if name not in constants.KEYPOINT_INDEX:
            out.append(f"keypoints.{name}: unknown joint (expected one of {', '.join(constants.KEYPOINTS)})")
        elif not (isinstance(k, list) and len(k) == 3 and all(_is_number(v) for v in k) and k[2] in (0, 1, 2)):
            out.append(f"keypoints.{name}: expected [x, y, v] with v 0, 1 or 2, got {k!r}")
    return out


def _check_image(entry: Any, json_path: str) -> Tuple[str, List[str]]:
    """(a label naming the image, problems 'field: problem' of the image and its persons)."""
    if not isinstance(entry, dict):
        return "", [f"expected an object with 'image' and 'persons', got {type(entry).__name__}"]
    out = []
    label = f" ({entry['image']})" if isinstance(entry.get("image"), str) else ""
    unknown = sorted(set(entry) - set(IMAGE_KEYS))
    if unknown:
        out.append(f"unknown keys {unknown} (allowed: {list(IMAGE_KEYS)})")
    if not isinstance(entry.get("image"), str) or not entry["image"]:
        out.append("image: missing; expected the image file's path (relative to this JSON file's folder)")
    elif not os.path.isfile(image_path(json_path, entry)):
        out.append(f"image: {image_path(json_path, entry)} does not exist")
    size = None
    if ("width" in entry) != ("height" in entry):
        out.append("width/height: give both or neither")
    elif "width" in entry:
        if all(isinstance(entry[k], int) and not isinstance(entry[k], bool) and entry[k] > 0 for k in IMAGE_KEYS[1:3]):
            size = (entry["height"], entry["width"])
        else:
            out.append(f"width/height: expected positive ints, got {entry['width']!r}, {entry['height']!r}")
    persons = entry.get("persons")
    if not isinstance(persons, list):
        out.append('persons: missing or not a list (an image without people: "persons": [])')
        persons = []
    for j, p in enumerate(persons):
        out += [f"person {j}: {msg}" for msg in _check_person(p, size)]
    return label, out


def load_file(path: str) -> Tuple[List[dict], List[str]]:
    """(image entries, problems) of one annotation file; problems name the file, image, person and field."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        return [], [f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})"]
    except (OSError, UnicodeDecodeError) as e:
        return [], [f"{path}: cannot be read ({e})"]
    entries, problems = _image_entries(data)
    problems = [f"{path}: {msg}" for msg in problems]
    for i, entry in enumerate(entries or []):
        label, msgs = _check_image(entry, path)
        problems += [f"{path}: image {i}{label}: {msg}" for msg in msgs]
    return entries or [], problems


def validate_files(paths: Sequence[str]) -> Tuple[int, int, List[str]]:
    """Checks annotation files: (images, persons, problems). Also finds an image listed twice."""
    seen: Dict[str, str] = {}
    images = persons = 0
    problems: List[str] = []
    for path in paths:
        entries, msgs = load_file(path)
        problems += msgs
        for i, e in enumerate(entries):
            images += 1
            persons += len(e.get("persons") or []) if isinstance(e, dict) else 0
            if isinstance(e, dict) and isinstance(e.get("image"), str):
                img = image_path(path, e)
                where = f"{path}: image {i} ({e['image']})"
                if img in seen:
                    problems.append(f"{where}: image: {img} is also annotated at {seen[img]}; annotate it once")
                seen.setdefault(img, where)
    return images, persons, problems


def _keypoints(kps: Dict[str, list]) -> np.ndarray:
    out = np.zeros((constants.NUM_KEYPOINTS, 3), np.float32)
    for name, (x, y, v) in kps.items():
        if v > 0:
            out[constants.KEYPOINT_INDEX[name]] = (x, y, v)
    return out


def _shape_mask(shape: dict, height: int, width: int) -> np.ndarray:
    seg = shape["polygons"] if "polygons" in shape else dict(shape["rle"])
    return coco.annotation_mask({"segmentation": seg}, height, width)


def build_person(p: dict, height: int, width: int) -> schema.Person:
    """One validated person entry -> :class:`~maskrcnn_body.data.schema.Person` (rules in the module doc)."""
    parts_json = p.get("parts", {})
    masks = {constants.CHANNEL_INDEX[n]: _shape_mask(s, height, width) for n, s in parts_json.items()}
    valid = sorted(masks)
    kp = _keypoints(p.get("keypoints", {}))
    if constants.BODY in masks:
        body = masks.pop(constants.BODY)
        if not body.any():
            raise conversion.SkipItem("empty person mask: parts.body has no pixel in the image")
        return conversion.build_person(body, masks, valid, kp)
    packed = np.zeros((height, width), np.uint8)
    for ch, m in masks.items():
        packed |= m.astype(np.uint8) << ch
    person = schema.make_person(packed, list(conversion.channels_valid(valid)), kp)
    x1, y1, x2, y2 = (float(v) for v in p["box"])
    person.bbox = np.array([max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)], np.float32)
    return person


class CustomConverter(conversion.Converter):
    """Files of the format above -> records (``image/dataset`` = ``custom``). Validate them first
    (:func:`validate_files`): a file that does not follow the format raises :class:`AnnotationFileError`."""

    dataset = "custom"

    def __init__(self, inputs: str):
        self.inputs = inputs

    def items(self) -> Iterator[conversion.Item]:
        for path in expand_inputs(self.inputs):
            entries, problems = load_file(path)
            if problems:
                raise AnnotationFileError(problems)
            for i, e in enumerate(entries):
                yield conversion.Item(f"{path}:{i}:{e['image']}", (path, e))

    def convert(self, item: conversion.Item):
        path, entry = item.data
        image = conversion.load_image(image_path(path, entry))
        if "width" in entry and (image.height, image.width) != (entry["height"], entry["width"]):
            raise conversion.SkipItem(
                f"size mismatch: {entry['image']} is {image.width}x{image.height} (WxH), "
                f"the annotation says {entry['width']}x{entry['height']}"
            )
        persons = []
        for j, p in enumerate(entry["persons"]):
            try:
                persons.append(build_person(p, image.height, image.width))
            except conversion.SkipItem as e:
                yield conversion.Skipped(f"{item.key}#person{j}", str(e))
        source_id = source_id_of(entry["image"])
        yield conversion.record_or_negative(image, item.key, source_id, self.dataset, persons, keep_negatives=True)


# --------------------------------------------------------------------------- CVAT export -> this format
def from_cvat_xml(xml_path: str, image_dir: str, json_dir: str) -> dict:
    """A CVAT "CVAT for images 1.1" export (``annotations.xml``) -> this format (a dict to write as JSON).

    What is read, per ``<image>``: ``<box label="person">`` (the person's box), ``<polygon label=CHANNEL>`` (one
    polygon each, united per channel), ``<points label=JOINT>`` (``occluded="1"`` -> v = 1, else 2) and
    ``<skeleton>`` elements' ``<points>`` (``outside="1"`` ones left out). Shapes with the same ``group_id``
    (CVAT's "group", key G) are one person; an image with a single person may leave its shapes ungrouped.
    Other labels and shapes (brush masks, ellipses) raise ``ValueError`` naming the image and the shape, as do
    ungrouped shapes in an image with several persons. ``image`` paths are written relative to ``json_dir``.
    """
    import xml.etree.ElementTree as ET

    root = ET.parse(xml_path).getroot()
    images = []
    for im in root.iter("image"):
        name = im.get("name", "")
        where = f"{xml_path}: image {name!r}"
        persons: Dict[str, dict] = {}

        def person(el, _persons=persons) -> dict:
            return _persons.setdefault(el.get("group_id") or "", {})

        for el in im:
            label = el.get("label", "")
            if el.tag == "box" and label == "person":
                p = person(el)
                if "box" in p:
                    raise AnnotationFileError([f"{where}: two person boxes in group {el.get('group_id') or '(none)'}"])
                p["box"] = [float(el.get(k, "nan")) for k in ("xtl", "ytl", "xbr", "ybr")]
            elif el.tag == "polygon" and label in constants.CHANNEL_INDEX:
                pts = [float(v) for xy in el.get("points", "").split(";") for v in xy.split(",")]
                shapes = person(el).setdefault("parts", {}).setdefault(label, {"polygons": []})
                shapes["polygons"].append(pts)
            elif el.tag == "points" and label in constants.KEYPOINT_INDEX:
                x, y = (float(v) for v in el.get("points", "").split(";")[0].split(","))
                person(el).setdefault("keypoints", {})[label] = [x, y, 1 if el.get("occluded") == "1" else 2]
            elif el.tag == "skeleton":
                p = person(el)
                for pt in el.iter("points"):
                    if pt.get("outside") == "1" or pt.get("label") not in constants.KEYPOINT_INDEX:
                        continue
                    x, y = (float(v) for v in pt.get("points", "").split(";")[0].split(","))
                    p.setdefault("keypoints", {})[pt.get("label")] = [x, y, 1 if pt.get("occluded") == "1" else 2]
            elif el.tag in ("box", "polygon", "points", "polyline", "ellipse", "mask", "cuboid", "tag"):
                raise AnnotationFileError(
                    [
                        f"{where}: a <{el.tag} label={label!r}> is not read (labels: 'person' boxes, polygons named "
                        f"{', '.join(constants.CHANNELS)}, points or skeleton points named by our joints)"
                    ]
                )
        if "" in persons and len(persons) > 1:
            raise AnnotationFileError([f"{where}: shapes without a group in an image with several persons; "
                                       "group each person's shapes in CVAT (select them, key G)"])  # fmt: skip
        entry = {
            "image": os.path.relpath(os.path.join(image_dir, name), json_dir),
            "width": int(im.get("width", 0)),
            "height": int(im.get("height", 0)),
            "persons": [persons[g] for g in sorted(persons, key=lambda g: (len(g), g))],
        }
        images.append(entry)
    return {"format": FORMAT, "version": VERSION, "images": images}
