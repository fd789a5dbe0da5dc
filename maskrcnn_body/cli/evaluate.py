"""Evaluate a trained model on records: one .npz dump per image, then the metrics table.

    maskrcnn-body evaluate --train_dir output/mask_rcnn --records 'data/records/synthetic_val-*.tfrecord' \\
        --dump_dir output/eval_dumps --json output/eval_metrics.json

--model may also be an exported SavedModel, .onnx or .tflite file, and --backend picks the engine
(docs/GUIDE.md, "Backends"): each image then runs through that backend at full resolution (the exports'
resize), e.g. to score a quantised TFLite file on the same images as the float model:

    maskrcnn-body evaluate --model output/export/model.int8.tflite --dump_dir output/eval_int8

The dumps are the input of `maskrcnn-body metric --dumps DIR` and `maskrcnn-body draw --dumps DIR`
(format in docs/GUIDE.md, "Evaluation dumps").
"""

from __future__ import annotations

import os
import shutil

from maskrcnn_body.cli.args import add_bool, add_device_argument, add_list, list_value
from maskrcnn_body.errors import UserError


def add_arguments(p) -> None:
    p.add_argument(
        "--train_dir",
        "--model",
        dest="train_dir",
        default="output/mask_rcnn",
        help="Training directory (config.json + checkpoints) (default: %(default)s).",
    )
    p.add_argument("--checkpoint", default=None, help="A specific checkpoint prefix (default: the newest).")
    p.add_argument(
        "--backend",
        default="",
        help="Run the model through this backend (tensorflow, onnxruntime, "
        "openvino, tflite, auto) image by image; default: the training directory's TensorFlow "
        "model over the input pipeline, any other --model on auto.",
    )
    p.add_argument(
        "--precision",
        default="float32",
        choices=("float32", "bfloat16"),
        help="With --backend: float32 or bfloat16 (default: %(default)s).",
    )
    add_device_argument(p)
    add_list(p, "records", ["data/records/synthetic_val-*.tfrecord"], "Evaluation TFRecord glob(s)", "GLOB")
    p.add_argument(
        "--dump_dir", default=None, help="Where the .npz dumps go (default: TRAIN_DIR/eval_dumps); emptied first."
    )
    p.add_argument("--json", default=None, help="Write the metrics JSON here (default: DUMP_DIR/metrics.json).")
    p.add_argument("--plots_dir", default=None, help="Also write PR curves and the per-part AP chart here.")
    p.add_argument("--max_images", type=int, default=None, help="Evaluate at most this many images.")
    p.add_argument("--batch_size", type=int, default=4, help="Images per forward pass (default: %(default)s).")
    p.add_argument(
        "--score_threshold",
        type=float,
        default=None,
        help="Override the model's detection score threshold (model.postprocess.score_threshold).",
    )
    add_bool(p, "skip_corrupt", False, "Skip and count corrupt records instead of stopping")


def run(args) -> int:
    from maskrcnn_body.evaluation import report, runner
    from maskrcnn_body.inference import backends
    from maskrcnn_body.inference.evaluate import write_dumps, write_runner_dumps

    records = list_value(args, "records")
    path = args.train_dir
    exported = backends.is_saved_model(path) or (os.path.isfile(path) and path.lower().endswith((".onnx", ".tflite")))
    fmt = backends.model_format(path) if exported else "train_dir"  # else: the training-directory errors
    dump_dir = args.dump_dir or (
        os.path.join(args.train_dir, "eval_dumps")
        if fmt == "train_dir"
        else os.path.splitext(args.train_dir.rstrip("/"))[0] + "_eval_dumps"
    )
    if args.backend or args.device or fmt != "train_dir":
        from maskrcnn_body.inference.api import load

        if args.score_threshold is not None and fmt != "train_dir":
            raise UserError("--score_threshold applies to a training directory; an export has its threshold built in")
        model = load(
            args.train_dir,
            checkpoint=args.checkpoint,
            backend=args.backend or "auto",
            precision=args.precision,
            device=args.device,
            score_threshold=0.0,
        )  # every detection: AP needs them all
        shutil.rmtree(dump_dir, ignore_errors=True)
        print(
            f"evaluating {args.train_dir} ({model.format}) on backend {model.backend} on {records} -> {dump_dir}",
            flush=True,
        )
        paths = write_runner_dumps(model.runner, records, dump_dir, args.max_images, args.skip_corrupt)
    else:
        from maskrcnn_body.inference.loading import load_trained_model

        model, cfg, ckpt = load_trained_model(
            args.train_dir,
            args.checkpoint,
            **{
                "model.postprocess.score_threshold": args.score_threshold,
                "input.skip_corrupt": True if args.skip_corrupt else None,
            },
        )
        shutil.rmtree(dump_dir, ignore_errors=True)
        print(f"evaluating {ckpt} on {records} -> {dump_dir}", flush=True)
        paths = write_dumps(model, records, cfg, dump_dir, args.batch_size, args.max_images)
    print(f"wrote {len(paths)} dumps", flush=True)
    result = runner.evaluate_dir(dump_dir)
    print(report.format_report(result.summary, result.num_images))
    json_path = args.json or os.path.join(dump_dir, "metrics.json")
    print(f"wrote {report.write_json(result.summary, json_path)}")
    if args.plots_dir:
        from maskrcnn_body.drawing import plots

        for path in plots.save_plots(result, args.plots_dir):
            print(f"wrote {path}")
    return 0
