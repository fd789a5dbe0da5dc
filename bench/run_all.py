"""Runs every benchmark, one subprocess per measured configuration, and writes docs/BENCHMARKS.md.

    make bench                         # = python -m bench.run_all (about 15-25 min on a quiet 2-core CPU)
    python -m bench.run_all --quick    # tiny sizes, 1 repeat: checks the harness, figures meaningless
    python -m bench.run_all --parts=infer,train --sizes=800 --detections=100

Measured (medians of ``--repeats`` runs after ``--warmup``; wall time and process CPU time):

* ``infer``: our full model (boxes + 7 part masks + 15 keypoints, :mod:`bench.worker_ours`) and
  torchvision Mask R-CNN and Keypoint R-CNN (:mod:`bench.worker_torchvision`) at each
  ``--sizes`` x ``--detections``, batch 1, ``--threads`` threads, and each one's peak memory;
* ``train``: one training step at ``--train_size``, batch 1, ours vs torchvision Mask R-CNN;
* ``profile``: where our training step's time goes, from a ``tf.profiler`` trace (op time per
  model part, forward and backward; :mod:`bench.trace`), for the preset and for the preset with
  Keypoint R-CNN's own keypoint head (``keypoint_head="heatmap"``), the design it replaced;
* ``stages``: where the inference time goes, per stage, ours and theirs, at the largest size and
  detection count;
* ``roi_align``: our RoIAlign, compiled custom op vs pure TF (the ``stages`` worker with each
  backend), plus ``bench/bench_roi_align.py`` when that script exists;
* ``pipeline``: input-pipeline images/s on synthetic records (the bench training size and the
  preset's own input size);
* ``backends``: the preset on each ``--backends`` (TensorFlow float32 / bfloat16, ONNX Runtime,
  OpenVINO, TFLite: :mod:`bench.worker_backends`) at each size x D, against torchvision Mask R-CNN,
  with peak memory and how far each backend's detections are from TensorFlow float32's;
* ``deploy``: the same for ``--deploy_preset`` (``r50_fpn_imagenet``: frozen BatchNorm folded into the
  convolutions by every export and by the TensorFlow runner; random weights instead of the ImageNet download),
  every backend in float32 and bfloat16, against the same torchvision Mask R-CNN figures;
* ``api``: ``cpu_small`` image bytes -> JSON through the Python API per backend, stage by stage
  (:mod:`bench.worker_api`), the HTTP server with one client, batch 1 / 8 images/s;
* ``live``: the live configuration (the trained ``--api_model`` exported with lighter inference-time settings at
  each ``--live_sizes``, :mod:`bench.worker_live`) in ONNX float32 and int8, each scored on ``--api_records``
  beside ``cpu_small`` as trained (the quant part's figures) and timed image bytes -> JSON through the Python API
  and through the server (:mod:`bench.worker_api`);
* ``quant``: per-part AP and speed of the float32 / float16 / dynamic / int8 TFLite exports, ONNX Runtime
  float32 and int8 (convolutions int8, the rest float) and TensorFlow bfloat16 of the trained ``--api_model`` on
  ``--api_records``.

This process imports neither TensorFlow nor torch (TF then torch in one process segfaults);
every figure comes from its own fresh subprocess, so each peak memory is that model's own.
The torchvision side is skipped with a message when torch/torchvision are not installed.
"""

from __future__ import annotations

import json
import os
import sys
import time

from absl import app, flags

from bench import common, report
from maskrcnn_body.utils.files import write_text_atomic

