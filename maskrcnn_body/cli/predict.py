"""Run a model on images, folders, videos or a webcam: drawings and JSON per image, an annotated
video and a JSON Lines file with tracked people per video.

    maskrcnn-body predict --model output/mask_rcnn --input photo.jpg folder/ clip.mp4 --output output/predict
    maskrcnn-body predict --model output/export/model.tflite --input clip.mp4 --frame_step 2
    maskrcnn-body predict --model output/mask_rcnn --backend onnxruntime --input photo.jpg
    maskrcnn-body predict --model output/mask_rcnn --webcam 0 --show

--model is a training directory, an exported SavedModel directory, a .onnx or a .tflite file;
--backend picks the engine (auto, tensorflow, onnxruntime, openvino, tflite; README, "Backends"). Per image:
NAME.png (the drawing) and NAME.json {"width", "height", "source", "persons": [{"box", "score",
"keypoints", "masks": {channel: RLE}}]} (README, "Inference"); per video: NAME.mp4 and NAME.jsonl (one
row per frame: "frame", "time_s" and the image JSON, each person with a "track_id"). Video and webcam
need OpenCV (pip install "maskrcnn_body[video]").
"""

from __future__ import annotations

from maskrcnn_body.cli.args import add_backend_arguments, add_bool


def add_arguments(p) -> None:
    p.add_argument(
        "--model",
        "--train_dir",
        dest="model",
        default="output/mask_rcnn",
        help="Training directory, SavedModel directory, .onnx or .tflite file (default: %(default)s).",
    )
    add_backend_arguments(p)
    p.add_argument("--checkpoint", default=None, help="Training directory only: a specific checkpoint prefix.")
    p.add_argument(
        "--input",
        nargs="+",
        action="extend",
        default=[],
        metavar="PATH",
        help="Image files, folders or video files (several, or repeat the flag).",
    )
    p.add_argument("--webcam", type=int, default=-1, help="Webcam index (OpenCV); -1 = off.")
    p.add_argument(
        "--output",
        "--out_dir",
        dest="output",
        default="output/predict",
        help="Where drawings, JSON, videos and JSON Lines go (default: %(default)s).",
    )
    p.add_argument("--score_threshold", type=float, default=0.5, help="Keep persons with at least this score.")
    p.add_argument("--batch_size", type=int, default=8, help="Images or frames per model call (default: %(default)s).")
    p.add_argument("--max_frames", type=int, default=0, help="Stop after this many video frames (0 = all).")
    p.add_argument("--frame_step", type=int, default=1, help="Use every Nth video frame.")
    add_bool(p, "show", False, "Show each drawing in a window (OpenCV; q or Esc stops)")
    add_bool(p, "progress", True, "Progress bar on stderr for long inputs")


def run(args) -> int:
    from maskrcnn_body.errors import UserError

    if not args.input and args.webcam < 0:
        raise UserError("give --input PATH [PATH ...] or --webcam N")
    if args.batch_size < 1:
        raise UserError(f"--batch_size must be >= 1, got {args.batch_size}")
    if args.show:
        from maskrcnn_body.cli.display import require_window

        require_window("--show")
    from maskrcnn_body.inference.api import load
    from maskrcnn_body.serving.infer import run as run_inputs

    model = load(
        args.model,
        score_threshold=args.score_threshold,
        checkpoint=args.checkpoint,
        backend=args.backend,
        num_threads=args.threads,
        precision=args.precision,
        device=args.device,
    )
    summary = run_inputs(
        model,
        args.input,
        args.output,
        args.webcam,
        args.max_frames,
        args.frame_step,
        args.batch_size,
        args.show,
        args.progress,
    )
    videos = "".join(
        f"; {v['frames']} frames, {v['tracks']} tracks -> {v['video']}, {v['jsonl']}" for v in summary["videos"]
    )
    print(
        f"{summary['images']} image(s)/frame(s), {summary['persons']} person(s) in {summary['seconds']:.1f} s "
        f"-> {summary['out_dir']}{videos}"
    )
    return 0
