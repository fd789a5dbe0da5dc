"""Model speed and memory on this machine (not a test; run when the CPU is quiet).

Measures, each as the median of ``--runs`` runs after one warm-up (which includes tracing):

* forward latency (``detect``: boxes, scores, 7-channel masks, keypoints) of a preset at each
  ``--sizes`` (batch 1);
* one training step (``compute_losses`` + gradients + Adam update) at ``--train_size``,
  batch ``--train_batch``, and its peak resident memory (``ru_maxrss`` of a fresh subprocess
  that does only the warm-up step and the timed steps).

    python bench/bench_model.py --preset r50_fpn --sizes 512,800 --train_size 512
    python bench/bench_model.py --preset cpu_small --sizes 256 --train_size 256 --train_batch 4
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("preset", "r50_fpn", "config preset")
flags.DEFINE_list("sizes", ["512", "800"], "square input sizes for the forward latency (multiples of 32)")
flags.DEFINE_integer("train_size", 512, "square input size of the training step (0 = skip)")
flags.DEFINE_integer("train_batch", 1, "batch size of the training step")
flags.DEFINE_integer("runs", 5, "timed runs per measurement (median reported)")
flags.DEFINE_string("mode", "all", "all | forward | train (train runs in this process; 'all' spawns it)")


def _batch(cfg, size, batch):
    """A synthetic pipeline-format batch: one 'person' box per image with a full-box mask."""
    import tensorflow as tf

    p, ms = cfg.input.max_persons, cfg.input.gt_mask_size
    rng = np.random.default_rng(0)
    boxes = np.zeros((batch, p, 4), np.float32)
    boxes[:, 0] = [size * 0.3, size * 0.1, size * 0.6, size * 0.9]
    kps = np.zeros((batch, p, 15, 3), np.float32)
    kps[:, 0, :, 0] = size * 0.45
    kps[:, 0, :, 1] = np.linspace(size * 0.15, size * 0.85, 15)
    kps[:, 0, :, 2] = 2
    b = {
        "images": rng.uniform(0, 255, (batch, size, size, 3)).astype(np.float32),
        "image_shape": np.full((batch, 2), size, np.int32),
        "num_gt": np.ones(batch, np.int32),
        "gt_boxes": boxes,
        "gt_masks": np.ones((batch, p, ms, ms, 7), np.float32),
        "gt_parts_valid": np.ones((batch, p, 7), np.float32),
        "gt_keypoints": kps,
    }
    return {k: tf.constant(v) for k, v in b.items()}


def _median_time(fn, runs):
    fn()  # warm-up / trace
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def bench_forward(preset, sizes, runs):
    import tensorflow as tf

    from maskrcnn_body.config import get_config
    from maskrcnn_body.model.maskrcnn import build_model

    model = build_model(get_config(preset))
    detect = tf.function(model.detect)
    out = {}
    for s in sizes:
        x = tf.random.uniform((1, s, s, 3), 0, 255)
        shape = tf.constant([[s, s]], tf.int32)
        out[f"forward_{s}_s"] = _median_time(
            lambda x=x, shape=shape: [v.numpy() for v in detect(x, shape).values()], runs
        )
    return out


def bench_train(preset, size, batch_size, runs):
    import keras
    import tensorflow as tf

    from maskrcnn_body.config import get_config
    from maskrcnn_body.model.maskrcnn import build_model

    cfg = get_config(preset)
    model = build_model(cfg)
    batch = _batch(cfg, size, batch_size)
    opt = keras.optimizers.Adam(1e-4)
    opt.build(model.trainable_variables)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            losses = model.compute_losses(batch)
        grads = tape.gradient(losses["total"], model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return losses["total"]

    t = _median_time(lambda: step().numpy(), runs)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {f"train_step_{size}_b{batch_size}_s": t, "train_peak_rss_mb": peak_mb}


def main(argv):
    del argv
    res = {"preset": FLAGS.preset, "cpus": os.cpu_count()}
    if FLAGS.mode in ("all", "forward"):
        res.update(bench_forward(FLAGS.preset, [int(s) for s in FLAGS.sizes], FLAGS.runs))
    if FLAGS.mode == "train":
        print(json.dumps(bench_train(FLAGS.preset, FLAGS.train_size, FLAGS.train_batch, FLAGS.runs)))
        return
    if FLAGS.mode == "all" and FLAGS.train_size:
        # a fresh process, so ru_maxrss is the training step's own peak
        cmd = [
            sys.executable,
            os.path.abspath(__file__),
            "--mode=train",
            f"--preset={FLAGS.preset}",
            f"--train_size={FLAGS.train_size}",
            f"--train_batch={FLAGS.train_batch}",
            f"--runs={FLAGS.runs}",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        res.update(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    app.run(main)
