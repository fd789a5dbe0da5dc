"""Benchmark worker for our model (imports TensorFlow only; run one per configuration).

    python -m bench.worker_ours --task=infer --size=800 --detections=100
    python -m bench.worker_ours --task=train --size=512
    python -m bench.worker_ours --task=stages --size=800 --detections=100

``infer``: ``tf.function(model.detect)`` on one random (1, size, size, 3) image, config preset
``--preset`` with ``model.postprocess.score_threshold = 0`` and ``max_detections = detections``. The
model always pads detections to ``max_detections`` and runs the mask and keypoint heads on all
of them, so the work is fixed whatever the (untrained) scores are.

``train``: the project's own train step (``training.step.make_train_step`` with the preset's
optimizer from ``training.optimizers.build_optimizer``, gradient clipping and the finite check)
on one batch of :func:`bench.common.synthetic_people` in the pipeline format of docs/DESIGN.md.

``profile_train``: the ``train`` step run ``--repeats`` times under ``tf.profiler`` (after the
warm-up); the trace goes to ``--profile_dir`` (TensorBoard) and the result sums the op times
per model part, forward and backward (:mod:`bench.trace`).

``stages``: the inference split into stages, each its own ``tf.function`` run on the previous
stage's outputs, median time of each (where the time goes).

TF threads: ``intra_op = --threads``, ``inter_op = --inter_threads`` (1: at most ``threads``
busy cores, like torch). Prints one ``BENCH_RESULT`` JSON line (see :mod:`bench.common`).
"""

from __future__ import annotations

import time

import numpy as np
from absl import app, flags

from bench import common

FLAGS = flags.FLAGS
flags.DEFINE_enum("task", "infer", ["infer", "train", "stages", "profile_train", "padding"], "what to measure")
flags.DEFINE_string("photo", "480x640", "padding: the photo's HxW before resizing (a 4:3 landscape by default)")
flags.DEFINE_string("preset", "r50_fpn", "config preset (maskrcnn_body.config.get_config)")
flags.DEFINE_integer("size", 512, "square image size (pixels, multiple of 32)")
flags.DEFINE_integer("detections", 100, "max_detections (score threshold 0)")
flags.DEFINE_integer("repeats", 5, "timed runs (median reported)")
flags.DEFINE_integer("warmup", 1, "untimed runs before timing (the first one traces)")
flags.DEFINE_integer("threads", 2, "TF intra-op threads")
flags.DEFINE_integer("inter_threads", 1, "TF inter-op threads")
flags.DEFINE_integer("people", 3, "ground-truth people in the training image")
flags.DEFINE_string(
    "overrides",
    "",
    'extra config overrides as JSON, e.g. \'{"model.backbone.norm": "frozen_bn"}\' (for profiling experiments)',
)
flags.DEFINE_string("profile_dir", "output/profile", "profile_train: tf.profiler log directory (TensorBoard)")
flags.DEFINE_enum(
    "precision",
    "float32",
    ["float32", "bfloat16"],
    "infer/stages: bfloat16 builds the model under "
    "Keras' mixed_bfloat16 policy (what mb.load(..., precision='bfloat16') does)",
)
flags.DEFINE_string("roi_align_backend", "", "MASKRCNN_BODY_OPS value (auto | tf | custom); empty: unchanged")


def config(preset: str, detections: int):
    """The preset with score threshold 0, ``max_detections = detections`` and ``--overrides``."""
    import json

    from maskrcnn_body.config import get_config

    extra = json.loads(FLAGS.overrides) if FLAGS.overrides else {}
    return get_config(
        preset, **{"model.postprocess.score_threshold": 0.0, "model.postprocess.max_detections": detections, **extra}
    )


def _image(size: int):
    import tensorflow as tf

    return tf.random.stateless_uniform((1, size, size, 3), (0, 0), 0.0, 255.0)


