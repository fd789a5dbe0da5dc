"""Send images, a folder, a video file or webcam frames to a running server; show or save the answers.

maskrcnn-body client --server http://127.0.0.1:8080 --input photo.jpg --out_dir output/client
maskrcnn-body client --server http://127.0.0.1:8080 --input clip.mp4 --show
maskrcnn-body client --server http://127.0.0.1:8080 --webcam 0 --show
"""

from __future__ import annotations

import json
import os
import sys

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
    if args.out_dir:
        os.makedirs(args.out_dir, exist_ok=True)
    n_ok = n_err = 0
    for name, data, ctype in client.iter_inputs(args.input, args.webcam, args.max_frames, args.frame_step):
        stem = os.path.splitext(os.path.basename(name))[0]
        try:
            if args.mode in ("predict", "both"):
                result = client.predict(args.server, data, ctype)
                print(f"{name}: {len(result['persons'])} person(s)")
                if args.out_dir:
                    with open(os.path.join(args.out_dir, stem + ".json"), "w") as f:
                        json.dump(result, f)
            if args.mode in ("render", "both"):
                png = client.render(args.server, data, ctype)
                if args.out_dir:
                    with open(os.path.join(args.out_dir, stem + ".png"), "wb") as f:
                        f.write(png)
                if args.show:
                    import cv2
                    import numpy as np

                    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)  # BGR for imshow
                    if img is not None:
                        cv2.imshow("maskrcnn_body", img)
                    if cv2.waitKey(1) & 0xFF == ord("q"):
                        break
            n_ok += 1
        except client.ServerError as e:
            print(f"{name}: {e}", file=sys.stderr)
            n_err += 1
    print(f"done: {n_ok} answered, {n_err} errors" + (f"; saved under {args.out_dir}" if args.out_dir else ""))
    return 1 if n_err and not n_ok else 0
