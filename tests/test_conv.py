"""model.conv.Conv2D: same forward and gradients as keras.layers.Conv2D, in training (hand-written
backward) and in inference (the parent's code, what export traces)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from maskrcnn_body.model.conv import Conv2D, conv2d_fast_grad

CASES = [  # (kernel, stride, padding, use_bias, activation)
    (1, 1, "valid", True, None),
    (1, 2, "valid", True, None),
    (1, 1, "same", False, "relu"),
    (3, 1, "same", True, "relu"),
    (3, 1, "same", False, None),
    (3, 2, "same", True, "relu"),  # last: parent's path
    (7, 2, "valid", True, None),
]


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("kernel, stride, padding, use_bias, activation", CASES)
def test_conv_matches_keras_values_and_gradients(kernel, stride, padding, use_bias, activation, training):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(2, 13, 10, 6)).astype(np.float32))  # odd sizes: stride edge cases
    kw = dict(filters=5, kernel_size=kernel, strides=stride, padding=padding, use_bias=use_bias, activation=activation)
    ref, ours = keras.layers.Conv2D(**kw), Conv2D(**kw)
    ref.build(x.shape)
    ours.build(x.shape)
    ours.set_weights([w + 0.1 * rng.normal(size=w.shape).astype(np.float32) for w in ref.get_weights()])
    ref.set_weights(ours.get_weights())
    results = []
    for layer in (ref, ours):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=training) if layer is ours else layer(x)
            loss = tf.reduce_sum(y * tf.reshape(tf.sin(tf.range(tf.size(y), dtype=tf.float32)), tf.shape(y)))
        results.append([y] + tape.gradient(loss, [x] + layer.trainable_weights))
    names = ["y", "dx", "dkernel", "dbias"][: len(results[0])]
    for name, a, b in zip(names, *results):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-5, err_msg=name)


def test_fast_gradient_rejects_unsupported_kernels():
    with pytest.raises(ValueError, match="no fast gradient"):
        conv2d_fast_grad(tf.zeros((1, 8, 8, 2)), tf.zeros((3, 3, 2, 2)), 2, "SAME")
