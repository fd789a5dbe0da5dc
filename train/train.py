"""Trains maskrcnn_body; with no arguments: synthetic data -> CPU model -> evaluation table.

  python train/train.py                          # synthetic data, preset cpu_small
  python train/train.py --records 'data/records/pascal_train-*' --val_records 'data/records/pascal_val-*' \\
      --preset r50_fpn --strategy mirrored --mixed_precision mixed_float16
  python train/train.py --helpfull               # every flag

If no file matches --records (and they are the default synthetic ones), the synthetic train/val
splits are generated first. A run in an existing --train_dir resumes from its latest checkpoint
(step, optimizer state, data position); SIGINT/SIGTERM save a checkpoint and exit cleanly.
See docs/TRAINING.md (multi-machine launch, faults, checkpoints).
"""
from __future__ import annotations

import glob
import os
import sys

from absl import app, flags

DEFAULT_PREFIX = "data/records/synthetic"
DEFAULT_TRAIN = DEFAULT_PREFIX + "_train-*.tfrecord"
DEFAULT_VAL = DEFAULT_PREFIX + "_val-*.tfrecord"

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("records", [DEFAULT_TRAIN], "Training TFRecord glob(s); repeat the flag or "
                          "comma-separate for several.")
flags.DEFINE_multi_string("val_records", [DEFAULT_VAL], "Validation TFRecord glob(s) for evaluation, "
                          "drawn predictions and the final table; empty string disables.")
flags.DEFINE_enum("preset", "cpu_small", ["cpu_small", "r50_fpn", "legacy"], "Config preset (maskrcnn_body/config.py).")
flags.DEFINE_string("train_dir", "output/mask_rcnn", "Checkpoints, config.json, TensorBoard logs, eval dumps.")
flags.DEFINE_integer("max_steps", None, "Training steps (default: preset's train.max_steps).")
flags.DEFINE_integer("batch_size", None, "Global batch size, split across replicas (default: preset).")
flags.DEFINE_float("learning_rate", None, "Peak learning rate after warm-up (default: preset).")
flags.DEFINE_integer("warmup_steps", None, "Linear warm-up steps (default: preset).")
flags.DEFINE_enum("schedule", None, ["cosine", "step", "constant"], "Decay after warm-up (default: preset).")
flags.DEFINE_list("decay_steps", None, "For --schedule=step: steps at which the LR is multiplied by 0.1.")
flags.DEFINE_enum("optimizer", None, ["adamw", "sgd"], "Optimizer (default: preset).")
flags.DEFINE_float("clip_norm", None, "Clip the gradient by this global norm; 0 disables (default: preset).")
flags.DEFINE_integer("image_size", None, "Resize images to this size (input min_size = max_size).")
flags.DEFINE_multi_string("set", [], "Override any config field of the preset: --set model.mask_roi_size=28 "
                          "(repeatable; SECTION.FIELD=VALUE with SECTION in input, model, train).")
flags.DEFINE_integer("seed", 0, "Seed for initialisation, data order and augmentation.")
flags.DEFINE_string("restore_from", None, "Checkpoint (prefix or directory) to partially restore from when "
                    "--train_dir has no checkpoint: variables matching in name and shape are loaded, the "
                    "rest is listed as skipped.")
flags.DEFINE_bool("draw", False, "Write drawn predictions (PNG) and .npz dumps of a few val images under "
                  "TRAIN_DIR/draw/step_N every --image_every steps and at the end.")
flags.DEFINE_enum("mixed_precision", "float32", ["float32", "mixed_float16", "mixed_bfloat16"],
                  "Precision policy; mixed_float16 uses dynamic loss scaling.")
flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker"],
                  "Distribution: mirrored = all local GPUs; multi_worker = MultiWorkerMirroredStrategy "
                  "from TF_CONFIG (docs/TRAINING.md).")
flags.DEFINE_integer("log_every", None, "Progress/TensorBoard scalars every N steps (default: preset).")
flags.DEFINE_integer("checkpoint_every", None, "Checkpoint every N steps (default: preset).")
flags.DEFINE_integer("keep_checkpoints", None, "Keep the last K checkpoints (default: preset).")
flags.DEFINE_integer("max_bad_steps", None, "Stop after this many consecutive non-finite steps (default: preset).")
flags.DEFINE_integer("eval_every", None, "Evaluate on --val_records every N steps; 0 = only at the end "
                     "(default: preset).")
flags.DEFINE_integer("image_every", None, "TensorBoard images of drawn predictions every N steps "
                     "(default: --checkpoint_every); 0 disables.")
flags.DEFINE_integer("eval_images", None, "Evaluate on at most this many val images (default: all).")
flags.DEFINE_bool("skip_corrupt", False, "Skip and count corrupt records instead of stopping.")
flags.DEFINE_integer("num_train", 1000, "Synthetic training images generated when no --records exist.")
flags.DEFINE_integer("num_val", 100, "Synthetic validation images generated when none exist.")


