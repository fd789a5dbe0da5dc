"""Evaluate a trained model on records: one .npz dump per image, then the metrics table.

    maskrcnn-body evaluate --model output/mask_rcnn --records 'data/records/synthetic_val-*.tfrecord' \\
        --dump_dir output/eval_dumps --json output/eval_metrics.json

--model may also be an exported SavedModel, .onnx or .tflite file, and --backend picks the engine
(docs/GUIDE.md, "Backends"): each image then runs through that backend at full resolution (the exports'
resize), e.g. to score a quantised TFLite file on the same images as the float model:

    maskrcnn-body evaluate --model output/export/model.int8.tflite --dump_dir output/eval_int8

The dumps are the input of `maskrcnn-body metric --dumps DIR` and `maskrcnn-body draw --dumps DIR`
(format in docs/GUIDE.md, "Evaluation dumps").
"""

from __future__ import annotations

from maskrcnn_body.cli.args import add_bool, add_device_argument, add_list, add_model_argument, list_value
from maskrcnn_body.workflows.evaluate import DEFAULT_RECORDS


def add_arguments(p) -> None:
    add_model_argument(p)
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
    add_list(p, "records", [DEFAULT_RECORDS], "Evaluation TFRecord glob(s)", "GLOB")
    p.add_argument(
        "--dump_dir",
        default=None,
        help="Where the .npz dumps go (default: MODEL/eval_dumps for a training directory); emptied first.",
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
    from maskrcnn_body.workflows.evaluate import evaluate

    evaluate(
        args.model,
        list_value(args, "records"),
        checkpoint=args.checkpoint,
        backend=args.backend,
        precision=args.precision,
        device=args.device,
        dump_dir=args.dump_dir,
        json_path=args.json,
        plots_dir=args.plots_dir,
        max_images=args.max_images,
        batch_size=args.batch_size,
        score_threshold=args.score_threshold,
        skip_corrupt=args.skip_corrupt,
        log=lambda msg: print(msg, flush=True),
    )
    return 0
