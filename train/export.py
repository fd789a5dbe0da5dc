"""Export a trained model as a SavedModel (and optionally TFLite) for use without this package.

    python train/export.py --train_dir output/mask_rcnn --saved_model output/export/saved_model \
        --tflite output/export/model.tflite

    import tensorflow as tf
    m = tf.saved_model.load("output/export/saved_model")
    out = m.signatures["serving_default"](image=tf.constant(rgb_uint8))   # any H x W
    # out: boxes (D, 4), scores (D,), num_detections, masks (D, M, M, 7), keypoints (D, 15, 3)
"""
import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from maskrcnn_body.cli import main_with_user_errors  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("train_dir", "output/mask_rcnn", "Training directory (config.json + checkpoints).")
flags.DEFINE_string("checkpoint", None, "A specific checkpoint prefix (default: the newest).")
flags.DEFINE_string("saved_model", "output/export/saved_model", "SavedModel output directory.")
flags.DEFINE_string("tflite", "", "Also write a TFLite file here (builtin ops only).")
flags.DEFINE_float("score_threshold", None, "Override the model's score threshold in the export.")
flags.DEFINE_integer("max_detections", None, "Override the number of detection slots in the export.")


def run():
    from maskrcnn_body.serving import export
    from maskrcnn_body.serving.predictor import load_trained_model
    model, cfg, ckpt = load_trained_model(FLAGS.train_dir, FLAGS.checkpoint, score_threshold=FLAGS.score_threshold,
                                          max_detections=FLAGS.max_detections)
    export.export_saved_model(model, cfg, FLAGS.saved_model)
    print(f"SavedModel from {ckpt} -> {FLAGS.saved_model}")
    if FLAGS.tflite:
        export.export_tflite(FLAGS.saved_model, FLAGS.tflite)
        print(f"TFLite -> {FLAGS.tflite} ({os.path.getsize(FLAGS.tflite) / 1e6:.1f} MB)")
    return 0


main = main_with_user_errors(run)

if __name__ == "__main__":
    app.run(main)
