"""Optimizer construction from :class:`maskrcnn_body.config.TrainConfig` (Keras 3 optimizers).

* ``"adamw"``: ``keras.optimizers.AdamW`` (decoupled weight decay ``w -= lr * wd * w``);
* ``"sgd"``: momentum-0.9 SGD with L2 regularisation *coupled* to the gradient, ``g += wd * w`` before
  the momentum (:class:`SGDWithL2`): what Detectron's ``WEIGHT_DECAY`` and the "1x" recipes mean. Keras'
  own SGD ``weight_decay`` is decoupled, ``w -= lr * wd * w`` outside the momentum, about
  ``1 / (1 - momentum)`` = 10x weaker at the same value (issue 26).

Biases and normalisation scales/offsets are excluded from weight decay. Gradient clipping by
global norm is *not* configured here: the train step clips the all-reduced gradient itself
(see :mod:`maskrcnn_body.training.step`), so the threshold means the same for any number of
replicas. With ``mixed_float16`` the optimizer is wrapped in
``keras.optimizers.LossScaleOptimizer`` (dynamic loss scaling).
"""

from __future__ import annotations

import keras
from keras import ops

from maskrcnn_body.errors import InvalidArgument
from maskrcnn_body.training import schedules

MIXED_PRECISION_POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
NO_DECAY_NAMES = ["bias", "gamma", "beta"]


def set_precision_policy(policy: str) -> None:
    """Sets the global Keras dtype policy; call before building the model."""
    if policy not in MIXED_PRECISION_POLICIES:
        raise InvalidArgument(f"unknown precision policy {policy!r}; choose one of {MIXED_PRECISION_POLICIES}")
    keras.mixed_precision.set_global_policy(policy)


@keras.saving.register_keras_serializable(package="maskrcnn_body")
class SGDWithL2(keras.optimizers.SGD):
    """``keras.optimizers.SGD`` plus an L2 term ``l2 * w`` added to each decayed variable's gradient
    before the momentum (coupled weight decay); variables excluded with ``exclude_from_weight_decay``
    get none. Keras' own ``weight_decay`` stays unused (None)."""

    def __init__(self, l2: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.l2 = float(l2)

    def update_step(self, gradient, variable, learning_rate):
        if self.l2 and self._use_weight_decay(variable):
            gradient = gradient + ops.cast(self.l2, variable.dtype) * variable
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "l2": self.l2}


def build_optimizer(train_cfg, precision: str = "float32") -> keras.optimizers.Optimizer:
    """The optimizer (with its warm-up/decay schedule) for ``train_cfg``."""
    lr = schedules.from_config(train_cfg)
    name = train_cfg.optimizer.lower()
    if name == "adamw":
        opt = keras.optimizers.AdamW(learning_rate=lr, weight_decay=train_cfg.weight_decay)
    elif name == "sgd":
        opt = SGDWithL2(l2=train_cfg.weight_decay, learning_rate=lr, momentum=0.9)
    else:
        raise InvalidArgument(
            f"unknown optimizer {train_cfg.optimizer!r} in config train.optimizer; use 'adamw' or 'sgd'"
        )
    if train_cfg.weight_decay:
        opt.exclude_from_weight_decay(var_names=NO_DECAY_NAMES)
    if precision == "mixed_float16":
        opt = keras.optimizers.LossScaleOptimizer(opt)
    return opt


def is_loss_scaled(optimizer) -> bool:
    return isinstance(optimizer, keras.optimizers.LossScaleOptimizer)


def current_learning_rate(optimizer) -> float:
    """The learning rate the next update will use (a Python float)."""
    lr = optimizer.learning_rate
    return float(lr(optimizer.iterations) if callable(lr) else lr)
