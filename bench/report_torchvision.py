"""The report's comparison with torchvision (bench/report.py): the speed aims (ratios to Mask R-CNN and
Keypoint R-CNN in the same run, with verdicts), inference at batch 1, the training step and the per-stage
inference times side by side.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from bench.report_format import DASH, fmt_mb, fmt_pair, fmt_ratio, fmt_s, peer_ratios, succeeded, value

AIMS = (  # (name, peers in the denominator, limit)
    ("inference <= 1.0x torchvision Mask R-CNN alone", ("maskrcnn",), 1.0),
    ("inference <= 0.5x Mask R-CNN + Keypoint R-CNN together", ("maskrcnn", "keypointrcnn"), 0.5),
)
TRAIN_AIM = ("training step <= 1.0x torchvision Mask R-CNN", 1.0)
PEERS = {"maskrcnn": "Mask R-CNN", "keypointrcnn": "Keypoint R-CNN"}


def aim_rows(results: Dict) -> List[Tuple[str, str, Optional[float], Optional[float], float]]:
    """(aim, where, wall ratio, cpu ratio, limit) for each aim and each measured configuration at
    the largest inference size (800 in the default run) and for the training step."""
    rows = []
    infer = results.get("infer") or []
    if infer:
        big = max(r["size"] for r in infer)
        for name, peers, limit in AIMS:
            for r in (r for r in infer if r["size"] == big):
                ps = [r.get(p) for p in peers]
                rows.append(
                    (
                        name,
                        f"{big}x{big}, D={r['detections']}",
                        peer_ratios(r["ours"], ps, "median_s"),
                        peer_ratios(r["ours"], ps, "cpu_median_s"),
                        limit,
                    )
                )
    train = results.get("train")
    if train:
        rows.append(
            (
                TRAIN_AIM[0],
                f"{train['size']}x{train['size']}, batch 1",
                peer_ratios(train["ours"], [train.get("maskrcnn")], "median_s"),
                peer_ratios(train["ours"], [train.get("maskrcnn")], "cpu_median_s"),
                TRAIN_AIM[1],
            )
        )
    return rows


def verdict(wall: Optional[float], cpu: Optional[float], limit: float) -> str:
    if wall is None:
        return "not measured"
    met = [x <= limit for x in (wall, cpu) if x is not None]
    return "met" if all(met) else ("missed" if not any(met) else "met by one measure only")


def stage_category(name: str) -> str:
    """Common stage names so ours and torchvision's stages line up in one table."""
    n = name.lower()
    for key, cat in (
        ("backbone", "backbone + FPN"),
        ("rpn", "RPN + proposals"),
        ("box", "box branch"),
        ("paste", "paste masks"),
        ("mask", "mask branch"),
        ("keypoint", "keypoint branch"),
        ("transform", "normalise/batch"),
    ):  # first match wins
        if key in n:
            return cat
    return "other"


CATEGORY_ORDER = (
    "normalise/batch",
    "backbone + FPN",
    "RPN + proposals",
    "box branch",
    "mask branch",
    "keypoint branch",
    "paste masks",
    "other",
)


STAGE_COLUMNS = (
    ("ours", "ours"),
    ("ours_bf16", 'ours, bfloat16 (`precision="bfloat16"`)'),
    ("ours_frozen_bn", "ours with frozen BN, no head norm (experiment)"),
    ("maskrcnn", PEERS["maskrcnn"]),
    ("keypointrcnn", PEERS["keypointrcnn"]),
)


