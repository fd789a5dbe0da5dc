"""Benchmark worker: image bytes -> JSON through the Python API, stage by stage, and batch images/s.

    python -m bench.worker_api --task=latency --model=output/mask_rcnn --backend=onnxruntime
    python -m bench.worker_api --task=batch --model=output/mask_rcnn --backend=tensorflow --batch_sizes=1,8
    python -m bench.worker_api --task=server --model=output/mask_rcnn --backend=onnxruntime

``latency``: ``--images`` JPEG files (the first validation records at their size, else synthetic
people scenes of ``--size``), each run ``--repeats`` times through exactly what ``mb.load(...)(path)
[0].to_json()`` + ``json.dumps`` does, timed per stage (median ms over all runs):

* ``decode``: JPEG bytes -> RGB uint8 (``api.load_image`` on the bytes);
* ``model``: the backend's runner (resize/pad, network, NMS, box/keypoint mapping: everything that
  runs in TensorFlow / ONNX Runtime / TFLite);
* ``paste``: box-frame masks -> thresholded crops in the image (``ops.paste.paste_crops``);
* ``rle``: COCO RLE of 7 channels per person (``inference.result_json``);
* ``json``: the result dict (keypoints, rounding) and ``json.dumps``.

``total`` is the median of the per-run sums (bytes in -> JSON string out, one thread of Python).
``batch``: ``Model(images, batch_size=B)`` images/s on ``--batch_images`` same-size images.
``server``: ``maskrcnn-body serve``'s handler (``serving.http_server``) on loopback with one client:
median ms per ``POST /v1/predict`` and ``/v1/render``.
Prints one ``BENCH_RESULT`` JSON line (:mod:`bench.common`).
"""

from __future__ import annotations

import io
import json
import os
import statistics
import threading
import time

import numpy as np
from absl import app, flags

from bench import common

FLAGS = flags.FLAGS
flags.DEFINE_enum("task", "latency", ["latency", "batch", "server"], "what to measure")
flags.DEFINE_string("model", "", "training directory / SavedModel / .onnx / .tflite ('' = a random cpu_small model)")
flags.DEFINE_string("backend", "tensorflow", "mb.load backend")
flags.DEFINE_string("precision", "float32", "mb.load precision")
flags.DEFINE_string("records", "", "validation records glob for the test images ('' = synthetic scenes)")
flags.DEFINE_integer("images", 8, "distinct test images")
flags.DEFINE_integer("size", 256, "synthetic image size when there are no records")
flags.DEFINE_integer("repeats", 5, "runs per image (after one warm-up pass)")
flags.DEFINE_integer("threads", 2, "threads of every framework")
flags.DEFINE_list("batch_sizes", ["1", "8"], "batch: batch sizes")
flags.DEFINE_integer("batch_images", 16, "batch: images per timed pass")
flags.DEFINE_float("score_threshold", 0.5, "persons kept in the JSON")


def _jpegs():
    from PIL import Image

    images = []
    if FLAGS.records:
        from maskrcnn_body.inference import exporting

        images = exporting.calibration_images(FLAGS.records, FLAGS.images)
    while len(images) < FLAGS.images:
        images.append(common.synthetic_people(FLAGS.size, 6, seed=len(images))["image"].astype(np.uint8))
    out = []
    for im in images:
        buf = io.BytesIO()
        Image.fromarray(im).save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def _model():
    import maskrcnn_body as mb

    path = FLAGS.model
    if not path:
        import tempfile

        from maskrcnn_body.config import get_config
        from maskrcnn_body.inference.loading import write_train_dir
        from maskrcnn_body.model.maskrcnn import build_model

        path = os.path.join(tempfile.mkdtemp(), "run")
        write_train_dir(build_model(get_config("cpu_small")), get_config("cpu_small"), path)
    return mb.load(
        path,
        backend=FLAGS.backend,
        precision=FLAGS.precision,
        num_threads=FLAGS.threads,
        score_threshold=FLAGS.score_threshold,
    )


