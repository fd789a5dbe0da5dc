"""Run a trained model on single images of any size: :class:`Predictor`.

RGB uint8 (H, W, 3) in -> numpy detections in *original* image pixels: ``boxes`` (R, 4),
``scores`` (R,), ``masks`` (R, M, M, 7) box-frame probabilities, ``keypoints`` (R, 15, 3)
x, y, score — only the R kept detections. The resize/pad rule is
:mod:`maskrcnn_body.inference.transforms`, the same as the export's and the server's.
"""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import tensorflow as tf

from maskrcnn_body.config import Config
from maskrcnn_body.inference.loading import load_trained_model
from maskrcnn_body.inference.transforms import postprocess, preprocess


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
    def from_train_dir(cls, train_dir: str, checkpoint: Optional[str] = None, **overrides):
        """A predictor for a training directory (``overrides``: dotted config keys, see
        :func:`~maskrcnn_body.inference.loading.load_trained_model`)."""
        model, cfg, _ = load_trained_model(train_dir, checkpoint, **overrides)
        return cls(model, cfg)

    def __call__(self, image: np.ndarray) -> Dict[str, np.ndarray]:
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be RGB uint8 (H, W, 3), got {image.dtype} {image.shape}")
        out = {k: v.numpy() for k, v in self._run(tf.constant(image)).items()}
        n = int(out.pop("num_detections"))
        return {k: v[:n] for k, v in out.items()}
