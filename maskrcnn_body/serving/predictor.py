"""Load a trained model from a training directory and run it on single images of any size.

Used by ``train/infer.py``, the HTTP server (``train/test.py``) and ``train/export.py``, so all three
resize, pad and map coordinates back in exactly one way (:func:`preprocess`, :func:`postprocess`).

* :func:`load_trained_model` reads ``TRAIN_DIR/config.json`` and the newest (or a given) checkpoint
  written by the trainer (``maskrcnn_body.training.checkpoints``).
* :class:`Predictor` maps an RGB uint8 (H, W, 3) image to detections in *original* image pixels:
  ``boxes`` (R, 4), ``scores`` (R,), ``masks`` (R, M, M, 7) box-frame probabilities, ``keypoints``
  (R, 15, 3) x, y, score — only the R kept detections.
"""
from __future__ import annotations

import json
import os
from typing import Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from maskrcnn_body.cli import UserError
from maskrcnn_body.config import Config


class ModelLoadError(UserError):
    """The training directory or checkpoint cannot be loaded (the message says why)."""


def load_config(train_dir: str) -> Config:
    path = os.path.join(train_dir, "config.json")
    if not os.path.exists(path):
        raise ModelLoadError(f"{path} not found: --train_dir must be a directory written by train/train.py")
    with open(path) as f:
        return Config.from_dict(json.load(f))


def load_trained_model(train_dir: str, checkpoint: Optional[str] = None, cfg: Optional[Config] = None,
                       **model_overrides):
    """Returns ``(model, cfg, checkpoint_path)``; the model's weights come from the checkpoint.

    Args:
      train_dir: a training directory (``config.json`` + ``ckpt-N`` files).
      checkpoint: a specific checkpoint prefix; default: the newest in ``train_dir``.
      cfg: override the directory's config (e.g. a changed score threshold).
      model_overrides: ``cfg.model`` fields to change (None values are ignored), e.g.
        ``score_threshold=0.3, max_detections=50``.
    """
    from maskrcnn_body.model.maskrcnn import build_model
    from maskrcnn_body.training.checkpoints import named_model_variables
    cfg = cfg or load_config(train_dir)
    for key, value in model_overrides.items():
        if value is not None:
            if not hasattr(cfg.model, key):
                raise ModelLoadError(f"unknown model config field {key!r}")
            setattr(cfg.model, key, value)
    path = checkpoint or tf.train.latest_checkpoint(train_dir)
    if path is None:
        raise ModelLoadError(f"no checkpoint in {train_dir}: train first (python train/train.py --train_dir "
                             f"{train_dir})")
    model = build_model(cfg)
    ckpt = tf.train.Checkpoint(**named_model_variables(model))
    try:
        ckpt.restore(path).expect_partial().assert_existing_objects_matched()
    except Exception as e:  # noqa: BLE001
        raise ModelLoadError(f"checkpoint {path} does not fit the model of {train_dir}/config.json: "
                             f"{str(e).splitlines()[0]}") from None
    return model, cfg, path


