"""The train workflow: records (or the built-in synthetic set) -> a trained training directory -> a model.

    import maskrcnn_body as mb
    model = mb.train()                                   # = python train/train.py: synthetic data, cpu_small
    model = mb.train(preset="r50_fpn", records="data/records/pascal_part_train-*",
                     val_records="data/records/pascal_part_val-*", overrides=["train.max_images=20000"])
    model("photo.jpg")                                   # the trained model, loaded from its training directory

:func:`train` builds the config (:func:`make_config`: preset or saved config, then ``overrides``), generates the
synthetic splits when the default records are missing (:func:`ensure_synthetic_data`), runs the
:class:`~maskrcnn_body.training.trainer.Trainer` with the evaluation and drawing hooks of
:mod:`maskrcnn_body.workflows.hooks`, and returns :func:`maskrcnn_body.load` of the training directory with the
run's :class:`~maskrcnn_body.training.trainer.TrainResult` as ``model.training``. A training directory that
already has checkpoints resumes (step, optimiser state, data position); SIGINT/SIGTERM save a checkpoint and stop.
``maskrcnn-body train`` / ``python train/train.py`` are this function with flags.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import sys
from typing import Callable, Dict, List, Optional, Sequence, Union

from maskrcnn_body.errors import UserError

DEFAULT_PREFIX = "data/records/synthetic"
DEFAULT_TRAIN = DEFAULT_PREFIX + "_train-*.tfrecord"
DEFAULT_VAL = DEFAULT_PREFIX + "_val-*.tfrecord"
DEFAULT_CALIB = DEFAULT_PREFIX + "_calib-*.tfrecord"
"""The synthetic calibration split: the default run chooses its mask decoding there (not on val)."""
DEFAULT_TRAIN_DIR = "output/mask_rcnn"
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
STRATEGIES = ("default", "mirrored", "multi_worker")

Globs = Union[str, Sequence[str]]


class TrainingFailed(RuntimeError):
    """Training stopped on an error it reports (diverged, too many bad steps): the message says which."""


def as_globs(value: Optional[Globs]) -> List[str]:
    """A glob, a path or a list of them -> the non-empty ones as strings (None -> [])."""
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [os.fspath(value)] if os.fspath(value) else []
    return [os.fspath(v) for v in value if os.fspath(v)]


def make_config(
    preset: str = "cpu_small",
    config: Optional[str] = None,
    overrides: Union[Sequence[str], Dict[str, object], None] = None,
    batch_size: Optional[int] = None,
    max_steps: Optional[int] = None,
    skip_corrupt: bool = False,
):
    """The run's validated :class:`~maskrcnn_body.config.Config`: ``preset`` (or the saved ``config`` JSON file,
    e.g. a training directory's ``config.json``), then ``overrides`` (``["section.field=value", ...]`` or a dict),
    then the shorthands: ``batch_size`` (= ``train.batch_size``), ``skip_corrupt`` (= ``input.skip_corrupt``),
    ``max_steps`` (= ``train.max_images = max_steps * batch size``). Every value is type-checked."""
    from maskrcnn_body.config import apply_overrides, build_preset, load_file, parse_overrides

    cfg = load_file(config) if config else build_preset(preset)
    values: Dict[str, object] = dict(overrides) if isinstance(overrides, dict) else {}
    if not isinstance(overrides, dict):
        values.update(parse_overrides(list(overrides or [])))
    if batch_size is not None:
        values["train.batch_size"] = batch_size
    if skip_corrupt:
        values["input.skip_corrupt"] = True
    cfg = apply_overrides(cfg, values)
    if max_steps is not None:
        cfg = apply_overrides(cfg, {"train.max_images": max_steps * cfg.train.batch_size})
    return cfg


def describe_config(cfg) -> str:
    """Every config field with its value, type and meaning (``maskrcnn-body train --list-config``)."""
    from maskrcnn_body.config import describe_fields

    rows = describe_fields(cfg)
    width = max(len(k) for k, *_ in rows)
    return "\n".join(f"{key:<{width}}  {value!r:<24} {tp}\n{'':<{width}}  {doc}" for key, tp, value, doc in rows)


def ensure_synthetic_data(
    train: Sequence[str], val: Sequence[str], num_train: int = 1000, num_val: int = 100, seed: int = 0
) -> None:
    """Generates the synthetic splits when the default globs match nothing; other globs that match nothing are
    a :class:`~maskrcnn_body.errors.UserError` saying how to convert data."""
    missing = [p for p in list(train) + list(val) if not glob.glob(p)]
    if not missing:
        return
    if not set(missing) <= {DEFAULT_TRAIN, DEFAULT_VAL}:
        raise UserError(
            f"no files match {missing}; convert the data first (maskrcnn-body convert, "
            "docs/DATASETS.md) or leave --records/--val_records at their defaults to use the "
            "synthetic dataset"
        )
    from maskrcnn_body.convert.synthetic import summary_path, write_dataset

    print(
        f"no records at {DEFAULT_TRAIN}: generating the synthetic dataset ({num_train} train / {num_val} val images)",
        flush=True,
    )
    summary = write_dataset(DEFAULT_PREFIX, num_train, num_val, seed=seed)
    print(f"wrote {summary_path(DEFAULT_PREFIX)} in {summary['seconds']} s", flush=True)


def calibration_records(settings: TrainSettings) -> List[str]:
    """The calibration glob(s) of a run: ``settings.calib_records``; when None, the synthetic calibration
    split (:data:`DEFAULT_CALIB`) if the run trains and validates on the default synthetic records, else
    none (a real dataset's held-out split is the user's to name)."""
    if settings.calib_records is not None:
        return as_globs(settings.calib_records)
    default = as_globs(settings.records) == [DEFAULT_TRAIN] and as_globs(settings.val_records) == [DEFAULT_VAL]
    return [DEFAULT_CALIB] if default else []


def ensure_calibration_data(calib: Sequence[str], num: int = 100, seed: int = 0) -> None:
    """Generates the synthetic calibration split when ``calib`` is the default glob and matches nothing; any
    other glob that matches nothing is a :class:`~maskrcnn_body.errors.UserError`."""
    missing = [p for p in calib if not glob.glob(p)]
    if not missing:
        return
    if missing != [DEFAULT_CALIB]:
        raise UserError(f"no files match the calibration records {missing}; give an existing glob or '' for none")
    from maskrcnn_body.convert.synthetic import write_split

    print(f"no records at {DEFAULT_CALIB}: generating the synthetic calibration split ({num} images)", flush=True)
    write_split(DEFAULT_PREFIX, "calib", num, seed=seed)


@dataclasses.dataclass
class TrainSettings:
    """Where the data comes from and how the run executes (what is learned is the config).

    Attributes:
      records: training TFRecord glob(s) (default: the synthetic train split, generated when missing).
      val_records: validation glob(s) for the periodic evaluation, drawn predictions and the final table;
        empty: none.
      train_dir: checkpoints, ``config.json``, TensorBoard logs, evaluation dumps.
      seed: initialisation, data order and augmentation.
      strategy: ``default``, ``mirrored`` (all local GPUs) or ``multi_worker`` (``TF_CONFIG``).
      precision: ``float32``, ``mixed_float16`` (dynamic loss scaling) or ``mixed_bfloat16``.
      restore_from: checkpoint to partially restore when ``train_dir`` has none (variables matching in name and
        shape; e.g. ImageNet backbone weights).
      draw: also write drawn predictions (PNG) and ``.npz`` dumps under ``train_dir/draw/step_N``.
      image_every: TensorBoard drawings every N steps (None: ``train.checkpoint_every``; 0: never).
      eval_images: evaluate on at most this many val images (None: all).
      calib_records: glob(s) of a held-out split on which the mask decoding is chosen after the last step
        (:mod:`maskrcnn_body.workflows.calibrate`; stored in ``config.json``, used by every backend); None: the
        synthetic calibration split when training on the default synthetic records, else none; empty: none.
      num_train, num_val: synthetic images generated when the default records are missing.
      progress: the progress bar.
    """

    records: Globs = DEFAULT_TRAIN
    val_records: Globs = DEFAULT_VAL
    train_dir: str = DEFAULT_TRAIN_DIR
    seed: int = 0
    strategy: str = "default"
    precision: str = "float32"
    restore_from: Optional[str] = None
    draw: bool = False
    image_every: Optional[int] = None
    eval_images: Optional[int] = None
    calib_records: Optional[Globs] = None
    num_train: int = 1000
    num_val: int = 100
    progress: bool = True

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise UserError(f"strategy {self.strategy!r}: choose from {', '.join(STRATEGIES)}")
        if self.precision not in PRECISIONS:
            raise UserError(f"precision {self.precision!r}: choose from {', '.join(PRECISIONS)}")


def run_training(cfg, settings: TrainSettings, log: Callable[[str], None] = print):
    """Trains ``cfg`` as ``settings`` say; returns the :class:`~maskrcnn_body.training.trainer.TrainResult`
    (raises :class:`TrainingFailed` when training stops on an error)."""
    import tensorflow as tf

    tf.get_logger().setLevel("WARNING")  # TF's own INFO lines (checkpoint sharding, ...)
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.WARNING)
    from maskrcnn_body.training import distribute

    strategy = distribute.make_strategy(settings.strategy)  # first: multi-worker needs that
    from maskrcnn_body.data import pipeline
    from maskrcnn_body.model.maskrcnn import build_model
    from maskrcnn_body.ops import custom
    from maskrcnn_body.training.faults import TrainingError
    from maskrcnn_body.training.trainer import RunOptions, Trainer
    from maskrcnn_body.utils.progress import peak_memory_mb
    from maskrcnn_body.workflows.hooks import calibration_hook, evaluation_hook, prediction_images_hook

    train, val = as_globs(settings.records), as_globs(settings.val_records)
    if not train:
        raise UserError("no training records given (records=GLOB)")
    calib = calibration_records(settings) if val else []
    if distribute.is_chief(strategy):
        ensure_synthetic_data(train, val, settings.num_train, settings.num_val, settings.seed)
        ensure_calibration_data(calib, settings.num_val, settings.seed)
    counter = pipeline.CorruptCounter()

    def dataset_fn(global_batch):
        return pipeline.build_dataset(
            train, cfg.input, global_batch, training=True, seed=settings.seed, counter=counter
        )

    options = RunOptions(
        strategy=strategy,
        seed=settings.seed,
        precision=settings.precision,
        restore_from=settings.restore_from,
        progress=settings.progress,
    )
    trainer = Trainer(
        cfg,
        build_model,
        dataset_fn,
        settings.train_dir,
        options,
        corrupt_count=lambda: counter.skipped_records + counter.truncated_shards,
    )
    if val:
        image_every = cfg.train.checkpoint_every if settings.image_every is None else settings.image_every
        draw_dir = trainer.dir.draw_dir if settings.draw else None
        if calib:  # first: the final drawings and evaluation then decode as chosen
            trainer.hooks.append(calibration_hook(trainer, calib, settings.eval_images))
        trainer.hooks.append(prediction_images_hook(trainer, val, image_every, draw_dir=draw_dir))
        trainer.hooks.append(
            evaluation_hook(trainer, val, cfg.train.eval_every, settings.eval_images, train_patterns=train)
        )
    note = custom.availability_note()
    if note:
        print(note, file=sys.stderr, flush=True)
    log(
        f"training {cfg.name} in {settings.train_dir} on {train} with {strategy.num_replicas_in_sync} "
        f"replica(s); {cfg.train.describe()}"
    )
    try:
        result = trainer.train()
    except TrainingError as e:
        raise TrainingFailed(str(e)) from e
    c = counter.as_dict()
    log(
        f"\nfinished at step {result.step} ({result.stopped_by}); {result.skipped_steps} non-finite steps "
        f"skipped; {c['skipped_records']} corrupt records and {c['truncated_shards']} truncated shards "
        f"skipped; {result.steps_per_sec:.2f} steps/s; peak memory {peak_memory_mb():.0f} MiB; "
        f"checkpoint {result.checkpoint}"
    )
    return result


def train(
    preset: str = "cpu_small",
    *,
    config: Optional[str] = None,
    overrides: Union[Sequence[str], Dict[str, object], None] = None,
    batch_size: Optional[int] = None,
    max_steps: Optional[int] = None,
    skip_corrupt: bool = False,
    **settings,
):
    """Trains a model and returns it loaded (:func:`maskrcnn_body.load` of the training directory, on
    TensorFlow), with the run's :class:`~maskrcnn_body.training.trainer.TrainResult` as ``model.training``.

    Config: :func:`make_config` (``preset``, ``config``, ``overrides``, ``batch_size``, ``max_steps``,
    ``skip_corrupt``). ``settings``: the fields of :class:`TrainSettings` (``records``, ``val_records``,
    ``train_dir``, ``seed``, ``strategy``, ``precision``, ``restore_from``, ``draw``, ``image_every``,
    ``eval_images``, ``num_train``, ``num_val``, ``progress``). With no arguments this is the default run of
    ``python train/train.py``: the synthetic data (generated when missing), ``cpu_small``, evaluation at the end.
    Raises :class:`TrainingFailed` when training stops on an error."""
    unknown = set(settings) - {f.name for f in dataclasses.fields(TrainSettings)}
    if unknown:
        raise TypeError(f"train() got unexpected arguments {sorted(unknown)}")
    cfg = make_config(preset, config, overrides, batch_size, max_steps, skip_corrupt)
    run = TrainSettings(**settings)
    result = run_training(cfg, run)
    from maskrcnn_body.workflows.model import load

    model = load(run.train_dir)
    model.training = result
    return model
