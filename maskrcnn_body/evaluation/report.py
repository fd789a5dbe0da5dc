"""Printing and saving the metrics (no TensorFlow).

The JSON written by :func:`write_json` is an interface::

    {"box": {"AP", "AP50", "AP75"},
     "mask": {CH: {"AP", "AP50", "AP75"}} for CH in body, head, torso, left_arm, right_arm,
             left_leg, right_leg, complete,
     "mask_by_size": {SIZE: {CH: {"AP", "AP50", "AP75"}}} for SIZE in small, medium, large (person box
             height < 80, 80-160, >= 160 px: metrics.SIZE_RANGES) and CH in body .. right_leg,
     "parsing": {"mIoU", "IoU_background", "IoU_per_part": {PART: IoU} for PART in head, torso,
                 left_arm, right_arm, left_leg, right_leg, "APp50", "APp_vol", "PCP50",
                 "mIoU_parts", "APp50_parts", "APp_vol_parts", "PCP50_parts"},
     "keypoints": {"AP", "PCK@0.2"},
     "left_right_confusion": {"arm", "leg"},
     "legacy": {CH: value} for CH in complete, body, ..., right_leg}

Values are floats in [0, 1], or null where undefined (nothing to measure, e.g. no annotated
ground truth of that kind). ``parsing``: ``mIoU``, ``APp50``, ``APp_vol``, ``PCP50`` follow the
CIHP / MHP-v2 reference evaluation code, ``IoU_*`` are the class IoUs behind that ``mIoU``; the
``*_parts`` keys are this project's stricter parts-only variants (``evaluation/parsing.py``,
``docs/METRICS.md``).
"""

from __future__ import annotations

import json
from typing import Dict, Optional

from maskrcnn_body import constants
from maskrcnn_body.evaluation.legacy import ROW_LABELS, ROWS
from maskrcnn_body.evaluation.metrics import AP_KEYS
from maskrcnn_body.evaluation.parsing import PARTS_KEYS
from maskrcnn_body.utils.files import write_text_atomic

MASK_ROWS = constants.CHANNELS + ("complete",)


def _fmt(v: Optional[float]) -> str:
    return "    -" if v is None else f"{100 * v:5.1f}"


def format_report(summary: Dict, num_images: Optional[int] = None) -> str:
    """Human-readable tables (values in percent, ``-`` = undefined)."""
    lines = []
    if num_images is not None:
        lines.append(f"{num_images} images")
    lines.append(f"{'COCO AP':<16}" + "".join(f"{k:>7}" for k in AP_KEYS))
    lines.append(f"{'box':<16}" + "".join(f"  {_fmt(summary['box'][k])}" for k in AP_KEYS))
    for ch in MASK_ROWS:
        lines.append(f"{'mask ' + ch:<16}" + "".join(f"  {_fmt(summary['mask'][ch][k])}" for k in AP_KEYS))
    if "mask_by_size" in summary:
        sizes = summary["mask_by_size"]
        lines.append(
            "mask AP by person box height (small < 80 px, medium 80-160, large >= 160)  "
            + "".join(f"{s:>8}" for s in sizes)
        )
        for ch in constants.CHANNELS:
            lines.append(f"  {ch:<14}" + " " * 55 + "".join(f"   {_fmt(sizes[s][ch]['AP'])}" for s in sizes))
    p, k, lr = summary["parsing"], summary["keypoints"], summary["left_right_confusion"]
    lines.append(
        "parsing (CIHP/MHP-v2 reference definitions)  "
        + "  ".join(f"{n} {_fmt(p[n]).strip()}" for n in ("APp50", "APp_vol", "PCP50"))
    )
    per_class = [("background", p["IoU_background"])] + list(p["IoU_per_part"].items())
    lines.append(
        f"  mIoU {_fmt(p['mIoU']).strip()}  = mean of IoU  " + "  ".join(f"{n} {_fmt(v).strip()}" for n, v in per_class)
    )
    lines.append("parsing, parts only (stricter)  " + "  ".join(f"{n} {_fmt(p[n]).strip()}" for n in PARTS_KEYS))
    lines.append("keypoints    " + "  ".join(f"{n} {_fmt(v).strip()}" for n, v in k.items()))
    lines.append(
        "left/right confusion (lower is better)  " + "  ".join(f"{n} {_fmt(v).strip()}" for n, v in lr.items())
    )
    lines.append("original's metric (legacy/metric.py, bugs fixed)")
    for row in ROWS:
        lines.append(f"  {ROW_LABELS[row]:<10} {_fmt(summary['legacy'][row])}")
    return "\n".join(lines)


def format_split_comparison(val: Dict, train: Dict, train_images: Optional[int] = None) -> str:
    """The AP that tells underfitting from overfitting: box AP, each part's mask AP and the keypoint OKS AP
    of ``val`` beside ``train`` (two :func:`write_json` summaries of the same model; values in percent).
    Train close to val: the model underfits (more steps or capacity help); train far above val: it overfits."""
    head = "AP on val and on the training split" + (f" ({train_images} training images)" if train_images else "")
    lines = [head, f"{'':<16}{'val':>7}{'train':>7}"]
    rows = [("box", val["box"]["AP"], train["box"]["AP"])]
    rows += [(f"mask {ch}", val["mask"][ch]["AP"], train["mask"][ch]["AP"]) for ch in constants.CHANNELS]
    rows.append(("keypoints", val["keypoints"]["AP"], train["keypoints"]["AP"]))
    lines += [f"{name:<16}  {_fmt(v)}  {_fmt(t)}" for name, v, t in rows]
    return "\n".join(lines)


def write_json(summary: Dict, path: str) -> str:
    """Writes the summary as JSON atomically; returns ``path``."""
    return write_text_atomic(path, json.dumps(summary, indent=2, sort_keys=False) + "\n")
