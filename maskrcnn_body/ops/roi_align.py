"""Multilevel RoIAlign (pure TF, gather based, XLA-compatible) and FPN level assignment.

Semantics (binding; the compiled op in ``ops/custom.py`` + ``libs/`` implements the same):

For a RoI ``(x1, y1, x2, y2)`` in image pixels on a level of stride ``s`` and size (H, W):

* ``aligned=True``: level coordinates are ``u = x / s - 0.5`` (pixel centre at integer
  coordinates), ``roi_w = (x2 - x1) / s`` and ``roi_h = (y2 - y1) / s`` with no clamping
  (a zero-size box samples one point repeatedly).
  ``aligned=False`` (legacy Detectron): ``u = x / s``, and ``roi_w``/``roi_h`` are floored
  at 1.
* The RoI is divided into ``S_h x S_w`` bins of ``bin_w = roi_w / S_w``, ``bin_h = roi_h / S_h``;
  bin (i, j) averages ``sr x sr`` bilinear samples (``sr = sampling_ratio`` >= 1, static) at
  ``y = u_y1 + (i + (a + 0.5) / sr) * bin_h``, ``x = u_x1 + (j + (b + 0.5) / sr) * bin_w``,
  ``a, b = 0..sr-1``. The average always divides by ``sr * sr``.
* A sample with ``y < -1`` or ``y > H`` or ``x < -1`` or ``x > W`` contributes 0. Otherwise
  the coordinate is clamped to ``[0, H - 1]`` / ``[0, W - 1]``, ``y0 = floor(y)``,
  ``y1 = min(y0 + 1, H - 1)``, ``ly = y - y0`` (same for x) and the sample is
  ``(1-ly)(1-lx) f[y0,x0] + (1-ly) lx f[y0,x1] + ly (1-lx) f[y1,x0] + ly lx f[y1,x1]``.

Gradients flow to the features only (boxes are wrapped in ``stop_gradient``).

Implementation: all levels of all images are flattened into one (sum_l B*Hl*Wl, C) table;
for every RoI and each of the (2 sr)^2 (row neighbour, column neighbour) pairs of its bins one
``tf.gather`` of (N, S_h, S_w, C) values is weighted by the separable bilinear weights and
accumulated. Peak extra memory is about ``3 * N * S_h * S_w * C`` floats (a gather, its weighted
copy and the sum), not ``(2 sr)^2`` times that as with one gather of all neighbours.

Backends: ``backend`` (None: :mod:`maskrcnn_body.ops.backend` decides) selects the compiled op
of ``libs/`` or this pure-TF code; export always traces pure TF. The compiled op supports square
outputs only.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

import tensorflow as tf

from maskrcnn_body.ops import backend as ops_backend

_no_autograph = tf.autograph.experimental.do_not_convert  # no tensor-dependent Python control flow here

OutputSize = Union[int, Tuple[int, int], Sequence[int]]


# --------------------------------------------------------------------------- helpers
def _output_hw(output_size: OutputSize) -> Tuple[int, int]:
    if isinstance(output_size, int):
        return output_size, output_size
    h, w = (int(v) for v in output_size)
    return h, w


def _axis_weights(start, size_roi, bins: int, sr: int, extent):
    """Neighbour indices and weights along one axis.

    start, size_roi: (N,) float32 roi start/extent in level pixels; extent: (N,) int32 H or W.
    Returns idx (N, bins, 2*sr) int32 and weights (N, bins, 2*sr) float32 (each already
    divided by sr, zero for invalid samples). Column ``2*a + k`` is neighbour k (low/high)
    of sample a of the bin.
    """
    extent_f = tf.cast(extent, tf.float32)[:, None, None]
    offs = (
        tf.range(bins, dtype=tf.float32)[:, None] + (tf.range(sr, dtype=tf.float32)[None, :] + 0.5) / sr
    )  # (bins, sr)
    pos = start[:, None, None] + offs[None] * (size_roi / bins)[:, None, None]  # (N, bins, sr)
    valid = tf.cast((pos >= -1.0) & (pos <= extent_f), tf.float32)
    pos = tf.clip_by_value(pos, 0.0, tf.maximum(extent_f - 1.0, 0.0))
    low = tf.floor(pos)
    frac = pos - low
    low_i = tf.cast(low, tf.int32)
    high_i = tf.minimum(low_i + 1, tf.cast(extent_f, tf.int32) - 1)
    idx = tf.stack([low_i, high_i], axis=-1)  # (N, bins, sr, 2)
    w = tf.stack([1.0 - frac, frac], axis=-1) * (valid / sr)[..., None]
    n = tf.shape(start)[0]
    return tf.reshape(idx, [n, bins, 2 * sr]), tf.reshape(w, [n, bins, 2 * sr])


@_no_autograph
def roi_align_flat(
    table: tf.Tensor,
    base: tf.Tensor,
    height: tf.Tensor,
    width: tf.Tensor,
    boxes: tf.Tensor,
    output_size: OutputSize,
    sampling_ratio: int = 2,
    aligned: bool = True,
) -> tf.Tensor:
    """RoIAlign of N RoIs, each on its own (height, width) map stored row-major in ``table``.

    Args:
      table: (T, C) float32, the feature maps flattened row-major (pixel (y, x) of the map of
        RoI n is row ``base[n] + y * width[n] + x``).
      base, height, width: (N,) int32 per RoI.
      boxes: (N, 4) float32 x1, y1, x2, y2 in that map's pixel-edge frame (stride 1).
      output_size: S or (S_h, S_w); sampling_ratio: sr >= 1; aligned: see module docstring.
    Returns: (N, S_h, S_w, C) float32.
    """
    out_h, out_w = _output_hw(output_size)
    sr = int(sampling_ratio)
    if sr < 1:
        raise ValueError(
            f"roi_align: sampling_ratio must be a positive int (adaptive sampling is not "
            f"supported with static shapes), got {sampling_ratio}"
        )
    table = tf.cast(table, tf.float32)
    boxes = tf.stop_gradient(tf.convert_to_tensor(boxes, tf.float32))
    base = tf.cast(base, tf.int32)
    height = tf.cast(height, tf.int32)
    width = tf.cast(width, tf.int32)
    offset = 0.5 if aligned else 0.0
    x1 = boxes[:, 0] - offset
    y1 = boxes[:, 1] - offset
    rw = boxes[:, 2] - boxes[:, 0]
    rh = boxes[:, 3] - boxes[:, 1]
    if not aligned:
        rw = tf.maximum(rw, 1.0)
        rh = tf.maximum(rh, 1.0)
    yi, wy = _axis_weights(y1, rh, out_h, sr, height)  # (N, S_h, 2sr)
    xi, wx = _axis_weights(x1, rw, out_w, sr, width)  # (N, S_w, 2sr)
    n = tf.shape(boxes)[0]
    rows = base[:, None, None] + yi * width[:, None, None]  # (N, S_h, 2sr)
    # One (N, S_h, S_w, C) gather per neighbour pair (a, b), accumulated: the exports (ONNX Runtime, TFLite)
    # then hold one such tensor at a time instead of all (2 sr)^2 of them at once, (N, S_h, 2sr, S_w, 2sr, C)
    # (800 MB for r50_fpn's 1000 box-head RoIs at 512 px: most of ONNX Runtime's extra peak memory).
    out = None
    for a in range(2 * sr):
        row = rows[:, :, a]  # (N, S_h)
        for b in range(2 * sr):
            index = tf.expand_dims(row, 2) + tf.expand_dims(xi[:, :, b], 1)  # (N, S_h, S_w)
            weight = tf.expand_dims(wy[:, :, a], 2) * tf.expand_dims(wx[:, :, b], 1)  # (N, S_h, S_w)
            term = tf.gather(table, index) * tf.expand_dims(weight, -1)  # (N, S_h, S_w, C)
            out = term if out is None else out + term
    return tf.reshape(out, [n, out_h, out_w, tf.shape(table)[-1]])


def _static_or_dynamic(t: tf.Tensor, axis: int):
    d = t.shape[axis]
    return d if d is not None else tf.shape(t)[axis]


# --------------------------------------------------------------------------- public ops
@_no_autograph
def multilevel_roi_align(
    features: List[tf.Tensor],
    boxes: tf.Tensor,
    levels: tf.Tensor,
    strides: Sequence[int],
    output_size: OutputSize,
    sampling_ratio: int = 2,
    aligned: bool = True,
    backend: Optional[str] = None,
) -> tf.Tensor:
    """RoIAlign over an FPN pyramid.

    Args:
      features: list of L float tensors (B, Hl, Wl, C) (same B and C).
      boxes: (B, R, 4) float32 x1, y1, x2, y2 in image pixels (pixel-edge frame).
      levels: (B, R) int32 index into ``features``; must be in [0, L) (the pure-TF path clips
        out-of-range values, the compiled op does not promise to).
      strides: L ints, the stride of each feature map.
      output_size: S or (S_h, S_w); sampling_ratio: sr >= 1; aligned: see module docstring.
      backend: None | 'auto' | 'tf' | 'custom' (:mod:`maskrcnn_body.ops.backend`).
    Returns: (B, R, S_h, S_w, C) float32.
    """
    if len(features) != len(strides) or not features:
        raise ValueError(
            f"multilevel_roi_align: got {len(features)} feature maps and {len(strides)} strides; "
            "need one stride per feature map"
        )
    out_h, out_w = _output_hw(output_size)
    lib = ops_backend.resolve(backend)
    if lib is not None:
        if out_h != out_w:
            raise ValueError(
                f"the compiled RoIAlign supports square outputs only, got {(out_h, out_w)}; use backend='tf'"
            )
        out = lib.multilevel_roi_align(
            features,
            boxes,
            levels,
            strides=list(strides),
            output_size=out_h,
            sampling_ratio=int(sampling_ratio),
            aligned=bool(aligned),
        )
        return tf.cast(out, tf.float32)
    features = [tf.cast(f, tf.float32) for f in features]  # float16/bfloat16 features are computed in float32
    boxes = tf.cast(boxes, tf.float32)
    levels = tf.clip_by_value(tf.cast(levels, tf.int32), 0, len(features) - 1)
    b = _static_or_dynamic(boxes, 0)
    r = _static_or_dynamic(boxes, 1)
    c = features[0].shape[-1] if features[0].shape[-1] is not None else tf.shape(features[0])[-1]

    heights = tf.stack([tf.shape(f)[1] for f in features])  # (L,)
    widths = tf.stack([tf.shape(f)[2] for f in features])
    sizes = tf.shape(features[0])[0] * heights * widths  # rows per level in the table
    level_offsets = tf.cumsum(sizes, exclusive=True)
    table = tf.concat([tf.reshape(f, [-1, c]) for f in features], axis=0)

    flat_levels = tf.reshape(levels, [-1])
    image_index = tf.reshape(tf.broadcast_to(tf.range(b)[:, None], [b, r]), [-1])
    h = tf.gather(heights, flat_levels)
    w = tf.gather(widths, flat_levels)
    base = tf.gather(level_offsets, flat_levels) + image_index * h * w
    inv_stride = tf.gather(tf.constant([1.0 / float(s) for s in strides], tf.float32), flat_levels)
    level_boxes = tf.reshape(boxes, [-1, 4]) * inv_stride[:, None]
    out = roi_align_flat(table, base, h, w, level_boxes, (out_h, out_w), sampling_ratio, aligned)
    return tf.reshape(out, [b, r, out_h, out_w, c])


@_no_autograph
def roi_align(
    features: tf.Tensor,
    boxes: tf.Tensor,
    output_size: OutputSize,
    stride: int = 1,
    sampling_ratio: int = 2,
    aligned: bool = True,
) -> tf.Tensor:
    """Single-level RoIAlign (always pure TF): features (B, H, W, C), boxes (B, R, 4) in
    image pixels (divided by ``stride``) -> (B, R, S_h, S_w, C) float32. Same semantics as
    :func:`multilevel_roi_align` with one level."""
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    levels = tf.zeros(tf.shape(boxes)[:2], tf.int32)
    return multilevel_roi_align([features], boxes, levels, [stride], output_size, sampling_ratio, aligned, backend="tf")


@_no_autograph
def assign_levels(
    boxes: tf.Tensor, min_level: int, max_level: int, k0: int = 4, canonical_size: float = 224.0
) -> tf.Tensor:
    """FPN level of each box (Lin et al. eq. 1) as an index into ``[min_level..max_level]``.

    ``boxes`` (..., 4) -> (...) int32 ``clip(k, min_level, max_level) - min_level`` with
    ``k = floor(k0 + log2(sqrt(w * h) / canonical_size + 1e-6))`` (w, h floored at 0, so
    zero-size boxes go to ``min_level``). A 224x224 box gets ``k0``, 112x112 ``k0 - 1``.
    """
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    w = tf.maximum(boxes[..., 2] - boxes[..., 0], 0.0)
    h = tf.maximum(boxes[..., 3] - boxes[..., 1], 0.0)
    ratio = tf.sqrt(w * h) / float(canonical_size) + 1e-6
    k = tf.floor(float(k0) + tf.math.log(ratio) / tf.math.log(2.0))
    k = tf.clip_by_value(k, float(min_level), float(max_level))
    return tf.cast(k, tf.int32) - min_level
