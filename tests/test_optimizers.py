"""Optimiser presets do what their names say (issue 26, fix 8)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from maskrcnn_body.config import get_config
from maskrcnn_body.training.optimizers import build_optimizer, current_learning_rate


def _steps(train_cfg, w0, grads):
    kernel = keras.Variable(np.array(w0, np.float32), name="kernel")
    bias = keras.Variable(np.array(w0, np.float32), name="bias")
    opt = build_optimizer(train_cfg)
    for g in grads:
        opt.apply_gradients([(np.array(g, np.float32), kernel), (np.array(g, np.float32), bias)])
    return kernel.numpy(), bias.numpy(), current_learning_rate(opt)  # constant schedule


def _coupled_sgd(w0, grads, lr, wd, momentum=0.9):
    w, v = np.array(w0, np.float64), 0.0
    for g in grads:
        v = momentum * v - lr * (np.array(g) + wd * w)
        w = w + v
    return w


def test_sgd_weight_decay_is_coupled_l2_before_the_momentum():
    """sgd: weights follow momentum SGD on g + wd * w (Detectron's WEIGHT_DECAY), biases on g alone;
    Keras' decoupled decay (the old behaviour) keeps the decay out of the momentum and differs."""
    t = get_config(
        "r50_fpn", **{"train.weight_decay": 0.1, "train.warmup_images": 0, "train.schedule": "constant"}
    ).train
    w0, grads = [1.0, -2.0], [[0.5, 0.25], [0.0, 0.0], [0.0, 0.0]]
    kernel, bias, lr = _steps(t, w0, grads)
    np.testing.assert_allclose(kernel, _coupled_sgd(w0, grads, lr, 0.1), rtol=1e-5)
    np.testing.assert_allclose(bias, _coupled_sgd(w0, grads, lr, 0.0), rtol=1e-5)


def test_adamw_learning_rate_scales_by_the_square_root_of_the_batch():
    t = get_config("cpu_small").train
    assert t.optimizer == "adamw"
    for batch in (1, 4, 16, 64):
        tb = get_config("cpu_small", **{"train.batch_size": batch}).train
        assert tb.effective_learning_rate == pytest.approx(t.learning_rate * (batch / 16) ** 0.5)
    assert t.effective_learning_rate == pytest.approx(2e-3)  # the default run's rate is unchanged


def test_from_scratch_preset_trains_three_times_the_pretrained_one():
    scratch, pretrained = get_config("r50_fpn").train, get_config("r50_fpn_imagenet").train
    assert pretrained.max_images == 1_440_000  # Detectron's 1x
    assert scratch.max_images == 3 * pretrained.max_images  # GroupNorm from scratch: 3x