def bench_infer(preset, size, detections, repeats, warmup):
    import tensorflow as tf

    from maskrcnn_body.model.maskrcnn import build_model

    model = build_model(config(preset, detections))
    detect = tf.function(model.detect)
    image, shape = _image(size), tf.constant([[size, size]], tf.int32)
    mem0 = common.memory_mb()
    last = {}

    def run():
        last["out"] = {k: v.numpy() for k, v in detect(image, shape).items()}

    timing = common.time_runs(run, repeats, warmup)
    out = last["out"]
    return {
        **timing,
        "num_detections": int(out["num_detections"][0]),
        "setup_rss_mb": mem0["rss_mb"],
        "output_shapes": {k: list(v.shape) for k, v in out.items()},
    }


def training_batch(cfg, size: int, people: int, width: int = 0, canvas=None):
    """One-image pipeline batch (docs/DESIGN.md) of :func:`bench.common.synthetic_people` of
    ``size`` x ``width`` (default square) valid pixels, zero-padded to ``canvas`` (H, W) when given
    (filled-box masks, so every box-frame channel mask is all ones)."""
    import tensorflow as tf

    width = width or size
    gt = common.synthetic_people(size, people, width=width)
    image = gt["image"]
    if canvas is not None:
        image = np.zeros((canvas[0], canvas[1], 3), np.float32)
        image[:size, :width] = gt["image"]
    p, ms = cfg.input.max_persons, cfg.input.gt_mask_size
    if people > p:
        raise ValueError(f"--people={people} exceeds the preset's input.max_persons={p}")
    boxes = np.zeros((1, p, 4), np.float32)
    boxes[0, :people] = gt["boxes"]
    kps = np.zeros((1, p, 15, 3), np.float32)
    kps[0, :people] = gt["keypoints"]
    masks = np.zeros((1, p, ms, ms, 7), np.float32)
    masks[0, :people] = 1.0
    valid = np.zeros((1, p, 7), np.float32)
    valid[0, :people] = 1.0
    batch = {
        "images": image[None],
        "image_shape": np.array([[size, width]], np.int32),
        "scale": np.ones(1, np.float32),
        "original_shape": np.array([[size, width]], np.int32),
        "source_id": np.array([b"bench"]),
        "num_gt": np.array([people], np.int32),
        "gt_boxes": boxes,
        "gt_masks": masks,
        "gt_parts_valid": valid,
        "gt_keypoints": kps,
    }
    return {k: tf.constant(v) for k, v in batch.items()}


def _train_step(preset, size, people):
    """(run, cfg): ``run()`` does one of the project's train steps on a fixed batch."""
    import tensorflow as tf

    from maskrcnn_body.model.maskrcnn import build_model
    from maskrcnn_body.training.optimizers import build_optimizer
    from maskrcnn_body.training.step import make_train_step

    cfg = config(preset, 100)
    cfg.train.batch_size = 1
    strategy = tf.distribute.get_strategy()
    model = build_model(cfg)
    optimizer = build_optimizer(cfg.train)
    step = make_train_step(model, optimizer, strategy, cfg.train.clip_norm)
    data = iter(tf.data.Dataset.from_tensors(training_batch(cfg, size, people)).repeat())
    last = {}

    def run():
        last["out"] = {k: float(v) for k, v in step(next(data)).items()}
        return last["out"]

    run.last = last
    return run, cfg


