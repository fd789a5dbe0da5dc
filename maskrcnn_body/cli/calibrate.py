"""Choose a trained model's mask decoding on a held-out split and store it with the model.

    maskrcnn-body calibrate --model output/mask_rcnn --records 'data/records/synthetic_calib-*.tfrecord'

Runs the model over the records with plain 0.5 decoding, picks per part the threshold with the best mean
mask IoU of the detections matched to a person (body decoded as max(body, parts)) and writes it into the
training directory's config.json (``model.postprocess.mask_thresholds``, ``mask_body_union``): ``evaluate``,
``predict``, ``serve``, ``mb.load`` and every export then decode alike. Never calibrate on the split you
report on. The default run (``python train/train.py``) already does this on its synthetic calibration split.
"""

from __future__ import annotations

from maskrcnn_body.cli.args import add_list, add_model_argument, list_value


def add_arguments(p) -> None:
    add_model_argument(p, "a training directory (config.json + checkpoints)")
    add_list(p, "records", None, "Calibration TFRecord glob(s): a held-out split, not the one you report on", "GLOB")
    p.add_argument("--checkpoint", default=None, help="A specific checkpoint prefix (default: the newest).")
    p.add_argument(
        "--dump_dir", default=None, help="Where the calibration dumps go (default: MODEL/calibration_dumps)."
    )
    p.add_argument("--max_images", type=int, default=None, help="Calibrate on at most this many images.")


def run(args) -> int:
    from maskrcnn_body.errors import InvalidArgument
    from maskrcnn_body.workflows.calibrate import calibrate

    records = list_value(args, "records")
    if not records:
        raise InvalidArgument("--records GLOB is required: a held-out split (e.g. 'data/records/synthetic_calib-*')")
    calibrate(args.model, records, checkpoint=args.checkpoint, dump_dir=args.dump_dir, max_images=args.max_images)
    return 0
