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

import sys

from maskrcnn_body.cli.args import add_bool, add_list, list_value
from maskrcnn_body.workflows.train import DEFAULT_TRAIN, DEFAULT_TRAIN_DIR, DEFAULT_VAL, PRECISIONS, STRATEGIES


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
        "--calib_records",
        action="append",
        default=None,
        metavar="GLOB",
        help="Held-out TFRecord glob(s) on which the mask decoding thresholds are chosen after the last step and "
        "stored with the model, never the val split (repeatable or comma-separated; default: the synthetic "
        "calibration split when training on the default synthetic records, else none; '' disables)",
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
        default=DEFAULT_TRAIN_DIR,
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
        choices=PRECISIONS,
        help="Precision policy; mixed_float16 uses dynamic loss scaling.",
    )
    p.add_argument(
        "--strategy",
        default="default",
        choices=STRATEGIES,
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


def run(args) -> int:
    from maskrcnn_body.workflows.train import (
        TrainingFailed,
        TrainSettings,
        describe_config,
        make_config,
        run_training,
    )

    cfg = make_config(args.preset, args.config, args.set, args.batch_size, args.max_steps, args.skip_corrupt)
    if args.list_config:
        print(describe_config(cfg))
        return 0
    settings = TrainSettings(
        records=list_value(args, "records"),
        val_records=list_value(args, "val_records"),
        train_dir=args.train_dir,
        seed=args.seed,
        strategy=args.strategy,
        precision=args.mixed_precision,
        restore_from=args.restore_from,
        draw=args.draw,
        image_every=args.image_every,
        eval_images=args.eval_images,
        calib_records=None
        if args.calib_records is None
        else [v for i in args.calib_records for v in i.split(",") if v],
        num_train=args.num_train,
        num_val=args.num_val,
    )
    try:
        run_training(cfg, settings, log=lambda msg: print(msg, flush=True))
    except TrainingFailed as e:
        print(f"\nERROR: {e}", file=sys.stderr)
        return 1
    return 0