def bench_padding(preset, repeats, warmup, people, photo):
    """Training step and inference of a ``photo`` (HxW) image, resized by the preset's rule, on the
    square canvas of earlier releases (``input.pad_size`` squared) and on the image's own size
    rounded up to 32 (what the pipeline and the predictor pad to now). One model, one optimizer;
    the two canvases alternate run by run, so both see the same machine load."""
    import tensorflow as tf

    from maskrcnn_body.constants import round_up
    from maskrcnn_body.data import augment
    from maskrcnn_body.model.maskrcnn import build_model
    from maskrcnn_body.training.optimizers import build_optimizer
    from maskrcnn_body.training.step import make_train_step

    cfg = config(preset, 20)
    cfg.train.batch_size = 1
    h0, w0 = (int(v) for v in photo.lower().split("x"))
    i = cfg.input
    scale = augment.resize_scale(h0, w0, i.min_size, i.max_size, i.pad_size)
    h, w = (int(v) for v in augment.resized_size(h0, w0, scale).numpy())
    canvases = {"square canvas (before)": (i.pad_size, i.pad_size), "own size (after)": (round_up(h), round_up(w))}
    model = build_model(cfg)
    optimizer = build_optimizer(cfg.train)
    step = make_train_step(model, optimizer, tf.distribute.get_strategy(), cfg.train.clip_norm)
    detect = tf.function(lambda x, s: model.detect(x, s))
    batches = {k: training_batch(cfg, h, people, width=w, canvas=c) for k, c in canvases.items()}
    calls = {}
    for key, b in batches.items():
        calls[("train", key)] = lambda b=b: {k: float(v) for k, v in step(b).items()}
        calls[("infer", key)] = lambda b=b: detect(b["images"], b["image_shape"])["boxes"].numpy()
    times = {k: [] for k in calls}
    for r in range(warmup + repeats):
        for k, fn in calls.items():
            t0 = time.perf_counter()
            fn()
            if r >= warmup:
                times[k].append(time.perf_counter() - t0)
    med = {k: float(np.median(v)) for k, v in times.items()}
    out = {
        "photo": [h0, w0],
        "resized": [h, w],
        "canvases": {k: list(v) for k, v in canvases.items()},
        "pixels_ratio": (canvases["own size (after)"][0] * canvases["own size (after)"][1]) / (i.pad_size**2),
    }
    for task in ("train", "infer"):
        before, after = med[(task, "square canvas (before)")], med[(task, "own size (after)")]
        out[task] = {
            "before_s": before,
            "after_s": after,
            "ratio": after / before,
            "times_s": {k[1]: v for k, v in times.items() if k[0] == task},
        }
    return out


def bench_train(preset, size, repeats, warmup, people):
    run, cfg = _train_step(preset, size, people)
    mem0 = common.memory_mb()
    timing = common.time_runs(run, repeats, warmup)
    out = run.last["out"]
    return {
        **timing,
        "loss": out["total"],
        "finite": out.get("finite"),
        "optimizer": cfg.train.optimizer,
        "setup_rss_mb": mem0["rss_mb"],
    }


def profile_train(preset, size, repeats, warmup, people, logdir):
    """Op time of the train step per model part (see :mod:`bench.trace`), from a tf.profiler trace."""
    from bench import trace

    run, _ = _train_step(preset, size, people)
    for _ in range(max(1, warmup)):
        run()
    path = trace.profile(run, logdir, repeats)
    return {**trace.summarize(path, repeats), "trace": path, "repeats": repeats}


