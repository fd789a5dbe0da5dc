"""Export a trained model as a SavedModel, and optionally TFLite (float or quantised) and ONNX, for
use without this package.

    maskrcnn-body export --train_dir output/mask_rcnn --saved_model output/export/saved_model \\
        --tflite output/export/model.tflite --onnx output/export/model.onnx
    maskrcnn-body export --train_dir output/mask_rcnn --web output/web     (the in-browser demo, docs/BROWSER.md)
    maskrcnn-body export --train_dir output/mask_rcnn --tflite output/export/model.tflite \\
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

import os

from maskrcnn_body.cli.args import add_list, list_value, positive_int

QUANTS = ("none", "float16", "dynamic", "int8")


def add_arguments(p) -> None:
    p.add_argument(
        "--train_dir",
        "--model",
        dest="train_dir",
        default="output/mask_rcnn",
        help="Training directory (config.json + checkpoints) (default: %(default)s).",
    )
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


def tflite_paths(path: str, quants):
    """``{quant: file}``: ``path`` itself for a single variant, else ``NAME.<quant>.tflite``."""
    if len(quants) == 1:
        return {quants[0]: path}
    stem = path[: -len(".tflite")] if path.endswith(".tflite") else path
    return {q: (f"{stem}.tflite" if q == "none" else f"{stem}.{q}.tflite") for q in quants}


def run(args) -> int:
    from maskrcnn_body.errors import UserError

    quants = list(dict.fromkeys(q.strip().lower() for q in list_value(args, "tflite_quant")))
    bad = [q for q in quants if q not in QUANTS]
    if bad:
        raise UserError(f"--tflite_quant {bad}: choose from {', '.join(QUANTS)}")
    calib = list_value(args, "calib_records")
    if args.tflite and "int8" in quants and not calib:
        raise UserError("--tflite_quant int8 needs --calib_records GLOB (images to calibrate the activations on)")
    if args.web:
        from maskrcnn_body.serving.browser import runtime_files

        runtime_files()  # fails now, with what to run, when the runtime is not fetched
    if args.onnx or args.web:
        import importlib.util

        if importlib.util.find_spec("tf2onnx") is None:
            raise UserError(f'{"--onnx" if args.onnx else "--web"} needs tf2onnx: pip install "maskrcnn_body[onnx]"')
    from maskrcnn_body.inference import exporting
    from maskrcnn_body.inference.loading import load_trained_model

    model, cfg, ckpt = load_trained_model(
        args.train_dir,
        args.checkpoint,
        **{
            "model.postprocess.score_threshold": args.score_threshold,
            "model.postprocess.max_detections": args.max_detections,
        },
    )
    exporting.export_saved_model(model, cfg, args.saved_model)
    print(f"SavedModel from {ckpt} -> {args.saved_model}")
    if args.tflite:
        images = exporting.calibration_images(calib, args.calib_images) if "int8" in quants else None
        for quant, path in tflite_paths(args.tflite, quants).items():
            exporting.export_tflite(
                args.saved_model, path, quant=None if quant == "none" else quant, calib_images=images
            )
            what = "float32" if quant == "none" else quant
            print(f"TFLite ({what}) -> {path} ({os.path.getsize(path) / 1e6:.1f} MB)")
            if quant == "int8":
                print(
                    "warning: full int8 lost all accuracy on the trained cpu_small model (docs/BENCHMARKS.md); "
                    f"score it first: maskrcnn-body evaluate --model {path}",
                    flush=True,
                )
    if args.onnx:
        exporting.export_onnx(args.saved_model, args.onnx)
        print(f"ONNX -> {args.onnx} ({os.path.getsize(args.onnx) / 1e6:.1f} MB)")
    if args.web:
        from maskrcnn_body.serving import browser

        onnx_path = args.onnx or exporting.export_onnx(args.saved_model, os.path.join(args.web, "model.onnx"))
        threshold = 0.5 if args.score_threshold is None else args.score_threshold
        browser.export_web(onnx_path, args.web, score_threshold=threshold)
        print(
            f"in-browser demo -> {args.web} ({browser.folder_size(args.web) / 1e6:.1f} MB; any static file server, "
            f"e.g. python -m http.server -d {args.web}, or maskrcnn-body serve --web {args.web})"
        )
    return 0
