"""Region Proposal Network head, shared across pyramid levels.

For a level of size (Hl, Wl) with A = ``cfg.num_anchors_per_location`` anchors per location the
head gives objectness logits (B, Hl, Wl, A) and box deltas (B, Hl, Wl, 4A);
:func:`flatten_level_outputs` turns them into (B, Hl*Wl*A) and (B, Hl*Wl*A, 4) in the
(row, column, anchor) order that ``ops.anchors`` uses.
"""
from __future__ import annotations

from typing import Tuple

import keras
import tensorflow as tf

from maskrcnn_body.config import ModelConfig
from maskrcnn_body.model.conv import Conv2D


def build_rpn_head(cfg: ModelConfig) -> keras.Model:
    """Functional model: one FPN level (B, Hl, Wl, fpn_channels) -> (logits, deltas)."""
    a = cfg.num_anchors_per_location
    inputs = keras.Input((None, None, cfg.fpn_channels), name="rpn_features")
    x = Conv2D(cfg.fpn_channels, 3, padding="same", activation="relu", name="rpn_conv")(inputs)
    logits = Conv2D(a, 1, kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
                                 name="rpn_class")(x)
    deltas = Conv2D(4 * a, 1, kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
                                 name="rpn_box")(x)
    return keras.Model(inputs, [logits, deltas], name="rpn_head")


def flatten_level_outputs(logits: tf.Tensor, deltas: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """One level's (B, Hl, Wl, A) logits and (B, Hl, Wl, 4A) deltas -> float32 (B, Hl*Wl*A) and
    (B, Hl*Wl*A, 4), in the (row, column, anchor) order of ``ops.anchors``."""
    b = tf.shape(logits)[0]
    return (tf.reshape(tf.cast(logits, tf.float32), [b, -1]),
            tf.reshape(tf.cast(deltas, tf.float32), [b, -1, 4]))
