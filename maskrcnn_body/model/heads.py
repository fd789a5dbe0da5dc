"""The RoI head networks: box/class, 7-channel part mask, 15-joint keypoint, and the point head.

Every head is a functional ``keras.Model`` over RoIAlign crops (N, S, S, C) of the RoIs' own
pyramid level, C = the FPN width (``model.roi_heads`` crops the RoIs and runs them). Nothing is
mirrored: the crops keep the image's orientation, so left and right (the subject's own sides) are
learnable from the face/back-of-head cue.
The point head (:func:`build_point_head`) works on points instead of crops: per-point features
(N, P, F) sampled by :mod:`maskrcnn_body.ops.points`.
Outputs are float32 (cast after the last layer, safe under mixed precision).
"""

from __future__ import annotations

import keras

from maskrcnn_body import constants
from maskrcnn_body.config import BoxHeadConfig, KeypointHeadConfig, MaskHeadConfig, PointHeadConfig
from maskrcnn_body.model.conv import Conv2D
from maskrcnn_body.model.norm import norm_layer

NUM_CLASSES = 2  # background, person


def _float32(x, name):
    return keras.layers.Activation("linear", dtype="float32", name=name)(x)


def _conv_stack(x, n: int, dim: int, norm: str, prefix: str):
    """``n`` x (3x3 conv -> norm -> ReLU). Without a normalisation (``norm="none"``) each
    convolution has a bias, so every layer keeps a trainable offset (Detectron2's choice)."""
    for i in range(n):
        x = Conv2D(dim, 3, padding="same", use_bias=norm == "none", name=f"{prefix}_conv{i + 1}")(x)
        layer = norm_layer(norm, dim, f"{prefix}_norm{i + 1}")
        x = layer(x) if layer is not None else x
        x = keras.layers.Activation("relu", name=f"{prefix}_relu{i + 1}")(x)
    return x


def _global_context(x, global_dim: int, prefix: str):
    """Adds an RoI-wide summary to every position of ``x`` (N, s, s, D) (PANet-style fully
    connected fusion): 1x1 conv to 16 channels -> flatten -> FC ``global_dim`` -> FC D,
    broadcast over the s x s grid and added, then ReLU.

    Why: which limb is the *left* one depends on whether the person faces the camera, a cue
    (face vs back of the head, arms in front of or behind the torso) that can lie further from
    a leg than a few 3x3 convolutions can see. The FC branch sees the whole RoI at once.
    Identity when ``global_dim`` is 0.
    """
    if not global_dim:
        return x
    s, dim = x.shape[1], x.shape[-1]
    g = Conv2D(16, 1, activation="relu", name=f"{prefix}_global_reduce")(x)
    g = keras.layers.Flatten(name=f"{prefix}_global_flatten")(g)
    g = keras.layers.Dense(global_dim, activation="relu", name=f"{prefix}_global_fc")(g)
    g = keras.layers.Dense(dim, name=f"{prefix}_global_proj")(g)
    g = keras.layers.Reshape((1, 1, dim), name=f"{prefix}_global_reshape")(g)
    g = keras.layers.UpSampling2D(s, name=f"{prefix}_global_tile")(g)
    x = keras.layers.Add(name=f"{prefix}_global_add")([x, g])
    return keras.layers.Activation("relu", name=f"{prefix}_global_relu")(x)


def _upsample_to(x, size: int, name: str):
    """Bilinear resize of a (N, s, s, K) map to (N, size, size, K); identity when already that size."""
    if x.shape[1] == size:
        return x
    return keras.layers.Resizing(size, size, interpolation="bilinear", name=name)(x)


def build_box_head(cfg: BoxHeadConfig, channels: int) -> keras.Model:
    """(N, roi_size, roi_size, channels) -> class logits (N, 2) [background, person],
    class-agnostic box deltas (N, 4) (encoded with ``cfg.box_weights``)."""
    s = cfg.roi_size
    inputs = keras.Input((s, s, channels), name="box_rois")
    x = keras.layers.Flatten(name="box_flatten")(inputs)
    for i in (1, 2):
        x = keras.layers.Dense(cfg.fc_dim, activation="relu", name=f"box_fc{i}")(x)
    logits = keras.layers.Dense(
        NUM_CLASSES, kernel_initializer=keras.initializers.RandomNormal(stddev=0.01), name="box_class"
    )(x)
    deltas = keras.layers.Dense(4, kernel_initializer=keras.initializers.RandomNormal(stddev=0.001), name="box_deltas")(
        x
    )
    return keras.Model(inputs, [_float32(logits, "class_logits"), _float32(deltas, "box_deltas_f32")], name="box_head")


