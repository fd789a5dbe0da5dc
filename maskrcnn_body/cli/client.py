"""Send images, a folder, a video file or webcam frames to a running server; show or save the answers.

maskrcnn-body client --server http://127.0.0.1:8080 --input photo.jpg --out_dir output/client
maskrcnn-body client --server http://127.0.0.1:8080 --input clip.mp4 --show
maskrcnn-body client --server http://127.0.0.1:8080 --webcam 0 --show
"""

from __future__ import annotations

from maskrcnn_body.cli.args import add_bool


def add_arguments(p) -> None:
    p.add_argument("--server", default="http://127.0.0.1:8080", help="Server URL (default: %(default)s).")
    p.add_argument(
        "--input",
        nargs="+",
        action="extend",
        default=[],
        metavar="PATH",
        help="Image files, folders or video files (several, or repeat the flag).",
    )
    p.add_argument("--webcam", type=int, default=-1, help="Webcam index to stream from (OpenCV); -1 = off.")
    p.add_argument(
        "--mode",
        default="render",
        choices=["render", "predict", "both"],
        help="render: drawn PNG back; predict: JSON back; both: both requests.",
    )
    p.add_argument("--out_dir", default="output/client", help="Where to save answers ('' = do not save).")
    add_bool(p, "show", False, "Show rendered answers in a window (OpenCV)")
    p.add_argument("--max_frames", type=int, default=0, help="Stop after this many video/webcam frames (0 = all).")
    p.add_argument("--frame_step", type=int, default=1, help="Send every Nth video frame.")


def run(args) -> int:
    from maskrcnn_body.errors import UserError
    from maskrcnn_body.serving import client

    if not args.input and args.webcam < 0:
        raise UserError("give --input PATH [PATH ...] or --webcam N")
    if args.show:
        from maskrcnn_body.cli.display import require_window

        require_window("--show")
    answered, errors = client.send_inputs(
        args.server,
        args.input,
        mode=args.mode,
        out_dir=args.out_dir,
        webcam=args.webcam,
        max_frames=args.max_frames,
        frame_step=args.frame_step,
        display=args.show,
    )
    print(f"done: {answered} answered, {errors} errors" + (f"; saved under {args.out_dir}" if args.out_dir else ""))
    return 1 if errors and not answered else 0
