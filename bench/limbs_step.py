"""Training-step cost of cpu_small variants (issue 26): seconds per step on real pipeline batches.

Not a test: run it when the CPU is quiet (or say that it was not). Each variant builds the default run's
model with ``--set``-style overrides, traces the step on one batch, then times ``--steps`` steps of the
synthetic train records (batch 4, the default run's input pipeline); variants run one after another in
rounds (round-robin), so slow phases of a shared CPU spread over all of them. Prints a JSON line per
variant: median and mean seconds per step, and steps/s.

    PYTHONPATH=. python bench/limbs_step.py --records 'data/records/synthetic_train-*.tfrecord'
"""

from __future__ import annotations

import json
import time

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("records", "data/records/synthetic_train-*.tfrecord", "training records")
flags.DEFINE_integer("steps", 12, "timed steps per variant per round")
flags.DEFINE_integer("rounds", 2, "rounds over the variants")

VARIANTS = {
    "cpu_small (this branch)": {},
    "anchors (1, 2)": {"model.anchors.scales": (1.0, 2.0)},
    "gt_mask_size 64": {"input.gt_mask_size": 64},
    "scale_jitter (1, 1)": {"input.scale_jitter": (1.0, 1.0)},
}


def main(_):
    import keras
    import tensorflow as tf

    from maskrcnn_body.config import get_config
    from maskrcnn_body.data import pipeline
    from maskrcnn_body.model.maskrcnn import build_model
    from maskrcnn_body.training.optimizers import build_optimizer
    from maskrcnn_body.training.step import make_train_step

    strategy = tf.distribute.get_strategy()
    state = {}
    for name, overrides in VARIANTS.items():
        keras.utils.set_random_seed(0)
        cfg = get_config("cpu_small", **overrides)
        model = build_model(cfg)
        step = make_train_step(model, build_optimizer(cfg.train), strategy, cfg.train.clip_norm)
        it = iter(pipeline.build_dataset(FLAGS.records, cfg.input, cfg.train.batch_size, training=True, seed=0))
        step(next(it))  # trace
        state[name] = (step, it, [])
    for _ in range(FLAGS.rounds):
        for step, it, times in state.values():
            for _ in range(FLAGS.steps):
                batch = next(it)
                t0 = time.perf_counter()
                out = step(batch)
                float(out["total"])
                times.append(time.perf_counter() - t0)
    for name, (_, _, times) in state.items():
        t = np.array(times)
        print(
            json.dumps(
                {
                    "variant": name,
                    "median_s": round(float(np.median(t)), 4),
                    "mean_s": round(float(t.mean()), 4),
                    "steps_per_s": round(1 / float(np.median(t)), 3),
                    "steps": len(t),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    app.run(main)
