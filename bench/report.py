"""Renders the results dict of :func:`bench.run_all.run` as docs/BENCHMARKS.md (pure Python).

Every ratio is ours / theirs from the same run (medians), by wall time and by process CPU time;
a figure that is missing (peer not installed, worker failed) renders as "-" and failures are
listed at the end with the command that failed.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from bench.common import ratio

DASH = "-"
AIMS = (  # (name, peers in the denominator, limit): the aims of issue 9
    ("inference <= 1.0x torchvision Mask R-CNN alone", ("maskrcnn",), 1.0),
    ("inference <= 0.5x Mask R-CNN + Keypoint R-CNN together", ("maskrcnn", "keypointrcnn"), 0.5),
)
TRAIN_AIM = ("training step <= 1.0x torchvision Mask R-CNN", 1.0)
PEERS = {"maskrcnn": "Mask R-CNN", "keypointrcnn": "Keypoint R-CNN"}


def _ok(res) -> bool:
    return isinstance(res, dict) and "error" not in res


def value(res, key: str) -> Optional[float]:
    """``res[key]`` of a successful worker result, else None."""
    return float(res[key]) if _ok(res) and res.get(key) is not None else None


def summed(results: List, key: str) -> Optional[float]:
    """Sum of ``key`` over worker results, None if any is missing."""
    vals = [value(r, key) for r in results]
    return None if any(v is None for v in vals) else sum(vals)


def fmt_s(x: Optional[float]) -> str:
    return DASH if x is None else f"{x:.3f}"


def fmt_mb(x: Optional[float]) -> str:
    return DASH if x is None else f"{x:.0f}"


def fmt_ratio(x: Optional[float]) -> str:
    return DASH if x is None else f"{x:.2f}x"


def fmt_pair(wall: Optional[float], cpu: Optional[float], fmt=fmt_s) -> str:
    """``wall (cpu)``."""
    return fmt(wall) if cpu is None else f"{fmt(wall)} ({fmt(cpu)})"


def peer_ratios(ours, peers: List, key: str) -> Optional[float]:
    """ours[key] / sum(peer[key])."""
    return ratio(value(ours, key), summed(peers, key))


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
    cols = [(title, stages.get(key)) for key, title in STAGE_COLUMNS if _ok(stages.get(key))]
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


def _machine(results) -> List[str]:
    m = results.get("machine", {})
    s = results.get("settings", {})
    rows = [
        ("date", m.get("date")),
        ("CPU", m.get("cpu_model")),
        ("instruction sets", m.get("cpu_isa")),
        ("TF_ENABLE_ONEDNN_OPTS", m.get("onednn")),
        ("logical cores", m.get("cores")),
        ("load average at start / end", f"{m.get('load_average_start')} / {m.get('load_average_end')}"),
        ("GPU", m.get("gpu")),
        ("Python", m.get("python")),
        ("TensorFlow", m.get("tensorflow")),
        ("Keras", m.get("keras")),
        ("torch", m.get("torch") or "not installed"),
        ("torchvision", m.get("torchvision") or "not installed"),
        ("platform", m.get("platform")),
        ("threads per framework", s.get("threads")),
        ("repeats (median of) / warm-up runs", f"{s.get('repeats')} / {s.get('warmup')}"),
        ("our preset", s.get("preset")),
        ("OMP_WAIT_POLICY of the workers", results.get("env", {}).get("OMP_WAIT_POLICY")),
        ("whole run", f"{results.get('total_wall_s', 0) / 60:.1f} min"),
    ]
    return ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]


def _infer(results) -> List[str]:
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
            str(x.get("num_detections")) if _ok(x) else DASH
            for x in (r["ours"], r.get("maskrcnn"), r.get("keypointrcnn"))
        ]
        lines.append(f"| {r['size']}x{r['size']} | {r['detections']} | " + " | ".join(cells) + " |")
    return lines


def _train(results) -> List[str]:
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
        f"Ours: the project's train step (optimizer `{o.get('optimizer') if _ok(o) else '?'}` of the preset, "
        "gradient clipping, finite check), losses for boxes, 7 part masks and keypoints. Theirs: "
        "`model(images, targets)`, sum of losses, backward, SGD (momentum 0.9) step; boxes and one mask "
        "per person. Same 3 ground-truth people (filled-box masks) on the same random image.",
    ]


def _profile(results) -> List[str]:
    """Per-part op time of our training step (tf.profiler), one column per profiled configuration."""
    p = results.get("profile")
    if not p:
        return ["Not run."]
    rows = [r for r in p["rows"] if _ok(r["result"])]
    failed = [f"- {r['label']}: {r['result'].get('error', 'failed')}" for r in p["rows"] if not _ok(r["result"])]
    if not rows:
        return ["Not measured."] + failed
    parts = []
    for r in rows:
        for name, _, _ in r["result"]["parts"]:
            if name not in parts:
                parts.append(name)
    head = "| part (forward + backward s) | " + " | ".join(r["label"] for r in rows) + " |"
    lines = [
        f"{p['size']}x{p['size']}, batch 1, op time per step summed by model part (backward = ops under "
        f"`gradient_tape/`), from a `tf.profiler` trace (`python -m bench.worker_ours --task=profile_train`; "
        f"open `{p['logdir']}` in TensorBoard's profile plugin for the timeline):",
        "",
        head,
        "|---|" + "---:|" * len(rows),
    ]
    for name in parts:
        cells = []
        for r in rows:
            d = {n: (f, b) for n, f, b in r["result"]["parts"]}
            f, b = d.get(name, (0.0, 0.0))
            cells.append(f"{f + b:.3f} ({f:.3f} + {b:.3f})" if (f or b) else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("| **all ops** | " + " | ".join(f"**{r['result']['total_s']:.3f}**" for r in rows) + " |")
    return lines + ([""] + failed if failed else [])


def _roi_align(results) -> List[str]:
    r = results.get("roi_align")
    if not r:
        return ["Not run."]
    lines = [
        f"Our model's RoIAlign stages at {r['size']}x{r['size']}, D={r['detections']} (median s), "
        "each backend in its own process:",
        "",
        "| stage | pure TF | custom op | custom / TF |",
        "|---|---:|---:|---:|",
    ]
    tf_r, cu_r = r.get("tf"), r.get("custom")
    tf_st = dict(tf_r["stages"]) if _ok(tf_r) else {}
    cu_st = dict(cu_r["stages"]) if _ok(cu_r) else {}
    for n in [n for n in tf_st if "roialign" in n.lower()]:
        a, b = tf_st[n], cu_st.get(n)
        lines.append(f"| {n} | {fmt_s(a)} | {fmt_s(b)} | {fmt_ratio(ratio(b, a))} |")
    a, b = value(tf_r, "median_s"), value(cu_r, "median_s")
    lines.append(f"| all stages (whole inference) | {fmt_s(a)} | {fmt_s(b)} | {fmt_ratio(ratio(b, a))} |")
    if _ok(cu_r) and cu_r.get("roi_align_backend") != "custom":
        lines += [
            "",
            f"Note: the 'custom' run resolved to backend `{cu_r.get('roi_align_backend')}` "
            "(compiled op not built: `make ops`).",
        ]
    script = r.get("script") or {}
    lines += ["", "`bench/bench_roi_align.py` (custom-ops developer's micro-benchmark):", ""]
    if "error" in script:
        lines.append(f"not run: {script['error']}")
    elif "result" in script:
        lines += ["| key | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in sorted(script["result"].items())]
    else:
        lines += [
            f"`python bench/bench_roi_align.py {script.get('args', '')}` (threads: its own default):",
            "",
            script.get("stdout", ""),
        ]
    return lines


def _pipeline(results) -> List[str]:
    rows = results.get("pipeline") or []
    if not rows:
        return ["Not run."]
    train = (results.get("train") or {}).get("ours")
    need = 1.0 / value(train, "median_s") if value(train, "median_s") else None
    lines = [
        "| input config | padded size | images/s | first batch (s) | images/s / our training step's images/s |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        p = row["result"]
        lines.append(
            f"| {row['label']} | {p.get('pad_size', DASH) if _ok(p) else DASH} | "
            f"{fmt_s(value(p, 'images_per_s'))} | {fmt_s(value(p, 'first_batch_s'))} | "
            f"{fmt_ratio(ratio(value(p, 'images_per_s'), need))} |"
        )
    p0 = rows[0]["result"]
    if _ok(p0):
        lines += [
            "",
            f"Synthetic records: {p0['records']} PNG images of {p0['record_size']} px, repeated; "
            f"batch {p0['batch_size']}, {p0['batches']} timed batches after the first; training mode "
            "(shuffle, decode, flip, scale jitter, resize, pad, per-person mask crops).",
        ]
    return lines


def _aims(results) -> List[str]:
    rows = aim_rows(results)
    if not rows:
        return ["Not measured."]
    lines = ["| aim | where | ours / theirs, wall | ours / theirs, CPU | verdict |", "|---|---|---:|---:|---|"]
    for name, where, wall, cpu, limit in rows:
        lines.append(f"| {name} | {where} | {fmt_ratio(wall)} | {fmt_ratio(cpu)} | {verdict(wall, cpu, limit)} |")
    return lines


BACKEND_LABELS = {
    "tensorflow": "TensorFlow float32",
    "tensorflow_bf16": "TensorFlow bfloat16",
    "onnxruntime": "ONNX Runtime",
    "openvino": "OpenVINO float32",
    "openvino_bf16": "OpenVINO bfloat16",
    "tflite": "TFLite (XNNPACK)",
}
API_TARGET_MS, SERVER_TARGET_MS, BACKEND_AIM = 20.0, 30.0, 0.5


def _label(b: str) -> str:
    return BACKEND_LABELS.get(b, b)


def fastest_backend(row) -> Tuple[Optional[str], Optional[float]]:
    """(backend, median s) of the fastest backend that ran in a backends row."""
    ok = {b: value(r, "median_s") for b, r in row.get("results", {}).items() if value(r, "median_s") is not None}
    if not ok:
        return None, None
    b = min(ok, key=ok.get)
    return b, ok[b]


def _backends(results) -> List[str]:
    part = results.get("backends")
    if not part or not part.get("rows"):
        return ["Not run."]
    names = part["backends"]
    lines = [
        "The preset through `mb.load(..., backend=...)`'s runner (resize/pad, network, NMS, masks and "
        "keypoints mapped back: the whole exported path) on one random square image (its model's input size "
        "set to the image's, as torchvision's min_size = max_size = size), random weights, "
        "score threshold 0, D detection slots; median wall s (CPU s). Ratios: / torchvision Mask R-CNN "
        "alone (same run).",
        "",
        "| size | D | " + " | ".join(_label(b) for b in names) + " | Mask R-CNN | fastest / Mask R-CNN |",
        "|---|---:|" + "---:|" * (len(names) + 2),
    ]
    for row in part["rows"]:
        theirs = value(row.get("maskrcnn"), "median_s")
        cells = []
        for b in names:
            r = row["results"].get(b)
            t = value(r, "median_s")
            cells.append(
                DASH if t is None else f"{fmt_pair(t, value(r, 'cpu_median_s'))} {fmt_ratio(ratio(t, theirs))}"
            )
        fb, ft = fastest_backend(row)
        lines.append(
            f"| {row['size']}x{row['size']} | {row['detections']} | "
            + " | ".join(cells)
            + f" | {fmt_pair(theirs, value(row.get('maskrcnn'), 'cpu_median_s'))} | "
            f"{fmt_ratio(ratio(ft, theirs))} ({_label(fb) if fb else DASH}) |"
        )
    lines += [
        "",
        "Peak resident memory (MiB, whole process) and / Mask R-CNN's:",
        "",
        "| size | D | " + " | ".join(_label(b) for b in names) + " | Mask R-CNN |",
        "|---|---:|" + "---:|" * (len(names) + 1),
    ]
    for row in part["rows"]:
        theirs = value(row.get("maskrcnn"), "peak_rss_mb")
        cells = [
            f"{fmt_mb(value(row['results'].get(b), 'peak_rss_mb'))} "
            f"({fmt_ratio(ratio(value(row['results'].get(b), 'peak_rss_mb'), theirs))})"
            for b in names
        ]
        lines.append(
            f"| {row['size']}x{row['size']} | {row['detections']} | " + " | ".join(cells) + f" | {fmt_mb(theirs)} |"
        )
    lines += [
        "",
        "Detections against TensorFlow float32's on the same image (random weights: near-tied scores, "
        "so rows are matched by box): max |score difference| of the sorted scores; median best IoU of "
        "each TF box; share of TF boxes with a match of IoU >= 0.9:",
        "",
        "| size | D | backend | max score diff | median IoU | IoU >= 0.9 |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for row in part["rows"]:
        for b, m in row.get("match", {}).items():
            if m and "score_max_diff" in m:
                lines.append(
                    f"| {row['size']}x{row['size']} | {row['detections']} | {_label(b)} | "
                    f"{m['score_max_diff']:.4f} | {m['box_iou_median']:.3f} | {100 * m['box_iou_ge_0.9']:.0f}% |"
                )
    prep = {d: p for d, p in part.get("prepare", {}).items() if _ok(p)}
    if prep:
        lines += [
            "",
            "Export times (s): "
            + "; ".join(
                f"{d.replace('_', ' px D=')}: "
                + ", ".join(f"{k[:-2]} {v:.0f}" for k, v in p.items() if k.endswith("_s") and k != "wall_s")
                for d, p in prep.items()
            ),
        ]
    return lines


API_STAGES = (
    ("decode", "JPEG decode"),
    ("model", "model (resize, network, NMS, map back)"),
    ("paste", "paste masks (crops)"),
    ("rle", "RLE, 7 channels per person"),
    ("json", "JSON"),
    ("total", "**bytes -> JSON**"),
)


def _api(results) -> List[str]:
    part = results.get("api")
    if not part or not part.get("latency"):
        return ["Not run."]
    lat = part["latency"]
    names = list(lat)
    ok = [b for b in names if _ok(lat[b])]
    first = lat[ok[0]] if ok else {}
    lines = [
        f"`cpu_small` ({part.get('model')}), {first.get('images', '?')} JPEG images of "
        f"{'x'.join(str(v) for v in first.get('image_size', []))} from {part.get('records')} "
        f"(~{first.get('persons_mean', 0):.1f} persons each), median ms per stage over "
        f"{first.get('runs', '?')} runs, one Python thread, 2 framework threads:",
        "",
        "| stage | " + " | ".join(_label(b) for b in names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for key, label in API_STAGES:
        cells = [DASH if not _ok(lat[b]) else f"{lat[b]['stages_ms'][key]:.1f}" for b in names]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append(
        "| images/s (1 / bytes -> JSON) | "
        + " | ".join(DASH if not _ok(lat[b]) else f"{1000 / lat[b]['stages_ms']['total']:.0f}" for b in names)
        + " |"
    )
    model_stages = [(p, part.get(f"model_stages_{p}")) for p in ("float32", "bfloat16")]
    model_stages = [(p, r) for p, r in model_stages if _ok(r)]
    if model_stages:
        names_ = [n for n, _ in model_stages[0][1]["stages"]]
        lines += [
            "",
            "Where the model's own time goes (`bench.worker_ours --task=stages --preset=cpu_small --size=256 "
            "--detections=6`: random weights, the heads on 6 rows, about the people kept; median ms per stage, "
            "each its own call):",
            "",
            "| stage | " + " | ".join(p for p, _ in model_stages) + " |",
            "|---|" + "---:|" * len(model_stages),
        ]
        for i, n in enumerate(names_):
            lines.append(f"| {n} | " + " | ".join(f"{1000 * r['stages'][i][1]:.1f}" for _, r in model_stages) + " |")
        lines.append(
            "| **sum** | " + " | ".join(f"{1000 * sum(t for _, t in r['stages']):.1f}" for _, r in model_stages) + " |"
        )
    if part.get("server"):
        lines += [
            "",
            "Through the HTTP server (`serving.http_server`), one client on loopback, median ms per request:",
            "",
            "| backend | POST /v1/predict | POST /v1/render |",
            "|---|---:|---:|",
        ]
        for b, r in part["server"].items():
            ms = r.get("server_ms", {}) if _ok(r) else {}
            lines.append(
                f"| {_label(b)} | {ms.get('/v1/predict', float('nan')):.1f} | "
                f"{ms.get('/v1/render', float('nan')):.1f} |"
            )
    if part.get("batch"):
        lines += [
            "",
            "Batches through `Model(images, batch_size=B)` (same-size images: TensorFlow runs a batch in "
            "one call, the exported backends loop), images/s:",
            "",
            "| backend | batch 1 | batch 8 |",
            "|---|---:|---:|",
        ]
        for b, r in part["batch"].items():
            bb = r.get("batch", {}) if _ok(r) else {}
            lines.append(
                f"| {_label(b)} | "
                + " | ".join(f"{bb[k]['images_per_s']:.1f}" if k in bb else DASH for k in ("1", "8"))
                + " |"
            )
    return lines


def _quant(results) -> List[str]:
    q = results.get("quant")
    if not q:
        return ["Not run."]
    if not _ok(q):
        return [f"Not measured: {q.get('error')}"]
    rows = q["rows"]
    names = list(rows)
    ref = "tflite_float32" if "tflite_float32" in rows else names[0]
    label = {
        "tensorflow": "TF float32",
        "tensorflow_bf16": "TF bfloat16",
        "onnxruntime": "ONNX Runtime",
        "tflite_float32": "TFLite float32",
        "tflite_float16": "TFLite float16",
        "tflite_dynamic": "TFLite dynamic int8",
        "tflite_int8": "TFLite full int8",
    }
    lines = [
        f"Trained `cpu_small` ({q.get('checkpoint')}), the first {q.get('max_images')} images of "
        f"`{q.get('records')}`, every variant through the same runner path and metrics "
        f"(`maskrcnn-body evaluate --model FILE`); int8 calibrated on {q.get('calib_images')} training images. "
        f"AP in percent (change against {label.get(ref, ref)} in parentheses):",
        "",
        "| AP | " + " | ".join(label.get(n, n) for n in names) + " |",
        "|---|" + "---:|" * len(names),
    ]

    def cell(n, get):
        v, r = get(rows[n]["summary"]), get(rows[ref]["summary"])
        if v is None:
            return DASH
        return f"{100 * v:.1f}" + ("" if n == ref or r is None else f" ({100 * (v - r):+.1f})")

    metric_rows = [("box", lambda s: s["box"]["AP"])]
    for ch in ("body", "head", "torso", "left_arm", "right_arm", "left_leg", "right_leg"):
        metric_rows.append((f"mask {ch}", lambda s, ch=ch: s["mask"][ch]["AP"]))
    metric_rows += [("keypoints", lambda s: s["keypoints"]["AP"]), ("parsing mIoU", lambda s: s["parsing"]["mIoU"])]
    for name, get in metric_rows:
        lines.append(f"| {name} | " + " | ".join(cell(n, get) for n in names) + " |")
    lines.append(
        "| ms per image (model call, median) | " + " | ".join(f"{rows[n]['median_ms']:.1f}" for n in names) + " |"
    )
    lines.append(
        "| file MB | "
        + " | ".join(DASH if rows[n].get("file_mb") is None else f"{rows[n]['file_mb']:.1f}" for n in names)
        + " |"
    )
    return lines


def issue17_aims(results) -> List[Tuple[str, str, str, str]]:
    """(aim, where, measured, verdict) of issue 17's speed targets."""
    out = []
    for row in (results.get("backends") or {}).get("rows", []):
        fb, ft = fastest_backend(row)
        theirs = value(row.get("maskrcnn"), "median_s")
        r = ratio(ft, theirs)
        mem = ratio(
            value(row["results"].get(fb), "peak_rss_mb") if fb else None, value(row.get("maskrcnn"), "peak_rss_mb")
        )
        where = f"{row['size']}x{row['size']}, D={row['detections']}"
        aim = row["size"] == 800 and row["detections"] == 20
        out.append(
            (
                "fastest backend <= 0.5x torchvision Mask R-CNN" + ("" if aim else " (reported)"),
                where,
                f"{fmt_ratio(r)} ({_label(fb) if fb else DASH}), memory {fmt_ratio(mem)}",
                DASH
                if r is None
                else ("met" if r <= BACKEND_AIM and (mem or 0) <= 1.0 else ("missed" if aim else "-")),
            )
        )
    api = results.get("api") or {}
    lat = {b: r["stages_ms"]["total"] for b, r in api.get("latency", {}).items() if _ok(r)}
    if lat:
        b = min(lat, key=lat.get)
        out.append(
            (
                f"cpu_small bytes -> JSON <= {API_TARGET_MS:.0f} ms (Python API)",
                "256 px, 2 cores",
                f"{lat[b]:.1f} ms ({_label(b)})",
                "met" if lat[b] <= API_TARGET_MS else "missed",
            )
        )
    srv = {b: r["server_ms"]["/v1/predict"] for b, r in api.get("server", {}).items() if _ok(r)}
    if srv:
        b = min(srv, key=srv.get)
        out.append(
            (
                f"cpu_small through the server <= {SERVER_TARGET_MS:.0f} ms (one client)",
                "256 px, 2 cores",
                f"{srv[b]:.1f} ms ({_label(b)})",
                "met" if srv[b] <= SERVER_TARGET_MS else "missed",
            )
        )
    return out


