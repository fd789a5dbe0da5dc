"""Benchmark worker: exports the live configuration of a trained ``cpu_small`` run for ONNX Runtime.

    python -m bench.worker_live --model=output/mask_rcnn --size=256 --out=output/bench/live256 \\
        --calib_records='data/records/synthetic_calib-*' --records='data/records/synthetic_val-*'

The live configuration (docs/DEPLOY.md) is the trained weights exported with lighter inference-time settings
(:data:`LIVE`: the point head refining once at 56 px, 50 proposals, at most 10 people) at ``--size`` px: what
``maskrcnn-body export --set ... --max_detections 10 --onnx_quant int8 --score_records ...`` writes. This worker
writes ``OUT/model.onnx`` (float32) and ``OUT/model.int8.onnx`` (the convolutions int8, per-channel weights,
activations calibrated on ``--calib_records``), scores both on ``--records`` with the project's metrics, and prints
one ``BENCH_RESULT`` line: the two paths and the float32 / int8 figures (box, body, arm and keypoint AP). The
latency of each file is measured by :mod:`bench.worker_api` in its own process.
"""

from __future__ import annotations

import os

from absl import app, flags

from bench import common

LIVE = {"model.mask_head.point.refine_sizes": (56,), "model.rpn.post_nms_topk_test": 50}
"""Inference-time settings of the live configuration besides its input size and ``LIVE_DETECTIONS``."""
LIVE_DETECTIONS = 10

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "output/mask_rcnn", "a trained cpu_small training directory")
flags.DEFINE_integer("size", 256, "input size of the export (input.min_size = input.max_size)")
flags.DEFINE_string("out", "output/bench/live", "where the exports go")
flags.DEFINE_string("calib_records", "", "int8 calibration records glob")
flags.DEFINE_string("records", "", "validation records glob (the accuracy of float32 and int8)")
flags.DEFINE_integer("max_images", 0, "score at most this many validation images (0 = all)")


def live_overrides(size: int) -> dict:
    """The config overrides of the live configuration at ``size`` px."""
    return {**LIVE, "input.min_size": size, "input.max_size": size}


def main(argv):
    del argv
    from maskrcnn_body.workflows.export import export

    onnx = os.path.join(FLAGS.out, "model.onnx")
    done = export(
        FLAGS.model,
        os.path.join(FLAGS.out, "saved_model"),
        onnx=onnx,
        onnx_quant=["int8"],
        calib_records=[FLAGS.calib_records],
        score_records=[FLAGS.records] if FLAGS.records else [],
        score_images=FLAGS.max_images or None,
        max_detections=LIVE_DETECTIONS,
        overrides=live_overrides(FLAGS.size),
        log=lambda msg: None,
    )
    int8 = done.onnx_quant["int8"]
    common.emit(
        {
            "model": FLAGS.model,
            "size": FLAGS.size,
            "overrides": {k: list(v) if isinstance(v, tuple) else v for k, v in live_overrides(FLAGS.size).items()},
            "max_detections": LIVE_DETECTIONS,
            "onnx": onnx,
            "onnx_int8": int8,
            "accuracy": done.accuracy.get(int8, {}),
            **common.memory_mb(),
        }
    )


if __name__ == "__main__":
    app.run(main)