def stage_table(stages: Dict) -> List[str]:
    """Per-category stage times of each measured column (``stages`` list of [name, seconds])."""
    cols = [(title, stages.get(key)) for key, title in STAGE_COLUMNS if succeeded(stages.get(key))]
    if not cols:
        return ["Not measured."]
    per = []
    for _, r in cols:
        cat = {}
        for name, t in r["stages"]:
            cat[stage_category(name)] = cat.get(stage_category(name), 0.0) + t
        per.append(cat)
    lines = [
        f"{stages['size']}x{stages['size']}, D={stages['detections']}, median seconds per stage:",
        "",
        "| stage | " + " | ".join(n for n, _ in cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]
    for c in CATEGORY_ORDER:
        if any(c in p for p in per):
            lines.append(f"| {c} | " + " | ".join(fmt_s(p.get(c)) if c in p else DASH for p in per) + " |")
    lines.append("| **sum of stages** | " + " | ".join(fmt_s(sum(p.values())) for p in per) + " |")
    lines += ["", "Stages as measured, in order (each its own call on the previous stage's outputs):", ""]
    for n, r in cols:
        lines.append(
            f"- {n}: "
            + "; ".join(f"{k} {v:.3f} s" for k, v in r["stages"])
            + f" (detections: {r.get('num_detections')})"
        )
    return lines


def infer_table(results) -> List[str]:
    rows = results.get("infer") or []
    if not rows:
        return ["Not run."]
    lines = [
        "Median wall seconds per image (median process CPU seconds in parentheses; with 2 busy threads",
        "CPU time is up to 2x wall time). Ratios are ours / theirs, wall (CPU).",
        "",
        "| size | D | ours | Mask R-CNN | Keypoint R-CNN | ours / Mask R-CNN | ours / Keypoint R-CNN "
        "| ours / (Mask + Keypoint) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        o, mk, kp = r["ours"], r.get("maskrcnn"), r.get("keypointrcnn")
        cells = [fmt_pair(value(x, "median_s"), value(x, "cpu_median_s")) for x in (o, mk, kp)]
        rats = [
            fmt_pair(peer_ratios(o, ps, "median_s"), peer_ratios(o, ps, "cpu_median_s"), fmt_ratio)
            for ps in ([mk], [kp], [mk, kp])
        ]
        lines.append(f"| {r['size']}x{r['size']} | {r['detections']} | " + " | ".join(cells + rats) + " |")
    lines += [
        "",
        "Peak resident memory (MiB, whole process: framework runtime included; after model build in parentheses):",
        "",
        "| size | D | ours | Mask R-CNN | Keypoint R-CNN | ours / Mask R-CNN | ours / (Mask + Keypoint) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        o, mk, kp = r["ours"], r.get("maskrcnn"), r.get("keypointrcnn")
        cells = [fmt_pair(value(x, "peak_rss_mb"), value(x, "setup_rss_mb"), fmt_mb) for x in (o, mk, kp)]
        rats = [fmt_ratio(peer_ratios(o, ps, "peak_rss_mb")) for ps in ([mk], [mk, kp])]
        lines.append(f"| {r['size']}x{r['size']} | {r['detections']} | " + " | ".join(cells + rats) + " |")
    lines += [
        "",
        "Detections returned in the last run (ours always runs the mask and keypoint heads on all D "
        "padded rows; torchvision runs its heads on the detections it returns):",
        "",
        "| size | D | ours | Mask R-CNN | Keypoint R-CNN |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        cells = [
            str(x.get("num_detections")) if succeeded(x) else DASH
            for x in (r["ours"], r.get("maskrcnn"), r.get("keypointrcnn"))
        ]
        lines.append(f"| {r['size']}x{r['size']} | {r['detections']} | " + " | ".join(cells) + " |")
    return lines


def train_table(results) -> List[str]:
    t = results.get("train")
    if not t:
        return ["Not run."]
    o, mk = t["ours"], t.get("maskrcnn")
    return [
        "| size | ours step (s) | Mask R-CNN step (s) | ours / theirs | ours peak MiB | theirs peak MiB "
        "| ours / theirs |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| {t['size']}x{t['size']}, batch 1 | {fmt_pair(value(o, 'median_s'), value(o, 'cpu_median_s'))} | "
        f"{fmt_pair(value(mk, 'median_s'), value(mk, 'cpu_median_s'))} | "
        f"{fmt_pair(peer_ratios(o, [mk], 'median_s'), peer_ratios(o, [mk], 'cpu_median_s'), fmt_ratio)} | "
        f"{fmt_mb(value(o, 'peak_rss_mb'))} | {fmt_mb(value(mk, 'peak_rss_mb'))} | "
        f"{fmt_ratio(peer_ratios(o, [mk], 'peak_rss_mb'))} |",
        "",
        f"Ours: the project's train step (optimizer `{o.get('optimizer') if succeeded(o) else '?'}` of the preset, "
        "gradient clipping, finite check), losses for boxes, 7 part masks and keypoints. Theirs: "
        "`model(images, targets)`, sum of losses, backward, SGD (momentum 0.9) step; boxes and one mask "
        "per person. Same 3 ground-truth people (filled-box masks) on the same random image.",
    ]


def torchvision_aims_table(results) -> List[str]:
    rows = aim_rows(results)
    if not rows:
        return ["Not measured."]
    lines = ["| aim | where | ours / theirs, wall | ours / theirs, CPU | verdict |", "|---|---|---:|---:|---|"]
    for name, where, wall, cpu, limit in rows:
        lines.append(f"| {name} | {where} | {fmt_ratio(wall)} | {fmt_ratio(cpu)} | {verdict(wall, cpu, limit)} |")
    return lines
