"""Run a trained model on single images of any size: :class:`Predictor`.

RGB uint8 (H, W, 3) in -> numpy detections in *original* image pixels: ``boxes`` (R, 4),
``scores`` (R,), ``masks`` (R, M, M, 7) box-frame probabilities, ``keypoints`` (R, 15, 3)
x, y, score — only the R kept detections. The resize/pad rule is
:mod:`maskrcnn_body.inference.transforms`, the same as the export's and the server's.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf

from maskrcnn_body.config import Config
from maskrcnn_body.errors import InvalidArgument
from maskrcnn_body.inference.loading import load_trained_model
from maskrcnn_body.inference.transforms import postprocess, postprocess_batch, preprocess
from maskrcnn_body.model.fold import fold_frozen_batchnorm
from maskrcnn_body.model.maskrcnn import MaskRCNN


class Predictor:
    """Image (RGB uint8, any size) -> numpy detections in original pixels (see module docstring);
    :meth:`predict_batch` runs several images in one model call (padded to the largest)."""

    def __init__(self, model, cfg: Config):
        self.model, self.cfg = model, cfg
        i = cfg.input

        @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)])
        def run(image):
            padded, shape, scale = preprocess(image, i.min_size, i.max_size, i.pad_size)
            return postprocess(model.detect(padded, shape, training=False), scale, tf.shape(image)[:2])

        @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)])
        def resize(image):
            padded, shape, scale = preprocess(image, i.min_size, i.max_size, i.pad_size)
            return padded[0], shape[0], scale

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, None, None, 3], tf.float32),
                tf.TensorSpec([None, 2], tf.int32),
                tf.TensorSpec([None], tf.float32),
                tf.TensorSpec([None, 2], tf.int32),
            ]
        )
        def run_batch(images, image_shape, scales, original_shapes):
            return postprocess_batch(model.detect(images, image_shape, training=False), scales, original_shapes)

        self._run, self._resize, self._run_batch = run, resize, run_batch

    @classmethod
    def from_train_dir(
        cls,
        train_dir: str,
        checkpoint: Optional[str] = None,
        cfg: Optional[Config] = None,
        *,
        fold_batchnorm: bool = True,
        **overrides,
    ):
        """A predictor for a training directory (``cfg``: its config when read already, else read here;
        ``overrides``: dotted config keys, see :func:`~maskrcnn_body.inference.loading.load_trained_model`).
        ``fold_batchnorm``: run with frozen BatchNorm folded into the convolutions, as the exports
        (:func:`~maskrcnn_body.model.fold.fold_frozen_batchnorm`; a GroupNorm model is unchanged)."""
        model, cfg, _ = load_trained_model(train_dir, checkpoint, cfg, **overrides)
        if fold_batchnorm and isinstance(model, MaskRCNN):
            model = fold_frozen_batchnorm(model)
        return cls(model, cfg)

    @staticmethod
    def _check(image) -> np.ndarray:
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
            raise InvalidArgument(f"image must be RGB uint8 (H, W, 3), got {image.dtype} {image.shape}")
        return image

    def __call__(self, image: np.ndarray) -> Dict[str, np.ndarray]:
        """Detections of one image: ``boxes`` (R, 4), ``scores`` (R,), ``masks`` (R, M, M, 7),
        ``keypoints`` (R, 15, 3), the R detections kept by the model (original pixels)."""
        out = {k: v.numpy() for k, v in self._run(tf.constant(self._check(image))).items()}
        n = int(out.pop("num_detections"))
        return {k: v[:n] for k, v in out.items()}

    def predict_batch(self, images: Sequence[np.ndarray]) -> List[Dict[str, np.ndarray]]:
        """:meth:`__call__` for several images, the images of the same padded size (e.g. video frames,
        or photos of one camera) in one model call each: the results equal one-at-a-time calls (the
        padding, and with it GroupNorm's statistics, is the same as for a single image)."""
        images = [self._check(im) for im in images]
        resized = [self._resize(tf.constant(im)) for im in images]
        groups: Dict[tuple, List[int]] = {}
        for b, (im, _, _) in enumerate(resized):
            groups.setdefault(tuple(im.shape[:2]), []).append(b)
        results: List[Optional[Dict[str, np.ndarray]]] = [None] * len(images)
        for index in groups.values():
            batch = np.stack([resized[b][0].numpy() for b in index])
            out = self._run_batch(
                tf.constant(batch),
                tf.stack([resized[b][1] for b in index]),
                tf.stack([resized[b][2] for b in index]),
                tf.constant([images[b].shape[:2] for b in index], tf.int32),
            )
            out = {k: v.numpy() for k, v in out.items()}
            for j, b in enumerate(index):
                n = int(out["num_detections"][j])
                results[b] = {k: out[k][j, :n] for k in ("boxes", "scores", "masks", "keypoints")}
        return results  # type: ignore[return-value]
