"""Train a model; with no arguments: synthetic data -> the cpu_small preset -> evaluation table.

    maskrcnn-body train                                   # = python train/train.py
    maskrcnn-body train --records 'data/records/pascal_part_train-*' --val_records 'data/records/pascal_part_val-*' \\
        --preset r50_fpn --batch_size 8 --strategy mirrored --mixed_precision mixed_float16
    maskrcnn-body train --set model.mask_head.roi_size=28 --set train.max_images=20000
    maskrcnn-body train --list-config                     # every config field, its value and meaning

If no file matches --records (and they are the default synthetic ones), the synthetic train/val
splits are generated first. A run in an existing --train_dir resumes from its latest checkpoint
(step, optimizer state, data position); SIGINT/SIGTERM save a checkpoint and exit cleanly.
Config values come from the preset (or --config FILE.json), then --set, in that order; every
value is type-checked (docs/TRAINING.md).
"""

from __future__ import annotations

import glob
import os
import sys
from typing import List, Optional

from maskrcnn_body.cli.args import add_bool, add_list, list_value

DEFAULT_PREFIX = "data/records/synthetic"
DEFAULT_TRAIN = DEFAULT_PREFIX + "_train-*.tfrecord"
DEFAULT_VAL = DEFAULT_PREFIX + "_val-*.tfrecord"


def add_arguments(p) -> None:
    from maskrcnn_body.config import describe_presets

    presets = describe_presets()
    add_list(p, "records", [DEFAULT_TRAIN], "Training TFRecord glob(s)", "GLOB")
    add_list(
        p,
        "val_records",
        [DEFAULT_VAL],
        "Validation TFRecord glob(s) for evaluation, drawn predictions and the final table; an empty string disables",
        "GLOB",
    )
    p.add_argument(
        "--preset",
        default="cpu_small",
        choices=list(presets),
        metavar="NAME",
        help="Config preset: " + "; ".join(f"{k}: {v}" for k, v in presets.items()) + " (default: cpu_small)",
    )
    p.add_argument(
        "--config",
        metavar="FILE.json",
        default=None,
        help="Start from a saved config (e.g. a training directory's config.json) instead of --preset.",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="Override any config field, e.g. --set model.mask_head.roi_size=28 (repeatable; values are "
        "type-checked; see --list-config).",
    )
    p.add_argument(
        "--list-config",
        action="store_true",
        help="Print every config field with its value (after --preset/--config/--set) and meaning, then exit.",
    )
    p.add_argument(
        "--batch_size",
        type=int,
        default=None,
        help="Global batch size (= --set train.batch_size=N); the learning rate and the schedule follow "
        "(they are stated per 16 images and in images seen).",
    )
    p.add_argument(
        "--max_steps",
        type=int,
        default=None,
        help="Train for N steps of the global batch (= --set train.max_images=N*batch_size).",
    )
    p.add_argument(
        "--train_dir",
        default="output/mask_rcnn",
        help="Checkpoints, config.json, TensorBoard logs, evaluation dumps (default: %(default)s).",
    )
    p.add_argument("--seed", type=int, default=0, help="Seed for initialisation, data order and augmentation.")
    p.add_argument(
        "--restore_from",
        default=None,
        metavar="CKPT",
        help="Checkpoint (prefix or directory) to partially restore from when --train_dir has no "
        "checkpoint: variables matching in name and shape are loaded, the rest is listed.",
    )
    add_bool(
        p,
        "draw",
        False,
        "Write drawn predictions (PNG) and .npz dumps of a few val images under "
        "TRAIN_DIR/draw/step_N every --image_every steps and at the end",
    )
    p.add_argument(
        "--mixed_precision",
        default="float32",
        choices=["float32", "mixed_float16", "mixed_bfloat16"],
        help="Precision policy; mixed_float16 uses dynamic loss scaling.",
    )
    p.add_argument(
        "--strategy",
        default="default",
        choices=["default", "mirrored", "multi_worker"],
        help="Distribution: mirrored = all local GPUs; multi_worker = MultiWorkerMirroredStrategy from "
        "TF_CONFIG (docs/TRAINING.md).",
    )
    p.add_argument(
        "--image_every",
        type=int,
        default=None,
        help="TensorBoard images of drawn predictions every N steps (default: train.checkpoint_every; 0 disables).",
    )
    p.add_argument("--eval_images", type=int, default=None, help="Evaluate on at most this many val images.")
    add_bool(
        p, "skip_corrupt", False, "Skip and count corrupt records instead of stopping (= --set input.skip_corrupt=true)"
    )
    p.add_argument(
        "--num_train", type=int, default=1000, help="Synthetic training images generated when no --records exist."
    )
    p.add_argument("--num_val", type=int, default=100, help="Synthetic validation images generated when none exist.")


