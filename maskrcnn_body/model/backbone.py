"""Backbones giving the C2..C5 feature maps (strides 4, 8, 16, 32).

Three architectures, chosen by ``cfg.backbone``:

* ``resnet50``: the bottleneck ResNet-50 of ``keras.applications`` with the *same layer names*
  (``conv1_conv``, ``conv2_block1_1_conv``, ...), so ImageNet weights can be copied by name.
* ``resnet18``: basic-block ResNet-18 (no pretrained weights shipped by Keras).
* ``tiny``: a small basic-block ResNet (widths 32-64-128-256, one block per stage) for CPU
  training on the synthetic data.

Normalisation (``cfg.norm``), chosen deliberately because detection trains with 1-4 images per
device, where plain BatchNorm statistics are noise (the 2017 original never even updated its
moving averages):

* ``group`` (default): GroupNorm, batch-independent, so training from scratch at batch 1-4 is stable
  and train/test behave identically.
* ``frozen_bn``: BatchNorm always in inference mode with frozen gamma/beta/statistics; the right
  choice when fine-tuning from ImageNet weights (``backbone_weights``).
* ``batch``: plain BatchNorm (the legacy setting; only sensible with large batches).
* ``sync_batch``: BatchNorm with statistics synchronised across replicas (``tf.distribute``).

Input: float32 images already normalised by :func:`normalize_images` (the model does that).
"""
from __future__ import annotations

from typing import List

import keras
import tensorflow as tf

from maskrcnn_body.config import ModelConfig
from maskrcnn_body.model.conv import Conv2D