def build_config():
    from maskrcnn_body.config import get_config, parse_overrides
    cfg = get_config(FLAGS.preset, **parse_overrides(FLAGS.set))
    t = cfg.train
    for name in ("max_steps", "batch_size", "learning_rate", "warmup_steps", "schedule", "optimizer",
                 "clip_norm", "log_every", "checkpoint_every", "keep_checkpoints", "max_bad_steps",
                 "eval_every"):
        if getattr(FLAGS, name) is not None:
            setattr(t, name, getattr(FLAGS, name))
    if FLAGS.decay_steps is not None:
        t.decay_steps = tuple(int(s) for s in FLAGS.decay_steps)
    if FLAGS.image_size is not None:
        cfg.input.min_size = cfg.input.max_size = FLAGS.image_size
    if FLAGS.skip_corrupt:
        cfg.input.skip_corrupt = True
    return cfg


def patterns(values):
    return [p for v in values for p in v.split(",") if p]


def ensure_synthetic_data(train, val) -> None:
    """Generates the synthetic splits when the default globs match nothing."""
    missing = [p for p in train + val if not glob.glob(p)]
    if not missing:
        return
    defaults = {DEFAULT_TRAIN, DEFAULT_VAL}
    if not set(missing) <= defaults:
        raise app.UsageError(f"no files match {missing}; convert the data first (convert_data/) or leave "
                             "--records/--val_records at their defaults to use the synthetic dataset")
    from maskrcnn_body.data.synthetic import summary_path, write_dataset
    print(f"no records at {DEFAULT_TRAIN}: generating the synthetic dataset "
          f"({FLAGS.num_train} train / {FLAGS.num_val} val images)", flush=True)
    summary = write_dataset(DEFAULT_PREFIX, FLAGS.num_train, FLAGS.num_val, seed=FLAGS.seed)
    print(f"wrote {summary_path(DEFAULT_PREFIX)} in {summary['seconds']} s", flush=True)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    import tensorflow as tf
    tf.get_logger().setLevel("WARNING")     # TF's own INFO lines (checkpoint sharding, ...)
    from maskrcnn_body.training import distribute
    strategy = distribute.make_strategy(FLAGS.strategy)   # first: multi-worker needs that
    from maskrcnn_body.data import pipeline
    from maskrcnn_body.model.maskrcnn import build_model
    from maskrcnn_body.training import hooks as hooks_lib
    from maskrcnn_body.training.faults import TrainingError
    from maskrcnn_body.training.progress import peak_memory_mb
    from maskrcnn_body.training.trainer import Trainer

    cfg = build_config()
    train, val = patterns(FLAGS.records), patterns(FLAGS.val_records)
    if distribute.is_chief(strategy):
        ensure_synthetic_data(train, val)
    counter = pipeline.CorruptCounter()

    def dataset_fn(global_batch):
        return pipeline.build_dataset(train, cfg.input, global_batch, training=True, seed=FLAGS.seed,
                                      counter=counter)

    trainer = Trainer(cfg, build_model, dataset_fn, FLAGS.train_dir, strategy=strategy, seed=FLAGS.seed,
                      precision=FLAGS.mixed_precision, restore_from=FLAGS.restore_from,
                      corrupt_count=lambda: counter.skipped_records + counter.truncated_shards)
    results = []
    if val:
        image_every = cfg.train.checkpoint_every if FLAGS.image_every is None else FLAGS.image_every
        draw_dir = os.path.join(FLAGS.train_dir, "draw") if FLAGS.draw else None
        trainer.hooks.append(hooks_lib.prediction_images_hook(trainer, val, image_every, draw_dir=draw_dir))
        trainer.hooks.append(hooks_lib.evaluation_hook(trainer, val, cfg.train.eval_every,
                                                       FLAGS.eval_images, results))
    print(f"training {cfg.name} in {FLAGS.train_dir} on {train} with {strategy.num_replicas_in_sync} "
          f"replica(s), global batch {cfg.train.batch_size}", flush=True)
    try:
        result = trainer.train()
    except TrainingError as e:
        print(f"\nERROR: {e}", file=sys.stderr)
        return 1
    c = counter.as_dict()
    print(f"\nfinished at step {result.step} ({result.stopped_by}); {result.skipped_steps} non-finite steps "
          f"skipped; {c['skipped_records']} corrupt records and {c['truncated_shards']} truncated shards "
          f"skipped; {result.steps_per_sec:.2f} steps/s; peak memory {peak_memory_mb():.0f} MiB; "
          f"checkpoint {result.checkpoint}", flush=True)
    return 0


if __name__ == "__main__":
    app.run(main)