def build_config(args):
    """The run's config: preset or --config file, then --set, then the shorthand flags; validated."""
    from maskrcnn_body.config import apply_overrides, build_preset, load_file, parse_overrides

    cfg = load_file(args.config) if args.config else build_preset(args.preset)
    overrides = parse_overrides(args.set)
    if args.batch_size is not None:
        overrides["train.batch_size"] = args.batch_size
    if args.skip_corrupt:
        overrides["input.skip_corrupt"] = True
    cfg = apply_overrides(cfg, overrides)
    if args.max_steps is not None:
        cfg = apply_overrides(cfg, {"train.max_images": args.max_steps * cfg.train.batch_size})
    return cfg


def print_config(cfg) -> None:
    from maskrcnn_body.config import describe_fields

    rows = describe_fields(cfg)
    width = max(len(k) for k, *_ in rows)
    for key, tp, value, doc in rows:
        print(f"{key:<{width}}  {value!r:<24} {tp}\n{'':<{width}}  {doc}")


def ensure_synthetic_data(train: List[str], val: List[str], num_train: int, num_val: int, seed: int) -> None:
    """Generates the synthetic splits when the default globs match nothing."""
    from maskrcnn_body.errors import UserError

    missing = [p for p in train + val if not glob.glob(p)]
    if not missing:
        return
    if not set(missing) <= {DEFAULT_TRAIN, DEFAULT_VAL}:
        raise UserError(
            f"no files match {missing}; convert the data first (maskrcnn-body convert, "
            "docs/DATASETS.md) or leave --records/--val_records at their defaults to use the "
            "synthetic dataset"
        )
    from maskrcnn_body.data.synthetic import summary_path, write_dataset

    print(
        f"no records at {DEFAULT_TRAIN}: generating the synthetic dataset ({num_train} train / {num_val} val images)",
        flush=True,
    )
    summary = write_dataset(DEFAULT_PREFIX, num_train, num_val, seed=seed)
    print(f"wrote {summary_path(DEFAULT_PREFIX)} in {summary['seconds']} s", flush=True)


# --------------------------------------------------------------------------- chief-side hooks
def _stack_images(pictures):
    """PIL images -> uint8 (K, H, W, 3), zero-padded to the largest size."""
    import numpy as np

    arrays = [np.asarray(p.convert("RGB")) for p in pictures]
    h = max(a.shape[0] for a in arrays)
    w = max(a.shape[1] for a in arrays)
    out = np.zeros((len(arrays), h, w, 3), np.uint8)
    for i, a in enumerate(arrays):
        out[i, : a.shape[0], : a.shape[1]] = a
    return out


def prediction_images_hook(trainer, val_patterns, every: int, num_images: int = 4, draw_dir: Optional[str] = None):
    """Every ``every`` steps: detections on the first ``num_images`` val images drawn (ground
    truth | prediction) into TensorBoard (``predictions``) and, when ``draw_dir`` is set, saved
    as ``draw_dir/step_<N>/<source_id>.png`` with the ``.npz`` dumps next to them."""
    from maskrcnn_body.drawing.people import render_dump
    from maskrcnn_body.evaluation import dumps
    from maskrcnn_body.inference.evaluate import predict_dumps
    from maskrcnn_body.training.trainer import Hook
    from maskrcnn_body.utils.files import safe_file_name

    def run(step: int) -> None:
        pics = []
        for d in predict_dumps(trainer.model, val_patterns, trainer.cfg, max_images=num_images):
            pic = render_dump(d, side_by_side=True)
            pics.append(pic)
            if draw_dir:
                base = os.path.join(draw_dir, f"step_{step:06d}", safe_file_name(d["source_id"]))
                dumps.write_dump(base + ".npz", **d)
                pic.save(base + ".png")
        if pics:
            trainer.summaries.images(step, "predictions", _stack_images(pics), max_outputs=num_images)
            trainer.summaries.flush()

    return Hook(every, run, chief_only=True, at_end=bool(draw_dir))


