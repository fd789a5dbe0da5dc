"""Export a trained model as a SavedModel, and optionally TFLite (float or quantised) and ONNX, for
use without this package.

    maskrcnn-body export --model output/mask_rcnn --saved_model output/export/saved_model \\
        --tflite output/export/model.tflite --onnx output/export/model.onnx
    maskrcnn-body export --model output/mask_rcnn --web output/web     (the in-browser demo, docs/BROWSER.md)
    maskrcnn-body export --model output/mask_rcnn --tflite output/export/model.tflite \\
        --tflite_quant float16,dynamic,int8 --calib_records 'data/records/synthetic_val-*.tfrecord'

    import tensorflow as tf
    m = tf.saved_model.load("output/export/saved_model")
    out = m.signatures["serving_default"](image=tf.constant(rgb_uint8))   # any H x W
    # out: boxes (D, 4), scores (D,), num_detections, masks (D, M, M, 7), keypoints (D, 15, 3)
    out = m.signatures["serving_batch"](images=tf.constant(same_size_rgb_uint8))   # (B, H, W, 3)

    import onnxruntime as ort                 # pip install "maskrcnn_body[onnx]"
    s = ort.InferenceSession("output/export/model.onnx")
    boxes, keypoints, masks, num_detections, scores = s.run(None, {"image": rgb_uint8})  # sorted names

--tflite_quant: none (float32), float16, dynamic (int8 weights) or int8 (int8 weights and
activations, calibrated on the first --calib_images images of --calib_records). With one value the
file is --tflite; with several, each goes to NAME.<quant>.tflite beside it (none: NAME.tflite).
Check a quantised file's accuracy before you deploy it: `maskrcnn-body evaluate --model FILE`. On the
trained cpu_small model float16 and dynamic keep the AP within 0.5 points, but full int8 loses it all
(docs/BENCHMARKS.md, "Quantised"): calibrated int8 activations break this GroupNorm network.
"""

from __future__ import annotations

from maskrcnn_body.cli.args import add_list, add_model_argument, list_value, positive_int
from maskrcnn_body.workflows.export import QUANTS


def add_arguments(p) -> None:
    add_model_argument(p, "the training directory to export (config.json + checkpoints)")
    p.add_argument("--checkpoint", default=None, help="A specific checkpoint prefix (default: the newest).")
    p.add_argument("--saved_model", default="output/export/saved_model", help="SavedModel output directory.")
    p.add_argument("--tflite", default="", help="Also write a TFLite file here (builtin ops only).")
    add_list(p, "tflite_quant", ["none"], f"TFLite variants: {', '.join(QUANTS)}", "QUANT")
    add_list(p, "calib_records", [], "int8 calibration TFRecord glob(s) (e.g. the validation records)", "GLOB")
    p.add_argument(
        "--calib_images",
        type=positive_int,
        default=32,
        help="Calibration images for --tflite_quant int8 (default: %(default)s).",
    )
    p.add_argument(
        "--onnx",
        default="",
        help='Also write an ONNX file here (tf2onnx from the SavedModel; pip install "maskrcnn_body[onnx]").',
    )
    p.add_argument(
        "--web",
        default="",
        help="Also write the in-browser demo here: a static folder (page, ONNX Runtime Web, model.onnx) that runs "
        "the model in the browser (docs/BROWSER.md; needs tf2onnx and `make web`).",
    )
    p.add_argument("--score_threshold", type=float, default=None, help="Override the score threshold in the export.")
    p.add_argument("--max_detections", type=int, default=None, help="Override the number of detection slots.")


def run(args) -> int:
    from maskrcnn_body.workflows.export import export

    export(
        args.model,
        args.saved_model,
        checkpoint=args.checkpoint,
        tflite=args.tflite,
        tflite_quant=list_value(args, "tflite_quant"),
        calib_records=list_value(args, "calib_records"),
        calib_images=args.calib_images,
        onnx=args.onnx,
        web=args.web,
        score_threshold=args.score_threshold,
        max_detections=args.max_detections,
        log=lambda msg: print(msg, flush=True),
    )
    return 0
