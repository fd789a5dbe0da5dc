"""Run a trained model on images, folders or a video; write a drawn PNG and a JSON per image/frame.

    python train/infer.py --train_dir output/mask_rcnn --input photo.jpg --input folder/ --out_dir output/infer
    python train/infer.py --train_dir output/mask_rcnn --input clip.mp4 --frame_step 5

JSON per image: {"width", "height", "source", "persons": [{"box", "score", "keypoints", "masks": {channel: RLE}}]}
(see README, "Inference").
"""
import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from maskrcnn_body.cli import main_with_user_errors  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("train_dir", "output/mask_rcnn", "Training directory (config.json + checkpoints).")
flags.DEFINE_string("checkpoint", None, "A specific checkpoint prefix (default: the newest in --train_dir).")
flags.DEFINE_multi_string("input", [], "Image files, folders or video files (repeatable).")
flags.DEFINE_integer("webcam", -1, "Webcam index (OpenCV); -1 = off.")
flags.DEFINE_string("out_dir", "output/infer", "Where PNGs and JSONs go.")
flags.DEFINE_float("score_threshold", 0.5, "Keep detections with at least this score.")
flags.DEFINE_integer("max_frames", 0, "Stop after this many video frames (0 = all).")
flags.DEFINE_integer("frame_step", 1, "Use every Nth video frame.")


def run():
    if not FLAGS.input and FLAGS.webcam < 0:
        raise app.UsageError("give --input PATH (repeatable) or --webcam N")
    from maskrcnn_body.serving.infer import run
    from maskrcnn_body.serving.predictor import Predictor
    predictor = Predictor.from_train_dir(FLAGS.train_dir, FLAGS.checkpoint)
    summary = run(predictor, FLAGS.input, FLAGS.out_dir, FLAGS.score_threshold, FLAGS.webcam,
                  FLAGS.max_frames, FLAGS.frame_step)
    print(f"{summary['images']} image(s), {summary['persons']} person(s) in {summary['seconds']:.1f} s "
          f"-> {summary['out_dir']}")
    return 0


main = main_with_user_errors(run)

if __name__ == "__main__":
    app.run(main)
