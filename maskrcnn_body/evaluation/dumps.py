"""Evaluation dumps: one ``.npz`` per image holding predictions and ground truth (numpy only).

The format is an interface (``docs/DESIGN.md``); all coordinates are original-image pixels in the
continuous pixel-edge frame of ``constants`` (x2/y2 exclusive).

=================  =========  ===============  ==================================================
key                dtype      shape            meaning
=================  =========  ===============  ==================================================
``image``          uint8      (H, W, 3)        RGB
``source_id``      str        ()               the record's ``image/source_id``
``boxes``          float32    (R, 4)           detections x1, y1, x2, y2
``scores``         float32    (R,)             person scores
``masks``          float16    (R, M, M, 7)     per-channel probabilities inside each box
``keypoints``      float32    (R, 15, 3)       x, y, score
``gt_boxes``       float32    (G, 4)           ground-truth boxes
``gt_parts``       uint8      (G, H, W)        bit k = channel k
``gt_valid``       uint8      (G, 7)           1 = channel k annotated for that person
``gt_keypoints``   float32    (G, 15, 3)       x, y, v (v as in the schema: 0/1/2)
=================  =========  ===============  ==================================================
"""

from __future__ import annotations

import glob
import os
from typing import Any, Dict, Iterator, List

import numpy as np

from maskrcnn_body import constants
from maskrcnn_body.errors import UserError
from maskrcnn_body.utils.files import atomic_path

DTYPES = {
    "image": np.uint8,
    "boxes": np.float32,
    "scores": np.float32,
    "masks": np.float16,
    "keypoints": np.float32,
    "gt_boxes": np.float32,
    "gt_parts": np.uint8,
    "gt_valid": np.uint8,
    "gt_keypoints": np.float32,
}
KEYS = ("image", "source_id") + tuple(k for k in DTYPES if k != "image")


class DumpError(UserError, ValueError):
    """A dump does not follow the format; the message names the file and the key."""


def validate_dump(d: Dict[str, np.ndarray], name: str = "<dump>") -> None:
    """Raises :class:`DumpError` if keys, dtypes or shapes break the format."""
    missing = [k for k in KEYS if k not in d]
    if missing:
        raise DumpError(f"{name}: missing keys {missing}; a dump needs {list(KEYS)}")
    for k, dt in DTYPES.items():
        if d[k].dtype != dt:
            raise DumpError(f"{name}: {k!r} has dtype {d[k].dtype}, expected {np.dtype(dt)}")
    img = d["image"]
    if img.ndim != 3 or img.shape[2] != 3:
        raise DumpError(f"{name}: 'image' has shape {img.shape}, expected (H, W, 3) RGB")
    h, w = img.shape[:2]
    r, g = d["boxes"].shape[0], d["gt_boxes"].shape[0]
    m = d["masks"].shape[1] if d["masks"].ndim == 4 else -1
    expected = {
        "boxes": (r, 4),
        "scores": (r,),
        "masks": (r, m, m, constants.NUM_CHANNELS),
        "keypoints": (r, constants.NUM_KEYPOINTS, 3),
        "gt_boxes": (g, 4),
        "gt_parts": (g, h, w),
        "gt_valid": (g, constants.NUM_CHANNELS),
        "gt_keypoints": (g, constants.NUM_KEYPOINTS, 3),
    }
    for k, shape in expected.items():
        if d[k].shape != shape:
            raise DumpError(
                f"{name}: {k!r} has shape {d[k].shape}, expected {shape} "
                f"(R={r} detections, G={g} people, image {h}x{w}, M={m})"
            )


def _coerce(name: str, arrays: Dict) -> Dict[str, np.ndarray]:
    out = {}
    for k, v in arrays.items():
        if k == "source_id":
            out[k] = np.asarray(str(v.decode() if isinstance(v, bytes) else v))
            continue
        if k not in DTYPES:
            raise DumpError(f"{name}: unknown key {k!r}; a dump has exactly {list(KEYS)}")
        a = np.asarray(v)
        want = np.dtype(DTYPES[k])
        if want.kind == "u" and a.dtype.kind == "f":
            raise DumpError(f"{name}: {k!r} is {a.dtype}; it must hold integers ({want}), not floats")
        out[k] = a.astype(want, copy=False)
    return out


def write_dump(path: str, **arrays) -> str:
    """Writes one image's dump atomically (:func:`~maskrcnn_body.utils.files.atomic_path`); returns ``path``.

    Keyword arguments are the keys of the module table; values are converted to the
    format's dtypes (e.g. float32 masks become float16) and validated.
    """
    d = _coerce(path, arrays)
    validate_dump(d, path)
    payload: Dict[str, Any] = dict(d)  # numpy's stub would type the keywords against allow_pickle
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **payload)
    return path


def read_dump(path: str) -> Dict[str, object]:
    """Loads and validates one dump; ``source_id`` comes back as ``str``, the rest as arrays."""
    try:
        with np.load(path, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise DumpError(f"{path}: not a readable .npz dump ({e})") from None
    validate_dump(d, path)
    d["source_id"] = str(d["source_id"])
    return d


def list_dumps(dump_dir: str) -> List[str]:
    """Sorted ``*.npz`` paths in ``dump_dir``; raises FileNotFoundError when there are none."""
    if not os.path.isdir(dump_dir):
        raise FileNotFoundError(
            f"dump directory {dump_dir!r} does not exist; write dumps with "
            f"train/evaluate.py (evaluation.dumps.write_dump) first"
        )
    paths = sorted(glob.glob(os.path.join(glob.escape(dump_dir), "*.npz")))
    if not paths:
        raise FileNotFoundError(
            f"no .npz dumps in {dump_dir!r}; write them with train/evaluate.py (evaluation.dumps.write_dump) first"
        )
    return paths


def iter_dumps(dump_dir: str) -> Iterator[Dict[str, object]]:
    """:func:`read_dump` of every dump in ``dump_dir``, lazily, in file-name order.

    The directory is listed at call time, so an empty or missing directory raises here.
    """
    paths = list_dumps(dump_dir)
    return (read_dump(p) for p in paths)
