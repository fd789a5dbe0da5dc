"""Run a trained model on images, folders or videos; write a drawing and a JSON per image/frame.

    maskrcnn-body predict --model output/mask_rcnn --input photo.jpg folder/ --output output/predict
    maskrcnn-body predict --model output/mask_rcnn --input clip.mp4 --frame_step 5

JSON per image: {"width", "height", "source", "persons": [{"box", "score", "keypoints", "masks": {channel: RLE}}]}
(README, "Inference"). Video and webcam input need OpenCV (pip install "maskrcnn_body[video]").
"""
from __future__ import annotations


def add_arguments(p) -> None:
    p.add_argument("--model", "--train_dir", dest="model", default="output/mask_rcnn",
                   help="Training directory (config.json + checkpoints) (default: %(default)s).")
    p.add_argument("--checkpoint", default=None, help="A specific checkpoint prefix (default: the newest).")
    p.add_argument("--input", nargs="+", action="extend", default=[], metavar="PATH",
                   help="Image files, folders or video files (several, or repeat the flag).")
    p.add_argument("--webcam", type=int, default=-1, help="Webcam index (OpenCV); -1 = off.")
    p.add_argument("--output", "--out_dir", dest="output", default="output/predict",
                   help="Where drawings and JSONs go (default: %(default)s).")
    p.add_argument("--score_threshold", type=float, default=0.5, help="Keep detections with at least this score.")
    p.add_argument("--max_frames", type=int, default=0, help="Stop after this many video frames (0 = all).")
    p.add_argument("--frame_step", type=int, default=1, help="Use every Nth video frame.")


def run(args) -> int:
    from maskrcnn_body.errors import UserError
    if not args.input and args.webcam < 0:
        raise UserError("give --input PATH [PATH ...] or --webcam N")
    from maskrcnn_body.inference.predictor import Predictor
    from maskrcnn_body.serving.infer import run as run_inputs
    predictor = Predictor.from_train_dir(args.model, args.checkpoint)
    summary = run_inputs(predictor, args.input, args.output, args.score_threshold, args.webcam,
                         args.max_frames, args.frame_step)
    print(f"{summary['images']} image(s), {summary['persons']} person(s) in {summary['seconds']:.1f} s "
          f"-> {summary['out_dir']}")
    return 0
