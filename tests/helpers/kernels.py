"""Emulations of platform-specific kernel behaviour, so a test fails on any CPU where the project
would fail on one processor family.

:func:`convolutions_refuse_empty_batches`: TensorFlow 2.21's oneDNN convolution (the default on
Intel Xeon CPUs with AVX-512/AMX) returns the *input's* shape for a zero-size batch
(``tf.nn.conv2d(tf.zeros((0, 14, 14, 64)), tf.zeros((3, 3, 64, 16)), 1, "SAME")`` is
``(0, 14, 14, 64)``), and the training step then dies in ``ReluGrad``; its matrix multiplications
are not to be trusted on an empty batch either. Inside this context every convolution layer and
every ``Dense`` layer (the point head's matmuls) the project builds fails outright on an empty
batch, wherever the test runs.
"""

from __future__ import annotations

import contextlib

import keras
import tensorflow as tf

from maskrcnn_body.model import conv as project_conv


def _guarded(call):
    def guarded_call(self, inputs, *args, **kwargs):
        n = tf.shape(inputs)[0]
        check = tf.debugging.assert_positive(
            n, message=f"{self.name}: convolution on an empty batch (oneDNN on Intel Xeon gets its shape wrong)"
        )
        with tf.control_dependencies([check]):
            inputs = tf.identity(inputs)
        return call(self, inputs, *args, **kwargs)

    return guarded_call


@contextlib.contextmanager
def convolutions_refuse_empty_batches():
    """Within the block, ``Conv2D`` / ``Conv2DTranspose`` / ``Dense`` layers (Keras' and the
    project's) raise ``InvalidArgumentError`` when called on a batch of 0 rows (eager or traced)."""
    classes = (project_conv.Conv2D, keras.layers.Conv2D, keras.layers.Conv2DTranspose, keras.layers.Dense)
    own = {cls: cls.__dict__.get("call") for cls in classes}  # None: inherited (Keras' BaseConv)
    try:
        for cls in classes:
            cls.call = _guarded(cls.call)
        yield
    finally:
        for cls, call in own.items():
            if call is None:
                del cls.call
            else:
                cls.call = call
