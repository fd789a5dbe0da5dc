"""Benchmark: compiled multilevel RoIAlign (libs/) versus the pure-TF op, on CPU.

Times forward and forward+backward (gradient w.r.t. the features) of
``ops.roi_align.multilevel_roi_align`` with ``backend="custom"`` and ``backend="tf"``, each
inside a ``tf.function``, at training sizes: R RoIs per image spread over 4 FPN levels
(strides 4..32) of an image of ``--image_size`` pixels, C channels, for each output size.
Prints a markdown table (the one in libs/README.md) and optionally writes JSON.

With ``--train_preset``, also times one full training step of that preset with each backend
(``bench/bench_model.py --mode=train``: losses + gradients + Adam update).

  python bench/bench_roi_align.py                          # 512 RoIs, 512 px, C=256, S=7,14
  python bench/bench_roi_align.py --channels=64 --sizes=7,14,28
  python bench/bench_roi_align.py --sizes= --train_preset=cpu_small --train_size=256 --train_batch=4
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
from absl import app, flags

flags.DEFINE_integer("batch", 1, "images per batch")
flags.DEFINE_integer("rois", 512, "RoIs per image")
flags.DEFINE_integer("image_size", 512, "square image side in pixels")
flags.DEFINE_integer("channels", 256, "feature channels")
flags.DEFINE_list("sizes", ["7", "14"], "output sizes S (S x S bins)")
flags.DEFINE_integer("sampling_ratio", 2, "samples per bin side")
flags.DEFINE_integer("repeats", 5, "timed runs per measurement (median reported)")
flags.DEFINE_string("json_out", None, "also write the results to this JSON file")
flags.DEFINE_string("train_preset", None, "also time a full training step of this preset per backend")
flags.DEFINE_integer("train_size", 256, "training-step image size (with --train_preset)")
flags.DEFINE_integer("train_batch", 4, "training-step batch size (with --train_preset)")

STRIDES = (4, 8, 16, 32)


def make_inputs(batch: int, rois: int, image_size: int, channels: int, seed: int = 0):
    """Random pyramid (B, size/s, size/s, C) per stride, boxes (B, R, 4) of 16..256 px, and
    their FPN levels (``ops.roi_align.assign_levels`` with P2..P5)."""
    import tensorflow as tf

    from maskrcnn_body.ops import roi_align as RA

    rng = np.random.default_rng(seed)
    feats = [
        tf.constant(rng.normal(size=(batch, image_size // s, image_size // s, channels)).astype(np.float32))
        for s in STRIDES
    ]
    wh = rng.uniform(16, min(256, image_size), (batch, rois, 2))
    xy = rng.uniform(0, 1, (batch, rois, 2)) * (image_size - wh)
    boxes = tf.constant(np.concatenate([xy, xy + wh], -1).astype(np.float32))
    levels = RA.assign_levels(boxes, 2, 5)
    return feats, boxes, levels


def _median_time(fn, repeats: int) -> float:
    fn()  # trace + warm up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def bench_one(backend: str, feats, boxes, levels, size: int, sr: int, repeats: int):
    """(forward seconds, forward+backward seconds) for one backend and output size."""
    import tensorflow as tf

    from maskrcnn_body.ops import roi_align as RA

    @tf.function
    def forward():
        return RA.multilevel_roi_align(feats, boxes, levels, STRIDES, size, sr, True, backend=backend)

    @tf.function
    def forward_backward():
        with tf.GradientTape() as tape:
            tape.watch(feats)
            y = RA.multilevel_roi_align(feats, boxes, levels, STRIDES, size, sr, True, backend=backend)
            loss = tf.reduce_sum(y * y)
        return tape.gradient(loss, feats)

    def run(f):
        return lambda: [t.numpy() for t in tf.nest.flatten(f())]

    return _median_time(run(forward), repeats), _median_time(run(forward_backward), repeats)


def run_benchmark(batch: int, rois: int, image_size: int, channels: int, sizes, sr: int, repeats: int):
    """List of result dicts, one per output size (times in milliseconds)."""
    import tensorflow as tf

    from maskrcnn_body.ops import custom

    if custom.load() is None:
        raise SystemExit(f"compiled ops not available ({custom.load_error()}); run `make` first")
    feats, boxes, levels = make_inputs(batch, rois, image_size, channels)
    results = []
    for size in sizes:
        fc, bc = bench_one("custom", feats, boxes, levels, size, sr, repeats)
        ft, bt = bench_one("tf", feats, boxes, levels, size, sr, repeats)
        results.append(
            dict(
                batch=batch,
                rois=rois,
                image_size=image_size,
                channels=channels,
                size=size,
                sampling_ratio=sr,
                threads=tf.config.threading.get_intra_op_parallelism_threads(),
                custom_fwd_ms=1e3 * fc,
                tf_fwd_ms=1e3 * ft,
                custom_fwd_bwd_ms=1e3 * bc,
                tf_fwd_bwd_ms=1e3 * bt,
            )
        )
    return results


def markdown_table(results) -> str:
    lines = [
        "| B x R | image | C | S | custom fwd ms | TF fwd ms | speed-up | custom fwd+bwd ms | TF fwd+bwd ms "
        "| speed-up |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['batch']} x {r['rois']} | {r['image_size']} | {r['channels']} | {r['size']} | "
            f"{r['custom_fwd_ms']:.1f} | {r['tf_fwd_ms']:.1f} | {r['tf_fwd_ms'] / r['custom_fwd_ms']:.1f}x | "
            f"{r['custom_fwd_bwd_ms']:.1f} | {r['tf_fwd_bwd_ms']:.1f} | "
            f"{r['tf_fwd_bwd_ms'] / r['custom_fwd_bwd_ms']:.1f}x |"
        )
    return "\n".join(lines)


def train_step_times(preset: str, size: int, batch: int, repeats: int):
    """Seconds per training step (median) with each backend: ``bench/bench_model.py --mode=train``
    (losses + gradients + Adam update) in a fresh process per backend."""
    import subprocess

    from maskrcnn_body.ops import custom

    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_model.py")
    out = {"preset": preset, "size": size, "batch": batch}
    for backend in ("tf", "custom"):
        cmd = [
            sys.executable,
            script,
            "--mode=train",
            f"--preset={preset}",
            f"--train_size={size}",
            f"--train_batch={batch}",
            f"--runs={repeats}",
        ]
        proc = subprocess.run(
            cmd, capture_output=True, text=True, check=True, env=dict(os.environ, **{custom.ENV_VAR: backend})
        )
        times = json.loads(proc.stdout.strip().splitlines()[-1])
        out[f"{backend}_step_s"] = next(v for k, v in times.items() if k.startswith("train_step_"))
    return out


def main(argv):
    del argv
    F = flags.FLAGS
    output = {}
    if F.sizes:
        results = run_benchmark(
            F.batch, F.rois, F.image_size, F.channels, [int(s) for s in F.sizes], F.sampling_ratio, F.repeats
        )
        print(markdown_table(results))
        output["roi_align"] = results
    if F.train_preset:
        t = train_step_times(F.train_preset, F.train_size, F.train_batch, F.repeats)
        print(
            f"\ntraining step, preset {t['preset']}, {t['size']} px, batch {t['batch']}: "
            f"pure TF {t['tf_step_s']:.3f} s, compiled {t['custom_step_s']:.3f} s "
            f"({t['tf_step_s'] / t['custom_step_s']:.2f}x)"
        )
        output["train_step"] = t
    if F.json_out:
        with open(F.json_out, "w") as f:
            json.dump(output, f, indent=2)


if __name__ == "__main__":
    app.run(main)
