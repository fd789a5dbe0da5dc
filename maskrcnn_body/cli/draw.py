"""Pictures of evaluation dumps or of records' ground truth (no TensorFlow).

    maskrcnn-body draw --dumps DIR --out_dir DIR [--side_by_side] [--score_threshold 0.5] [--max N]
    maskrcnn-body draw --records 'data/records/pascal_part-*' --out_dir DIR

Dumps: one PNG per dump (parts in the six legend colours, body outlines, boxes with scores,
skeletons; --side_by_side puts the ground truth on the left), plus pr_curves.png and part_ap.png
unless --noplots. Records: the ground truth of every record (any converter's output).
"""

from __future__ import annotations

from maskrcnn_body.cli.args import add_bool


def add_arguments(p) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dumps", default=None, help="Directory of evaluation dumps (*.npz).")
    src.add_argument("--records", default=None, help="TFRecord glob(s), comma-separated: draw their ground truth.")
    p.add_argument("--out_dir", required=True, help="Directory for the PNGs.")
    add_bool(p, "side_by_side", False, "Dumps: draw ground truth | prediction")
    p.add_argument("--score_threshold", type=float, default=0.5, help="Dumps: draw detections with score >= this.")
    p.add_argument("--max", type=int, default=0, help="Draw at most this many images (0 = all).")
    p.add_argument(
        "--min_size", type=int, default=256, help="Magnify small images so the shorter side is at least this."
    )
    add_bool(p, "plots", True, "Dumps: also write pr_curves.png and part_ap.png (runs the metrics)")


def run(args) -> int:
    from maskrcnn_body.workflows.draw import draw_dumps, draw_records

    if args.records:
        paths = draw_records(args.records, args.out_dir, args.max, args.min_size)
        print(f"wrote {len(paths)} pictures to {args.out_dir}")
        return 0
    paths = draw_dumps(args.dumps, args.out_dir, args.side_by_side, args.score_threshold, args.max, args.min_size)
    print(f"wrote {len(paths)} pictures to {args.out_dir}")
    if args.plots:
        from maskrcnn_body.drawing import plots
        from maskrcnn_body.evaluation import evaluate_dir

        for path in plots.save_plots(evaluate_dir(args.dumps), args.out_dir):
            print(f"wrote {path}")
    return 0
