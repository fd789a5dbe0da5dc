"""Send images, a folder, a video file or webcam frames to the inference server; show or save the answers.

    python train/client.py --server http://127.0.0.1:8080 --input photo.jpg --out_dir output/client
    python train/client.py --server http://127.0.0.1:8080 --input clip.mp4 --show
    python train/client.py --server http://127.0.0.1:8080 --webcam 0 --show
"""
import json
import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from maskrcnn_body.serving import client  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("server", "http://127.0.0.1:8080", "Server URL.")
flags.DEFINE_multi_string("input", [], "Image files, folders or video files (repeatable).")
flags.DEFINE_integer("webcam", -1, "Webcam index to stream from (OpenCV); -1 = off.")
flags.DEFINE_enum("mode", "render", ["render", "predict", "both"],
                  "render: drawn PNG back; predict: JSON back; both: both requests.")
flags.DEFINE_string("out_dir", "output/client", "Where to save answers ('' = do not save).")
flags.DEFINE_bool("show", False, "Show rendered answers in a window (OpenCV).")
flags.DEFINE_integer("max_frames", 0, "Stop after this many video/webcam frames (0 = all).")
flags.DEFINE_integer("frame_step", 1, "Send every Nth video frame.")


def main(argv):
    del argv
    if not FLAGS.input and FLAGS.webcam < 0:
        raise app.UsageError("give --input PATH (repeatable) or --webcam N")
    if FLAGS.out_dir:
        os.makedirs(FLAGS.out_dir, exist_ok=True)
    n_ok = n_err = 0
    for name, data, ctype in client.iter_inputs(FLAGS.input, FLAGS.webcam, FLAGS.max_frames, FLAGS.frame_step):
        stem = os.path.splitext(os.path.basename(name))[0]
        try:
            if FLAGS.mode in ("predict", "both"):
                result = client.predict(FLAGS.server, data, ctype)
                print(f"{name}: {len(result['persons'])} person(s)")
                if FLAGS.out_dir:
                    with open(os.path.join(FLAGS.out_dir, stem + ".json"), "w") as f:
                        json.dump(result, f)
            if FLAGS.mode in ("render", "both"):
                png = client.render(FLAGS.server, data, ctype)
                if FLAGS.out_dir:
                    with open(os.path.join(FLAGS.out_dir, stem + ".png"), "wb") as f:
                        f.write(png)
                if FLAGS.show:
                    import cv2
                    import numpy as np
                    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)  # BGR for imshow
                    cv2.imshow("maskrcnn_body", img)
                    if cv2.waitKey(1) & 0xFF == ord("q"):
                        break
            n_ok += 1
        except client.ServerError as e:
            print(f"{name}: {e}", file=sys.stderr)
            n_err += 1
    print(f"done: {n_ok} answered, {n_err} errors" + (f"; saved under {FLAGS.out_dir}" if FLAGS.out_dir else ""))
    return 1 if n_err and not n_ok else 0


if __name__ == "__main__":
    app.run(main)
