"""Folding frozen BatchNorm into the convolutions before it, for inference and export.

A ``Conv2D`` (linear, channels-last, kernel ``w`` (kh, kw, Cin / groups, Cout), bias ``b`` (Cout,) or none)
followed by a :class:`~maskrcnn_body.model.norm.FrozenBatchNormalization` over the channel axis (moving
``mean``, ``var``, ``gamma``, ``beta``, each (Cout,); ``gamma`` = 1 / ``beta`` = 0 when the layer has no
``scale`` / ``center``) computes ``(conv(x, w) + b - mean) * gamma / sqrt(var + eps) + beta``, which is one
convolution with, per output channel c, ``s_c = gamma_c / sqrt(var_c + eps)``:

    w'[..., c] = w[..., c] * s_c        b'_c = (b_c - mean_c) * s_c + beta_c

(computed in float64, stored as the kernel's dtype). The folded convolution is the original's class
(:class:`~maskrcnn_body.model.conv.Conv2D`), its name and its config, with a bias. Every other layer is the
original layer itself (shared, not copied).

:func:`fold_frozen_batchnorm` folds a :class:`~maskrcnn_body.model.maskrcnn.MaskRCNN` (the ``r50_fpn_imagenet``
backbone: 53 pairs), :func:`fold_functional` one functional sub-model. A model without frozen BatchNorm
(GroupNorm: ``r50_fpn``, ``cpu_small``) is returned unchanged. Trainable BatchNorm (``batch``,
``sync_batch``) is not folded: its statistics still change while training. The exports and the TensorFlow
runner fold (``inference.exporting.export_saved_model``, ``inference.predictor.Predictor.from_train_dir``);
the folded model computes the same detections to float32 rounding (tests/test_fold.py).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import keras
import numpy as np

from maskrcnn_body.model.maskrcnn import PARTS, MaskRCNN
from maskrcnn_body.model.norm import FrozenBatchNormalization


def fold_conv_bn(
    kernel: np.ndarray,
    bias: Optional[np.ndarray],
    mean: np.ndarray,
    variance: np.ndarray,
    gamma: Optional[np.ndarray],
    beta: Optional[np.ndarray],
    epsilon: float,
) -> Tuple[np.ndarray, np.ndarray]:
    """The (kernel, bias) of the one convolution equal to conv(kernel, bias) -> BatchNorm (inference).

    ``kernel`` (..., Cout) (any conv kernel with the output channels last), ``bias`` (Cout,) or None (no
    bias); the BatchNorm's ``mean``, ``variance`` (Cout,), ``gamma`` (Cout,) or None (no scale: 1),
    ``beta`` (Cout,) or None (no centre: 0), ``epsilon``. Returns ``kernel * s`` (the kernel's shape and
    dtype) and ``(bias - mean) * s + beta`` (Cout,) with ``s = gamma / sqrt(variance + epsilon)``.
    """
    kernel = np.asarray(kernel)
    cout = kernel.shape[-1]
    mean64 = np.asarray(mean, np.float64)
    s = np.ones(cout) if gamma is None else np.asarray(gamma, np.float64)
    s = s / np.sqrt(np.asarray(variance, np.float64) + float(epsilon))
    b = np.zeros(cout) if bias is None else np.asarray(bias, np.float64)
    shift = np.zeros(cout) if beta is None else np.asarray(beta, np.float64)
    for name, v in (("mean", mean64), ("scale", s), ("bias", b), ("beta", shift)):
        if v.shape != (cout,):
            raise ValueError(f"fold_conv_bn: {name} has shape {v.shape}, the kernel has {cout} output channels")
    new_kernel = (kernel.astype(np.float64) * s).astype(kernel.dtype)
    new_bias = ((b - mean64) * s + shift).astype(kernel.dtype)
    return new_kernel, new_bias


def _foldable(conv, bn) -> bool:
    """Can ``bn`` (applied to the output of ``conv``) be folded into ``conv``?"""
    if not isinstance(conv, keras.layers.Conv2D) or not isinstance(bn, FrozenBatchNormalization):
        return False
    if conv.data_format != "channels_last" or conv.activation not in (None, keras.activations.linear):
        return False
    if getattr(bn, "renorm", False) or not conv.built or not bn.built:
        return False
    return bn.axis in (-1, 3)  # the channel axis of the (B, H, W, C) conv output


def _folded_conv(conv, bn, input_shape):
    """A new layer of ``conv``'s class, config and name with a bias, holding the folded weights."""
    kernel = keras.ops.convert_to_numpy(conv.kernel)
    bias = keras.ops.convert_to_numpy(conv.bias) if conv.use_bias else None

    def value(v):
        return None if v is None else keras.ops.convert_to_numpy(v)

    new_kernel, new_bias = fold_conv_bn(
        kernel,
        bias,
        value(bn.moving_mean),
        value(bn.moving_variance),
        value(bn.gamma) if bn.scale else None,
        value(bn.beta) if bn.center else None,
        bn.epsilon,
    )
    config = dict(conv.get_config(), use_bias=True, bias_initializer="zeros")
    config.pop("bias_regularizer", None)
    config.pop("bias_constraint", None)
    layer = conv.__class__.from_config(config)
    layer.build(input_shape)
    layer.set_weights([new_kernel, new_bias])
    layer.trainable = conv.trainable
    return layer


