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


def padding_mask(x: tf.Tensor, valid: tf.Tensor) -> tf.Tensor:
    """float32 (N, h, w, 1): 1 on the cells of the feature map ``x`` (N, h, w, C) that lie in the
    valid image, 0 on the zero padding.

    ``valid`` is int32 (N, 4): the valid (height, width) of each image before padding and the
    padded (height, width) of the model input (see :func:`valid_sizes`). A map of stride
    ``s = padded height / h`` has cell ``i`` valid when its first pixel is, ``i * s < height``,
    i.e. the first ``ceil(height / s)`` rows (the same for columns): what strided 'same'
    convolutions of a bottom/right-padded image give, whatever the amount of padding.
    """
    shape = tf.shape(x)
    h, w = shape[1], shape[2]
    valid = tf.cast(valid, tf.int32)
    rows = tf.range(h)[None, :] * (valid[:, 2:3] // h) < valid[:, 0:1]  # (N, h)
    cols = tf.range(w)[None, :] * (valid[:, 3:4] // w) < valid[:, 1:2]  # (N, w)
    both = tf.logical_and(tf.expand_dims(tf.expand_dims(rows, 2), 3), tf.expand_dims(tf.expand_dims(cols, 1), 3))
    return tf.cast(both, tf.float32)


def valid_sizes(image_shape: tf.Tensor, padded_size) -> tf.Tensor:
    """int32 (N, 4) ``(height, width, padded height, padded width)`` for :func:`padding_mask`, from
    the valid sizes ``image_shape`` (N, 2) int32 and the padded (H, W) of the batch (ints or scalars)."""
    image_shape = tf.cast(image_shape, tf.int32)
    padded = tf.cast(tf.stack([padded_size[0], padded_size[1]]), tf.int32)
    return tf.concat([image_shape, tf.tile(padded[None], [tf.shape(image_shape)[0], 1])], 1)


def _group_stats(x: tf.Tensor, groups: int, mask: Optional[tf.Tensor] = None):
    """(mean_g, var_g) of float32 ``x`` (N, ..., C), each (N, G, 1): per-channel moments
    over the spatial axes combined exactly, ``var_g = mean_c(var_c) + mean_c((mean_c - mean_g)^2)``.
    With ``mask`` (N, ..., 1) in {0, 1} the moments are taken over the positions where it is 1
    (the valid image; at least one position counts)."""
    c = x.shape[-1]
    n = tf.shape(x)[0]
    axes = list(range(1, x.shape.rank - 1))
    if mask is None:
        mean_c, var_c = tf.nn.moments(x, axes)  # (N, C) each
    else:
        count = tf.maximum(tf.reduce_sum(mask, axes), 1.0)  # (N, 1)
        mean_c = tf.reduce_sum(x * mask, axes) / count
        centred = (x - tf.reshape(mean_c, tf.concat([[n], tf.ones([x.shape.rank - 2], tf.int32), [c]], 0))) * mask
        var_c = tf.reduce_sum(tf.square(centred), axes) / count
    mean_c = tf.reshape(mean_c, [n, groups, c // groups])
    mean_g = tf.reduce_mean(mean_c, -1, keepdims=True)
    var_g = tf.reduce_mean(tf.reshape(var_c, [n, groups, c // groups]) + tf.square(mean_c - mean_g), -1, keepdims=True)
    return mean_g, var_g


def group_norm(
    x: tf.Tensor,
    gamma: tf.Tensor,
    beta: tf.Tensor,
    groups: int,
    eps: float,
    fast_gradient: bool = True,
    mask: Optional[tf.Tensor] = None,
) -> tf.Tensor:
    """Group normalisation of float32 ``x`` (N, ..., C) with per-channel ``gamma``, ``beta`` (C,).

    Forward: group statistics from per-channel moments (:func:`_group_stats`), then
    ``y = x * a + b`` with one (N, C) scale ``a`` and shift ``b``. With ``mask`` (N, ..., 1)
    float32 in {0, 1} (the valid image, :func:`padding_mask`) the statistics ignore the masked-out
    positions and ``y`` is 0 there, so the valid positions' output does not depend on the padding.

    Backward with ``fast_gradient`` (hand-written, faster than autodiff on CPU; training):
    with ``S1 = sum_s dy`` and ``S2 = sum_s dy * (x - mean_g)`` per (image, channel), ``r`` the
    group's inverse std, ``m = spatial size * channels per group``,
    ``dgamma = sum_n r S2``, ``dbeta = sum_n S1``,
    ``A = sum_(c in g) gamma_c S1_c / m``, ``B = sum_(c in g) gamma_c r S2_c / m``,
    ``dx = r gamma_c dy - r^2 B (x - mean_g) - r A``; with a mask, ``dy`` is masked first, the
    sums and ``m`` count the valid positions only and ``dx`` is 0 on the padding.
    Without it the plain ops are used (autodiff; what export traces: a ``tf.custom_gradient``
    in the graph makes the TFLite converter drop the model's signature).
    """
    c = x.shape[-1]
    cg = c // groups
    axes = list(range(1, x.shape.rank - 1))

    def forward(x, gamma, beta):
        n = tf.shape(x)[0]
        mean_g, var_g = _group_stats(x, groups, mask)
        r = tf.math.rsqrt(var_g + eps)  # (N, G, 1)
        scale = r * tf.reshape(gamma, [1, groups, cg])  # (N, G, Cg)
        shift = tf.reshape(beta, [1, groups, cg]) - mean_g * scale
        bshape = tf.concat([[n], tf.ones([x.shape.rank - 2], tf.int32), [c]], 0)  # (N, 1, .., 1, C)
        y = x * tf.reshape(scale, bshape) + tf.reshape(shift, bshape)
        if mask is not None:
            y = y * mask
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
            if mask is not None:
                dy = dy * mask
            # centred sums (x - mean_g), not sum(dy * x) - mean_g * sum(dy): no cancellation when
            # |mean| >> std (the difference that float32 rounding would otherwise amplify)
            xc = x - tf.reshape(tf.broadcast_to(mean_g, [n, groups, cg]), bshape)
            s1 = tf.reshape(tf.reduce_sum(dy, axes), [n, groups, cg])
            s2 = tf.reshape(tf.reduce_sum(dy * xc, axes), [n, groups, cg])
            if mask is None:
                m = tf.cast(tf.reduce_prod(tf.shape(x)[1:-1]) * cg, tf.float32)
            else:
                m = tf.reshape(tf.maximum(tf.reduce_sum(mask, axes), 1.0), [n, 1, 1]) * float(cg)
            dgam = r * s2  # sum_s dy * xhat
            a = tf.reduce_sum(gam * s1, -1, keepdims=True) / m
            b = tf.reduce_sum(gam * dgam, -1, keepdims=True) / m
            q = tf.broadcast_to(-r * r * b, [n, groups, cg])
            k = tf.broadcast_to(-r * a, [n, groups, cg])
            dx = dy * tf.reshape(scale, bshape) + xc * tf.reshape(q, bshape) + tf.reshape(k, bshape)
            if mask is not None:
                dx = dx * mask
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

    def call(self, x, valid=None, training=None):
        """``valid``: None (every position counts) or int32 (N, 4) valid sizes (:func:`valid_sizes`):
        the statistics then ignore the zero padding and the padding's output is 0."""
        # the hand-written gradient only where gradients are taken (training); inference and
        # export trace plain ops (see group_norm)
        y = group_norm(
            tf.cast(x, tf.float32),
            tf.cast(self.gamma, tf.float32),
            tf.cast(self.beta, tf.float32),
            self.groups,
            self.epsilon,
            fast_gradient=bool(training),
            mask=None if valid is None else padding_mask(x, valid),
        )
        return tf.cast(y, x.dtype)

    def compute_output_shape(self, x_shape, valid_shape=None):
        return x_shape

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="maskrcnn_body")
class MaskPadding(keras.layers.Layer):
    """``x`` (N, h, w, C) with the cells outside the valid image set to 0 (:func:`padding_mask`);
    ``valid`` int32 (N, 4) from :func:`valid_sizes`. No weights."""

    def call(self, x, valid):
        return x * tf.cast(padding_mask(x, valid), x.dtype)

    def compute_output_shape(self, x_shape, valid_shape=None):
        return x_shape


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