FLAGS = flags.FLAGS
PARTS = ("infer", "train", "profile", "stages", "roi_align", "pipeline", "backends", "deploy", "api", "quant", "live")
flags.DEFINE_bool("quick", False, "tiny sizes, 1 repeat, preset cpu_small: a smoke test of the harness")
flags.DEFINE_list("parts", list(PARTS), f"what to run, any of {PARTS}")
flags.DEFINE_list("sizes", ["512", "800"], "square inference sizes (multiples of 32)")
flags.DEFINE_list("detections", ["20", "100"], "fixed detection counts (score threshold 0)")
flags.DEFINE_integer("train_size", 512, "training-step image size")
flags.DEFINE_integer("repeats", 5, "timed runs per figure (median reported)")
flags.DEFINE_integer("warmup", 1, "untimed runs first (tracing, allocator warm-up)")
flags.DEFINE_integer("threads", 2, "threads per framework (TF intra-op; torch.set_num_threads)")
flags.DEFINE_string("preset", "r50_fpn", "our config preset")
flags.DEFINE_string(
    "deploy_preset",
    "r50_fpn_imagenet",
    "deploy: the preset users fine-tune and deploy (frozen BatchNorm, folded into the convolutions by every "
    "export and the TensorFlow runner), measured like --preset in the backends part, random weights",
)
flags.DEFINE_bool("torch", True, "also run the torchvision peers (skipped anyway when not installed)")
flags.DEFINE_list("peers", ["maskrcnn", "keypointrcnn"], "torchvision peers to measure")
flags.DEFINE_integer("pipeline_records", 16, "synthetic records for the pipeline benchmark")
flags.DEFINE_integer("pipeline_batches", 30, "timed pipeline batches (batch 2)")
flags.DEFINE_string("out", "docs/BENCHMARKS.md", "markdown report (relative to the repo root)")
flags.DEFINE_string("json_out", "output/bench/results.json", "raw results (relative to the repo root)")
flags.DEFINE_string("notes", "bench/ANALYSIS.md", "hand-written analysis included in the report ('' = none)")
flags.DEFINE_string(
    "from_json", "", "re-render the report from this results JSON (no measuring), e.g. after editing bench/ANALYSIS.md"
)
flags.DEFINE_integer("timeout", 1200, "seconds per subprocess before it is abandoned")
flags.DEFINE_list(
    "backends",
    ["tensorflow", "tensorflow_bf16", "onnxruntime", "openvino_bf16"],
    "backends: inference backends of the preset at every size x D (bench.worker_backends)",
)
flags.DEFINE_string(
    "api_model",
    "output/mask_rcnn",
    "api/quant: a trained cpu_small training directory "
    "('' or missing: a random cpu_small model for api; quant is then skipped)",
)
flags.DEFINE_string(
    "api_records",
    "data/records/synthetic_val-*.tfrecord",
    "api/quant: validation records (test images, AP of the quantised exports)",
)
flags.DEFINE_list("live_sizes", ["256", "192"], "live: input sizes of the live configuration's exports")
flags.DEFINE_string(
    "calib_records",
    "data/records/synthetic_calib-*.tfrecord",
    "quant/live: int8 calibration records (the held-out calibration split the default run writes; missing: the "
    "validation records)",
)
flags.DEFINE_list(
    "api_backends",
    ["tensorflow", "tensorflow_bf16", "onnxruntime", "tflite"],
    "api: backends of the bytes -> JSON latency table",
)
flags.DEFINE_string(
    "omp_wait_policy",
    "PASSIVE",
    "OMP_WAIT_POLICY of every worker ('' = inherit). PASSIVE: on a shared, oversubscribed CPU "
    "torch's spinning OpenMP threads are up to 20x slower (ResNet-50 224 px: 5.9 s vs 0.3 s)",
)


