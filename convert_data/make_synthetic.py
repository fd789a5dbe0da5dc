"""Writes the built-in synthetic multi-person dataset as TFRecord shards.

  python convert_data/make_synthetic.py --out data/records/synthetic --num_train 1000 --num_val 100

writes ``data/records/synthetic_train-0000i-of-0000K.tfrecord``,
``data/records/synthetic_val-0000i-of-0000K.tfrecord``, their ``synthetic_train.summary.json`` /
``synthetic_val.summary.json`` and the combined ``data/records/synthetic.summary.json``
(``--out PREFIX`` -> ``PREFIX_train-*``, ``PREFIX_val-*``, ``PREFIX.summary.json``). The output is
deterministic given ``--seed`` and ``--size`` (independent of ``--num_shards``/``--num_workers``);
train and val use disjoint per-image seeds. See ``maskrcnn_body.data.synthetic`` for what is drawn.
"""
from absl import app, flags

from maskrcnn_body.data import synthetic

FLAGS = flags.FLAGS
flags.DEFINE_string("out", None, "Output prefix PREFIX: writes PREFIX_train-0000i-of-0000K.tfrecord, "
                    "PREFIX_val-0000i-of-0000K.tfrecord, PREFIX_{train,val}.summary.json and the combined "
                    "PREFIX.summary.json (directories are created).")
flags.DEFINE_integer("num_train", 1000, "Number of training images.", lower_bound=0)
flags.DEFINE_integer("num_val", 100, "Number of validation images.", lower_bound=0)
flags.DEFINE_integer("seed", 0, "Dataset seed (per-image seeds derive from it; train/val disjoint).")
flags.DEFINE_integer("size", 256, "Images are SIZE x SIZE pixels.", lower_bound=32)
flags.DEFINE_integer("num_shards", 4, "Shards per split (fewer when a split has fewer images).", lower_bound=1)
flags.DEFINE_integer("num_workers", None, "Rendering processes (default: os.cpu_count()).")
flags.DEFINE_bool("progress", True, "Show a progress bar on stderr.")
flags.mark_flag_as_required("out")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    summary = synthetic.write_dataset(FLAGS.out, FLAGS.num_train, FLAGS.num_val, seed=FLAGS.seed,
                                      size=FLAGS.size, num_shards=FLAGS.num_shards,
                                      num_workers=FLAGS.num_workers, progress=FLAGS.progress)
    for split, s in summary["splits"].items():
        print(f"{split}: {s['images_written']} images, {s['persons']} persons, "
              f"{s['negative_images']} without persons -> {s['out_prefix']}-*")
    print(f"{summary['seconds']} s, {summary['images_per_second']} images/s; "
          f"summary: {synthetic.summary_path(FLAGS.out)}")


if __name__ == "__main__":
    app.run(main)
