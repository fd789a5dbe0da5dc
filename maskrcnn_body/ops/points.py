"""Point sampling for the PointRend-style point head (pure TF: static ranks, gather based, so it
traces under ``tf.function``, exports to SavedModel and converts to TFLite builtins).

Frames (``docs/DESIGN.md``): image points ``(x, y)`` are in the continuous pixel-edge frame
(pixel ``i`` covers ``[i, i + 1)``); a feature map of stride ``s`` has its cell ``j`` centred at
image ``(j + 0.5) * s``; a box-frame grid of ``M`` cells over a RoI has cell ``j`` centred at
``(j + 0.5) / M`` in RoI-relative coordinates ``[0, 1]`` (0 = the box's left/top edge).

Bilinear rule of a map (the RoIAlign rule of :mod:`maskrcnn_body.ops.roi_align`): a sample at
map position ``(y, x)`` (cell centres at integers) with ``y < -1`` or ``y > H`` (or ``x``)
contributes 0; otherwise the position is clamped to ``[0, H - 1]`` and the four neighbours are
interpolated. Gradients flow to the sampled values only, never to the positions.
"""

from __future__ import annotations

import tensorflow as tf

_no_autograph = tf.autograph.experimental.do_not_convert


@_no_autograph
def bilinear_flat(
    table: tf.Tensor,
    base: tf.Tensor,
    height: tf.Tensor,
    width: tf.Tensor,
    y: tf.Tensor,
    x: tf.Tensor,
    zero_outside: bool = True,
) -> tf.Tensor:
    """Bilinear samples of maps stored row-major in ``table`` (T, C).

    ``base``, ``height``, ``width``: (N, 1) int32 per map (or scalars): cell (r, c) of map n is
    row ``base + r * width + c``; ``y``, ``x``: (N, P) float32 map positions (cell centres at
    integers). ``zero_outside``: samples beyond one cell outside the map are 0 (else clamped).
    Returns (N, P, C) float32; gradients flow to ``table`` only.
    """
    table = tf.cast(table, tf.float32)
    y = tf.stop_gradient(tf.cast(y, tf.float32))
    x = tf.stop_gradient(tf.cast(x, tf.float32))
    hf = tf.cast(height, tf.float32)
    wf = tf.cast(width, tf.float32)
    valid = None
    if zero_outside:
        valid = tf.cast((y >= -1.0) & (y <= hf) & (x >= -1.0) & (x <= wf), tf.float32)
    y = tf.clip_by_value(y, 0.0, tf.maximum(hf - 1.0, 0.0))
    x = tf.clip_by_value(x, 0.0, tf.maximum(wf - 1.0, 0.0))
    y0, x0 = tf.floor(y), tf.floor(x)
    ly, lx = y - y0, x - x0
    y0i, x0i = tf.cast(y0, tf.int32), tf.cast(x0, tf.int32)
    y1i = tf.minimum(y0i + 1, height - 1)
    x1i = tf.minimum(x0i + 1, width - 1)
    weights = [(1 - ly) * (1 - lx), (1 - ly) * lx, ly * (1 - lx), ly * lx]
    if valid is not None:
        weights = [w * valid for w in weights]
    top, bottom = base + y0i * width, base + y1i * width
    # one gather per corner, weighted and added: the same sum as gathering (N, P, 4, C) and reducing the
    # corner axis, without the strided reduction (the slowest op of the point head in ONNX Runtime)
    out = None
    for idx, w in zip((top + x0i, top + x1i, bottom + x0i, bottom + x1i), weights):
        term = tf.gather(table, idx) * w[..., None]  # (N, P, C)
        out = term if out is None else out + term
    return out


@_no_autograph
def sample_feature_map(features: tf.Tensor, image_index: tf.Tensor, points: tf.Tensor, stride: float) -> tf.Tensor:
    """Features (B, H, W, C) of stride ``stride`` at image points ``points`` (N, P, 2) (x, y) of
    images ``image_index`` (N,) int32 -> (N, P, C) float32 (zero beyond one cell outside)."""
    features = tf.cast(features, tf.float32)
    shape = tf.shape(features)
    h, w, c = shape[1], shape[2], shape[3]
    table = tf.reshape(features, [-1, c])
    base = (tf.cast(image_index, tf.int32) * h * w)[:, None]
    x = points[..., 0] / stride - 0.5
    y = points[..., 1] / stride - 0.5
    return bilinear_flat(table, base, h, w, y, x, zero_outside=True)


