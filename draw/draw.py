"""Pictures of evaluation dumps (no TensorFlow).

  python draw/draw.py --dumps DIR --out_dir DIR [--side_by_side] [--score_threshold 0.5] [--max N]

One PNG per dump (``<source_id>.png``): parts in the six legend colours, body outlines, boxes with
scores, skeletons; ``--side_by_side`` puts the ground truth on the left. Unless ``--noplots``, also
``pr_curves.png`` and ``part_ap.png`` (metrics of all dumps in DIR).
"""
import os

from absl import app, flags

from maskrcnn_body.cli import main_with_user_errors
from maskrcnn_body.drawing import draw
from maskrcnn_body.evaluation import dumps

FLAGS = flags.FLAGS
flags.DEFINE_string("dumps", None, "Directory of evaluation dumps (*.npz).", required=True)
flags.DEFINE_string("out_dir", None, "Directory for the PNGs.", required=True)
flags.DEFINE_bool("side_by_side", False, "Draw ground truth | prediction.")
flags.DEFINE_float("score_threshold", 0.5, "Draw detections with score >= this.")
flags.DEFINE_integer("max", 0, "Draw at most this many dumps (0 = all).")
flags.DEFINE_integer("min_size", 256, "Magnify small images so the shorter side is at least this.")
flags.DEFINE_bool("plots", True, "Also write pr_curves.png and part_ap.png (runs the metrics).")


def run():
    paths = dumps.list_dumps(FLAGS.dumps)
    if FLAGS.max:
        paths = paths[:FLAGS.max]
    os.makedirs(FLAGS.out_dir, exist_ok=True)
    for i, p in enumerate(paths):
        d = dumps.read_dump(p)
        out = os.path.join(FLAGS.out_dir, draw.safe_file_name(f"{i:05d}_{d['source_id']}") + ".png")
        draw.render_dump(d, FLAGS.side_by_side, FLAGS.score_threshold, FLAGS.min_size).save(out)
    print(f"wrote {len(paths)} pictures to {FLAGS.out_dir}")
    if FLAGS.plots:
        from maskrcnn_body.drawing import plots
        from maskrcnn_body.evaluation import evaluate_dir
        for path in plots.save_plots(evaluate_dir(FLAGS.dumps), FLAGS.out_dir):
            print(f"wrote {path}")


main = main_with_user_errors(run)

if __name__ == "__main__":
    app.run(main)