def write_train_dir(model, cfg: Config, train_dir: str, step: int = 0) -> str:
    """Writes ``train_dir/config.json`` and checkpoint ``ckpt-<step>`` in the trainer's layout (model
    variables only, via :class:`maskrcnn_body.training.checkpoints.Checkpointer`), so that
    :func:`load_trained_model` and the serving scripts can read a model that was not trained with
    ``train/train.py`` (e.g. a random-weight model for smoke tests). Returns the checkpoint path."""
    import keras
    from maskrcnn_body.training.checkpoints import Checkpointer
    os.makedirs(train_dir, exist_ok=True)
    tmp = os.path.join(train_dir, f".config.json.tmp-{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(cfg.to_json() + "\n")
    os.replace(tmp, os.path.join(train_dir, "config.json"))
    return Checkpointer(train_dir, model, keras.optimizers.SGD()).save(step)


def write_random_train_dir(train_dir: str, preset: str = "cpu_small", seed: int = 0, **overrides) -> str:
    """A training directory holding an untrained, random-weight model of ``get_config(preset,
    **overrides)`` (seeded): for smoke and load tests of the serving path without training."""
    import keras
    from maskrcnn_body.config import get_config
    from maskrcnn_body.model.maskrcnn import build_model
    keras.utils.set_random_seed(seed)
    cfg = get_config(preset, **overrides)
    return write_train_dir(build_model(cfg), cfg, train_dir)


def preprocess(image: tf.Tensor, min_size: int, max_size: int, pad_size: int
               ) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """RGB uint8 (H, W, 3) -> (padded float32 (1, S, S, 3), image_shape int32 (1, 2), scale float32).

    Same scale rule as the training pipeline (``data.augment.resize_scale``); resizing uses
    ``tf.image.resize`` (bilinear, half-pixel centres), which TFLite has as a builtin.
    """
    from maskrcnn_body.data import augment
    shape = tf.shape(image)
    scale = augment.resize_scale(shape[0], shape[1], min_size, max_size, pad_size)
    size = augment.resized_size(shape[0], shape[1], scale)
    resized = tf.image.resize(tf.cast(image, tf.float32)[None], size, method="bilinear")
    padded = tf.image.pad_to_bounding_box(resized, 0, 0, pad_size, pad_size)
    # a static reshape (not ensure_shape, which TFLite lacks) gives the model its fixed input size
    return tf.reshape(padded, [1, pad_size, pad_size, 3]), size[None], scale


def postprocess(det: Dict[str, tf.Tensor], scale: tf.Tensor, original_shape: tf.Tensor) -> Dict[str, tf.Tensor]:
    """Batch-of-one detect dict (resized frame) -> detections in original pixels (first image).

    ``original_shape`` (2,) int is the source image's (height, width). Boxes and keypoint x/y are
    clipped to it: the resized size is rounded, so a box clipped to the resized image can reach
    up to half a resized pixel (``0.5 / scale``) past the original border.
    Returns padded tensors (D rows) plus ``num_detections``; rows past it are zero.
    """
    from maskrcnn_body.ops.boxes import clip_boxes
    inv = 1.0 / scale
    hw = tf.cast(original_shape, tf.float32)
    kp = det["keypoints"][0]
    xy = tf.clip_by_value(kp[..., :2] * inv, 0.0, tf.stack([hw[1], hw[0]]))
    return {"boxes": clip_boxes(det["boxes"][0] * inv, original_shape), "scores": det["scores"][0],
            "masks": det["masks"][0], "keypoints": tf.concat([xy, kp[..., 2:]], -1),
            "num_detections": det["num_detections"][0]}


class Predictor:
    """Image (RGB uint8, any size) -> numpy detections in original pixels (see module docstring)."""

    def __init__(self, model, cfg: Config):
        self.model, self.cfg = model, cfg
        i = cfg.input
        spec = tf.TensorSpec([None, None, 3], tf.uint8)

        @tf.function(input_signature=[spec])
        def run(image):
            padded, shape, scale = preprocess(image, i.min_size, i.max_size, i.pad_size)
            return postprocess(model.detect(padded, shape, training=False), scale, tf.shape(image)[:2])

        self._run = run

    @classmethod
    def from_train_dir(cls, train_dir: str, checkpoint: Optional[str] = None, **model_overrides):
        model, cfg, _ = load_trained_model(train_dir, checkpoint, **model_overrides)
        return cls(model, cfg)

    def __call__(self, image: np.ndarray) -> Dict[str, np.ndarray]:
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be RGB uint8 (H, W, 3), got {image.dtype} {image.shape}")
        out = {k: v.numpy() for k, v in self._run(tf.constant(image)).items()}
        n = int(out.pop("num_detections"))
        return {k: v[:n] for k, v in out.items()}
