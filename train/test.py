"""The inference server: HTTP on --host:--port (default 127.0.0.1:8080).

    python train/test.py --train_dir output/mask_rcnn --port 8080
    curl -s --data-binary @photo.jpg -H 'Content-Type: image/jpeg' http://127.0.0.1:8080/v1/predict
    curl -s --data-binary @photo.jpg -H 'Content-Type: image/jpeg' http://127.0.0.1:8080/v1/render > out.png
    curl -s http://127.0.0.1:8080/healthz

Errors are JSON {"error", "status"} with 400/408/411/413/415/503 (see README, "Server").
"""
import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from maskrcnn_body.cli import main_with_user_errors  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("train_dir", "output/mask_rcnn", "Training directory (config.json + checkpoints).")
flags.DEFINE_string("checkpoint", None, "A specific checkpoint prefix (default: the newest).")
flags.DEFINE_string("host", "127.0.0.1", "Address to listen on (0.0.0.0 exposes the server to your network).")
flags.DEFINE_integer("port", 8080, "Port (0 = any free port; the chosen URL is printed).")
flags.DEFINE_float("score_threshold", 0.5, "Keep detections with at least this score.")
flags.DEFINE_float("max_body_mb", 20.0, "Largest accepted request body, in MB (413 above; fractions allowed).")
flags.DEFINE_integer("max_pixels", 40_000_000, "Largest accepted image, in pixels (400 above).")
flags.DEFINE_integer("workers", 4, "Request handler threads.")
flags.DEFINE_integer("max_queue", 16, "Connections waiting for a handler before 503.")
flags.DEFINE_float("read_timeout", 10.0, "Seconds a client has to send its body (408 after).")


def run():
    import logging
    logging.basicConfig(level=logging.WARNING)
    from maskrcnn_body.serving.http_server import ServerConfig, serve
    from maskrcnn_body.serving.infer import predict_json, render_png
    from maskrcnn_body.serving.predictor import Predictor
    predictor = Predictor.from_train_dir(FLAGS.train_dir, FLAGS.checkpoint)
    thr = FLAGS.score_threshold
    import numpy as np
    predictor(np.zeros((64, 64, 3), np.uint8))  # trace now (one trace serves every size), not on request 1

    def render(image):
        return render_png(image, predictor(image), thr)

    cfg = ServerConfig(host=FLAGS.host, port=FLAGS.port, max_body_bytes=int(FLAGS.max_body_mb * 1024 * 1024),
                       max_pixels=FLAGS.max_pixels, num_workers=FLAGS.workers, max_queue=FLAGS.max_queue,
                       read_timeout_s=FLAGS.read_timeout)
    serve(cfg, lambda image: predict_json(predictor, image, score_threshold=thr), render,
          ready=lambda url: print(f"serving on {url} (POST /v1/predict, POST /v1/render, GET /healthz)",
                                  flush=True))
    return 0


main = main_with_user_errors(run)

if __name__ == "__main__":
    app.run(main)
