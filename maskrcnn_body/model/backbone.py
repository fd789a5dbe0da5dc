"""Backbones giving the C2..C5 feature maps (strides 4, 8, 16, 32).

Three architectures, chosen by ``cfg.name``:

* ``resnet50``: the bottleneck ResNet-50 of ``keras.applications`` with the *same layer names*
  (``conv1_conv``, ``conv2_block1_1_conv``, ...), so ImageNet weights can be copied by name.
* ``resnet18``: basic-block ResNet-18 (no pretrained weights shipped by Keras).
* ``tiny``: a small basic-block ResNet (widths 32-64-128-256, one block per stage) for CPU
  training on the synthetic data.

Normalisation (``cfg.norm``, :mod:`maskrcnn_body.model.norm`): ``group`` (default, from scratch),
``frozen_bn`` (fine-tuning pretrained weights), ``batch`` (the legacy setting), ``sync_batch``.

Input: float32 images already normalised by :func:`normalize_images` (the model does that).
"""

from __future__ import annotations

from typing import List

import keras
import tensorflow as tf

from maskrcnn_body import constants
from maskrcnn_body.config import BackboneConfig
from maskrcnn_body.model.conv import Conv2D
from maskrcnn_body.model.norm import GroupNorm, MaskPadding, norm_layer


def _norm(x, cfg: BackboneConfig, channels: int, name: str, valid):
    """The configured normalisation of ``x``; GroupNorm takes its statistics over the valid image only
    (``valid``: the (N, 4) sizes of :func:`maskrcnn_body.model.norm.valid_sizes`) and zeroes the padding."""
    layer = norm_layer(cfg.norm, channels, name, cfg.group_norm_groups)
    if layer is None:
        return x
    return layer(x, valid) if isinstance(layer, GroupNorm) else layer(x)


def normalize_images(images: tf.Tensor, cfg: BackboneConfig) -> tf.Tensor:
    """float32 RGB (B, H, W, 3) in [0, 255] -> the backbone's input, by ``cfg.preprocessing``
    (keras.applications' ``preprocess_input`` modes): ``torch`` = ``(x / 255 - mean) / std`` in RGB;
    ``caffe`` = BGR minus the ImageNet mean, 0-255 (what Keras' ImageNet ResNet50 weights expect)."""
    x = tf.cast(images, tf.float32)
    if cfg.preprocessing == "caffe":
        return x[..., ::-1] - tf.constant(constants.CAFFE_MEAN_BGR, tf.float32)
    return (x / 255.0 - tf.constant(constants.TORCH_MEAN, tf.float32)) / tf.constant(constants.TORCH_STD, tf.float32)


# --------------------------------------------------------------------------- blocks
def _conv_norm(x, cfg, filters, kernel, stride, name, valid, relu=True, use_bias=True):
    x = Conv2D(filters, kernel, strides=stride, padding="same", use_bias=use_bias, name=f"{name}_conv")(x)
    x = _norm(x, cfg, filters, f"{name}_bn", valid)
    return keras.layers.Activation("relu", name=f"{name}_relu")(x) if relu else x


def _bottleneck(x, cfg, filters, stride, conv_shortcut, name, valid):
    """keras.applications ResNet50 v1 block (stride on the first 1x1), same layer names."""
    if conv_shortcut:
        shortcut = Conv2D(4 * filters, 1, strides=stride, name=f"{name}_0_conv")(x)
        shortcut = _norm(shortcut, cfg, 4 * filters, f"{name}_0_bn", valid)
    else:
        shortcut = x
    y = _conv_norm(x, cfg, filters, 1, stride, f"{name}_1", valid)
    y = _conv_norm(y, cfg, filters, 3, 1, f"{name}_2", valid)
    y = _conv_norm(y, cfg, 4 * filters, 1, 1, f"{name}_3", valid, relu=False)
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return keras.layers.Activation("relu", name=f"{name}_out")(y)


def _basic(x, cfg, filters, stride, name, valid):
    """Two 3x3 convolutions with a projection shortcut when the shape changes."""
    if stride != 1 or x.shape[-1] != filters:
        shortcut = _conv_norm(x, cfg, filters, 1, stride, f"{name}_0", valid, relu=False, use_bias=False)
    else:
        shortcut = x
    y = _conv_norm(x, cfg, filters, 3, stride, f"{name}_1", valid, use_bias=False)
    y = _conv_norm(y, cfg, filters, 3, 1, f"{name}_2", valid, relu=False, use_bias=False)
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return keras.layers.Activation("relu", name=f"{name}_out")(y)


def _resnet50(x, cfg, valid) -> List:
    x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = Conv2D(64, 7, strides=2, name="conv1_conv")(x)
    x = _norm(x, cfg, 64, "conv1_bn", valid)
    x = keras.layers.Activation("relu", name="conv1_relu")(x)
    x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    outs = []
    for stage, (filters, blocks, stride) in enumerate(((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)), 2):
        for b in range(1, blocks + 1):
            x = _bottleneck(x, cfg, filters, stride if b == 1 else 1, b == 1, f"conv{stage}_block{b}", valid)
        outs.append(x)
    return outs


