"""Benchmark worker: input-pipeline throughput (imports TensorFlow only).

    python -m bench.worker_pipeline --records=16 --record_size=512 --train_size=512 --batches=40

Writes ``--records`` synthetic training records (``data.synthetic.write_dataset``, PNG images of
``--record_size`` pixels) into a temporary directory, builds the training pipeline
(``data.pipeline.build_dataset(..., training=True)``: shuffle, decode, parse, flip, scale jitter,
resize, pad, GT mask crops) of preset ``--preset`` with ``input.min_size = input.max_size =
--train_size`` (0: the preset's own input sizes), and times ``--batches`` batches of
``--batch_size`` after the first (warm-up) batch. The records repeat, so every image is decoded
and augmented again on each pass, as in training.

Prints one ``BENCH_RESULT`` JSON line with ``images_per_s``, ``first_batch_s``, ``pad_size``.
"""
from __future__ import annotations

import os
import tempfile
import time

from absl import app, flags

from bench import common

FLAGS = flags.FLAGS
flags.DEFINE_string("preset", "r50_fpn", "config preset whose input section is used")
flags.DEFINE_integer("records", 16, "synthetic training records to write")
flags.DEFINE_integer("record_size", 512, "synthetic image size (pixels)")
flags.DEFINE_integer("train_size", 512, "input.min_size = input.max_size (0: keep the preset's)")
flags.DEFINE_integer("batch_size", 2, "batch size")
flags.DEFINE_integer("batches", 40, "timed batches")
flags.DEFINE_integer("threads", 2, "TF intra-op threads (tf.data uses its own pool as well)")


def bench_pipeline(preset, records, record_size, train_size, batch_size, batches):
    from maskrcnn_body.config import get_config
    from maskrcnn_body.data.pipeline import build_dataset
    from maskrcnn_body.data.synthetic import write_dataset
    overrides = {"input.min_size": train_size, "input.max_size": train_size} if train_size else {}
    cfg = get_config(preset, **overrides)
    with tempfile.TemporaryDirectory(prefix="bench_pipeline_") as tmp:
        prefix = os.path.join(tmp, "synthetic")
        t0 = time.perf_counter()
        write_dataset(prefix, records, 0, seed=0, size=record_size, num_shards=2, num_workers=1, progress=False)
        render_s = time.perf_counter() - t0
        ds = build_dataset(prefix + "_train-*.tfrecord", cfg.input, batch_size, training=True, seed=0)
        it = iter(ds)
        t0 = time.perf_counter()
        next(it)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(batches):
            batch = next(it)
        elapsed = time.perf_counter() - t0
        shape = list(batch["images"].shape)
    return {"images_per_s": batches * batch_size / elapsed, "batch_s": elapsed / batches,
            "first_batch_s": first, "render_records_s": render_s, "images_shape": shape,
            "pad_size": cfg.input.pad_size, "min_size": cfg.input.min_size, "max_size": cfg.input.max_size,
            "batch_size": batch_size, "batches": batches, "records": records, "record_size": record_size}


def main(argv):
    del argv
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
    res = bench_pipeline(FLAGS.preset, FLAGS.records, FLAGS.record_size, FLAGS.train_size, FLAGS.batch_size,
                         FLAGS.batches)
    res.update(common.memory_mb())
    res.update({"framework": "tensorflow " + tf.__version__, "preset": FLAGS.preset, "threads": FLAGS.threads})
    common.emit(res)


if __name__ == "__main__":
    app.run(main)
