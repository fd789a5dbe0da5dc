"""Feature Pyramid Network: C2..C5 -> P2..P5 (RoI levels) plus P6 for the RPN.

P_l = 3x3 conv(lateral_l(C_l) + upsample2x(top-down_{l+1})), all ``channels`` wide;
P6 = 1x1 max-pool with stride 2 of P5 (as in Detectron). Strides: P2 4, P3 8, P4 16, P5 32, P6 64.
"""

from __future__ import annotations

from typing import List

import keras

from maskrcnn_body.model.conv import Conv2D
from maskrcnn_body.model.norm import MaskPadding

ROI_LEVELS = (2, 3, 4, 5)
"""Pyramid levels the RoI heads crop from (P2..P5)."""


def build_fpn(channels: int, in_channels: List[int], rpn_max_level: int = 6) -> keras.Model:
    """Functional model [C2, C3, C4, C5, valid sizes (B, 4) int32] -> [P2, ..., P{rpn_max_level}] (float, NHWC).

    The merged maps and P2..P5 are 0 on the zero padding (``valid``:
    :func:`maskrcnn_body.model.norm.valid_sizes`), as the backbone's features are, so the 3x3
    convolutions at the image's edge see zeros whatever the amount of padding.

    Args:
      channels: width of every output level.
      in_channels: channel counts of C2..C5.
      rpn_max_level: 5 (P2..P5) or 6 (adds P6 for the RPN).
    """
    if rpn_max_level not in (5, 6):
        raise ValueError(f"rpn_max_level must be 5 or 6, got {rpn_max_level}")
    inputs = [keras.Input((None, None, c), name=f"C{lvl}") for lvl, c in zip(ROI_LEVELS, in_channels)]
    valid = keras.Input((4,), dtype="int32", name="valid_sizes")
    laterals = [Conv2D(channels, 1, name=f"fpn_lateral{lvl}")(c) for lvl, c in zip(ROI_LEVELS, inputs)]
    merged = [None] * 4
    merged[3] = laterals[3]
    for i in (2, 1, 0):
        up = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"fpn_up{i + 3}")(merged[i + 1])
        merged[i] = keras.layers.Add(name=f"fpn_merge{i + 2}")([laterals[i], up])
    merged = [MaskPadding(name=f"fpn_merge{i + 2}_padding")(m, valid) for i, m in enumerate(merged)]
    outputs = [Conv2D(channels, 3, padding="same", name=f"fpn_output{i + 2}")(m) for i, m in enumerate(merged)]
    outputs = [MaskPadding(name=f"fpn_output{i + 2}_padding")(o, valid) for i, o in enumerate(outputs)]
    if rpn_max_level == 6:
        outputs.append(keras.layers.MaxPooling2D(1, strides=2, name="fpn_p6")(outputs[-1]))
    return keras.Model([*inputs, valid], outputs, name="fpn")