def evaluation_hook(trainer, val_patterns, every: int, max_images: Optional[int] = None):
    """Every ``every`` steps and after the last step: full evaluation on the val records,
    printed as the per-part table, written to ``TRAIN_DIR/eval/metrics-<step>.json`` and to
    TensorBoard (``eval/...``)."""
    from maskrcnn_body.evaluation import report
    from maskrcnn_body.inference.evaluate import evaluate_model
    from maskrcnn_body.training.trainer import Hook

    def run(step: int) -> None:
        eval_dir = os.path.join(trainer.train_dir, "eval")
        res = evaluate_model(
            trainer.model, val_patterns, trainer.cfg, os.path.join(eval_dir, "dumps"), max_images=max_images
        )
        print(
            f"\nevaluation at step {step} on {val_patterns}:\n" + report.format_report(res.summary, res.num_images),
            flush=True,
        )
        report.write_json(res.summary, os.path.join(eval_dir, f"metrics-{step}.json"))
        s = res.summary
        scalars = {"eval/box_AP": s["box"]["AP"]}
        for ch, v in s["mask"].items():
            scalars[f"eval/mask_{ch}_AP50"] = v["AP50"]
        trainer.summaries.scalars(step, {k: v for k, v in scalars.items() if v is not None})

    return Hook(every, run, chief_only=True, at_end=True)


def run(args) -> int:
    cfg = build_config(args)
    if args.list_config:
        print_config(cfg)
        return 0
    import tensorflow as tf

    tf.get_logger().setLevel("WARNING")  # TF's own INFO lines (checkpoint sharding, ...)
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.WARNING)
    from maskrcnn_body.training import distribute

    strategy = distribute.make_strategy(args.strategy)  # first: multi-worker needs that
    from maskrcnn_body.data import pipeline
    from maskrcnn_body.model.maskrcnn import build_model
    from maskrcnn_body.training.faults import TrainingError
    from maskrcnn_body.training.trainer import Trainer
    from maskrcnn_body.utils.progress import peak_memory_mb

    train, val = list_value(args, "records"), list_value(args, "val_records")
    if distribute.is_chief(strategy):
        ensure_synthetic_data(train, val, args.num_train, args.num_val, args.seed)
    counter = pipeline.CorruptCounter()

    def dataset_fn(global_batch):
        return pipeline.build_dataset(train, cfg.input, global_batch, training=True, seed=args.seed, counter=counter)

    trainer = Trainer(
        cfg,
        build_model,
        dataset_fn,
        args.train_dir,
        strategy=strategy,
        seed=args.seed,
        precision=args.mixed_precision,
        restore_from=args.restore_from,
        corrupt_count=lambda: counter.skipped_records + counter.truncated_shards,
    )
    if val:
        image_every = cfg.train.checkpoint_every if args.image_every is None else args.image_every
        draw_dir = os.path.join(args.train_dir, "draw") if args.draw else None
        trainer.hooks.append(prediction_images_hook(trainer, val, image_every, draw_dir=draw_dir))
        trainer.hooks.append(evaluation_hook(trainer, val, cfg.train.eval_every, args.eval_images))
    from maskrcnn_body.ops import custom

    note = custom.availability_note()
    if note:
        print(note, file=sys.stderr, flush=True)
    print(
        f"training {cfg.name} in {args.train_dir} on {train} with {strategy.num_replicas_in_sync} "
        f"replica(s); {cfg.train.describe()}",
        flush=True,
    )
    try:
        result = trainer.train()
    except TrainingError as e:
        print(f"\nERROR: {e}", file=sys.stderr)
        return 1
    c = counter.as_dict()
    print(
        f"\nfinished at step {result.step} ({result.stopped_by}); {result.skipped_steps} non-finite steps "
        f"skipped; {c['skipped_records']} corrupt records and {c['truncated_shards']} truncated shards "
        f"skipped; {result.steps_per_sec:.2f} steps/s; peak memory {peak_memory_mb():.0f} MiB; "
        f"checkpoint {result.checkpoint}",
        flush=True,
    )
    return 0
