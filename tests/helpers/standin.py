"""Test doubles for the trainer: a tiny stand-in model and an in-memory batch dataset.

They follow the interfaces of docs/DESIGN.md (``compute_losses(batch, training=True)`` with the
loss keys of the real model; batches with ``images``/``gt_boxes``/...), so trainer tests and
the multi-worker test run in seconds without the real Mask R-CNN.

``python tests/helpers/standin.py --train_dir D --max_steps N`` trains the stand-in
(used by the kill/resume and multi-worker tests, which need separate processes).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import keras
import numpy as np
import tensorflow as tf

LOSS_KEYS = ("rpn_class", "rpn_box", "class", "box", "mask", "keypoint")


class StandInModel(keras.Model):
    """Predicts the mean normalised gt box of an image from its pixels (conv -> pool -> dense).

    ``compute_losses`` returns the six loss terms of the real model (all derived from the same
    regression, so every term is finite or NaN together) and ``total`` = their weighted sum.
    """

    def __init__(self, cfg, extra_head: bool = False, **kw):
        super().__init__(**kw)
        self.cfg = cfg
        self.conv = keras.layers.Conv2D(4, 3, strides=2, activation="relu", name="conv")
        self.pool = keras.layers.GlobalAveragePooling2D(name="pool")
        self.box = keras.layers.Dense(4, name="box")
        self.extra = keras.layers.Dense(2, name="extra_head") if extra_head else None

    def build(self, input_shape):
        pass  # sub-layers build on their first call

    def call(self, images, training=False):
        x = self.pool(self.conv(images / 255.0))
        out = self.box(x)
        if self.extra is not None:
            out = out + 0.0 * tf.reduce_sum(self.extra(x), axis=-1, keepdims=True)
        return out

    def compute_losses(self, batch, training=True):
        pred = tf.cast(self(batch["images"], training=training), tf.float32)
        size = tf.cast(tf.shape(batch["images"])[1], tf.float32)
        n = tf.maximum(tf.cast(batch["num_gt"], tf.float32), 1.0)[:, None]
        target = tf.reduce_sum(batch["gt_boxes"], axis=1) / n / size
        err = tf.reduce_mean(tf.square(pred - target), axis=-1)
        base = tf.reduce_mean(err)
        weights = self.cfg.model.loss_weights
        losses = {k: base * (i + 1) / 6.0 for i, k in enumerate(LOSS_KEYS)}
        losses["total"] = tf.add_n([weights.get(k, 1.0) * losses[k] for k in LOSS_KEYS])
        return losses


def build_standin(cfg, extra_head: bool = False) -> StandInModel:
    model = StandInModel(cfg, extra_head=extra_head, name="standin")
    s = cfg.input.pad_size
    model(tf.zeros((1, s, s, 3)))
    return model


def make_batches(num: int, size: int, max_persons: int = 2, seed: int = 0, nan_at: tuple = ()) -> dict:
    """``num`` examples as numpy arrays in the pipeline batch format (images, num_gt, gt_boxes);
    examples whose index is in ``nan_at`` get NaN pixels (a poisoned input)."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 255, (num, size, size, 3)).astype(np.float32)
    xy = rng.uniform(0, size / 2, (num, max_persons, 2))
    wh = rng.uniform(4, size / 2, (num, max_persons, 2))
    boxes = np.concatenate([xy, xy + wh], -1).astype(np.float32)
    # make the target learnable: brighten the image in proportion to its first box's x1
    images[..., 0] = np.clip(images[..., 0] * 0.2 + boxes[:, :1, None, 0] / size * 200, 0, 255)
    for i in nan_at:
        images[i] = np.nan
    return {
        "images": images,
        "num_gt": np.full((num,), max_persons, np.int32),
        "gt_boxes": boxes,
        "image_shape": np.full((num, 2), size, np.int32),
        "source_id": np.array([f"standin-{i}" for i in range(num)]),
    }