@_no_autograph
def sample_grid(maps: tf.Tensor, rel_points: tf.Tensor) -> tf.Tensor:
    """Box-frame grids ``maps`` (N, M, M, C) at RoI-relative points (N, P, 2) in [0, 1] ->
    (N, P, C) (bilinear, edges replicated: the ``align_corners=False`` resize convention)."""
    maps = tf.cast(maps, tf.float32)
    shape = tf.shape(maps)
    n, m, c = shape[0], shape[1], shape[3]
    table = tf.reshape(maps, [-1, c])
    base = (tf.range(n) * m * m)[:, None]
    mf = tf.cast(m, tf.float32)
    x = rel_points[..., 0] * mf - 0.5
    y = rel_points[..., 1] * mf - 0.5
    return bilinear_flat(table, base, m, m, y, x, zero_outside=False)


def rel_to_image(rel_points: tf.Tensor, boxes: tf.Tensor) -> tf.Tensor:
    """RoI-relative points (N, P, 2) of boxes (N, 4) (x1, y1, x2, y2) -> image points (N, P, 2)."""
    x1, y1 = boxes[:, None, 0], boxes[:, None, 1]
    w, h = boxes[:, None, 2] - x1, boxes[:, None, 3] - y1
    return tf.stack([x1 + rel_points[..., 0] * w, y1 + rel_points[..., 1] * h], axis=-1)


@_no_autograph
def point_mask_targets(
    image_points: tf.Tensor, gt_boxes: tf.Tensor, gt_masks: tf.Tensor, gt_index: tf.Tensor
) -> tf.Tensor:
    """Binary GT of each point: (N, P, C) float32 in {0, 1}.

    ``image_points`` (N, P, 2); ``gt_boxes`` (G, 4) and ``gt_masks`` (G, MS, MS, C), each GT's
    masks in its own box frame (as :func:`maskrcnn_body.ops.targets.mask_targets` takes them);
    ``gt_index`` (N,) the GT row of each RoI. The masks are zero-padded by one cell (0 outside the
    GT box), sampled bilinearly and thresholded at 0.5, as ``mask_targets`` does for its grid.
    """
    gt_masks = tf.cast(gt_masks, tf.float32)
    ms = gt_masks.shape[1]
    c = gt_masks.shape[-1]
    side = ms + 2
    table = tf.reshape(tf.pad(gt_masks, [[0, 0], [1, 1], [1, 1], [0, 0]]), [-1, c])
    gt_index = tf.cast(gt_index, tf.int32)
    gt = tf.gather(tf.cast(gt_boxes, tf.float32), gt_index)  # (N, 4)
    gw = tf.maximum(gt[:, 2] - gt[:, 0], 1e-6)[:, None]
    gh = tf.maximum(gt[:, 3] - gt[:, 1], 1e-6)[:, None]
    # cell j of the padded mask is centred at GT-box coordinate (j - 1 + 0.5) * gw / MS
    x = (image_points[..., 0] - gt[:, None, 0]) * (ms / gw) - 0.5 + 1.0
    y = (image_points[..., 1] - gt[:, None, 1]) * (ms / gh) - 0.5 + 1.0
    base = (gt_index * side * side)[:, None]
    values = bilinear_flat(table, base, tf.constant(side), tf.constant(side), y, x, zero_outside=False)
    return tf.stop_gradient(tf.cast(values >= 0.5, tf.float32))


def uncertainty(logits: tf.Tensor) -> tf.Tensor:
    """(..., 7) sigmoid mask logits -> (...) uncertainty ``-min_k |logit_k|`` (higher = closer to
    a decision boundary: the channel nearest to probability 0.5 decides)."""
    return -tf.reduce_min(tf.abs(tf.cast(logits, tf.float32)), axis=-1)