def _aims17(results) -> List[str]:
    rows = issue17_aims(results)
    if not rows:
        return ["Not measured."]
    return ["| aim | where | measured | verdict |", "|---|---|---|---|"] + [
        f"| {a} | {w} | {m} | {v} |" for a, w, m, v in rows
    ]


def _failures(results) -> List[str]:
    out = []

    def walk(x, path):
        if isinstance(x, dict):
            if "error" in x and ("command" in x or len(x) <= 3):
                out.append(f"- `{path}`: {x['error']}" + (f" (`{x['command']}`)" if "command" in x else ""))
                return
            for k, v in x.items():
                walk(v, f"{path}.{k}" if path else k)
        elif isinstance(x, list):
            for i, v in enumerate(x):
                walk(v, f"{path}[{i}]")

    for part in ("infer", "train", "stages", "roi_align", "pipeline", "backends", "api", "quant"):
        walk(results.get(part), part)
    return out


METHOD = """\
- Every figure comes from its own fresh subprocess (TensorFlow and torch never share a process;
  peak memory is that process's `VmHWM`, framework runtime included). The orchestrator
  (`bench/run_all.py`) imports neither framework. Ours and the peers are measured one after the other
  in the same run, configuration by configuration, so the ratios see the same machine state.
- Threads: TensorFlow intra-op = 2, inter-op = 1; `torch.set_num_threads(2)`, inter-op 1.
  `OMP_WAIT_POLICY=PASSIVE` for every worker (`--omp_wait_policy`): on this shared, oversubscribed
  CPU torch's spinning OpenMP threads made ResNet-50 at 224 px 20x slower (5.9 s instead of 0.3 s),
  which would have flattered our ratios; TensorFlow does not use OpenMP.
- Times are medians of the timed runs after the warm-up run (which traces our `tf.function`s).
  The machine is shared and noisy: read ratios, not absolute times. CPU time (user + system of the
  process) is reported next to wall time because it is less sensitive to other processes.
- Ours: preset `r50_fpn` (ResNet-50 + FPN, GroupNorm, heads: box, 7-channel masks at 112x112 in the
  box frame and 15-keypoint 56x56 heatmaps from one shared 4 x 256 tower with an RoI-wide context branch),
  random weights, `score_threshold = 0`, `max_detections = D`:
  the heads always run on D rows. Input: one random (1, S, S, 3) float image, `tf.function(model.detect)`.
- torchvision: `maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=2)` and
  `keypointrcnn_resnet50_fpn(..., num_keypoints=15)`, `min_size = max_size = S` (scale 1: no
  resize), `box_score_thresh = 0`, `box_detections_per_img = D`, eval mode, `torch.inference_mode()`.
  With random weights torchvision uses BatchNorm2d (no frozen BN); its output masks are pasted into
  full-image (D, 1, S, S) probability maps (part of its latency), ours stay (D, 112, 112, 7) in the
  box frame (pasting is done later, in numpy, by `evaluation.paste`).
- Architecture differences that matter for the ratios: our backbone and head convolutions use
  GroupNorm (torchvision: BatchNorm), our mask head predicts 7 channels at 112x112 (theirs 1
  class-specific channel at 28x28) and also the keypoint heatmaps (Keypoint R-CNN: its own 8 x 512
  tower), and one model does what needs two torchvision models (one backbone + RPN + box head
  instead of two). Training: both run the mask head only on the real positive RoIs."""


