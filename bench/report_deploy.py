"""The report's deployment tables (bench/report.py): the inference backends (TensorFlow, ONNX Runtime, OpenVINO,
TFLite) against torchvision, the Python API and the HTTP server stage by stage, the quantised exports' accuracy,
and the fast-CPU-inference aims (fastest backend vs Mask R-CNN, API and server latency targets).
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from bench.common import ratio
from bench.report_format import DASH, backend_label, fmt_mb, fmt_pair, fmt_ratio, succeeded, value
from maskrcnn_body.workflows.export import MAX_AP_LOSS, SCORED

API_TARGET_MS, SERVER_TARGET_MS, BACKEND_AIM = 20.0, 30.0, 0.5
LIVE_API_MS, LIVE_SERVER_MS = 20.0, 25.0  # issue 30: the live configuration, bytes -> JSON and through the server


def fastest_backend(row) -> Tuple[Optional[str], Optional[float]]:
    """(backend, median s) of the fastest backend that ran in a backends row."""
    ok = {b: value(r, "median_s") for b, r in row.get("results", {}).items() if value(r, "median_s") is not None}
    if not ok:
        return None, None
    b = min(ok, key=ok.get)
    return b, ok[b]


def backends_table(results, key: str = "backends") -> List[str]:
    """The ``backends`` part's tables (or the ``deploy`` part's: the same measurement on the deployed preset)."""
    part = results.get(key)
    if not part or not part.get("rows"):
        return ["Not run."]
    names = part["backends"]
    preset = part.get("preset") or results.get("settings", {}).get("preset", "")
    over = part.get("overrides") or {}
    lines = [
        f"Preset `{preset}`"
        + (f" with {', '.join(f'`{k}={v}`' for k, v in over.items())}" if over else "")
        + (
            " (frozen BatchNorm folded into the convolutions by every export and by the TensorFlow runner)"
            if "imagenet" in preset
            else ""
        )
        + ".",
        "",
        "The preset through `mb.load(..., backend=...)`'s runner (resize/pad, network, NMS, masks and "
        "keypoints mapped back: the whole exported path) on one random square image (its model's input size "
        "set to the image's, as torchvision's min_size = max_size = size), random weights, "
        "score threshold 0, D detection slots; median wall s (CPU s). Ratios: / torchvision Mask R-CNN "
        "alone (same run).",
        "",
        "| size | D | " + " | ".join(backend_label(b) for b in names) + " | Mask R-CNN | fastest / Mask R-CNN |",
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
            f"{fmt_ratio(ratio(ft, theirs))} ({backend_label(fb) if fb else DASH}) |"
        )
    lines += [
        "",
        "Peak resident memory (MiB, whole process) and / Mask R-CNN's:",
        "",
        "| size | D | " + " | ".join(backend_label(b) for b in names) + " | Mask R-CNN |",
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
                    f"| {row['size']}x{row['size']} | {row['detections']} | {backend_label(b)} | "
                    f"{m['score_max_diff']:.4f} | {m['box_iou_median']:.3f} | {100 * m['box_iou_ge_0.9']:.0f}% |"
                )
    prep = {d: p for d, p in part.get("prepare", {}).items() if succeeded(p)}
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


def api_table(results) -> List[str]:
    part = results.get("api")
    if not part or not part.get("latency"):
        return ["Not run."]
    lat = part["latency"]
    names = list(lat)
    ok = [b for b in names if succeeded(lat[b])]
    first = lat[ok[0]] if ok else {}
    lines = [
        f"`cpu_small` ({part.get('model')}), {first.get('images', '?')} JPEG images of "
        f"{'x'.join(str(v) for v in first.get('image_size', []))} from {part.get('records')} "
        f"(~{first.get('persons_mean', 0):.1f} persons each), median ms per stage over "
        f"{first.get('runs', '?')} runs, one Python thread, 2 framework threads:",
        "",
        "| stage | " + " | ".join(backend_label(b) for b in names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for key, label in API_STAGES:
        cells = [DASH if not succeeded(lat[b]) else f"{lat[b]['stages_ms'][key]:.1f}" for b in names]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append(
        "| images/s (1 / bytes -> JSON) | "
        + " | ".join(DASH if not succeeded(lat[b]) else f"{1000 / lat[b]['stages_ms']['total']:.0f}" for b in names)
        + " |"
    )
    model_stages = [(p, part.get(f"model_stages_{p}")) for p in ("float32", "bfloat16")]
    model_stages = [(p, r) for p, r in model_stages if succeeded(r)]
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
            ms = r.get("server_ms", {}) if succeeded(r) else {}
            lines.append(
                f"| {backend_label(b)} | {ms.get('/v1/predict', float('nan')):.1f} | "
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
            bb = r.get("batch", {}) if succeeded(r) else {}
            lines.append(
                f"| {backend_label(b)} | "
                + " | ".join(f"{bb[k]['images_per_s']:.1f}" if k in bb else DASH for k in ("1", "8"))
                + " |"
            )
    return lines


LIVE_FILES = ("onnxruntime", "onnxruntime_int8")


def _live_rows(results):
    """(size, file, latency result, server result) of every live export that ran."""
    for conf in (results.get("live") or {}).get("configs", []):
        for name in LIVE_FILES:
            yield conf["size"], name, conf.get("latency", {}).get(name), conf.get("server", {}).get(name)


def _live_best(results, server: bool) -> Tuple[Optional[str], Optional[float]]:
    """(label, ms) of the fastest live export, bytes -> JSON (``server`` False) or per server request."""
    ok = {}
    for size, name, lat, srv in _live_rows(results):
        res = srv if server else lat
        if succeeded(res):
            ok[f"{size} px, {backend_label(name)}"] = (
                res["server_ms"]["/v1/predict"] if server else res["stages_ms"]["total"]
            )
    if not ok:
        return None, None
    n = min(ok, key=ok.get)
    return n, ok[n]


def live_table(results) -> List[str]:
    """The live configuration (issue 30): the trained cpu_small exported with the live settings at each size, ONNX
    float32 / int8, accuracy against cpu_small as trained, time per stage, API and server."""
    part = results.get("live")
    if not part:
        return ["Not run."]
    if not succeeded(part):
        return [f"Not measured: {part.get('error')}"]
    quant = results.get("quant") or {}
    small = ((quant.get("rows") or {}).get("onnxruntime") or {}).get("summary") if succeeded(quant) else None

    def small_ap(keys):
        v = small
        for k in keys:
            v = (v or {}).get(k)
        return DASH if v is None else f"{100 * v:.1f}"

    columns = []  # (heading, figures by name, column key, latency, server)
    for conf in part.get("configs", []):
        exp = conf.get("export") or {}
        figures = {f["name"]: f for f in (exp.get("accuracy") or {}).get("figures", [])} if succeeded(exp) else {}
        for name, key in zip(LIVE_FILES, ("float32", "quantised")):
            columns.append(
                (
                    f"{conf['size']} px {backend_label(name)}",
                    figures,
                    key,
                    conf.get("latency", {}).get(name),
                    conf.get("server", {}).get(name),
                )
            )
    first = next((c for c in part.get("configs", []) if succeeded(c.get("export"))), {})
    exp = first.get("export") or {}
    acc = exp.get("accuracy") or {}
    lines = [
        f"The trained `cpu_small` ({part.get('model')}) exported with the live settings (`maskrcnn-body export --set "
        + " --set ".join(
            f"{k}={v if not isinstance(v, list) else ','.join(map(str, v))}"
            for k, v in (exp.get("overrides") or {}).items()
            if not k.startswith("input.")
        )
        + f" --max_detections {exp.get('max_detections', '?')} --onnx_quant int8`) at each input size, scored on "
        f"{acc.get('images', '?')} images of `{(acc.get('records') or ['?'])[0]}` beside `cpu_small` as trained "
        "(256 px, its ONNX float32 file in the quant part: same images, same metrics). Time: image bytes -> JSON "
        "through the Python API (median ms per stage) and `POST /v1/predict` through the server with one client; "
        "ONNX Runtime, 2 threads.",
        "",
        "| | cpu_small as trained | " + " | ".join(c[0] for c in columns) + " |",
        "|---|---:|" + "---:|" * len(columns),
    ]
    for name, keys in SCORED:
        cells = []
        for _, figures, key, _, _ in columns:
            v = figures.get(name, {}).get(key)
            cells.append(DASH if v is None else f"{v:.1f}")
        lines.append(f"| {name} | {small_ap(keys)} | " + " | ".join(cells) + " |")
    for key, label in API_STAGES:
        cells = [DASH if not succeeded(c[3]) else f"{c[3]['stages_ms'][key]:.1f}" for c in columns]
        lines.append(f"| {label} ms | {DASH} | " + " | ".join(cells) + " |")
    cells = [DASH if not succeeded(c[4]) else f"{c[4]['server_ms']['/v1/predict']:.1f}" for c in columns]
    lines.append(f"| server POST /v1/predict ms | {DASH} | " + " | ".join(cells) + " |")
    return lines


def quant_table(results) -> List[str]:
    q = results.get("quant")
    if not q:
        return ["Not run."]
    if not succeeded(q):
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
        "onnxruntime_int8": "ONNX Runtime int8 (convolutions)",
    }
    lines = [
        f"Trained `cpu_small` ({q.get('checkpoint')}), the first {q.get('max_images')} images of "
        f"`{q.get('records')}`, every variant through the same runner path and metrics "
        f"(`maskrcnn-body evaluate --model FILE`); int8 calibrated on {q.get('calib_images')} images of the "
        "calibration records (`--calib_records`). "
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

    def lossy(n):  # issue 30: the figures and the limit of `maskrcnn-body export --score_records`
        if n == ref:
            return DASH
        lost = []
        for name, keys in SCORED:
            a, b = rows[ref]["summary"], rows[n]["summary"]
            for part in keys:
                a, b = (a or {}).get(part), (b or {}).get(part)
            if a is not None and b is not None and 100 * (a - b) > MAX_AP_LOSS:
                lost.append(name)
        return "**loses > 1 AP** (" + ", ".join(lost) + ")" if lost else "kept (<= 1 AP)"

    lines.append("| box / body / arm / keypoint AP | " + " | ".join(lossy(n) for n in names) + " |")
    lines.append(
        "| ms per image (model call, median) | " + " | ".join(f"{rows[n]['median_ms']:.1f}" for n in names) + " |"
    )
    lines.append(
        "| file MB | "
        + " | ".join(DASH if rows[n].get("file_mb") is None else f"{rows[n]['file_mb']:.1f}" for n in names)
        + " |"
    )
    return lines


def fast_inference_aims(results) -> List[Tuple[str, str, str, str]]:
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
                f"{fmt_ratio(r)} ({backend_label(fb) if fb else DASH}), memory {fmt_ratio(mem)}",
                DASH
                if r is None
                else ("met" if r <= BACKEND_AIM and (mem or 0) <= 1.0 else ("missed" if aim else "-")),
            )
        )
    api = results.get("api") or {}
    lat = {b: r["stages_ms"]["total"] for b, r in api.get("latency", {}).items() if succeeded(r)}
    if lat:
        b = min(lat, key=lat.get)
        out.append(
            (
                f"cpu_small bytes -> JSON <= {API_TARGET_MS:.0f} ms (Python API)",
                "256 px, 2 cores",
                f"{lat[b]:.1f} ms ({backend_label(b)})",
                "met" if lat[b] <= API_TARGET_MS else "missed",
            )
        )
    srv = {b: r["server_ms"]["/v1/predict"] for b, r in api.get("server", {}).items() if succeeded(r)}
    if srv:
        b = min(srv, key=srv.get)
        out.append(
            (
                f"cpu_small through the server <= {SERVER_TARGET_MS:.0f} ms (one client)",
                "256 px, 2 cores",
                f"{srv[b]:.1f} ms ({backend_label(b)})",
                "met" if srv[b] <= SERVER_TARGET_MS else "missed",
            )
        )
    for label, target, (n, ms) in (
        ("bytes -> JSON (Python API)", LIVE_API_MS, _live_best(results, False)),
        ("through the server (one client)", LIVE_SERVER_MS, _live_best(results, True)),
    ):
        if ms is not None:
            out.append(
                (
                    f"live configuration {label} <= {target:.0f} ms",
                    "trained cpu_small, live settings, 2 cores",
                    f"{ms:.1f} ms ({n})",
                    "met" if ms <= target else "missed",
                )
            )
    return out


def fast_inference_aims_table(results) -> List[str]:
    rows = fast_inference_aims(results)
    if not rows:
        return ["Not measured."]
    return ["| aim | where | measured | verdict |", "|---|---|---|---|"] + [
        f"| {a} | {w} | {m} | {v} |" for a, w, m, v in rows
    ]
