"""Small models for tests: a training directory holding an untrained, seeded model."""

from __future__ import annotations

import keras

from maskrcnn_body.config import get_config
from maskrcnn_body.inference.loading import write_train_dir
from maskrcnn_body.model.maskrcnn import build_model


def write_random_train_dir(train_dir: str, preset: str = "cpu_small", seed: int = 0, **overrides) -> str:
    """A training directory holding an untrained, random-weight model of ``get_config(preset,
    **overrides)`` (seeded): for smoke and load tests of the inference path without training.
    Returns the checkpoint path."""
    keras.utils.set_random_seed(seed)
    cfg = get_config(preset, **overrides)
    return write_train_dir(build_model(cfg), cfg, train_dir)