def _settings():
    """Effective settings (``--quick`` replaces the sizes unless they were given explicitly)."""
    s = {
        "sizes": [int(x) for x in FLAGS.sizes],
        "detections": [int(x) for x in FLAGS.detections],
        "train_size": FLAGS.train_size,
        "repeats": FLAGS.repeats,
        "warmup": FLAGS.warmup,
        "threads": FLAGS.threads,
        "preset": FLAGS.preset,
        "pipeline_records": FLAGS.pipeline_records,
        "pipeline_batches": FLAGS.pipeline_batches,
        "pipeline_record_size": 512,
        "quick": FLAGS.quick,
    }
    if FLAGS.quick:
        explicit = {name for name in ("sizes", "detections", "train_size", "repeats", "preset") if FLAGS[name].present}
        quick = {"sizes": [64], "detections": [2], "train_size": 64, "repeats": 1, "preset": "cpu_small"}
        s.update({k: v for k, v in quick.items() if k not in explicit})
        s.update({"pipeline_records": 2, "pipeline_batches": 2, "pipeline_record_size": 64})
    unknown = set(FLAGS.parts) - set(PARTS)
    if unknown:
        raise app.UsageError(f"--parts has unknown {sorted(unknown)}; choose from {PARTS}")
    bad = [x for x in s["sizes"] + [s["train_size"]] if x % 32]
    if bad:
        raise app.UsageError(f"sizes must be multiples of 32 (our model's size divisor), got {bad}")
    return s