def _set_threads():
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def latency():
    from maskrcnn_body.inference import api
    from maskrcnn_body.inference import result_json as results
    from maskrcnn_body.ops import paste

    model = _model()
    jpegs = _jpegs()
    stages = {k: [] for k in ("decode", "model", "paste", "rle", "json", "total")}
    persons = []

    def once(data, record):
        t0 = time.perf_counter()
        image, _ = api.load_image(data)
        t1 = time.perf_counter()
        (det,) = model.runner([image])
        t2 = time.perf_counter()
        result = api.make_result(image, det, model.score_threshold)
        d = result.detections
        h, w = image.shape[:2]
        crops = paste.paste_crops(d["masks"], d["boxes"], h, w) if len(d["boxes"]) else []
        t3 = time.perf_counter()
        rles = [results.encode_crop(c, h, w) for c in crops]
        t4 = time.perf_counter()
        text = json.dumps(results.detections_to_json(d, h, w, "", crops=crops, rles=rles))
        t5 = time.perf_counter()
        if record:
            for k, v in zip(
                ("decode", "model", "paste", "rle", "json", "total"),
                (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t5 - t0),
            ):
                stages[k].append(v * 1e3)
            persons.append(len(d["boxes"]))
        return text

    for data in jpegs:  # warm-up: traces, allocations
        once(data, False)
    # the pipeline's own JSON must be what to_json() gives (identity check, not timed)
    image, _ = api.load_image(jpegs[0])
    assert json.loads(once(jpegs[0], False)) == json.loads(json.dumps(model(image)[0].to_json()))
    for _ in range(FLAGS.repeats):
        for data in jpegs:
            once(data, True)
    med = {k: statistics.median(v) for k, v in stages.items()}
    return {
        "stages_ms": med,
        "persons_mean": float(np.mean(persons)),
        "images": len(jpegs),
        "image_size": list(image.shape[:2]),
        "runs": len(stages["total"]),
        "backend": model.backend,
        "format": model.format,
        "precision": FLAGS.precision,
        **common.memory_mb(),
    }


def batch():
    model = _model()
    jpegs = _jpegs()
    from maskrcnn_body.inference import api

    images = [api.load_image(j)[0] for j in jpegs]
    shape = images[0].shape
    images = [im for im in images if im.shape == shape]
    images = (images * FLAGS.batch_images)[: FLAGS.batch_images]
    out = {}
    for b in [int(x) for x in FLAGS.batch_sizes]:
        model(images[:b], batch_size=b, progress=False)  # warm-up / trace at this batch
        timing = common.time_runs(lambda b=b: model(images, batch_size=b, progress=False), FLAGS.repeats, 0)
        out[str(b)] = {"images_per_s": len(images) / timing["median_s"], "median_s": timing["median_s"]}
    return {
        "batch": out,
        "images": len(images),
        "image_size": list(shape[:2]),
        "backend": model.backend,
        "format": model.format,
        **common.memory_mb(),
    }


def server():
    from maskrcnn_body.inference import api
    from maskrcnn_body.inference.api import predict_json, render_png
    from maskrcnn_body.serving import client
    from maskrcnn_body.serving.http_server import ServerConfig, serve

    model = _model()
    thr = model.score_threshold

    def predictor(image):
        return model.runner([image])[0]

    ready = threading.Event()
    box = {}

    def on_ready(url):
        box["url"] = url
        ready.set()

    cfg = ServerConfig(host="127.0.0.1", port=0, num_workers=2)
    t = threading.Thread(
        target=serve,
        daemon=True,
        args=(
            cfg,
            lambda im: predict_json(predictor, im, score_threshold=thr),
            lambda im: render_png(im, predictor(im), thr),
        ),
        kwargs={"ready": on_ready},
    )
    t.start()
    if not ready.wait(120):
        raise RuntimeError("server did not start")
    jpegs = _jpegs()
    out = {}
    for path in ("/v1/predict", "/v1/render"):
        for j in jpegs:
            client.post_image(box["url"], path, j, "image/jpeg", timeout=60)
        times = []
        for _ in range(FLAGS.repeats):
            for j in jpegs:
                t0 = time.perf_counter()
                client.post_image(box["url"], path, j, "image/jpeg", timeout=60)
                times.append((time.perf_counter() - t0) * 1e3)
        out[path] = statistics.median(times)
    del api
    return {"server_ms": out, "backend": model.backend, "format": model.format, "images": len(jpegs)}


def main(argv):
    del argv
    _set_threads()
    common.emit({"latency": latency, "batch": batch, "server": server}[FLAGS.task]())


if __name__ == "__main__":
    app.run(main)
