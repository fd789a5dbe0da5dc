"""Folding frozen BatchNorm into the convolutions before it, for inference and export.

A ``Conv2D`` (linear, channels-last, kernel ``w`` (kh, kw, Cin / groups, Cout), bias ``b`` (Cout,) or none)
followed by a :class:`~maskrcnn_body.model.norm.FrozenBatchNormalization` over the channel axis (moving
``mean``, ``var``, ``gamma``, ``beta``, each (Cout,); ``gamma`` = 1 / ``beta`` = 0 when the layer has no
``scale`` / ``center``) computes ``(conv(x, w) + b - mean) * gamma / sqrt(var + eps) + beta``, which is one
convolution with, per output channel c, ``s_c = gamma_c / sqrt(var_c + eps)``:

    w'[..., c] = w[..., c] * s_c        b'_c = (b_c - mean_c) * s_c + beta_c

(computed in float64, stored as the kernel's dtype). The folded convolution is the original's class
(:class:`~maskrcnn_body.model.conv.Conv2D`), its name and its config, with a bias; the folded sub-model is
rebuilt from its config (nothing shared with the original, which can be freed).

:func:`fold_frozen_batchnorm` folds a :class:`~maskrcnn_body.model.maskrcnn.MaskRCNN` (the ``r50_fpn_imagenet``
backbone: 53 pairs), :func:`fold_functional` one functional sub-model. A model without frozen BatchNorm
(GroupNorm: ``r50_fpn``, ``cpu_small``) is returned unchanged. Trainable BatchNorm (``batch``,
``sync_batch``) is not folded: its statistics still change while training. The exports and the TensorFlow
runner fold (``inference.exporting.export_saved_model``, ``inference.predictor.Predictor.from_train_dir``);
the folded model computes the same detections to float32 rounding (tests/test_fold.py). Under Keras'
``mixed_bfloat16`` policy (the TensorFlow runner's ``precision="bfloat16"``) the folded kernel and bias are
used in bfloat16 where the BatchNorm computed in float32: on a random-weight frozen-BatchNorm ``cpu_small``
the scores moved by ~5e-3 from float32 (~4e-4 unfolded).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Dict, Iterator, List, Optional, Tuple

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


def _folded_weights(conv, bn) -> List[np.ndarray]:
    """[kernel, bias] of ``conv`` with ``bn`` folded in (:func:`fold_conv_bn`)."""

    def value(v):
        return keras.ops.convert_to_numpy(v)

    return list(
        fold_conv_bn(
            value(conv.kernel),
            value(conv.bias) if conv.use_bias else None,
            value(bn.moving_mean),
            value(bn.moving_variance),
            value(bn.gamma) if bn.scale else None,
            value(bn.beta) if bn.center else None,
            bn.epsilon,
        )
    )


def _tensor_refs(obj) -> Iterator[dict]:
    """The serialised Keras tensors (dicts with ``keras_history`` = [layer name, node, index]) inside a
    functional config's ``inbound_nodes``."""
    if isinstance(obj, dict):
        if "keras_history" in obj:
            yield obj
        for v in obj.values():
            yield from _tensor_refs(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _tensor_refs(v)


def _output_refs(obj) -> Iterator[list]:
    """The [layer name, node, index] lists of a functional config's ``output_layers`` (any nesting)."""
    if isinstance(obj, list) and len(obj) == 3 and isinstance(obj[0], str) and isinstance(obj[1], int):
        yield obj
    elif isinstance(obj, (list, dict)):
        for v in obj.values() if isinstance(obj, dict) else obj:
            yield from _output_refs(v)


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
    """A new functional model computing what ``model`` computes (inference), with every ``Conv2D ->
    FrozenBatchNormalization`` pair of its layers replaced by one folded ``Conv2D`` (module docstring; the
    convolution's name and config, with a bias); ``model`` itself when it has no frozen BatchNorm.

    Rebuilt from ``model.get_config()`` without the folded BatchNorm layers (their readers read the
    convolution), every other layer's weights copied by name: same inputs, outputs and layer names, no
    variable or layer shared with ``model``. A frozen BatchNorm stays when it is not the only reader of a
    linear channels-last convolution called once, or sits in a nested model.
    """
    if not frozen_batchnorm_layers(model):
        return model
    config = json.loads(json.dumps(model.get_config()))  # a copy in plain lists and dicts (JSON: as saved)
    entries = config["layers"]
    reads: Counter = Counter(tuple(t["keras_history"]) for e in entries for t in _tensor_refs(e["inbound_nodes"]))
    reads.update(tuple(ref) for ref in _output_refs(config["output_layers"]))
    live = {layer.name: layer for layer in model.layers}
    pairs: Dict[str, str] = {}  # BatchNorm name -> convolution name
    for entry in entries:
        bn = live.get(entry["name"])
        if not isinstance(bn, FrozenBatchNormalization) or len(entry["inbound_nodes"]) != 1:
            continue
        inputs = list(_tensor_refs(entry["inbound_nodes"]))
        if len(inputs) != 1:
            continue
        name, node, index = inputs[0]["keras_history"]
        conv = live.get(name)
        calls = next(len(e["inbound_nodes"]) for e in entries if e["name"] == name)
        if calls == 1 and reads[(name, node, index)] == 1 and _foldable(conv, bn):
            pairs[bn.name] = name
    if not pairs:
        return model
    convs = set(pairs.values())
    kept = []
    for entry in entries:
        if entry["name"] in pairs:
            continue
        if entry["name"] in convs:
            entry["config"]["use_bias"] = True
        for t in _tensor_refs(entry["inbound_nodes"]):
            if t["keras_history"][0] in pairs:
                t["keras_history"] = [pairs[t["keras_history"][0]], 0, 0]
        kept.append(entry)
    config["layers"] = kept
    for ref in _output_refs(config["output_layers"]):
        if ref[0] in pairs:
            ref[:] = [pairs[ref[0]], 0, 0]
    folded = model.__class__.from_config(config)
    weights = {conv: _folded_weights(live[conv], live[bn]) for bn, conv in pairs.items()}
    for layer in folded.layers:
        if layer.name in weights:
            layer.set_weights(weights[layer.name])
        elif layer.weights:
            layer.set_weights(live[layer.name].get_weights())
    return folded


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