STRIDES = (4, 8, 16, 32)  # C2..C5


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
    mean_c, var_c = tf.nn.moments(x, list(range(1, x.shape.rank - 1)))            # (N, C) each
    mean_c = tf.reshape(mean_c, [n, groups, c // groups])
    mean_g = tf.reduce_mean(mean_c, -1, keepdims=True)
    var_g = tf.reduce_mean(tf.reshape(var_c, [n, groups, c // groups]) + tf.square(mean_c - mean_g), -1,
                           keepdims=True)
    return mean_g, var_g


def group_norm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, groups: int, eps: float,
               fast_gradient: bool = True) -> tf.Tensor:
    """Group normalisation of float32 ``x`` (N, ..., C) with per-channel ``gamma``, ``beta`` (C,).

    Forward: group statistics from per-channel moments (:func:`_group_stats`), then
    ``y = x * a + b`` with one (N, C) scale ``a`` and shift ``b``.

    Backward with ``fast_gradient`` (hand-written, 1.3-1.5x faster than autodiff on CPU; training):
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
        r = tf.math.rsqrt(var_g + eps)                                              # (N, G, 1)
        scale = r * tf.reshape(gamma, [1, groups, cg])                              # (N, G, Cg)
        shift = tf.reshape(beta, [1, groups, cg]) - mean_g * scale
        bshape = tf.concat([[n], tf.ones([x.shape.rank - 2], tf.int32), [c]], 0)    # (N, 1, .., 1, C)
        y = x * tf.reshape(scale, bshape) + tf.reshape(shift, bshape)
        return y, (n, mean_g, r, scale, bshape)

    if not fast_gradient:
        return forward(x, gamma, beta)[0]
    scope = "gradient_tape/" + tf.get_current_name_scope() + "/"   # as autodiff names its ops

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
            dgam = r * s2                                                           # sum_s dy * xhat
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
    (:func:`group_norm`). Measured on 2 CPU threads, (1, 128, 128, 256): forward 6.7 ms vs 22 ms,
    forward + backward 20 ms vs 42 ms. Computed in float32 under mixed precision.
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
        y = group_norm(tf.cast(x, tf.float32), tf.cast(self.gamma, tf.float32), tf.cast(self.beta, tf.float32),
                       self.groups, self.epsilon, fast_gradient=bool(training))
        return tf.cast(y, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "epsilon": self.epsilon}


def norm_layer(cfg: ModelConfig, channels: int, name: str) -> keras.layers.Layer:
    """The normalisation layer selected by ``cfg.norm`` for a ``channels``-wide feature map."""
    if cfg.norm == "group":
        groups = min(cfg.group_norm_groups, channels)
        while channels % groups:
            groups -= 1
        return GroupNorm(groups=groups, epsilon=1e-5, name=name)
    if cfg.norm == "frozen_bn":
        return FrozenBatchNormalization(epsilon=1.001e-5, name=name)
    if cfg.norm == "batch":
        return keras.layers.BatchNormalization(epsilon=1.001e-5, name=name)
    if cfg.norm == "sync_batch":
        return keras.layers.BatchNormalization(epsilon=1.001e-5, synchronized=True, name=name)
    raise ValueError(f"model.norm={cfg.norm!r} is not one of 'group', 'frozen_bn', 'batch', 'sync_batch'")


def normalize_images(images: tf.Tensor, cfg: ModelConfig) -> tf.Tensor:
    """float32 RGB (B, H, W, 3) in [0, 255] -> ``(x / 255 - pixel_mean) / pixel_std``
    (channels reversed to BGR first when ``cfg.input_bgr``, e.g. for Keras' caffe-style weights)."""
    x = tf.cast(images, tf.float32) / 255.0
    if cfg.input_bgr:
        x = x[..., ::-1]
    return (x - tf.constant(cfg.pixel_mean, tf.float32)) / tf.constant(cfg.pixel_std, tf.float32)


# --------------------------------------------------------------------------- blocks
def _conv_norm(x, cfg, filters, kernel, stride, name, relu=True, use_bias=True):
    x = Conv2D(filters, kernel, strides=stride, padding="same", use_bias=use_bias,
                            name=f"{name}_conv")(x)
    x = norm_layer(cfg, filters, f"{name}_bn")(x)
    return keras.layers.Activation("relu", name=f"{name}_relu")(x) if relu else x


def _bottleneck(x, cfg, filters, stride, conv_shortcut, name):
    """keras.applications ResNet50 v1 block (stride on the first 1x1), same layer names."""
    if conv_shortcut:
        shortcut = Conv2D(4 * filters, 1, strides=stride, name=f"{name}_0_conv")(x)
        shortcut = norm_layer(cfg, 4 * filters, f"{name}_0_bn")(shortcut)
    else:
        shortcut = x
    y = _conv_norm(x, cfg, filters, 1, stride, f"{name}_1")
    y = _conv_norm(y, cfg, filters, 3, 1, f"{name}_2")
    y = _conv_norm(y, cfg, 4 * filters, 1, 1, f"{name}_3", relu=False)
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return keras.layers.Activation("relu", name=f"{name}_out")(y)


def _basic(x, cfg, filters, stride, name):
    """Two 3x3 convolutions with a projection shortcut when the shape changes."""
    if stride != 1 or x.shape[-1] != filters:
        shortcut = _conv_norm(x, cfg, filters, 1, stride, f"{name}_0", relu=False, use_bias=False)
    else:
        shortcut = x
    y = _conv_norm(x, cfg, filters, 3, stride, f"{name}_1", use_bias=False)
    y = _conv_norm(y, cfg, filters, 3, 1, f"{name}_2", relu=False, use_bias=False)
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return keras.layers.Activation("relu", name=f"{name}_out")(y)


def _resnet50(x, cfg) -> List:
    x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = Conv2D(64, 7, strides=2, name="conv1_conv")(x)
    x = norm_layer(cfg, 64, "conv1_bn")(x)
    x = keras.layers.Activation("relu", name="conv1_relu")(x)
    x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    outs = []
    for stage, (filters, blocks, stride) in enumerate(((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)), 2):
        for b in range(1, blocks + 1):
            x = _bottleneck(x, cfg, filters, stride if b == 1 else 1, b == 1, f"conv{stage}_block{b}")
        outs.append(x)
    return outs


def _basic_resnet(x, cfg, widths, blocks, stem) -> List:
    if stem == "resnet":
        x = _conv_norm(x, cfg, widths[0] * 2 if widths[0] < 64 else 64, 7, 2, "conv1", use_bias=False)
        x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool1_pool")(x)
    else:  # tiny: two cheap 3x3 stride-2 convolutions
        x = _conv_norm(x, cfg, widths[0] // 2, 3, 2, "conv1a", use_bias=False)
        x = _conv_norm(x, cfg, widths[0], 3, 2, "conv1b", use_bias=False)
    outs = []
    for stage, (filters, n) in enumerate(zip(widths, blocks), 2):
        for b in range(1, n + 1):
            x = _basic(x, cfg, filters, 2 if (b == 1 and stage > 2) else 1, f"conv{stage}_block{b}")
        outs.append(x)
    return outs


def build_backbone(cfg: ModelConfig) -> keras.Model:
    """Functional model: normalised images (B, H, W, 3) -> [C2, C3, C4, C5] (strides 4..32).

    H and W must be multiples of 32 for the FPN to line up (the pipeline pads to ``size_divisor``).
    ``cfg.backbone_weights`` (a local file, or ``"imagenet"`` = Keras download) is loaded here.
    """
    inputs = keras.Input((None, None, 3), name="normalized_images")
    if cfg.backbone == "resnet50":
        feats = _resnet50(inputs, cfg)
    elif cfg.backbone == "resnet18":
        feats = _basic_resnet(inputs, cfg, (64, 128, 256, 512), (2, 2, 2, 2), "resnet")
    elif cfg.backbone == "tiny":
        feats = _basic_resnet(inputs, cfg, tuple(cfg.tiny_widths), (1, 1, 1, 1), "tiny")
    else:
        raise ValueError(f"model.backbone={cfg.backbone!r} is not one of 'resnet50', 'resnet18', 'tiny'")
    model = keras.Model(inputs, feats, name=f"backbone_{cfg.backbone}")
    if cfg.backbone_weights:
        load_backbone_weights(model, cfg)
    return model


def load_backbone_weights(backbone: keras.Model, cfg: ModelConfig) -> int:
    """Copies ImageNet weights into ``backbone`` by layer name; returns the number of layers copied.

    ``cfg.backbone_weights`` is a local Keras ResNet50 weights file (``.h5`` as shipped by
    ``keras.applications``, or ``.weights.h5``) or ``"imagenet"`` (Keras downloads it; needs
    internet). Convolutions are always copied; normalisation parameters only when ``cfg.norm`` is a
    BatchNorm variant (BatchNorm statistics mean nothing to GroupNorm). Pair Keras' caffe-style
    weights with ``input_bgr=True, pixel_mean=(103.939/255, 116.779/255, 123.68/255),
    pixel_std=(1/255,)*3`` and ``norm="frozen_bn"``.
    """
    import os
    if cfg.backbone != "resnet50":
        raise ValueError(f"backbone_weights is only supported for backbone='resnet50', not {cfg.backbone!r}")
    src = cfg.backbone_weights
    if src != "imagenet" and not os.path.isfile(src):
        raise FileNotFoundError(f"model.backbone_weights={src!r} is not a file; give a local Keras "
                                f"ResNet50 weights file (.h5) or 'imagenet' (needs internet)")
    ref = keras.applications.ResNet50(include_top=False, weights=src, input_shape=(64, 64, 3))
    copied = 0
    for layer in backbone.layers:
        if not layer.weights:
            continue
        is_norm = layer.name.endswith("_bn")
        if is_norm and cfg.norm == "group":
            continue
        try:
            ref_layer = ref.get_layer(layer.name)
        except ValueError:
            continue
        layer.set_weights(ref_layer.get_weights())
        copied += 1
    if copied == 0:
        raise ValueError(f"no layer of {backbone.name} matched a layer of the weights in {src!r}")
    return copied