def render(results: Dict, notes: str = "") -> str:
    """The whole markdown document."""
    s = results.get("settings", {})
    out = [
        "# Benchmarks: maskrcnn_body vs torchvision Mask R-CNN / Keypoint R-CNN",
        "",
        "Generated by `make bench` (`python -m bench.run_all`); do not edit by hand (the analysis section "
        "comes from `bench/ANALYSIS.md`).",
        "",
    ]
    if s.get("quick"):
        out += [
            "**QUICK RUN (`--quick`): tiny sizes and 1 repeat to check the harness; the figures mean nothing.**",
            "",
        ]
    for msg in results.get("skipped", []):
        out += [f"**Skipped:** {msg}.", ""]
    sections = [
        ("Aims (issue 9), same-run ratios", _aims(results)),
        ("Aims (issue 17: fast CPU inference), same run", _aims17(results)),
        ("Machine", _machine(results)),
        ("Inference, batch 1", _infer(results)),
        ("Training step", _train(results)),
        ("Where the training time goes", _profile(results)),
        ("Where the inference time goes", stage_table(results["stages"]) if results.get("stages") else ["Not run."]),
        ("RoIAlign: compiled custom op vs pure TF", _roi_align(results)),
        ("Input pipeline throughput", _pipeline(results)),
        ("Backends (issue 17): TensorFlow, ONNX Runtime, OpenVINO, TFLite", _backends(results)),
        ("cpu_small: image bytes -> JSON, where the time goes", _api(results)),
        ("Quantised and bfloat16 exports: accuracy and speed", _quant(results)),
        (
            "GPU",
            [
                "No GPU was lent for this task: every figure above is CPU-only. "
                f"GPU seen by this run: {results.get('machine', {}).get('gpu')}."
            ],
        ),
        ("Method", [METHOD]),
    ]
    for title, body in sections:
        out += [f"## {title}", ""] + body + [""]
    if notes.strip():
        out += ["## Analysis", "", notes.strip(), ""]
    failures = _failures(results)
    if failures:
        out += ["## Failures", ""] + failures + [""]
    return "\n".join(out)