class Runner:
    """Starts the workers one after the other and logs progress on stderr."""

    def __init__(self, settings, peers):
        self.s = settings
        self.peers = set(peers)
        self.t0 = time.perf_counter()

    def _run(self, label, module, flags_):
        sys.stderr.write(f"[bench {time.perf_counter() - self.t0:7.0f} s] {label} ...\n")
        sys.stderr.flush()
        env = {"OMP_WAIT_POLICY": FLAGS.omp_wait_policy} if FLAGS.omp_wait_policy else None
        res = common.run_worker(module, flags_, timeout_s=FLAGS.timeout, env=env)
        if "error" in res:
            sys.stderr.write(f"    FAILED: {res['error']}\n")
        else:
            figure = (
                f"{res['images_per_s']:.1f} images/s"
                if "images_per_s" in res
                else f"median {res.get('median_s', float('nan')):.3f} s wall"
            )
            sys.stderr.write(f"    {figure}, peak {res.get('peak_rss_mb', float('nan')):.0f} MiB\n")
        return res

    def _timing(self):
        return {"repeats": self.s["repeats"], "warmup": self.s["warmup"], "threads": self.s["threads"]}

    def ours(self, task, size, detections=100, **extra):
        where = f"{size}px" + ("" if task == "train" else f" D={detections}")
        return self._run(
            f"ours {task} {where} {extra or ''}",
            "bench.worker_ours",
            {
                "task": task,
                "preset": self.s["preset"],
                "size": size,
                "detections": detections,
                **self._timing(),
                **extra,
            },
        )

    def theirs(self, task, model, size, detections=100):
        if model not in self.peers:
            return None
        return self._run(
            f"torchvision {model} {task} {size}px D={detections}",
            "bench.worker_torchvision",
            {"task": task, "model": model, "size": size, "detections": detections, **self._timing()},
        )

    def infer(self):
        rows = []
        for size in self.s["sizes"]:
            for d in self.s["detections"]:
                rows.append(
                    {
                        "size": size,
                        "detections": d,
                        "ours": self.ours("infer", size, d),
                        "maskrcnn": self.theirs("infer", "maskrcnn", size, d),
                        "keypointrcnn": self.theirs("infer", "keypointrcnn", size, d),
                    }
                )
        return rows

    def train(self):
        size = self.s["train_size"]
        return {"size": size, "ours": self.ours("train", size), "maskrcnn": self.theirs("train", "maskrcnn", size)}

    def profile(self):
        size = self.s["train_size"]
        logdir = os.path.join(common.REPO_ROOT, "output", "bench", "profile")
        repeats = 1 if self.s["quick"] else 2
        out = {"size": size, "logdir": os.path.relpath(logdir, common.REPO_ROOT), "rows": []}
        for label, over in (
            ("ours (preset)", {}),
            ("ours with Keypoint R-CNN's own keypoint head", {"model.keypoint_head.kind": "heatmap"}),
        ):
            flags_ = {
                "task": "profile_train",
                "preset": self.s["preset"],
                "size": size,
                "repeats": repeats,
                "warmup": 1,
                "threads": self.s["threads"],
                "profile_dir": os.path.join(logdir, str(len(out["rows"]))),
            }
            if over:
                flags_["overrides"] = json.dumps(over)
            out["rows"].append(
                {"label": label, "result": self._run(f"profile {label} {size}px", "bench.worker_ours", flags_)}
            )
        return out

    def stages(self):
        size, d = max(self.s["sizes"]), max(self.s["detections"])
        frozen_bn = json.dumps({"model.backbone.norm": "frozen_bn"})
        return {
            "size": size,
            "detections": d,
            "ours": self.ours("stages", size, d),
            "ours_bf16": self.ours("stages", size, d, precision="bfloat16"),
            "ours_frozen_bn": self.ours("stages", size, d, overrides=frozen_bn),
            "maskrcnn": self.theirs("stages", "maskrcnn", size, d),
            "keypointrcnn": self.theirs("stages", "keypointrcnn", size, d),
        }

    def roi_align(self, stages=None):
        """Our model's stages with each RoIAlign backend (the default run is reused when it
        already used one of them), plus bench/bench_roi_align.py when it exists."""
        size, d = max(self.s["sizes"]), max(self.s["detections"])
        out = {"size": size, "detections": d}
        for backend in ("tf", "custom"):
            prev = (stages or {}).get("ours") or {}
            if prev.get("roi_align_backend") == backend and "error" not in prev:
                out[backend] = prev
            else:
                out[backend] = self.ours("stages", size, d, roi_align_backend=backend)
        script = os.path.join(common.REPO_ROOT, "bench", "bench_roi_align.py")
        if os.path.exists(script):
            quick = ["--rois=16", "--image_size=64", "--channels=16", "--sizes=7", "--repeats=1"]
            out["script"] = self._script(script, quick if self.s["quick"] else [f"--repeats={self.s['repeats']}"])
        else:
            out["script"] = {"error": "bench/bench_roi_align.py is not in this checkout"}
        return out

    def _script(self, path, args):
        """Runs another developer's benchmark script; its markdown stdout goes into the report."""
        import subprocess

        sys.stderr.write(f"[bench {time.perf_counter() - self.t0:7.0f} s] {os.path.relpath(path)} {args} ...\n")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        try:
            proc = subprocess.run(
                [sys.executable, path] + args,
                cwd=common.REPO_ROOT,
                capture_output=True,
                text=True,
                timeout=FLAGS.timeout,
                env=env,
            )
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {FLAGS.timeout} s"}
        text = proc.stdout.strip()
        if proc.returncode != 0:
            return {"error": f"exit code {proc.returncode}: " + " | ".join(proc.stderr.strip().splitlines()[-4:])}
        for line in reversed(text.splitlines()):
            if line.startswith(common.RESULT_PREFIX):
                return {"result": json.loads(line[len(common.RESULT_PREFIX) :])}
        return {"stdout": "\n".join(text.splitlines()[-40:]), "args": " ".join(args)}

    def backends(self, infer_rows=None, preset=None, overrides=None):
        """Every ``--backends`` on ``preset`` (default: the preset) at each size x D (bench.worker_backends),
        with the torchvision Mask R-CNN figure of the same size x D (from the infer part when it ran).
        ``overrides``: dotted config keys of the random model."""
        import numpy as np

        s = self.s
        preset = preset or s["preset"]
        base = {"preset": preset, "threads": s["threads"], "repeats": s["repeats"], "warmup": s["warmup"]}
        if overrides:
            base["overrides"] = json.dumps(overrides, sort_keys=True)
        formats = (
            ",".join(
                sorted(
                    {"onnx" for b in FLAGS.backends if b.startswith(("onnx", "openvino"))}
                    | {"tflite" for b in FLAGS.backends if b == "tflite"}
                )
            )
            or "none"
        )
        out = {
            "preset": preset,
            "overrides": overrides or {},
            "prepare": {},
            "rows": [],
            "backends": list(FLAGS.backends),
        }
        for size in s["sizes"]:
            for d in s["detections"]:
                out["prepare"][f"{size}_{d}"] = self._run(
                    f"export {preset} {size}px D={d} ({formats})",
                    "bench.worker_backends",
                    {**base, "task": "prepare", "detections": d, "size": size, "formats": formats},
                )
        previous = {(r["size"], r["detections"]): r for r in (infer_rows or [])}
        for size in s["sizes"]:
            for d in s["detections"]:
                row = {"size": size, "detections": d, "results": {}}
                for b in FLAGS.backends:
                    row["results"][b] = self._run(
                        f"backend {b} {preset} {size}px D={d}",
                        "bench.worker_backends",
                        {**base, "task": "infer", "size": size, "detections": d, "backend": b},
                    )
                prev = previous.get((size, d)) or {}
                row["maskrcnn"] = (
                    prev.get("maskrcnn") if prev.get("maskrcnn") else self.theirs("infer", "maskrcnn", size, d)
                )
                row["match"] = {
                    b: compare_outputs(row["results"].get("tensorflow"), r)
                    for b, r in row["results"].items()
                    if b != "tensorflow"
                }
                out["rows"].append(row)
        del np
        return out

    def api(self):
        """cpu_small bytes -> JSON through the Python API per backend (stage table), the server
        with one client, and batch 1 / 8 images/s (bench.worker_api)."""
        s = self.s
        model = _existing(FLAGS.api_model)
        records = FLAGS.api_records if _glob(FLAGS.api_records) else ""
        base = {
            "model": model,
            "records": records,
            "threads": s["threads"],
            "repeats": s["repeats"],
            "images": 2 if s["quick"] else 8,
        }
        out = {
            "model": model or "random cpu_small",
            "records": records or "synthetic scenes",
            "latency": {},
            "server": {},
            "batch": {},
        }
        for b in FLAGS.api_backends:
            backend, precision = (b[:-5], "bfloat16") if b.endswith("_bf16") else (b, "float32")
            out["latency"][b] = self._run(
                f"api bytes->JSON {b}",
                "bench.worker_api",
                {**base, "task": "latency", "backend": backend, "precision": precision},
            )
        ok = {b: r["stages_ms"]["total"] for b, r in out["latency"].items() if "error" not in r}
        fastest = min(ok, key=ok.get) if ok else "tensorflow"
        for b in dict.fromkeys(["tensorflow", fastest]):
            backend, precision = (b[:-5], "bfloat16") if b.endswith("_bf16") else (b, "float32")
            out["server"][b] = self._run(
                f"server one client {b}",
                "bench.worker_api",
                {**base, "task": "server", "backend": backend, "precision": precision},
            )
        for b in dict.fromkeys(["tensorflow", "onnxruntime", fastest]):
            backend, precision = (b[:-5], "bfloat16") if b.endswith("_bf16") else (b, "float32")
            out["batch"][b] = self._run(
                f"api batch 1/8 {b}",
                "bench.worker_api",
                {
                    **base,
                    "task": "batch",
                    "backend": backend,
                    "precision": precision,
                    "repeats": 1 if s["quick"] else 3,
                    "batch_images": 8 if s["quick"] else 16,
                },
            )
        out["fastest"] = fastest
        # where the model's own time goes (random weights, threshold 0, D = about the people kept)
        for precision in ("float32", "bfloat16"):
            out[f"model_stages_{precision}"] = self._run(
                f"cpu_small model stages 256px D=6 {precision}",
                "bench.worker_ours",
                {
                    "task": "stages",
                    "preset": "cpu_small",
                    "size": 64 if s["quick"] else 256,
                    "detections": 6,
                    "repeats": max(s["repeats"], 10),
                    "warmup": 2,
                    "threads": s["threads"],
                    "precision": precision,
                },
            )
        return out

    def quant(self):
        """AP and speed of the quantised TFLite exports of a trained model (bench.worker_backends)."""
        model = _existing(FLAGS.api_model)
        if not model or not _glob(FLAGS.api_records):
            return _no_trained_model()
        calib = FLAGS.calib_records if _glob(FLAGS.calib_records) else FLAGS.api_records
        return self._run(
            "quantised exports: AP + speed",
            "bench.worker_backends",
            {
                "task": "quant",
                "train_dir": model,
                "records": FLAGS.api_records,
                "calib_records": calib,
                "threads": self.s["threads"],
                "max_images": 4 if self.s["quick"] else 100,
                "calib_images": 4 if self.s["quick"] else 32,
            },
        )

    def live(self):
        """The live configuration: the trained cpu_small exported with the live settings at each --live_sizes,
        ONNX float32 / int8, accuracy and bytes -> JSON (API and server)."""
        model = _existing(FLAGS.api_model)
        if not model or not _glob(FLAGS.api_records):
            return _no_trained_model()
        quick = self.s["quick"]
        calib = FLAGS.calib_records if _glob(FLAGS.calib_records) else FLAGS.api_records
        base = {
            "records": FLAGS.api_records,
            "threads": self.s["threads"],
            "repeats": self.s["repeats"],
            "images": 2 if quick else 8,
            "backend": "onnxruntime",
        }
        configs = []
        for size in [int(v) for v in FLAGS.live_sizes]:
            conf = {"size": size, "latency": {}, "server": {}}
            conf["export"] = self._run(
                f"live {size}px: export ONNX float32 + int8, scored",
                "bench.worker_live",
                {
                    "model": model,
                    "size": size,
                    "out": os.path.join(common.REPO_ROOT, "output", "bench", f"live{size}"),
                    "calib_records": calib,
                    "records": FLAGS.api_records,
                    "max_images": 4 if quick else 0,
                },
            )
            configs.append(conf)
            if "error" in conf["export"]:
                continue
            for name, key in (("onnxruntime", "onnx"), ("onnxruntime_int8", "onnx_int8")):
                flags_ = {**base, "model": conf["export"][key]}
                conf["latency"][name] = self._run(
                    f"live {size}px bytes->JSON {name}", "bench.worker_api", {**flags_, "task": "latency"}
                )
                conf["server"][name] = self._run(
                    f"live {size}px server one client {name}", "bench.worker_api", {**flags_, "task": "server"}
                )
        return {"model": model, "configs": configs}

    def pipeline(self):
        s = self.s
        base = {
            "records": s["pipeline_records"],
            "record_size": s["pipeline_record_size"],
            "batches": s["pipeline_batches"],
            "batch_size": 2,
            "threads": s["threads"],
            "preset": s["preset"],
        }
        rows = [
            {
                "label": f"{s['train_size']} px (the training-step size)",
                "result": self._run(
                    "pipeline at the training size", "bench.worker_pipeline", {**base, "train_size": s["train_size"]}
                ),
            }
        ]
        if not s["quick"]:
            rows.append(
                {
                    "label": f"preset {s['preset']} input sizes",
                    "result": self._run(
                        "pipeline at the preset's input size", "bench.worker_pipeline", {**base, "train_size": 0}
                    ),
                }
            )
        return rows


