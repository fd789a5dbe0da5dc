"""Benchmark worker: one model on one inference backend (and the exports it needs).

    python -m bench.worker_backends --task=prepare --preset=r50_fpn --detections=20 --formats=onnx
    python -m bench.worker_backends --task=infer --preset=r50_fpn --detections=20 --size=800 --backend=onnxruntime
    python -m bench.worker_backends --task=quant --train_dir=output/mask_rcnn \\
        --records='data/records/synthetic_val-*.tfrecord' --calib_records='data/records/synthetic_train-*.tfrecord'

``prepare``: a random-weight training directory of ``--preset`` (with ``--overrides``) with score threshold 0,
``max_detections = --detections`` and, for a ``--size`` other than the preset's ``input.min_size``, input
sizes ``--size`` (else the exports would resize the image to the preset's size) (the same model as
``bench.worker_ours``; the work is fixed whatever
the untrained scores are) and its SavedModel / ONNX / TFLite exports, under ``--work_dir``; reused
when they exist. Export times are reported.

``infer``: that model through ``mb.load(..., backend=...)``'s runner on one random ``--size`` square
RGB image (the whole exported path: resize/pad, network, NMS, masks and keypoints mapped back),
``--repeats`` timed runs after ``--warmup``; the outputs go to ``--work_dir`` so the parent compares
every backend's detections with TensorFlow float32's. Backends: ``tensorflow`` (the training
directory, compiled ops), ``tensorflow_bf16`` (the same, ``precision="bfloat16"``), ``onnxruntime``,
``openvino``, ``openvino_bf16``, ``tflite`` (the exports).

``quant``: a trained model's float32 / float16 / dynamic-range int8 / full int8 TFLite exports (int8
calibrated on ``--calib_images`` images of ``--calib_records``), TensorFlow float32 and bfloat16,
ONNX Runtime float32 and int8 (``inference.quantize``: the convolutions int8, the rest float), each scored
on the first ``--max_images`` validation images by the same metrics
(``inference.record_dumps.write_runner_dumps``) and timed per image (median of the model calls).
Prints one ``BENCH_RESULT`` JSON line (:mod:`bench.common`).
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
from absl import app, flags

from bench import common

FLAGS = flags.FLAGS
flags.DEFINE_enum("task", "infer", ["prepare", "infer", "quant"], "what to do")
flags.DEFINE_string("preset", "r50_fpn", "config preset of the random model")
flags.DEFINE_string("overrides", "", "prepare: JSON {dotted config key: value} applied to --preset (random model)")
flags.DEFINE_integer("detections", 20, "max_detections (score threshold 0)")
flags.DEFINE_integer("size", 800, "square image size")
flags.DEFINE_string("backend", "tensorflow", "infer: the backend (see module docstring)")
flags.DEFINE_list("formats", ["onnx"], "prepare: exports to write besides the SavedModel (onnx, tflite)")
flags.DEFINE_integer("repeats", 5, "timed runs")
flags.DEFINE_integer("warmup", 1, "untimed runs first")
flags.DEFINE_integer("threads", 2, "threads of every framework")
flags.DEFINE_string("work_dir", "output/bench/backends", "exports and outputs (relative to the repo root)")
flags.DEFINE_string("train_dir", "", "quant: the trained model")
flags.DEFINE_string("records", "", "quant: validation records glob")
flags.DEFINE_string("calib_records", "", "quant: calibration records glob ('' = --records)")
flags.DEFINE_integer("calib_images", 32, "quant: int8 calibration images")
flags.DEFINE_integer("max_images", 100, "quant: validation images scored")
flags.DEFINE_list(
    "variants",
    [
        "tensorflow",
        "tensorflow_bf16",
        "onnxruntime",
        "tflite_float32",
        "tflite_float16",
        "tflite_dynamic",
        "tflite_int8",
        "onnxruntime_int8",
    ],
    "quant: what to score",
)

BACKEND_SPEC = {
    "tensorflow": ("tensorflow", "float32"),
    "tensorflow_bf16": ("tensorflow", "bfloat16"),
    "onnxruntime": ("onnxruntime", "float32"),
    "openvino": ("openvino", "float32"),
    "openvino_bf16": ("openvino", "bfloat16"),
    "tflite": ("tflite", "float32"),
}


def _abs(path):
    return path if os.path.isabs(path) else os.path.join(common.REPO_ROOT, path)


def size_overrides() -> dict:
    """The exports resize every image by the preset's rule (shorter side to ``input.min_size``): a
    512 px image would run at 800 px in ``r50_fpn``. Sizes other than the preset's own get a model
    whose input sizes are that size (torchvision's peers run with min_size = max_size = size too)."""
    from maskrcnn_body.config import get_config

    if FLAGS.size == get_config(FLAGS.preset).input.min_size:
        return {}
    return {"input.min_size": FLAGS.size, "input.max_size": FLAGS.size}


def model_dir():
    suffix = f"_S{FLAGS.size}" if size_overrides() else ""
    if FLAGS.overrides:
        import hashlib

        suffix += "_" + hashlib.sha1(FLAGS.overrides.encode()).hexdigest()[:8]
    return os.path.join(_abs(FLAGS.work_dir), f"{FLAGS.preset}_D{FLAGS.detections}{suffix}")


def prepare():
    import keras

    from maskrcnn_body.config import get_config
    from maskrcnn_body.config.train_dir import is_train_dir
    from maskrcnn_body.inference import exporting
    from maskrcnn_body.inference.loading import load_trained_model, write_train_dir
    from maskrcnn_body.model.maskrcnn import build_model

    d = model_dir()
    run = os.path.join(d, "run")
    out = {"dir": os.path.relpath(d, common.REPO_ROOT)}
    if not is_train_dir(run):
        keras.utils.set_random_seed(0)
        cfg = get_config(
            FLAGS.preset,
            **{
                "model.postprocess.score_threshold": 0.0,
                "model.postprocess.max_detections": FLAGS.detections,
                **size_overrides(),
                **(json.loads(FLAGS.overrides) if FLAGS.overrides else {}),
            },
        )
        write_train_dir(build_model(cfg), cfg, run)
    sm = os.path.join(d, "saved_model")
    if not os.path.exists(os.path.join(sm, "saved_model.pb")):
        t = time.perf_counter()
        model, cfg, _ = load_trained_model(run)
        exporting.export_saved_model(model, cfg, sm)
        out["saved_model_s"] = time.perf_counter() - t
    if "onnx" in FLAGS.formats and not os.path.exists(os.path.join(d, "model.onnx")):
        t = time.perf_counter()
        exporting.export_onnx(sm, os.path.join(d, "model.onnx"))
        out["onnx_s"] = time.perf_counter() - t
    if "tflite" in FLAGS.formats and not os.path.exists(os.path.join(d, "model.tflite")):
        t = time.perf_counter()
        exporting.export_tflite(sm, os.path.join(d, "model.tflite"))
        out["tflite_s"] = time.perf_counter() - t
    out["files_mb"] = {
        f: os.path.getsize(os.path.join(d, f)) / 2**20
        for f in ("model.onnx", "model.tflite")
        if os.path.exists(os.path.join(d, f))
    }
    return out


def infer():
    from maskrcnn_body.inference import backends

    d = model_dir()
    backend, precision = BACKEND_SPEC[FLAGS.backend]
    path = {
        "tensorflow": os.path.join(d, "run"),
        "onnxruntime": os.path.join(d, "model.onnx"),
        "openvino": os.path.join(d, "model.onnx"),
        "tflite": os.path.join(d, "model.tflite"),
    }[backend]
    mem0 = common.memory_mb()
    runner, name = backends.open_runner(path, backend=backend, num_threads=FLAGS.threads, precision=precision)
    image = np.random.default_rng(0).integers(0, 256, (FLAGS.size, FLAGS.size, 3), np.uint8)
    last = {}

    def run():
        last["out"] = runner([image])[0]

    timing = common.time_runs(run, FLAGS.repeats, FLAGS.warmup)
    out = last["out"]
    os.makedirs(os.path.join(d, "outputs"), exist_ok=True)
    npz = os.path.join(d, "outputs", f"{FLAGS.backend}_{FLAGS.size}.npz")
    np.savez(npz, **out)
    return {
        **timing,
        "num_detections": int(len(out["scores"])),
        "setup_rss_mb": mem0["rss_mb"],
        "outputs": os.path.relpath(npz, common.REPO_ROOT),
        "backend": name,
        "precision": precision,
        **common.memory_mb(),
    }


def quant():
    from maskrcnn_body.evaluation import evaluator
    from maskrcnn_body.inference import backends, exporting
    from maskrcnn_body.inference.loading import load_trained_model
    from maskrcnn_body.inference.record_dumps import write_runner_dumps

    work = os.path.join(_abs(FLAGS.work_dir), "quant")
    os.makedirs(work, exist_ok=True)
    sm = os.path.join(work, "saved_model")
    t = time.perf_counter()
    model, cfg, ckpt = load_trained_model(FLAGS.train_dir)
    exporting.export_saved_model(model, cfg, sm)
    export_s = {"saved_model": time.perf_counter() - t}
    calib = exporting.calibration_images(FLAGS.calib_records or FLAGS.records, FLAGS.calib_images)
    files = {}
    for q in ("float32", "float16", "dynamic", "int8"):
        if f"tflite_{q}" not in FLAGS.variants:
            continue
        files[f"tflite_{q}"] = os.path.join(work, f"model.{q}.tflite")
        t = time.perf_counter()
        exporting.export_tflite(sm, files[f"tflite_{q}"], quant=None if q == "float32" else q, calib_images=calib)
        export_s[f"tflite_{q}"] = time.perf_counter() - t
    if "onnxruntime" in FLAGS.variants or "onnxruntime_int8" in FLAGS.variants:
        files["onnxruntime"] = os.path.join(work, "model.onnx")
        t = time.perf_counter()
        exporting.export_onnx(sm, files["onnxruntime"])
        export_s["onnx"] = time.perf_counter() - t
    if "onnxruntime_int8" in FLAGS.variants:
        from maskrcnn_body.inference.quantize import quantize_onnx

        files["onnxruntime_int8"] = os.path.join(work, "model.int8.onnx")
        t = time.perf_counter()
        quantize_onnx(files["onnxruntime"], files["onnxruntime_int8"], calib)
        export_s["onnx_int8"] = time.perf_counter() - t
    rows = {}
    for variant in FLAGS.variants:
        if variant.startswith("tflite"):
            runner = backends.tflite_runner(files[variant], FLAGS.threads)
        elif variant.startswith("onnxruntime"):
            runner = backends.onnxruntime_runner(files[variant], FLAGS.threads)
        else:
            runner = backends.tensorflow_runner(
                FLAGS.train_dir, precision="bfloat16" if variant.endswith("bf16") else "float32"
            )
        times = []

        def timed(images, runner=runner, times=times):
            t0 = time.perf_counter()
            out = runner(images)
            times.append(time.perf_counter() - t0)
            return out

        image0 = exporting.calibration_images(FLAGS.records, 1)[0]
        for _ in range(2):
            runner([image0])  # warm-up (trace / allocate), not timed
        dump_dir = os.path.join(work, "dumps", variant)
        import shutil

        shutil.rmtree(dump_dir, ignore_errors=True)
        write_runner_dumps(timed, FLAGS.records, dump_dir, FLAGS.max_images)
        summary = evaluator.evaluate_dir(dump_dir).summary
        rows[variant] = {
            "summary": summary,
            "median_ms": float(np.median(times)) * 1e3,
            "images": len(times),
            "file_mb": os.path.getsize(files[variant]) / 2**20 if variant in files else None,
        }
    return {
        "rows": rows,
        "export_s": export_s,
        "checkpoint": ckpt,
        "calib_images": len(calib),
        "records": FLAGS.records,
        "max_images": FLAGS.max_images,
    }


def main(argv):
    del argv
    if FLAGS.task != "infer" or BACKEND_SPEC[FLAGS.backend][0] == "tensorflow":
        # only where TensorFlow runs: an ONNX Runtime / OpenVINO / TFLite process is measured as deployed, without
        # TensorFlow's ~550 MB runtime in its peak memory
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    common.emit({"prepare": prepare, "infer": infer, "quant": quant}[FLAGS.task]())


if __name__ == "__main__":
    app.run(main)
