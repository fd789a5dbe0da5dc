"""Export a trained model as a SavedModel (and optionally TFLite) for use without this package.

    maskrcnn-body export --train_dir output/mask_rcnn --saved_model output/export/saved_model \\
        --tflite output/export/model.tflite

    import tensorflow as tf
    m = tf.saved_model.load("output/export/saved_model")
    out = m.signatures["serving_default"](image=tf.constant(rgb_uint8))   # any H x W
    # out: boxes (D, 4), scores (D,), num_detections, masks (D, M, M, 7), keypoints (D, 15, 3)
"""
from __future__ import annotations

import os


def add_arguments(p) -> None:
    p.add_argument("--train_dir", "--model", dest="train_dir", default="output/mask_rcnn",
                   help="Training directory (config.json + checkpoints) (default: %(default)s).")
    p.add_argument("--checkpoint", default=None, help="A specific checkpoint prefix (default: the newest).")
    p.add_argument("--saved_model", default="output/export/saved_model", help="SavedModel output directory.")
    p.add_argument("--tflite", default="", help="Also write a TFLite file here (builtin ops only).")
    p.add_argument("--score_threshold", type=float, default=None, help="Override the score threshold in the export.")
    p.add_argument("--max_detections", type=int, default=None, help="Override the number of detection slots.")


def run(args) -> int:
    from maskrcnn_body.inference.loading import load_trained_model
    from maskrcnn_body.serving import export
    model, cfg, ckpt = load_trained_model(args.train_dir, args.checkpoint, **{
        "model.postprocess.score_threshold": args.score_threshold,
        "model.postprocess.max_detections": args.max_detections})
    export.export_saved_model(model, cfg, args.saved_model)
    print(f"SavedModel from {ckpt} -> {args.saved_model}")
    if args.tflite:
        export.export_tflite(args.saved_model, args.tflite)
        print(f"TFLite -> {args.tflite} ({os.path.getsize(args.tflite) / 1e6:.1f} MB)")
    return 0