def _no_trained_model() -> dict:
    """The quant / live parts' result without a trained model or validation records."""
    return {
        "error": f"no trained model at --api_model={FLAGS.api_model!r} or no records at "
        f"--api_records={FLAGS.api_records!r}: train one (python train/train.py) or pass them"
    }


def _glob(pattern: str):
    import glob

    path = pattern if os.path.isabs(pattern) else os.path.join(common.REPO_ROOT, pattern)
    return sorted(glob.glob(path)) if pattern else []


def _existing(path: str) -> str:
    if not path:
        return ""
    from maskrcnn_body.config.train_dir import is_train_dir

    full = path if os.path.isabs(path) else os.path.join(common.REPO_ROOT, path)
    return full if is_train_dir(full) else ""


def compare_outputs(ref, other) -> dict:
    """How a backend's detections compare with TensorFlow float32's on the same image: max |score
    difference| of the sorted scores, and for each TF box the best IoU among the other's boxes
    (median and the share >= 0.9). Random weights give near-tied scores, so rows are matched by box."""
    import numpy as np

    if not (isinstance(ref, dict) and isinstance(other, dict) and "outputs" in ref and "outputs" in other):
        return {}
    a = np.load(os.path.join(common.REPO_ROOT, ref["outputs"]))
    b = np.load(os.path.join(common.REPO_ROOT, other["outputs"]))
    if len(a["scores"]) == 0 or len(a["scores"]) != len(b["scores"]):
        return {"num_detections": [int(len(a["scores"])), int(len(b["scores"]))]}
    ba, bb = a["boxes"][:, None], b["boxes"][None]
    inter = np.prod(np.clip(np.minimum(ba[..., 2:], bb[..., 2:]) - np.maximum(ba[..., :2], bb[..., :2]), 0, None), -1)
    area = lambda x: np.prod(np.clip(x[..., 2:] - x[..., :2], 0, None), -1)  # noqa: E731
    iou = (inter / np.maximum(area(ba) + area(bb) - inter, 1e-9)).max(1)
    return {
        "score_max_diff": float(np.abs(np.sort(a["scores"]) - np.sort(b["scores"])).max()),
        "box_iou_median": float(np.median(iou)),
        "box_iou_ge_0.9": float(np.mean(iou >= 0.9)),
        "num_detections": [int(len(a["scores"])), int(len(b["scores"]))],
    }