def build_mask_head(cfg: MaskHeadConfig, channels: int, keypoints: KeypointHeadConfig) -> keras.Model:
    """(N, roi_size, roi_size, channels) -> mask logits (N, M, M, 7), M = ``cfg.output_size``.

    Convolutions run at the RoI size, then the RoI-wide context branch (``cfg.global_dim``,
    see :func:`_global_context`), one 2x transposed convolution doubles it, a 1x1 convolution
    gives the 7 channel logits, and only those 7 channels are bilinearly upsampled to M ("upsample
    late": a 112x112x256 tensor per RoI is never materialised).

    With ``keypoints.kind == "shared"`` the same convolution tower also gives the keypoint heatmap
    logits (N, K, K, 15), K = ``keypoints.heatmap_size`` (a 4x4 stride-2 transposed convolution,
    then bilinear to K, as Keypoint R-CNN's last layers), and the model outputs
    ``[mask_logits, keypoint_logits]``: parts and joints in one pass over one tower.
    """
    s = cfg.roi_size
    inputs = keras.Input((s, s, channels), name="mask_rois")
    tower = _conv_stack(inputs, cfg.convs, cfg.dim, cfg.norm, "mask")
    tower = _global_context(tower, cfg.global_dim, "mask")
    x = keras.layers.Conv2DTranspose(cfg.dim, 2, strides=2, activation="relu", name="mask_deconv")(tower)
    x = Conv2D(constants.NUM_CHANNELS, 1, name="mask_logits")(x)
    x = _upsample_to(x, cfg.output_size, "mask_upsample")
    masks = _float32(x, "mask_logits_f32")
    if keypoints.kind != "shared":
        return keras.Model(inputs, masks, name="mask_head")
    return keras.Model(inputs, [masks, _heatmap_logits(tower, keypoints.heatmap_size)], name="mask_head")


def _heatmap_logits(x, heatmap_size: int):
    """(N, s, s, D) features -> keypoint heatmap logits (N, K, K, 15) float32, K = ``heatmap_size``."""
    x = keras.layers.Conv2DTranspose(constants.NUM_KEYPOINTS, 4, strides=2, padding="same", name="kp_deconv")(x)
    x = _upsample_to(x, heatmap_size, "kp_upsample")
    return _float32(x, "kp_logits_f32")


def build_keypoint_head(cfg: KeypointHeadConfig, channels: int, fc_dim: int = 1024) -> keras.Model:
    """Keypoint head with its own tower over (N, roi_size, roi_size, channels).

    * ``heatmap`` (Keypoint R-CNN): logits (N, K, K, 15), K = ``cfg.heatmap_size``; one
      spatial softmax per joint over the RoI.
    * ``regression`` (the 2017 original's branch, 30 outputs): (N, 15, 2) joint positions in
      RoI-normalised coordinates (0 = left/top edge, 1 = right/bottom edge of the box), from an
      ``fc_dim`` fully connected layer.
    """
    s = cfg.roi_size
    inputs = keras.Input((s, s, channels), name="keypoint_rois")
    x = _conv_stack(inputs, cfg.convs, cfg.dim, cfg.norm, "kp")
    x = _global_context(x, cfg.global_dim, "kp")
    if cfg.kind == "heatmap":
        return keras.Model(inputs, _heatmap_logits(x, cfg.heatmap_size), name="keypoint_head")
    if cfg.kind == "regression":
        x = keras.layers.Flatten(name="kp_flatten")(x)
        x = keras.layers.Dense(fc_dim, activation="relu", name="kp_fc")(x)
        x = keras.layers.Dense(2 * constants.NUM_KEYPOINTS, name="kp_regression")(x)
        x = keras.layers.Reshape((constants.NUM_KEYPOINTS, 2), name="kp_xy")(x)
        return keras.Model(inputs, _float32(x, "kp_xy_f32"), name="keypoint_head")
    raise ValueError(
        f"model.keypoint_head.kind={cfg.kind!r} has no head of its own; use 'heatmap' "
        f"or 'regression' ('shared' puts it on the mask head, 'none' builds the model without one)"
    )


IMAGE_POINT_FEATURES = 27
"""RGB values of a point's 3x3 pixel neighbourhood (``point.features == "p2+image"``)."""


def point_feature_width(cfg: PointHeadConfig, channels: int) -> int:
    """F, the width of the point head's fine features: the FPN width (+ 27 with ``p2+image``)."""
    return channels + (IMAGE_POINT_FEATURES if cfg.features == "p2+image" else 0)


def build_point_head(cfg: PointHeadConfig, channels: int) -> keras.Model:
    """PointRend's point head: per point, fine features (N, P, F) and the coarse mask logits at
    the point (N, P, 7) -> refined logits (N, P, 7) float32; F = :func:`point_feature_width`.

    ``cfg.layers`` fully connected layers of ``cfg.dim`` (shared over the points, i.e. 1x1
    convolutions), each fed the coarse logits again, then a linear layer to the 7 channels whose
    output is added to the coarse logits: the head learns a correction and starts near the identity
    (its last layer's weights are small). Run it on N >= 1 rows (``RoIHeads`` never gives it an
    empty batch).
    """
    fine = keras.Input((None, point_feature_width(cfg, channels)), name="point_fine")
    coarse = keras.Input((None, constants.NUM_CHANNELS), name="point_coarse")
    x = fine
    for i in range(cfg.layers):
        x = keras.layers.Concatenate(name=f"point_cat{i + 1}")([x, coarse])
        x = keras.layers.Dense(cfg.dim, activation="relu", name=f"point_fc{i + 1}")(x)
    x = keras.layers.Concatenate(name="point_cat_out")([x, coarse])
    x = keras.layers.Dense(
        constants.NUM_CHANNELS, kernel_initializer=keras.initializers.RandomNormal(stddev=0.001), name="point_logits"
    )(x)
    x = keras.layers.Add(name="point_residual")([x, coarse])
    return keras.Model([fine, coarse], _float32(x, "point_logits_f32"), name="point_head")
