"""Renders the results dict of :func:`bench.run_all.run` as docs/BENCHMARKS.md (pure Python).

Every ratio is ours / theirs from the same run (medians), by wall time and by process CPU time;
a figure that is missing (peer not installed, worker failed) renders as "-" and failures are
listed at the end with the command that failed.

The tables of each part: :mod:`bench.report_torchvision` (aims, inference, training, stages),
:mod:`bench.report_internals` (profile, RoIAlign, input pipeline), :mod:`bench.report_deploy` (backends, API,
server, quantisation, fast-inference aims); their cells: :mod:`bench.report_format`. This module puts them in
one document with the machine, the method and the failures.
"""

from __future__ import annotations

from typing import Dict, List

from bench.report_deploy import api_table, backends_table, fast_inference_aims_table, live_table, quant_table
from bench.report_internals import pipeline_table, profile_table, roi_align_table
from bench.report_torchvision import infer_table, stage_table, torchvision_aims_table, train_table


def machine_table(results) -> List[str]:
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


def failure_lines(results) -> List[str]:
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

    for part in ("infer", "train", "stages", "roi_align", "pipeline", "backends", "deploy", "api", "quant", "live"):
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
  box frame (pasting is done later, in numpy, by `ops.paste`).
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
        ("Aims (issue 9), same-run ratios", torchvision_aims_table(results)),
        ("Aims (issue 17: fast CPU inference), same run", fast_inference_aims_table(results)),
        ("Machine", machine_table(results)),
        ("Inference, batch 1", infer_table(results)),
        ("Training step", train_table(results)),
        ("Where the training time goes", profile_table(results)),
        ("Where the inference time goes", stage_table(results["stages"]) if results.get("stages") else ["Not run."]),
        ("RoIAlign: compiled custom op vs pure TF", roi_align_table(results)),
        ("Input pipeline throughput", pipeline_table(results)),
        ("Backends (issue 17): TensorFlow, ONNX Runtime, OpenVINO, TFLite", backends_table(results)),
        (
            "The deployed preset (issue 30): r50_fpn_imagenet, BatchNorm folded, every backend",
            backends_table(results, "deploy"),
        ),
        ("cpu_small: image bytes -> JSON, where the time goes", api_table(results)),
        ("Quantised and bfloat16 exports: accuracy and speed", quant_table(results)),
        ("The live configuration (issue 30): accuracy and bytes -> JSON", live_table(results)),
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
    failures = failure_lines(results)
    if failures:
        out += ["## Failures", ""] + failures + [""]
    return "\n".join(out)
