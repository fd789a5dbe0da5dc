"""Export a trained model as a SavedModel, and optionally TFLite (float or quantised) and ONNX, for
use without this package.

    maskrcnn-body export --model output/mask_rcnn --saved_model output/export/saved_model \\
        --tflite output/export/model.tflite --onnx output/export/model.onnx
    maskrcnn-body export --model output/mask_rcnn --web output/web     (the in-browser demo, docs/BROWSER.md)
    maskrcnn-body export --model output/mask_rcnn --tflite output/export/model.tflite \\
        --tflite_quant float16,dynamic,int8 --calib_records 'data/records/synthetic_calib-*.tfrecord'
    maskrcnn-body export --model output/mask_rcnn --onnx output/export/model.onnx --onnx_quant int8 \
        --calib_records 'data/records/synthetic_calib-*' --score_records 'data/records/synthetic_val-*'

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
--onnx_quant int8: NAME.int8.onnx beside --onnx, the convolutions int8 (per-channel weights, activations
calibrated on --calib_records), everything else float: on the trained cpu_small model it keeps box, body,
arm and keypoint AP within 1 point (docs/BENCHMARKS.md, "int8 that keeps the accuracy"), where full-int8
TFLite loses it all. --score_records GLOB scores every quantised file beside float32 and warns when one
loses more than 1 AP; without it, a quantised file is reported unmeasured.
"""

from __future__ import annotations

from maskrcnn_body.cli.args import add_list, add_model_argument, list_value, positive_int
from maskrcnn_body.workflows.export import MAX_AP_LOSS, ONNX_QUANTS, QUANTS


def add_arguments(p) -> None:
    add_model_argument(p, "the training directory to export (config.json + checkpoints)")
    p.add_argument("--checkpoint", default=None, help="A specific checkpoint prefix (default: the newest).")
    p.add_argument("--saved_model", default="output/export/saved_model", help="SavedModel output directory.")
    p.add_argument("--tflite", default="", help="Also write a TFLite file here (builtin ops only).")
    add_list(p, "tflite_quant", ["none"], f"TFLite variants: {', '.join(QUANTS)}", "QUANT")
    add_list(
        p,
        "onnx_quant",
        ["none"],
        f"ONNX variants besides the float32 --onnx file: {', '.join(ONNX_QUANTS)} (int8: NAME.int8.onnx, the "
        "convolutions int8 with per-channel weights, the rest float)",
        "QUANT",
    )
    add_list(
        p,
        "calib_records",
        [],
        "int8 calibration TFRecord glob(s): a held-out split, e.g. the synthetic calib records",
        "GLOB",
    )
    add_list(
        p,
        "score_records",
        [],
        "Score every quantised file beside float32 on these TFRecords (box, body, arm and keypoint AP; written to "
        f"FILE.accuracy.json) and warn when one loses more than {MAX_AP_LOSS:g} AP",
        "GLOB",
    )
    p.add_argument(
        "--score_images",
        type=positive_int,
        default=None,
        help="Score on at most this many images of --score_records (default: all).",
    )
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
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="Override an inference-time config field in the export, e.g. --set input.min_size=192 --set "
        "input.max_size=192 (repeatable; the live configuration: docs/DEPLOY.md).",
    )


def run(args) -> int:
    from maskrcnn_body.config import parse_overrides
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
        onnx_quant=list_value(args, "onnx_quant"),
        score_records=list_value(args, "score_records"),
        score_images=args.score_images,
        web=args.web,
        score_threshold=args.score_threshold,
        overrides=parse_overrides(args.set),
        max_detections=args.max_detections,
        log=lambda msg: print(msg, flush=True),
    )
    return 0
