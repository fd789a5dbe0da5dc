"""Run a model on images, folders, videos or a webcam: drawings and JSON per image, an annotated
video and a JSON Lines file with tracked people per video.

    maskrcnn-body predict --model output/mask_rcnn --input photo.jpg folder/ clip.mp4 --output output/predict
    maskrcnn-body predict --model output/export/model.tflite --input clip.mp4 --frame_step 2
    maskrcnn-body predict --model output/mask_rcnn --backend onnxruntime --input photo.jpg
    maskrcnn-body predict --model output/mask_rcnn --webcam 0 --show

--model is a training directory, an exported SavedModel directory, a .onnx or a .tflite file;
--backend picks the engine (auto, tensorflow, onnxruntime, openvino, tflite; docs/GUIDE.md, "Backends"). Per image:
NAME.png (the drawing, the input's size) and NAME.json {"width", "height", "source", "persons": [{"box",
"score", "keypoints", "masks": {channel: RLE}}]} (docs/GUIDE.md, "Inference"); inputs sharing a name get NAME_2,
NAME_3, ... Per video: NAME.mp4 (H.264, the source's size and frame rate, track ids drawn), NAME.jsonl (one
row per frame: "frame", "time_s" and the image JSON, each person with a "track_id", null until confirmed)
and NAME.coco.json (COCO results: image_id = frame). The tracker (--track_* flags) is ByteTrack-style
(docs/TRACKING.md). Video and webcam need OpenCV and PyAV (pip install "maskrcnn_body[video]").
"""

from __future__ import annotations

from maskrcnn_body.cli.args import add_backend_arguments, add_bool, add_model_argument
from maskrcnn_body.drawing.people import KEYPOINT_THRESHOLD, PART_ALPHA


def add_arguments(p) -> None:
    from maskrcnn_body.inference.tracking import ASSIGNMENTS, TrackerConfig  # numpy only: --help stays instant

    add_model_argument(p)
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
    g = p.add_argument_group("drawing (Result.plot)")
    add_bool(g, "parts", True, "Colour the body parts and outline the bodies")
    add_bool(g, "boxes", True, "Boxes labelled with the score (and #track id in videos)")
    add_bool(g, "keypoints", True, "Skeletons and joints")
    add_bool(g, "legend", False, "Append a strip naming the part colours (the drawing gets taller)")
    g.add_argument("--kpt_thr", type=float, default=KEYPOINT_THRESHOLD, help="Draw joints scoring at least this.")
    g.add_argument("--line_width", type=int, default=None, help="Line width in pixels (default: from the image size).")
    g.add_argument("--alpha", type=float, default=PART_ALPHA, help="Opacity of the part colours, 0..1.")
    t = p.add_argument_group("video tracking (docs/TRACKING.md)")
    d = TrackerConfig()
    t.add_argument("--track_high_score", type=float, default=d.high_score, help="First-pass detections score >= this.")
    t.add_argument(
        "--track_low_score",
        type=float,
        default=d.low_score,
        help="Second pass: detections scoring from this to --track_high_score only extend tracks.",
    )
    t.add_argument("--track_new_score", type=float, default=d.new_track_score, help="A new track needs this score.")
    t.add_argument("--track_match_iou", type=float, default=d.match_iou, help="Least IoU of a first-pass match.")
    t.add_argument("--track_low_match_iou", type=float, default=d.low_match_iou, help="Least IoU of a low-score match.")
    t.add_argument(
        "--track_min_hits", type=int, default=d.min_hits, help="Frames in a row before a new track gets its id."
    )
    t.add_argument(
        "--track_max_lost", type=int, default=d.max_lost, help="Frames a lost track is kept for re-identification."
    )
    t.add_argument(
        "--track_keypoint_weight", type=float, default=d.keypoint_weight, help="Keypoint similarity's weight."
    )
    t.add_argument("--track_assignment", default=d.assignment, choices=ASSIGNMENTS, help="Matching method.")


def tracker_config(args):
    """The :class:`TrackerConfig` of the ``--track_*`` flags (a bad combination is a user error)."""
    from maskrcnn_body.errors import UserError
    from maskrcnn_body.inference.tracking import TrackerConfig

    try:
        return TrackerConfig(
            high_score=args.track_high_score,
            low_score=args.track_low_score,
            new_track_score=args.track_new_score,
            match_iou=args.track_match_iou,
            low_match_iou=args.track_low_match_iou,
            min_hits=args.track_min_hits,
            max_lost=args.track_max_lost,
            keypoint_weight=args.track_keypoint_weight,
            assignment=args.track_assignment,
        )
    except ValueError as e:
        raise UserError(str(e)) from None


def draw_options(args) -> dict:
    """:meth:`Result.plot <maskrcnn_body.inference.api.Result.plot>` options of the drawing flags."""
    return dict(
        parts=args.parts,
        boxes=args.boxes,
        keypoints=args.keypoints,
        kpt_thr=args.kpt_thr,
        legend=args.legend,
        line_width=args.line_width,
        alpha=args.alpha,
    )


def run(args) -> int:
    from maskrcnn_body.errors import UserError

    if not args.input and args.webcam < 0:
        raise UserError("give --input PATH [PATH ...] or --webcam N")
    if args.batch_size < 1:
        raise UserError(f"--batch_size must be >= 1, got {args.batch_size}")
    if args.show:
        from maskrcnn_body.cli.display import require_window

        require_window("--show")
    if not 0.0 <= args.alpha <= 1.0:
        raise UserError(f"--alpha must be in [0, 1], got {args.alpha}")
    if args.line_width is not None and args.line_width < 1:
        raise UserError(f"--line_width must be >= 1, got {args.line_width}")
    from maskrcnn_body.workflows.predict import predict_paths

    summary = predict_paths(
        args.model,
        args.input,
        args.output,
        webcam=args.webcam,
        load_options=dict(
            checkpoint=args.checkpoint,
            backend=args.backend,
            num_threads=args.threads,
            precision=args.precision,
            device=args.device,
        ),
        max_frames=args.max_frames,
        frame_step=args.frame_step,
        batch_size=args.batch_size,
        display=args.show,
        progress=args.progress,
        score_threshold=args.score_threshold,
        tracker=tracker_config(args),
        draw=draw_options(args),
    )
    videos = "".join(
        f"; {v['frames']} frames, {v['tracks']} tracks -> {v['video']}, {v['jsonl']}" for v in summary["videos"]
    )
    print(
        f"{summary['images']} image(s)/frame(s), {summary['persons']} person(s) in {summary['seconds']:.1f} s "
        f"-> {summary['out_dir']}{videos}"
    )
    return 0
