"""Metrics of evaluation dumps (offline: numpy + pycocotools, no TensorFlow).

    maskrcnn-body metric --dumps DIR [--json FILE] [--plots_dir DIR]

Prints the tables (COCO box/mask AP per channel, parsing, keypoints, left/right confusion and the
original's metric in its row order); --json writes the metrics JSON (docs/GUIDE.md, "Evaluation");
--plots_dir adds the PR curves and the per-part AP bar chart.
"""

from __future__ import annotations


def add_arguments(p) -> None:
    p.add_argument("--dumps", required=True, help="Directory of evaluation dumps (*.npz, one per image).")
    p.add_argument("--json", default=None, help="Write the metrics JSON here.")
    p.add_argument("--plots_dir", default=None, help="Write pr_curves.png and part_ap.png here.")


def run(args) -> int:
    from maskrcnn_body.evaluation import evaluate_dir, report

    result = evaluate_dir(args.dumps)
    print(report.format_report(result.summary, result.num_images))
    if args.json:
        print(f"wrote {report.write_json(result.summary, args.json)}")
    if args.plots_dir:
        from maskrcnn_body.drawing import plots

        for path in plots.save_plots(result, args.plots_dir):
            print(f"wrote {path}")
    return 0
