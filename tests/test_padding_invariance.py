"""The features of an image do not depend on how much zero padding its batch added (issue 26, fix 1).

Training pads each batch to its largest image, evaluation pads batches of 4 the same way and serving
pads one image to a multiple of 32: with GroupNorm statistics over the padding, the same image gave
different features (and detections) on each path. The backbone and FPN now zero the padding and take
GroupNorm's statistics over the valid image only.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from maskrcnn_body.model.maskrcnn import build_model
from maskrcnn_body.model.norm import GroupNorm, padding_mask, valid_sizes
from tests.helpers.models import tiny_config


def _padded(image: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros((1, size, size, 3), np.float32)
    out[0, : image.shape[0], : image.shape[1]] = image
    return out


def test_padding_mask_marks_the_cells_of_the_valid_image():
    x = tf.zeros((2, 8, 8, 1))  # stride 32 of a 256 px canvas
    m = padding_mask(x, valid_sizes([[192, 200], [256, 1]], (256, 256)))[..., 0].numpy()
    assert m[0].sum(0).tolist() == [6] * 7 + [0]  # 6 valid rows, ceil(200 / 32) = 7 valid columns
    assert m[1].sum(0).tolist() == [8] + [0] * 7


def test_features_of_an_image_are_invariant_to_extra_padding():
    """A 192x160 image padded to 192x192 (serving) and to 256x256 (a batch with a larger image):
    C2..C5 and P2..P6 over the valid cells agree to float rounding (they differed by 65-78%)."""
    keras.utils.set_random_seed(0)
    model = build_model(tiny_config(256))
    image = np.random.default_rng(0).uniform(0, 255, (192, 160, 3)).astype(np.float32)
    shape = tf.constant([[192, 160]], tf.int32)
    outs = []
    for size in (192, 256):
        x = tf.constant(_padded(image, size))
        outs.append(model.features(x, False, shape))
    for level, (a, b) in enumerate(zip(*outs), 2):
        h, w = -(-192 // 2**level), -(-160 // 2**level)
        a, b = a.numpy()[0, :h, :w], b.numpy()[0, :h, :w]
        rel = np.abs(a - b).mean() / np.abs(a).mean()
        assert rel < 1e-4, f"P{level}: relative difference {rel:.2e}"
        assert np.all(outs[1][level - 2].numpy()[0, h:] == 0) and np.all(outs[1][level - 2].numpy()[0, :, w:] == 0)


@pytest.mark.parametrize("masked", [False, True])
def test_group_norm_fast_gradient_equals_autodiff(masked):
    """The hand-written GroupNorm gradient (training) equals autodiff of the plain ops, with and
    without a padding mask."""
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(3.0, 2.0, (2, 8, 8, 16)), tf.float32)
    dy = tf.constant(rng.normal(size=(2, 8, 8, 16)), tf.float32)
    valid = valid_sizes([[24, 32], [32, 8]], (32, 32)) if masked else None
    layer = GroupNorm(groups=4)
    layer.build(x.shape)
    layer.gamma.assign(rng.uniform(0.5, 1.5, 16).astype(np.float32))
    grads = []
    for training in (True, False):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, valid, training=training)
            loss = tf.reduce_sum(y * dy)
        grads.append(tape.gradient(loss, [x, layer.gamma, layer.beta]))
    for fast, auto in zip(*grads):
        np.testing.assert_allclose(fast.numpy(), auto.numpy(), rtol=1e-4, atol=1e-4)