def frozen_batchnorm_layers(model: keras.Model) -> List[keras.layers.Layer]:
    """The :class:`FrozenBatchNormalization` layers of ``model`` (nested functional models included)."""
    out = []
    for layer in model.layers:
        if isinstance(layer, FrozenBatchNormalization):
            out.append(layer)
        elif isinstance(layer, keras.Model):
            out.extend(frozen_batchnorm_layers(layer))
    return out


def fold_functional(model: keras.Model) -> keras.Model:
    """A functional model computing what ``model`` computes (inference), with every ``Conv2D ->
    FrozenBatchNormalization`` pair replaced by one folded ``Conv2D`` (module docstring); ``model`` itself when
    it has no frozen BatchNorm. Same inputs, outputs and names; the other layers are ``model``'s own (shared
    weights). A frozen BatchNorm after anything but a linear channels-last convolution stays. When a
    convolution's output is also read by another layer than its BatchNorm, the original convolution stays for
    that reader (the names then clash and Keras refuses the model: such a graph is not foldable this way).
    """
    if not frozen_batchnorm_layers(model):
        return model
    # the conv call that produced each tensor of the new graph: id(output) -> (conv, args, kwargs)
    produced: Dict[int, tuple] = {}

    def call(layer, *args, **kwargs):
        if isinstance(layer, FrozenBatchNormalization) and args and id(args[0]) in produced:
            conv, conv_args, conv_kwargs = produced[id(args[0])]
            if _foldable(conv, layer):
                return _folded_conv(conv, layer, conv_args[0].shape)(*conv_args, **conv_kwargs)
        out = layer(*args, **kwargs)
        if isinstance(layer, keras.layers.Conv2D) and args:
            produced[id(out)] = (layer, args, kwargs)
        return out

    return keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=call)


def fold_frozen_batchnorm(model: MaskRCNN) -> MaskRCNN:
    """``model`` with the frozen BatchNorm of its sub-models folded into their convolutions (module docstring):
    a new :class:`MaskRCNN` of the same config sharing every sub-model without frozen BatchNorm (their
    weights) and holding the folded ones (:func:`fold_functional`); ``model`` itself when nothing is frozen
    BatchNorm. Same ``detect`` outputs (boxes (B, D, 4) resized frame, masks, keypoints; float32 rounding
    apart). For inference and export: the folded model's variables are not the checkpoint's."""
    parts = {name: getattr(model, name) for name in PARTS}
    folded = {name: (None if part is None else fold_functional(part)) for name, part in parts.items()}
    if all(folded[name] is parts[name] for name in PARTS):
        return model
    return MaskRCNN(model.cfg, parts=folded, name=model.name)