@_no_autograph
def training_points(
    coarse_logits: tf.Tensor,
    num_points: int,
    oversample: float,
    importance: float,
    seed=None,
    per_channel: bool = False,
) -> tf.Tensor:
    """PointRend's training points: (N, num_points, 2) RoI-relative in [0, 1), stop-gradient.

    ``oversample * num_points`` uniform random candidates per RoI; the ``importance * num_points``
    most uncertain of them (:func:`uncertainty` of the bilinearly sampled ``coarse_logits``
    (N, M, M, C)) are kept, the rest of the points are uniform random ones. ``per_channel``: the
    importance points are split evenly over the C channels, each channel taking the candidates
    nearest to *its own* boundary (``-|logit_c|``; a point two channels pick appears twice), so thin
    parts get their share instead of competing with the body's and torso's boundaries.
    """
    n = tf.shape(coarse_logits)[0]
    num_imp = int(round(importance * num_points))
    num_cand = max(int(round(oversample * num_points)), num_imp)
    parts = []
    if num_imp > 0:
        cand = tf.random.uniform([n, num_cand, 2], seed=seed)
        sampled = sample_grid(coarse_logits, cand)  # (N, cand, C)
        if per_channel:
            c = coarse_logits.shape[-1]
            share = [num_imp // c + (1 if k < num_imp % c else 0) for k in range(c)]
            for k in range(c):
                if share[k]:
                    _, idx = tf.math.top_k(-tf.abs(sampled[..., k]), k=share[k])
                    parts.append(tf.gather(cand, idx, batch_dims=1))
        else:
            _, idx = tf.math.top_k(uncertainty(sampled), k=num_imp)
            parts.append(tf.gather(cand, idx, batch_dims=1))
    if num_points - num_imp > 0:
        parts.append(tf.random.uniform([n, num_points - num_imp, 2], seed=seed))
    return tf.stop_gradient(tf.concat(parts, axis=1) if len(parts) > 1 else parts[0])


@_no_autograph
def most_uncertain_cells(logits: tf.Tensor, num_points: int):
    """Cells of ``logits`` (N, S, S, 7) (static S) to refine: flat indices (N, k) int32
    (``row * S + col``, distinct) and their centres (N, k, 2) RoI-relative, k = min(num_points, S * S)."""
    s = logits.shape[1]
    k = min(int(num_points), s * s)
    unc = tf.reshape(uncertainty(logits), [-1, s * s])
    _, idx = tf.math.top_k(unc, k=k)
    col = tf.cast(idx % s, tf.float32)
    row = tf.cast(idx // s, tf.float32)
    rel = tf.stack([(col + 0.5) / s, (row + 0.5) / s], axis=-1)
    return idx, rel


def replace_cells(logits: tf.Tensor, idx: tf.Tensor, values: tf.Tensor) -> tf.Tensor:
    """``logits`` (N, S, S, C) with the cells ``idx`` (N, k) (flat, distinct per row) replaced by
    ``values`` (N, k, C). Two ``scatter_nd`` s into zeros (values, a 0/1 mask) and a select, which
    the TFLite converter maps to builtins."""
    shape = tf.shape(logits)
    n, s, c = shape[0], logits.shape[1], shape[3]
    k = tf.shape(idx)[1]
    rows = tf.broadcast_to(tf.range(n)[:, None], tf.shape(idx))
    nd = tf.stack([rows, idx], axis=-1)  # (N, k, 2)
    new = tf.scatter_nd(nd, tf.cast(values, logits.dtype), tf.stack([n, s * s, c]))
    hit = tf.scatter_nd(nd, tf.ones(tf.stack([n, k, 1]), logits.dtype), tf.stack([n, s * s, 1]))
    flat = tf.reshape(logits, [n, s * s, c])
    out = tf.where(hit > 0, new, flat)
    return tf.reshape(out, shape)


def image_patch_points(image_points: tf.Tensor) -> tf.Tensor:
    """(N, P, 2) image points -> (N, P * 9, 2): each point's 3x3 neighbourhood at 1-pixel offsets
    (point-major, then row-major dy, dx), for the RGB point features."""
    offs = tf.constant([[dx, dy] for dy in (-1.0, 0.0, 1.0) for dx in (-1.0, 0.0, 1.0)], tf.float32)
    pts = image_points[:, :, None, :] + offs[None, None]
    shape = tf.shape(image_points)
    return tf.reshape(pts, [shape[0], shape[1] * 9, 2])
