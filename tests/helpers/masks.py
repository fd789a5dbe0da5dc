"""Comparing mask probabilities of two runs of a model with the point head.

The point head re-predicts the k most uncertain cells of each mask (``ops.points.most_uncertain_cells``).
Two runs that differ by float rounding (batched vs one image, SavedModel/TFLite vs Keras, compiled vs
pure-TF RoIAlign) can rank the cells k and k + 1 the other way round when their uncertainties are
near-tied (an untrained model has many), so a few whole cells differ: one run refined, the other the
resized value. Everything else must agree to the tolerance.
"""

from __future__ import annotations

import numpy as np


def assert_masks_close(actual, desired, atol: float, swapped: float = 1e-3, swap_atol: float = 0.05) -> None:
    """``actual`` and ``desired`` (..., M, M, 7) agree to ``atol`` except at most a fraction
    ``swapped`` of the values (top-k boundary swaps), which still agree to ``max(swap_atol, 2 * atol)`` (random
    weights: the untrained point head is near the identity)."""
    actual, desired = np.asarray(actual), np.asarray(desired)
    assert actual.shape == desired.shape, (actual.shape, desired.shape)
    diff = np.abs(actual - desired)
    off = float((diff > atol).mean()) if diff.size else 0.0
    worst = float(diff.max()) if diff.size else 0.0
    assert off <= swapped and worst < max(swap_atol, 2 * atol), (
        f"{off:.4%} of the mask values differ by > {atol}, max {worst}"
    )


def decode_probabilities(probs: np.ndarray, mask_thresholds, body_union: bool) -> np.ndarray:
    """numpy reference of the graph's decoding, from plain sigmoid probabilities (..., 7)."""
    p = np.clip(np.asarray(probs, np.float64), 1e-12, 1 - 1e-12)
    t = np.asarray(mask_thresholds, np.float64)
    out = 1 / (1 + np.exp(-(np.log(p / (1 - p)) - np.log(t / (1 - t)))))
    if body_union:
        out[..., 0] = out.max(-1)
    return out