def dataset_fn_from(arrays: dict, shuffle: bool = True):
    """``dataset_fn(global_batch)`` over in-memory ``arrays`` (seeded shuffle, fixed shapes)."""

    def dataset_fn(global_batch: int) -> tf.data.Dataset:
        ds = tf.data.Dataset.from_tensor_slices(arrays)
        if shuffle:
            ds = ds.shuffle(len(arrays["images"]), reshuffle_each_iteration=True)
        return ds.repeat().batch(global_batch, drop_remainder=True)

    return dataset_fn


def tiny_config(max_steps: int = 10, batch_size: int = 2, **train_overrides):
    """cpu_small at 32 px for the stand-in: ``max_steps`` steps of ``batch_size`` (the config counts
    images), 2 warm-up steps, a step learning rate of 1e-2 at batch 2; ``train_overrides`` are
    ``cfg.train`` fields."""
    from maskrcnn_body.config import get_config

    cfg = get_config(
        "cpu_small",
        **{
            "input.min_size": 32,
            "input.max_size": 32,
            "train.batch_size": batch_size,
            "train.max_images": max_steps * batch_size,
            "train.warmup_images": 2 * batch_size,
            "train.learning_rate": 1e-2 * 16 / 2,
            "train.log_every": 1,
        },
    )
    for k, v in train_overrides.items():
        setattr(cfg.train, k, v)
    return cfg.validate()


def _install_kill_hook(point: str, step: str) -> None:
    """Makes the checkpointer SIGKILL this process at ``point`` of the save at ``step``: a kill
    inside the save/rotation window on purpose, independent of the machine's load."""
    import os
    import signal

    from maskrcnn_body.training.checkpoints import Checkpointer

    def hook(at: str, at_step: int) -> None:
        if at == point and int(at_step) == int(step):
            print(json.dumps({"event": "killing", "point": at, "step": int(at_step)}), flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    Checkpointer.fault_hook = hook


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--train_dir", required=True)
    p.add_argument("--max_steps", type=int, default=10)
    p.add_argument("--checkpoint_every", type=int, default=2)
    p.add_argument("--strategy", default="default")
    p.add_argument("--global_batch", type=int, default=0, help="global batch (default: 2 per replica)")
    p.add_argument("--step_sleep", type=float, default=0.0, help="seconds to sleep per step")
    p.add_argument("--weights_out", default="", help="write final weights (.npz) here")
    p.add_argument(
        "--kill_at",
        default="",
        help="POINT:STEP: SIGKILL this process at checkpoint-save stage POINT (written, recorded, deleted; see "
        "training.checkpoints.Checkpointer.fault_hook) of the save at STEP",
    )
    a = p.parse_args(argv)
    if a.kill_at:
        _install_kill_hook(*a.kill_at.split(":"))
    from maskrcnn_body.training import distribute
    from maskrcnn_body.training.trainer import Hook, RunOptions, Trainer

    strategy = distribute.make_strategy(a.strategy)
    cfg = tiny_config(
        max_steps=a.max_steps,
        batch_size=a.global_batch or 2 * strategy.num_replicas_in_sync,
        checkpoint_every=a.checkpoint_every,
    )
    data = make_batches(16, cfg.input.pad_size)
    hooks = [Hook(1, lambda s: time.sleep(a.step_sleep), chief_only=False)] if a.step_sleep else []
    trainer = Trainer(
        cfg,
        build_standin,
        dataset_fn_from(data),
        a.train_dir,
        hooks=hooks,
        options=RunOptions(strategy=strategy, progress=False),
    )
    start = trainer.restore()
    print(json.dumps({"event": "start", "step": trainer.step, "restored": start}), flush=True)
    result = trainer.train()
    if a.weights_out:
        np.savez(a.weights_out, *[v.numpy() for v in trainer.model.weights])
    print(json.dumps({"event": "done", "step": result.step, "stopped_by": result.stopped_by}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