def run(settings, parts, peers):
    """All requested measurements (``peers``: torchvision models to compare with; empty = none);
    returns the results dict that :mod:`bench.report` renders."""
    skipped = []
    if peers and not common.torch_available():
        skipped.append(
            "torchvision peers: torch and/or torchvision are not installed in this Python "
            "(pip install torch torchvision), so only our figures were measured"
        )
        peers = []
    for p in sorted({"maskrcnn", "keypointrcnn"} - set(peers)):
        skipped.append(f"torchvision {p}: not measured in this run (--notorch or --peers)")
    runner = Runner(settings, peers)
    results = {
        "machine": common.machine_info(),
        "settings": settings,
        "skipped": skipped,
        "env": {"OMP_WAIT_POLICY": FLAGS.omp_wait_policy or os.environ.get("OMP_WAIT_POLICY", "(default)")},
    }
    for part in PARTS:
        if part not in parts:
            continue
        if part == "roi_align":
            results[part] = runner.roi_align(results.get("stages"))
        elif part == "backends":
            results[part] = runner.backends(results.get("infer"))
        elif part == "deploy":
            # random weights: the timing does not depend on them, and no download at run time
            results[part] = runner.backends(
                results.get("infer") or (results.get("backends") or {}).get("rows"),
                preset=FLAGS.deploy_preset,
                overrides={"model.backbone.weights": None},
            )
        else:
            results[part] = getattr(runner, part)()
    results["total_wall_s"] = time.perf_counter() - runner.t0
    results["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    return results


def main(argv):
    del argv
    if FLAGS.from_json:
        with open(FLAGS.from_json) as f:
            results = json.load(f)
    else:
        settings = _settings()
        unknown = set(FLAGS.peers) - {"maskrcnn", "keypointrcnn"}
        if unknown:
            raise app.UsageError(f"--peers has unknown {sorted(unknown)}; choose from maskrcnn, keypointrcnn")
        results = run(settings, FLAGS.parts, FLAGS.peers if FLAGS.torch else [])
    notes = ""
    if FLAGS.notes:
        path = os.path.join(common.REPO_ROOT, FLAGS.notes)
        if os.path.exists(path):
            with open(path) as f:
                notes = f.read()
    for rel, text in (
        (FLAGS.json_out if not FLAGS.from_json else "", json.dumps(results, indent=1, sort_keys=True)),
        (FLAGS.out, report.render(results, notes)),
    ):
        if not rel:
            continue
        path = rel if os.path.isabs(rel) else os.path.join(common.REPO_ROOT, rel)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        write_text_atomic(path, text)
        sys.stderr.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    app.run(main)