def _basic_resnet(x, cfg, widths, blocks, stem, valid) -> List:
    if stem == "resnet":
        x = _conv_norm(x, cfg, widths[0] * 2 if widths[0] < 64 else 64, 7, 2, "conv1", valid, use_bias=False)
        x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool1_pool")(x)
    else:  # tiny: two cheap 3x3 stride-2 convolutions
        x = _conv_norm(x, cfg, widths[0] // 2, 3, 2, "conv1a", valid, use_bias=False)
        x = _conv_norm(x, cfg, widths[0], 3, 2, "conv1b", valid, use_bias=False)
    outs = []
    for stage, (filters, n) in enumerate(zip(widths, blocks), 2):
        for b in range(1, n + 1):
            x = _basic(x, cfg, filters, 2 if (b == 1 and stage > 2) else 1, f"conv{stage}_block{b}", valid)
        outs.append(x)
    return outs


def build_backbone(cfg: BackboneConfig) -> keras.Model:
    """Functional model: [normalised images (B, H, W, 3), valid sizes (B, 4) int32] -> [C2, C3, C4, C5]
    (strides 4..32).

    H and W must be multiples of 32 for the FPN to line up (the pipeline pads to ``size_divisor``).
    ``valid`` (:func:`maskrcnn_body.model.norm.valid_sizes`: each image's height and width before
    padding, then H, W) makes the input's padding 0 and GroupNorm's statistics ignore it, so the
    features of an image do not depend on how much padding its batch added.
    ``cfg.weights`` (a local file, or ``"imagenet"`` = Keras download) is loaded here.
    """
    inputs = keras.Input((None, None, 3), name="normalized_images")
    valid = keras.Input((4,), dtype="int32", name="valid_sizes")
    x = MaskPadding(name="input_padding")(inputs, valid)
    if cfg.name == "resnet50":
        feats = _resnet50(x, cfg, valid)
    elif cfg.name == "resnet18":
        feats = _basic_resnet(x, cfg, (64, 128, 256, 512), (2, 2, 2, 2), "resnet", valid)
    elif cfg.name == "tiny":
        feats = _basic_resnet(x, cfg, tuple(cfg.tiny_widths), (1, 1, 1, 1), "tiny", valid)
    else:
        raise ValueError(f"model.backbone.name={cfg.name!r} is not one of 'resnet50', 'resnet18', 'tiny'")
    model = keras.Model([inputs, valid], feats, name=f"backbone_{cfg.name}")
    if cfg.weights:
        load_backbone_weights(model, cfg)
    freeze(model, cfg.freeze_at)
    return model


def frozen_prefixes(freeze_at: int):
    """Layer-name prefixes frozen by ``freeze_at`` (Detectron2's FREEZE_AT): 1 the stem
    (``conv1*``, ``pool1*``), 2 also the first stage (``conv2_*``), k also stages up to C``k``."""
    if freeze_at <= 0:
        return ()
    return ("conv1", "pool1") + tuple(f"conv{stage}_" for stage in range(2, freeze_at + 1))


def freeze(backbone: keras.Model, freeze_at: int) -> int:
    """Makes the layers selected by :func:`frozen_prefixes` non-trainable; returns how many."""
    prefixes = frozen_prefixes(freeze_at)
    frozen = 0
    for layer in backbone.layers:
        if prefixes and layer.name.startswith(prefixes):
            layer.trainable = False
            frozen += 1
    return frozen


def load_backbone_weights(backbone: keras.Model, cfg: BackboneConfig) -> int:
    """Copies ImageNet weights into ``backbone`` by layer name; returns the number of layers copied.

    ``cfg.weights`` is a local Keras ResNet50 weights file (the legacy ``.h5`` that
    ``keras.applications`` downloads, ``resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5``, or a
    ``.weights.h5`` written by ``model.save_weights``) or ``"imagenet"`` (Keras downloads it; needs
    internet). Convolutions and BatchNorm parameters and statistics are copied; the config check
    (``BackboneConfig.validate``) has made sure the model normalises and preprocesses the way the
    weights expect (BatchNorm kept, caffe-style input).
    """
    import os

    if cfg.name != "resnet50":
        raise ValueError(f"model.backbone.weights is only supported for name='resnet50', not {cfg.name!r}")
    src = cfg.weights
    if src != "imagenet" and not (src and os.path.isfile(src)):
        raise FileNotFoundError(
            f"model.backbone.weights={src!r} is not a file; give a local Keras "
            f"ResNet50 weights file (.h5 or .weights.h5) or 'imagenet' (needs internet)"
        )
    try:
        ref = keras.applications.ResNet50(include_top=False, weights=src, input_shape=(64, 64, 3))
    except Exception as e:
        what = "download the ImageNet weights (no internet?)" if src == "imagenet" else f"read {src}"
        raise ValueError(
            f"model.backbone.weights: could not {what}: {str(e).splitlines()[0] if str(e) else e!r}; "
            "give a local Keras ResNet50 weights file instead (--set model.backbone.weights=PATH: the "
            "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5 that keras.applications downloads, "
            "or a .weights.h5)"
        ) from None
    copied = 0
    for layer in backbone.layers:
        if not layer.weights:
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
