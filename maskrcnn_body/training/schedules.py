"""Learning-rate schedules: linear warm-up followed by cosine, step or constant decay.

The schedule is a ``keras.optimizers.schedules.LearningRateSchedule`` evaluated on the
optimizer's own update counter (``optimizer.iterations``), so skipped (non-finite) steps do
not advance it and a restored optimizer resumes the schedule exactly.
"""

from __future__ import annotations

import math
from typing import Sequence

import keras
import tensorflow as tf

from maskrcnn_body.errors import InvalidArgument

SCHEDULES = ("cosine", "step", "constant")


@keras.saving.register_keras_serializable(package="maskrcnn_body")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """``lr(step)`` for an integer step >= 0 (float32 scalar).

    * warm-up: ``base_lr * (warmup_start + (1 - warmup_start) * step / warmup_steps)`` for
      ``step < warmup_steps``;
    * ``"cosine"``: ``base_lr * (final + (1 - final) * 0.5 * (1 + cos(pi * t)))`` with
      ``t = (step - warmup_steps) / (total_steps - warmup_steps)`` clipped to [0, 1];
    * ``"step"``: ``base_lr * 0.1 ** (number of boundaries in decay_steps <= step)``;
    * ``"constant"``: ``base_lr``.
    """

    def __init__(
        self,
        base_lr: float,
        total_steps: int,
        warmup_steps: int = 0,
        schedule: str = "cosine",
        decay_steps: Sequence[int] = (),
        warmup_start: float = 0.001,
        final_fraction: float = 0.0,
    ):
        if schedule not in SCHEDULES:
            raise InvalidArgument(f"unknown learning-rate schedule {schedule!r}; choose one of {SCHEDULES}")
        if base_lr <= 0:
            raise InvalidArgument(f"learning rate must be > 0, got {base_lr}")
        if warmup_steps < 0 or total_steps < 1:
            raise InvalidArgument(f"need warmup_steps >= 0 and total_steps >= 1, got {warmup_steps}, {total_steps}")
        self.base_lr = float(base_lr)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.schedule = schedule
        self.decay_steps = tuple(int(s) for s in decay_steps)
        self.warmup_start = float(warmup_start)
        self.final_fraction = float(final_fraction)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        base = tf.constant(self.base_lr, tf.float32)
        if self.schedule == "cosine":
            span = max(self.total_steps - self.warmup_steps, 1)
            t = tf.clip_by_value((step - self.warmup_steps) / span, 0.0, 1.0)
            f = self.final_fraction
            decayed = base * (f + (1.0 - f) * 0.5 * (1.0 + tf.cos(math.pi * t)))
        elif self.schedule == "step":
            n = tf.zeros([], tf.float32)
            for boundary in self.decay_steps:
                n += tf.cast(step >= boundary, tf.float32)
            decayed = base * tf.pow(0.1, n)
        else:
            decayed = base
        if self.warmup_steps > 0:
            frac = self.warmup_start + (1.0 - self.warmup_start) * step / self.warmup_steps
            decayed = tf.where(step < self.warmup_steps, base * frac, decayed)
        return decayed

    def get_config(self):
        return {
            "base_lr": self.base_lr,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "schedule": self.schedule,
            "decay_steps": list(self.decay_steps),
            "warmup_start": self.warmup_start,
            "final_fraction": self.final_fraction,
        }


def from_config(train_cfg) -> WarmupDecay:
    """The schedule described by a :class:`maskrcnn_body.config.TrainConfig`, in steps of its global
    batch: the learning rate scaled linearly to the batch, lengths converted from images to steps."""
    return WarmupDecay(
        train_cfg.effective_learning_rate,
        train_cfg.max_steps,
        train_cfg.warmup_steps,
        train_cfg.schedule,
        train_cfg.decay_steps,
    )
