"""Benchmark worker: input-pipeline throughput (imports TensorFlow only).

    python -m bench.worker_pipeline --records=16 --record_size=512 --train_size=512 --batches=40

Writes ``--records`` synthetic training records (``convert.synthetic.write_dataset``, PNG images of
``--record_size`` pixels) into a temporary directory, builds the training pipeline
(``data.pipeline.build_dataset(..., training=True)``: shuffle, decode, parse, flip, scale jitter,
resize, pad, GT mask crops) of preset ``--preset`` with ``input.min_size = input.max_size =
--train_size`` (0: the preset's own input sizes), and times the batches after the first
(warm-up) one: at least ``--batches`` of ``--batch_size`` (whole passes over the records). Every
image is decoded and augmented again on each pass, as in training.

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
    from maskrcnn_body.convert.synthetic import write_dataset
    from maskrcnn_body.data.pipeline import build_dataset

    overrides = {"input.min_size": train_size, "input.max_size": train_size} if train_size else {}
    cfg = get_config(preset, **overrides)
    with tempfile.TemporaryDirectory(prefix="bench_pipeline_") as tmp:
        prefix = os.path.join(tmp, "synthetic")
        t0 = time.perf_counter()
        write_dataset(prefix, records, 0, seed=0, size=record_size, num_shards=2, num_workers=1, progress=False)
        render_s = time.perf_counter() - t0
        # a finite number of passes, consumed to the end: deleting an iterator of the endless
        # training pipeline while it is busy can block at exit (seen here with tiny datasets)
        passes = -(-(batches + 1) * batch_size // records)
        ds = build_dataset(prefix + "_train-*.tfrecord", cfg.input, batch_size, training=True, seed=0, repeat=passes)
        it = iter(ds)
        t0 = time.perf_counter()
        batch = next(it)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        timed = 0
        for _ in it:
            timed += 1
        elapsed = time.perf_counter() - t0
        if timed == 0:
            raise ValueError(
                f"no batch after the first: {records} records x {passes} passes < 2 batches of "
                f"{batch_size}; give more --records or --batches"
            )
        shape = list(batch["images"].shape)
    return {
        "images_per_s": timed * batch_size / elapsed,
        "batch_s": elapsed / timed,
        "first_batch_s": first,
        "render_records_s": render_s,
        "images_shape": shape,
        "pad_size": cfg.input.pad_size,
        "min_size": cfg.input.min_size,
        "max_size": cfg.input.max_size,
        "batch_size": batch_size,
        "batches": timed,
        "records": records,
        "record_size": record_size,
    }


def main(argv):
    del argv
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
    res = bench_pipeline(
        FLAGS.preset, FLAGS.records, FLAGS.record_size, FLAGS.train_size, FLAGS.batch_size, FLAGS.batches
    )
    res.update(common.memory_mb())
    res.update({"framework": "tensorflow " + tf.__version__, "preset": FLAGS.preset, "threads": FLAGS.threads})
    common.emit(res)


if __name__ == "__main__":
    app.run(main)
