"""``Conv2D``: ``keras.layers.Conv2D`` with a faster training gradient on CPU.

Same weights (``kernel``, ``bias``), same forward and same gradients (to float32 rounding) as
``keras.layers.Conv2D``; only the backward pass is computed differently, in training only
(``training=True``), for the two shapes that dominate ResNet + FPN:

* 1x1 kernels (any stride): ``dkernel = x_s^T dy`` and, at stride 1, ``dx = dy kernel^T`` as
  matrix products over the (N * H * W) positions (``x_s``: the strided input), which TensorFlow's
  CPU ``Conv2DBackpropFilter`` is slower than (docs/BENCHMARKS.md, "Analysis").
* 3x3 kernels, stride 1, ``same`` padding: ``dx`` as a forward convolution of ``dy`` with the
  kernel rotated by 180 degrees and its channel axes swapped (TF's ``Conv2DBackpropInput`` is
  slower than its forward convolution); ``dkernel`` stays TF's.

Everything else (other kernels, strides, dilations, groups), inference and export use the
parent's code: a ``tf.custom_gradient`` in an exported graph makes the TFLite converter drop the
signature, and nothing needs gradients there.
"""

from __future__ import annotations

import keras
import tensorflow as tf


def conv2d_fast_grad(
    x: tf.Tensor, kernel: tf.Tensor, stride: int, padding: str, bias=None, relu: bool = False
) -> tf.Tensor:
    """``[relu](tf.nn.conv2d(x, kernel, stride, padding) [+ bias])`` (NHWC) with the gradient of
    the module docstring; bias and ReLU are inside, so TF still fuses them with the convolution.
    ``kernel`` is (1, 1, Cin, Cout) (any stride) or (3, 3, Cin, Cout) (stride 1, ``"SAME"``)."""
    k, cin, cout = kernel.shape[0], kernel.shape[2], kernel.shape[3]
    if not (
        (k == 1 and kernel.shape[1] == 1) or (k == 3 and kernel.shape[1] == 3 and stride == 1 and padding == "SAME")
    ):
        raise ValueError(
            f"conv2d_fast_grad: no fast gradient for a {kernel.shape} kernel at stride {stride}, "
            f"padding {padding}; use tf.nn.conv2d"
        )

    def backward(x, kernel, dy):
        if k == 1:
            xs = x if stride == 1 else x[:, ::stride, ::stride]
            dy2 = tf.reshape(dy, [-1, cout])
            dk = tf.reshape(tf.matmul(tf.reshape(xs, [-1, cin]), dy2, transpose_a=True), [1, 1, cin, cout])
            if stride == 1:
                dx = tf.reshape(tf.matmul(dy2, tf.reshape(kernel, [cin, cout]), transpose_b=True), tf.shape(x))
            else:
                dx = tf.raw_ops.Conv2DBackpropInput(
                    input_sizes=tf.shape(x),
                    filter=kernel,
                    out_backprop=dy,
                    strides=[1, stride, stride, 1],
                    padding=padding,
                )
            return dx, dk
        rotated = tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2])  # (3, 3, Cout, Cin)
        dx = tf.nn.conv2d(dy, rotated, 1, "SAME")
        dk = tf.raw_ops.Conv2DBackpropFilter(
            input=x, filter_sizes=tf.shape(kernel), out_backprop=dy, strides=[1, 1, 1, 1], padding="SAME"
        )
        return dx, dk

    def forward(x, kernel, b):
        y = tf.nn.conv2d(x, kernel, stride, padding)
        if b is not None:
            y = tf.nn.bias_add(y, b)
        return tf.nn.relu(y) if relu else y

    def pre_activation_grad(y, dy):
        return tf.where(y > 0, dy, tf.zeros_like(dy)) if relu else dy

    # the backward ops get the forward's name scope under gradient_tape/, as autodiff ops do
    # (profiles attribute them to the right layer; see bench/trace.py)
    scope = "gradient_tape/" + tf.get_current_name_scope() + "/"

    if bias is None:

        @tf.custom_gradient
        def fn(x, kernel):
            y = forward(x, kernel, None)

            def grad(dy):
                with tf.name_scope(scope):
                    return backward(x, kernel, pre_activation_grad(y, dy))

            return y, grad

        return fn(x, kernel)

    @tf.custom_gradient
    def fn_bias(x, kernel, b):
        y = forward(x, kernel, b)

        def grad(dy):
            with tf.name_scope(scope):
                dz = pre_activation_grad(y, dy)
                return (*backward(x, kernel, dz), tf.reduce_sum(dz, [0, 1, 2]))

        return y, grad

    return fn_bias(x, kernel, bias)


@keras.saving.register_keras_serializable(package="maskrcnn_body")
class Conv2D(keras.layers.Conv2D):
    """``keras.layers.Conv2D`` whose training gradient is faster on CPU (module docstring)."""

    def _fast_gradient_applies(self) -> bool:
        k, s = tuple(self.kernel_size), tuple(self.strides)
        return (
            self.data_format == "channels_last"
            and tuple(self.dilation_rate) == (1, 1)
            and self.groups == 1
            and s[0] == s[1]
            and (k == (1, 1) or (k == (3, 3) and s == (1, 1) and self.padding == "same"))
        )

    def call(self, inputs, training=None):
        if not training or not self._fast_gradient_applies():
            return super().call(inputs)
        relu = self.activation is keras.activations.relu
        bias = tf.cast(self.bias, inputs.dtype) if self.use_bias else None
        y = conv2d_fast_grad(
            inputs, tf.cast(self.kernel, inputs.dtype), int(self.strides[0]), self.padding.upper(), bias, relu
        )
        if relu or self.activation in (None, keras.activations.linear):
            return y
        return self.activation(y)
