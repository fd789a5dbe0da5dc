"""Normalisation layers: GroupNorm (faster on CPU than Keras'), frozen BatchNorm, and the
``norm_layer`` factory used by the backbone and the heads.

Why GroupNorm by default: detection trains with 1-4 images per device, where BatchNorm statistics
are noise (the 2017 original never even updated its moving averages); GroupNorm is
batch-independent, so training from scratch at batch 1-4 is stable and train and test behave
alike. Frozen BatchNorm is the right choice behind pretrained ImageNet weights.
"""

from __future__ import annotations

from typing import Optional

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="maskrcnn_body")
class FrozenBatchNormalization(keras.layers.BatchNormalization):
    """BatchNorm that always normalises with its stored statistics and never trains."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.trainable = False

    def call(self, inputs, training=None, mask=None):
        return super().call(inputs, training=False, mask=mask)


def _group_stats(x: tf.Tensor, groups: int):
    """(mean_g, inverse std r) of float32 ``x`` (N, ..., C), each (N, G, 1): per-channel moments
    over the spatial axes combined exactly, ``var_g = mean_c(var_c) + mean_c((mean_c - mean_g)^2)``."""
    c = x.shape[-1]
    n = tf.shape(x)[0]
    mean_c, var_c = tf.nn.moments(x, list(range(1, x.shape.rank - 1)))  # (N, C) each
    mean_c = tf.reshape(mean_c, [n, groups, c // groups])
    mean_g = tf.reduce_mean(mean_c, -1, keepdims=True)
    var_g = tf.reduce_mean(tf.reshape(var_c, [n, groups, c // groups]) + tf.square(mean_c - mean_g), -1, keepdims=True)
    return mean_g, var_g


def group_norm(
    x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, groups: int, eps: float, fast_gradient: bool = True
) -> tf.Tensor:
    """Group normalisation of float32 ``x`` (N, ..., C) with per-channel ``gamma``, ``beta`` (C,).

    Forward: group statistics from per-channel moments (:func:`_group_stats`), then
    ``y = x * a + b`` with one (N, C) scale ``a`` and shift ``b``.

    Backward with ``fast_gradient`` (hand-written, faster than autodiff on CPU; training):
    with ``S1 = sum_s dy`` and ``S2 = sum_s dy * (x - mean_g)`` per (image, channel), ``r`` the
    group's inverse std, ``m = spatial size * channels per group``,
    ``dgamma = sum_n r S2``, ``dbeta = sum_n S1``,
    ``A = sum_(c in g) gamma_c S1_c / m``, ``B = sum_(c in g) gamma_c r S2_c / m``,
    ``dx = r gamma_c dy - r^2 B (x - mean_g) - r A``.
    Without it the plain ops are used (autodiff; what export traces: a ``tf.custom_gradient``
    in the graph makes the TFLite converter drop the model's signature).
    """
    c = x.shape[-1]
    cg = c // groups
    axes = list(range(1, x.shape.rank - 1))

    def forward(x, gamma, beta):
        n = tf.shape(x)[0]
        mean_g, var_g = _group_stats(x, groups)
        r = tf.math.rsqrt(var_g + eps)  # (N, G, 1)
        scale = r * tf.reshape(gamma, [1, groups, cg])  # (N, G, Cg)
        shift = tf.reshape(beta, [1, groups, cg]) - mean_g * scale
        bshape = tf.concat([[n], tf.ones([x.shape.rank - 2], tf.int32), [c]], 0)  # (N, 1, .., 1, C)
        y = x * tf.reshape(scale, bshape) + tf.reshape(shift, bshape)
        return y, (n, mean_g, r, scale, bshape)

    if not fast_gradient:
        return forward(x, gamma, beta)[0]
    scope = "gradient_tape/" + tf.get_current_name_scope() + "/"  # as autodiff names its ops

    @tf.custom_gradient
    def fn(x, gamma, beta):
        y, (n, mean_g, r, scale, bshape) = forward(x, gamma, beta)
        gam = tf.reshape(gamma, [1, groups, cg])

        def grad(dy):
            with tf.name_scope(scope):
                return _grad(dy)

        def _grad(dy):
            # centred sums (x - mean_g), not sum(dy * x) - mean_g * sum(dy): no cancellation when
            # |mean| >> std (the difference that float32 rounding would otherwise amplify)
            xc = x - tf.reshape(tf.broadcast_to(mean_g, [n, groups, cg]), bshape)
            s1 = tf.reshape(tf.reduce_sum(dy, axes), [n, groups, cg])
            s2 = tf.reshape(tf.reduce_sum(dy * xc, axes), [n, groups, cg])
            m = tf.cast(tf.reduce_prod(tf.shape(x)[1:-1]) * cg, tf.float32)
            dgam = r * s2  # sum_s dy * xhat
            a = tf.reduce_sum(gam * s1, -1, keepdims=True) / m
            b = tf.reduce_sum(gam * dgam, -1, keepdims=True) / m
            q = tf.broadcast_to(-r * r * b, [n, groups, cg])
            k = tf.broadcast_to(-r * a, [n, groups, cg])
            dx = dy * tf.reshape(scale, bshape) + xc * tf.reshape(q, bshape) + tf.reshape(k, bshape)
            return dx, tf.reshape(tf.reduce_sum(dgam, 0), [c]), tf.reshape(tf.reduce_sum(s1, 0), [c])

        return y, grad

    return fn(x, gamma, beta)


@keras.saving.register_keras_serializable(package="maskrcnn_body")
class GroupNorm(keras.layers.Layer):
    """Group normalisation (Wu & He, 2018) of channels-last maps, (N, ..., C) -> same shape.

    The same function and weights (``gamma``, ``beta``, shape (C,)) as
    ``keras.layers.GroupNormalization`` (contiguous channel groups), computed faster on CPU:
    per-channel moments over the spatial axes (a contiguous reduction), combined into group
    statistics exactly (``var_g = mean_c(var_c) + mean_c((mean_c - mean_g)^2)``, no cancellation),
    then one per-(image, channel) scale and shift ``y = x * a + b``, with a hand-written gradient
    (:func:`group_norm`; timings in docs/BENCHMARKS.md). Computed in float32 under mixed precision.
    """

    def __init__(self, groups: int = 32, epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        self.groups = int(groups)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        c = input_shape[-1]
        if c is None or c % self.groups:
            raise ValueError(f"GroupNorm {self.name}: {c} channels do not split into {self.groups} groups")
        self.gamma = self.add_weight(shape=(c,), initializer="ones", name="gamma")
        self.beta = self.add_weight(shape=(c,), initializer="zeros", name="beta")

    def call(self, x, training=None):
        # the hand-written gradient only where gradients are taken (training); inference and
        # export trace plain ops (see group_norm)
        y = group_norm(
            tf.cast(x, tf.float32),
            tf.cast(self.gamma, tf.float32),
            tf.cast(self.beta, tf.float32),
            self.groups,
            self.epsilon,
            fast_gradient=bool(training),
        )
        return tf.cast(y, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "epsilon": self.epsilon}


NORMS = ("group", "frozen_bn", "batch", "sync_batch", "none")


def norm_layer(kind: str, channels: int, name: str, groups: int = 32) -> Optional[keras.layers.Layer]:
    """The normalisation layer ``kind`` for a ``channels``-wide feature map (None for ``"none"``).

    ``group``: :class:`GroupNorm` with ``groups`` groups (fewer when ``channels`` is not divisible);
    ``frozen_bn``: :class:`FrozenBatchNormalization`; ``batch``: BatchNorm; ``sync_batch``: BatchNorm
    with statistics synchronised across replicas.
    """
    if kind == "group":
        g = min(groups, channels)
        while channels % g:
            g -= 1
        return GroupNorm(groups=g, epsilon=1e-5, name=name)
    if kind == "frozen_bn":
        return FrozenBatchNormalization(epsilon=1.001e-5, name=name)
    if kind == "batch":
        return keras.layers.BatchNormalization(epsilon=1.001e-5, name=name)
    if kind == "sync_batch":
        return keras.layers.BatchNormalization(epsilon=1.001e-5, synchronized=True, name=name)
    if kind == "none":
        return None
    raise ValueError(f"normalisation {kind!r} is not one of {NORMS}")
