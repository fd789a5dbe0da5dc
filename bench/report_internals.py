"""The report's tables on our own parts (bench/report.py): where the training time goes (profiler), the
compiled RoIAlign op against pure TF, and the input pipeline's throughput against the training step.
"""

from __future__ import annotations

from typing import List

from bench.common import ratio
from bench.report_format import DASH, fmt_ratio, fmt_s, succeeded, value


def profile_table(results) -> List[str]:
    """Per-part op time of our training step (tf.profiler), one column per profiled configuration."""
    p = results.get("profile")
    if not p:
        return ["Not run."]
    rows = [r for r in p["rows"] if succeeded(r["result"])]
    failed = [f"- {r['label']}: {r['result'].get('error', 'failed')}" for r in p["rows"] if not succeeded(r["result"])]
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


def roi_align_table(results) -> List[str]:
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
    tf_st = dict(tf_r["stages"]) if succeeded(tf_r) else {}
    cu_st = dict(cu_r["stages"]) if succeeded(cu_r) else {}
    for n in [n for n in tf_st if "roialign" in n.lower()]:
        a, b = tf_st[n], cu_st.get(n)
        lines.append(f"| {n} | {fmt_s(a)} | {fmt_s(b)} | {fmt_ratio(ratio(b, a))} |")
    a, b = value(tf_r, "median_s"), value(cu_r, "median_s")
    lines.append(f"| all stages (whole inference) | {fmt_s(a)} | {fmt_s(b)} | {fmt_ratio(ratio(b, a))} |")
    if succeeded(cu_r) and cu_r.get("roi_align_backend") != "custom":
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


def pipeline_table(results) -> List[str]:
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
            f"| {row['label']} | {p.get('pad_size', DASH) if succeeded(p) else DASH} | "
            f"{fmt_s(value(p, 'images_per_s'))} | {fmt_s(value(p, 'first_batch_s'))} | "
            f"{fmt_ratio(ratio(value(p, 'images_per_s'), need))} |"
        )
    p0 = rows[0]["result"]
    if succeeded(p0):
        lines += [
            "",
            f"Synthetic records: {p0['records']} PNG images of {p0['record_size']} px, repeated; "
            f"batch {p0['batch_size']}, {p0['batches']} timed batches after the first; training mode "
            "(shuffle, decode, flip, scale jitter, resize, pad, per-person mask crops).",
        ]
    return lines
