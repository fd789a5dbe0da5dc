"""TensorBoard summaries (scalars and images) written by the chief only.

Written with the core op ``tf.summary.write`` plus the TensorBoard plugin metadata
("scalars" / "images"), so the ``tensorboard`` package is needed only to *view* the logs
(``tensorboard --logdir TRAIN_DIR``), not to write them.
"""

from __future__ import annotations

import os
from typing import Dict

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2


def _metadata(plugin: str) -> bytes:
    meta = summary_pb2.SummaryMetadata()
    meta.plugin_data.plugin_name = plugin
    meta.plugin_data.content = b""
    return meta.SerializeToString()


SCALAR_METADATA = _metadata("scalars")
IMAGE_METADATA = _metadata("images")


class Summaries:
    """Writes under ``logdir`` when ``enabled``; a no-op writer otherwise (non-chief workers)."""

    def __init__(self, logdir: str, enabled: bool = True):
        self.enabled = enabled
        self.writer = tf.summary.create_file_writer(logdir) if enabled else tf.summary.create_noop_writer()
        if enabled:
            os.makedirs(logdir, exist_ok=True)

    def scalars(self, step: int, values: Dict[str, float], prefix: str = "") -> None:
        with self.writer.as_default(step=step):
            for k, v in values.items():
                tf.summary.write(prefix + k, tf.constant(float(v), tf.float32), metadata=SCALAR_METADATA)

    def images(self, step: int, name: str, images: np.ndarray, max_outputs: int = 4) -> None:
        """``images`` uint8 (K, H, W, 3) RGB."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(f"summary images must be uint8 (K, H, W, 3), got {images.dtype} {images.shape}")
        h, w = images.shape[1:3]
        encoded = [tf.io.encode_png(im).numpy() for im in images[:max_outputs]]
        with self.writer.as_default(step=step):
            tf.summary.write(name, tf.constant([str(w).encode(), str(h).encode()] + encoded), metadata=IMAGE_METADATA)

    def flush(self) -> None:
        self.writer.flush()