def bench_stages(preset, size, detections, repeats, warmup):
    """Median time of each inference stage (the model's own units, one tf.function each)."""
    import tensorflow as tf

    from maskrcnn_body.model import postprocess as post
    from maskrcnn_body.model.maskrcnn import build_model
    from maskrcnn_body.model.roi_heads import apply_head

    cfg = config(preset, detections)
    m = cfg.model
    p = m.postprocess
    model = build_model(cfg)
    image, shape = _image(size), tf.constant([[size, size]], tf.int32)
    s = {}

    @tf.function
    def features(x):
        return model.features(x, False)

    @tf.function
    def rpn(feats):
        out = model.rpn(feats, (size, size), shape, False)
        return out.proposals, out.valid

    @tf.function
    def roi_align(feats, boxes, roi_size):
        return model.roi_heads.crop(feats, boxes, roi_size)

    @tf.function
    def box_head(rois, proposals, pvalid):
        cls, box = apply_head(model.box_head, rois, False)
        return post.select_detections(
            cls, box, proposals, pvalid, shape, m.box_head.box_weights, p.score_threshold, p.nms_iou, p.max_detections
        )

    shared = m.keypoint_head.kind == "shared"

    @tf.function
    def mask_head(rois, boxes):
        out = apply_head(model.mask_head, rois, False)
        if not shared:
            return tf.sigmoid(out)
        return tf.sigmoid(out[0]), post.decode_keypoint_heatmaps(out[1], boxes)

    @tf.function
    def keypoint_head(rois, boxes):
        return post.decode_keypoint_heatmaps(apply_head(model.keypoint_head, rois, False), boxes)

    def run(key, fn, *args):
        """A timed call: ``fn`` on ``args`` (callables are read from ``s`` at call time).
        Eager calls of a tf.function return after the work is done on CPU."""

        def call():
            s[key] = fn(*[a() if callable(a) else a for a in args])

        return call

    get = lambda k, i=None: lambda: s[k] if i is None else s[k][i]  # noqa: E731
    stages = [
        ("backbone+FPN", run("feats", features, image)),
        ("RPN+proposals", run("proposals", rpn, get("feats"))),
        ("box RoIAlign", run("box_rois", roi_align, get("feats"), get("proposals", 0), m.box_head.roi_size)),
        ("box head+postprocess", run("det", box_head, get("box_rois"), get("proposals", 0), get("proposals", 1))),
        (
            "mask RoIAlign (shared with keypoints)",
            run("mask_rois", roi_align, get("feats"), lambda: s["det"]["boxes"], m.mask_head.roi_size),
        ),
        (
            "mask+keypoint head (one tower)+decode" if shared else "mask head",
            run("masks", mask_head, get("mask_rois"), lambda: s["det"]["boxes"]),
        ),
    ]
    if model.keypoint_head is not None and m.keypoint_head.kind == "heatmap":
        if m.keypoint_head.roi_size != m.mask_head.roi_size:
            raise ValueError("stages assumes keypoint_head.roi_size == mask_head.roi_size (one shared RoIAlign)")
        stages.append(("keypoint head+decode", run("kps", keypoint_head, get("mask_rois"), lambda: s["det"]["boxes"])))
    result = [[name, common.time_runs(fn, repeats, warmup)["median_s"]] for name, fn in stages]
    return {
        "stages": result,
        "median_s": sum(t for _, t in result),
        "num_detections": int(s["det"]["num_detections"][0]),
    }


def main(argv):
    del argv
    import os

    if FLAGS.roi_align_backend:
        os.environ["MASKRCNN_BODY_OPS"] = FLAGS.roi_align_backend
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
    tf.config.threading.set_inter_op_parallelism_threads(FLAGS.inter_threads)
    import keras

    keras.utils.set_random_seed(0)
    if FLAGS.precision == "bfloat16" and FLAGS.task in ("infer", "stages"):
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    if FLAGS.task == "infer":
        res = bench_infer(FLAGS.preset, FLAGS.size, FLAGS.detections, FLAGS.repeats, FLAGS.warmup)
    elif FLAGS.task == "train":
        res = bench_train(FLAGS.preset, FLAGS.size, FLAGS.repeats, FLAGS.warmup, FLAGS.people)
    elif FLAGS.task == "profile_train":
        res = profile_train(FLAGS.preset, FLAGS.size, FLAGS.repeats, FLAGS.warmup, FLAGS.people, FLAGS.profile_dir)
    elif FLAGS.task == "padding":
        res = bench_padding(FLAGS.preset, FLAGS.repeats, FLAGS.warmup, FLAGS.people, FLAGS.photo)
    else:
        res = bench_stages(FLAGS.preset, FLAGS.size, FLAGS.detections, FLAGS.repeats, FLAGS.warmup)
    from maskrcnn_body.ops import backend

    res.update(common.memory_mb())
    res.update(
        {
            "framework": "tensorflow " + tf.__version__,
            "threads": FLAGS.threads,
            "inter_threads": FLAGS.inter_threads,
            "task": FLAGS.task,
            "preset": FLAGS.preset,
            "size": FLAGS.size,
            "detections": FLAGS.detections,
            "overrides": FLAGS.overrides,
            "roi_align_backend": _backend_name(backend),
            "precision": FLAGS.precision,
        }
    )
    common.emit(res)


def _backend_name(backend_module) -> str:
    """'tf' or 'custom': the op backend the model used (``ops.backend``)."""
    try:
        return backend_module.name_of()
    except Exception as e:
        return f"unknown ({type(e).__name__})"


if __name__ == "__main__":
    app.run(main)
