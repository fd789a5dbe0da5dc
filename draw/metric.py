"""Metrics of evaluation dumps (offline: numpy + pycocotools, no TensorFlow).

  python draw/metric.py --dumps DIR [--json FILE] [--plots_dir DIR]

Prints the tables (COCO box/mask AP per channel, parsing, keypoints, left/right confusion and the
original's metric in its row order); ``--json`` writes the metrics JSON (format in
``maskrcnn_body/evaluation/report.py``); ``--plots_dir`` adds the PR curves and the per-part AP bar chart.
"""

from absl import app, flags

from maskrcnn_body.cli import main_with_user_errors
from maskrcnn_body.evaluation import evaluate_dir, report

FLAGS = flags.FLAGS
flags.DEFINE_string("dumps", None, "Directory of evaluation dumps (*.npz, one per image).", required=True)
flags.DEFINE_string("json", None, "Write the metrics JSON here.")
flags.DEFINE_string("plots_dir", None, "Write pr_curves.png and part_ap.png here.")


def run():
    result = evaluate_dir(FLAGS.dumps)
    print(report.format_report(result.summary, result.num_images))
    if FLAGS.json:
        print(f"wrote {report.write_json(result.summary, FLAGS.json)}")
    if FLAGS.plots_dir:
        from maskrcnn_body.drawing import plots
        for path in plots.save_plots(result, FLAGS.plots_dir):
            print(f"wrote {path}")


main = main_with_user_errors(run)

if __name__ == "__main__":
    app.run(main)
