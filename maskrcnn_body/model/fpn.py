"""Feature Pyramid Network: C2..C5 -> P2..P5 (RoI levels) plus P6 for the RPN.

P_l = 3x3 conv(lateral_l(C_l) + upsample2x(top-down_{l+1})), all ``cfg.fpn_channels`` wide;
P6 = 1x1 max-pool with stride 2 of P5 (as in Detectron). Strides: P2 4, P3 8, P4 16, P5 32, P6 64.
"""
from __future__ import annotations

from typing import List

import keras

from maskrcnn_body.config import ModelConfig
from maskrcnn_body.model.conv import Conv2D


def build_fpn(cfg: ModelConfig, in_channels: List[int]) -> keras.Model:
    """Functional model [C2, C3, C4, C5] -> [P2, ..., P{rpn_max_level}] (float, NHWC).

    Args:
      cfg: model config (``fpn_channels``, ``min_level`` must be 2, ``max_level`` 5,
        ``rpn_max_level`` 5 or 6).
      in_channels: channel counts of C2..C5.
    """
    if (cfg.min_level, cfg.max_level) != (2, 5) or cfg.rpn_max_level not in (5, 6):
        raise ValueError(f"FPN supports min_level=2, max_level=5, rpn_max_level 5 or 6; got "
                         f"{cfg.min_level}, {cfg.max_level}, {cfg.rpn_max_level}")
    inputs = [keras.Input((None, None, c), name=f"C{l}") for l, c in zip(range(2, 6), in_channels)]
    ch = cfg.fpn_channels
    laterals = [Conv2D(ch, 1, name=f"fpn_lateral{l}")(c) for l, c in zip(range(2, 6), inputs)]
    merged = [None] * 4
    merged[3] = laterals[3]
    for i in (2, 1, 0):
        up = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"fpn_up{i + 3}")(merged[i + 1])
        merged[i] = keras.layers.Add(name=f"fpn_merge{i + 2}")([laterals[i], up])
    outputs = [Conv2D(ch, 3, padding="same", name=f"fpn_output{i + 2}")(m)
               for i, m in enumerate(merged)]
    if cfg.rpn_max_level == 6:
        outputs.append(keras.layers.MaxPooling2D(1, strides=2, name="fpn_p6")(outputs[-1]))
    return keras.Model(inputs, outputs, name="fpn")
