"""Evaluate a trained model: write one .npz dump per image, then print (and save) the metrics.

    python train/evaluate.py --train_dir output/mask_rcnn --records 'data/records/synthetic_val-*.tfrecord' \
        --dump_dir output/eval_dumps --json output/eval_metrics.json

The dumps are the input of `python draw/metric.py --dumps DIR` and `python draw/draw.py --dumps DIR`
(format in README, "Evaluation dumps").
"""
import os
import shutil
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from maskrcnn_body.cli import main_with_user_errors  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("train_dir", "output/mask_rcnn", "Training directory (config.json + checkpoints).")
flags.DEFINE_string("checkpoint", None, "A specific checkpoint prefix (default: the newest).")
flags.DEFINE_multi_string("records", ["data/records/synthetic_val-*.tfrecord"], "Evaluation TFRecord glob(s).")
flags.DEFINE_string("dump_dir", None, "Where the .npz dumps go (default: TRAIN_DIR/eval_dumps). Emptied first.")
flags.DEFINE_string("json", None, "Write the metrics JSON here (default: DUMP_DIR/metrics.json).")
flags.DEFINE_string("plots_dir", None, "Also write PR curves and the per-part AP chart here.")
flags.DEFINE_integer("max_images", None, "Evaluate at most this many images.")
flags.DEFINE_integer("batch_size", 4, "Images per forward pass.")
flags.DEFINE_float("score_threshold", None, "Override the model's detection score threshold (default: config).")
flags.DEFINE_bool("skip_corrupt", False, "Skip and count corrupt records instead of stopping.")


def run():
    from maskrcnn_body.evaluation import report, runner
    from maskrcnn_body.serving.predictor import load_trained_model
    from maskrcnn_body.training import predict
    model, cfg, ckpt = load_trained_model(FLAGS.train_dir, FLAGS.checkpoint,
                                          score_threshold=FLAGS.score_threshold)
    cfg.input.skip_corrupt = FLAGS.skip_corrupt
    dump_dir = FLAGS.dump_dir or os.path.join(FLAGS.train_dir, "eval_dumps")
    shutil.rmtree(dump_dir, ignore_errors=True)
    print(f"evaluating {ckpt} on {FLAGS.records} -> {dump_dir}", flush=True)
    paths = predict.write_dumps(model, FLAGS.records, cfg, dump_dir, FLAGS.batch_size, FLAGS.max_images)
    print(f"wrote {len(paths)} dumps", flush=True)
    result = runner.evaluate_dir(dump_dir)
    print(report.format_report(result.summary, result.num_images))
    json_path = FLAGS.json or os.path.join(dump_dir, "metrics.json")
    print(f"wrote {report.write_json(result.summary, json_path)}")
    if FLAGS.plots_dir:
        from maskrcnn_body.drawing import plots
        for p in plots.save_plots(result, FLAGS.plots_dir):
            print(f"wrote {p}")
    return 0


main = main_with_user_errors(run)

if __name__ == "__main__":
    app.run(main)
