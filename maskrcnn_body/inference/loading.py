"""Loading a trained model: a training directory's config + newest (or a given) checkpoint.

Training directories are written by the trainer (``maskrcnn_body.training``) or by
:func:`write_train_dir` (a model built or converted in Python, e.g. with imported weights); their
layout is :mod:`maskrcnn_body.config.train_dir`'s.
"""

from __future__ import annotations

import copy
from typing import Any, Optional, Tuple

from maskrcnn_body.config import Config, ConfigError, set_value
from maskrcnn_body.config.train_dir import TrainDir, TrainDirError

ModelLoadError = TrainDirError
"""The training directory or checkpoint cannot be loaded (the message says why)."""


def load_trained_model(
    train_dir: str, checkpoint: Optional[str] = None, cfg: Optional[Config] = None, **overrides: Any
) -> Tuple[object, Config, str]:
    """Returns ``(model, cfg, checkpoint_path)``; the model's weights come from the checkpoint.

    Args:
      train_dir: a training directory (``config.json`` + ``ckpt-N`` files).
      checkpoint: a specific checkpoint prefix; default: the newest in ``train_dir``.
      cfg: use this config instead of reading the directory's (it is not changed: the overrides
        apply to a copy).
      overrides: dotted config keys to change before building (None values are ignored), e.g.
        ``**{"model.postprocess.score_threshold": 0.3}``.
    """
    from maskrcnn_body.model.maskrcnn import build_model
    from maskrcnn_body.model.weights import restore_model_weights

    directory = TrainDir(train_dir)
    cfg = copy.deepcopy(cfg) if cfg is not None else directory.read_config()
    try:
        for key, value in overrides.items():
            if value is not None:
                set_value(cfg, key, value)
        cfg.validate()
    except ConfigError as e:
        raise ModelLoadError(str(e)) from None
    path = checkpoint or directory.latest_checkpoint()
    if path is None:
        raise ModelLoadError(f"no checkpoint in {train_dir}: train first (maskrcnn-body train --train_dir {train_dir})")
    model = build_model(cfg)
    try:
        restore_model_weights(model, path)
    except Exception as e:
        raise ModelLoadError(
            f"checkpoint {path} does not fit the model of {directory.config_path}: "
            f"{str(e).splitlines()[0] if str(e) else type(e).__name__}"
        ) from None
    return model, cfg, path


def write_train_dir(model, cfg: Config, train_dir: str, step: int = 0) -> str:
    """Writes ``train_dir/config.json`` and checkpoint ``ckpt-<step>`` (model variables) so that
    :func:`load_trained_model`, the command line and the server can read a model that was not
    trained by the trainer. Returns the checkpoint path."""
    from maskrcnn_body.model.weights import save_model_weights

    TrainDir(train_dir).write_config(cfg)
    return save_model_weights(model, train_dir, step)
