"""Training targets (pure TF, static shapes, batched over images): anchor/GT matching, RPN
anchor sampling, RoI sampling, mask and keypoint targets.

GT tensors come padded from the pipeline: ``gt_boxes`` (B, P, 4) with ``num_gt`` (B,) real
rows first. All outputs are wrapped in ``stop_gradient``. Random sampling draws one uniform
score per candidate and keeps the top ones (``tf.math.top_k``), so it is in-graph and
XLA-friendly; pass ``seed`` (int or (2,) int tensor) for deterministic stateless sampling
(Philox, so eager, graph and XLA draw the same sample), ``seed=None`` uses the global TF
random generator.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Sequence

import tensorflow as tf

from maskrcnn_body.config.sections import RoiConfig, RpnConfig
from maskrcnn_body.ops import backend as ops_backend
from maskrcnn_body.ops.boxes import RPN_BOX_WEIGHTS, box_area, encode_boxes, pairwise_iou
from maskrcnn_body.ops.roi_align import roi_align_flat

_no_autograph = tf.autograph.experimental.do_not_convert  # no tensor-dependent Python control flow here


# --------------------------------------------------------------------------- matching
def _first_argmax(values: tf.Tensor, maxima: tf.Tensor, mask: Optional[tf.Tensor] = None) -> tf.Tensor:
    """Smallest index g along axis -2 of ``values`` (..., G, M) with ``values == maxima``
    (..., M) (and ``mask``); G when there is none. Deterministic tie-breaking."""
    g = tf.shape(values)[-2]
    hit = tf.equal(values, maxima[..., None, :])
    if mask is not None:
        hit &= mask
    rows = tf.range(g)[:, None]
    return tf.reduce_min(tf.where(hit, rows, g), axis=-2)


@_no_autograph
def match(
    iou: tf.Tensor,
    pos_iou: float,
    neg_iou: float,
    allow_low_quality: bool = True,
    gt_valid: Optional[tf.Tensor] = None,
    backend: Optional[str] = None,
):
    """Match each of M boxes (anchors/proposals) to one of G GT boxes.

    Args:
      iou: (..., G, M) float32. Padding GT rows are either marked False in ``gt_valid``
        (..., G) bool or carry IoU = -1 (both work; the compiled op uses the same rules).
    Rules (binding):
      1. Invalid rows are set to IoU -1. ``max_iou[m] = max_g iou[g, m]`` and
         ``matched[m]`` is the smallest g reaching it.
      2. ``label = 1`` if ``max_iou >= pos_iou``, ``0`` if ``max_iou < neg_iou``, else
         ``-1`` (ignore band ``[neg_iou, pos_iou)``). No valid GT -> max_iou = -1 -> all 0.
      3. ``allow_low_quality``: for every GT g with ``best_g = max_m iou[g, m] > 0``, every m
         with ``iou[g, m] == best_g`` (ties included) becomes positive and is matched to g.
         If m is such a best match for several GTs it goes to the one with the highest
         IoU, ties -> smallest g.
      4. ``matched`` is always a valid index in [0, G) (0 when m has no valid GT); use
         ``labels`` to know whether it means anything.
    ``backend`` (None: :mod:`maskrcnn_body.ops.backend` decides): ``custom`` runs the compiled op of ``libs/``.
    Returns: matched (..., M) int32, labels (..., M) int32 in {1, 0, -1}.
    """
    lib = ops_backend.resolve(backend)
    if lib is not None and iou.shape[-2] != 0:
        matched, labels = lib.match(iou, pos_iou, neg_iou, allow_low_quality, gt_valid)
        return tf.stop_gradient(matched), tf.stop_gradient(labels)
    iou = tf.convert_to_tensor(iou, tf.float32)
    if iou.shape[-2] == 0:
        shape = tf.shape(iou)[:-2]
        out_shape = tf.concat([shape, tf.shape(iou)[-1:]], 0)
        return tf.zeros(out_shape, tf.int32), tf.zeros(out_shape, tf.int32)
    if gt_valid is not None:
        iou = tf.where(tf.cast(gt_valid, tf.bool)[..., None], iou, -1.0)
    num_gt = tf.shape(iou)[-2]
    max_iou = tf.reduce_max(iou, axis=-2)
    matched = _first_argmax(iou, max_iou)
    labels = tf.where(max_iou >= pos_iou, 1, tf.where(max_iou < neg_iou, 0, -1))
    if allow_low_quality:
        best = tf.reduce_max(iou, axis=-1, keepdims=True)  # (..., G, 1)
        is_best = tf.equal(iou, best) & (best > 0.0)  # (..., G, M)
        best_iou = tf.reduce_max(tf.where(is_best, iou, -1.0), axis=-2)  # (..., M)
        has_best = best_iou > 0.0
        low_quality = _first_argmax(iou, best_iou, is_best)
        matched = tf.where(has_best, low_quality, matched)
        labels = tf.where(has_best, 1, labels)
    matched = tf.where(matched >= num_gt, 0, matched)
    return tf.stop_gradient(tf.cast(matched, tf.int32)), tf.stop_gradient(tf.cast(labels, tf.int32))


def gather_per_roi(values: tf.Tensor, matched: tf.Tensor) -> tf.Tensor:
    """``values`` (B, P, ...) per GT, ``matched`` (B, K) int32 -> (B, K, ...) per RoI/anchor."""
    return tf.gather(values, matched, batch_dims=1)


def gt_valid_mask(num_gt: tf.Tensor, max_gt: int) -> tf.Tensor:
    """(B,) counts -> (B, max_gt) bool, True for the first ``num_gt`` rows."""
    return tf.sequence_mask(num_gt, max_gt)


# --------------------------------------------------------------------------- sampling
def _uniform(shape, seed, salt: int):
    """Uniform [0, 1) scores; stateless (deterministic) when ``seed`` (int or (2,) ints) is
    given, ``salt`` decorrelates the different samplers that share one seed."""
    if seed is None:
        return tf.random.uniform(shape, dtype=tf.float32)
    seed = tf.cast(tf.reshape(tf.convert_to_tensor(seed), [-1]), tf.int32)
    if seed.shape[0] == 1:
        seed = tf.concat([seed, [salt]], axis=0)
    elif seed.shape[0] == 2:
        seed = seed + tf.constant([0, salt], tf.int32)
    else:
        raise ValueError(f"seed must be an int or 2 ints, got shape {seed.shape}")
    return tf.random.stateless_uniform(shape, seed=seed, dtype=tf.float32, alg="philox")


def _random_pick(mask: tf.Tensor, count: tf.Tensor, k: int, scores: tf.Tensor):
    """Randomly pick ``count`` (B,) of the True entries of ``mask`` (B, N) (count <= number of
    True entries). Returns indices (B, k) int32, the first ``count`` of which are the picks in
    random order, and ``keep`` (B, k) bool (position < count). ``k`` is static."""
    n = mask.shape[-1]
    k_eff = min(k, n) if n is not None else k
    _, idx = tf.math.top_k(tf.where(mask, scores, -1.0), k=k_eff, sorted=True)
    if k_eff < k:
        idx = tf.pad(idx, [[0, 0], [0, k - k_eff]])
    keep = tf.range(k)[None, :] < count[:, None]
    return tf.cast(idx, tf.int32), keep


def _count(mask: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(tf.cast(mask, tf.int32), axis=-1)


@_no_autograph
def subsample_labels(labels: tf.Tensor, num_samples: int, positive_fraction: float, seed=None) -> tf.Tensor:
    """Keep at most ``num_samples`` labelled entries per row of ``labels`` (B, N) {1, 0, -1}:
    ``min(#pos, int(num_samples * positive_fraction))`` random positives and
    ``min(#neg, num_samples - picked positives)`` random negatives; all others become -1."""
    max_pos = int(num_samples * positive_fraction)
    pos = tf.equal(labels, 1)
    neg = tf.equal(labels, 0)
    scores = _uniform(tf.shape(labels), seed, 0)
    num_pos = tf.minimum(_count(pos), max_pos)
    num_neg = tf.minimum(_count(neg), num_samples - num_pos)
    shape = tf.shape(labels, out_type=tf.int32)
    batch = tf.range(shape[0])

    def picked(mask, count, k):
        idx, keep = _random_pick(mask, count, k, scores)
        indices = tf.stack([tf.broadcast_to(batch[:, None], tf.shape(idx)), idx], axis=-1)
        return tf.scatter_nd(indices, tf.cast(keep, tf.int32), shape) > 0

    return tf.where(picked(pos, num_pos, max_pos), 1, tf.where(picked(neg, num_neg, num_samples), 0, -1))


class RpnTargets(NamedTuple):
    labels: tf.Tensor  # (B, N) int32: 1 sampled positive, 0 sampled negative, -1 not sampled
    box_targets: tf.Tensor  # (B, N, 4) float32 deltas (RPN_BOX_WEIGHTS), 0 unless label == 1


@_no_autograph
def rpn_targets(
    anchors: tf.Tensor,
    gt_boxes: tf.Tensor,
    num_gt: tf.Tensor,
    cfg: RpnConfig,
    seed=None,
    image_shape: Optional[tf.Tensor] = None,
) -> RpnTargets:
    """RPN targets for anchors (N, 4) (``ops.anchors`` order) and GT (B, P, 4) + num_gt (B,).

    Matching: :func:`match` with ``cfg.pos_iou``/``cfg.neg_iou`` and low-quality matches. With
    ``image_shape`` (B, 2) int32, the valid (height, width) of each padded image, an anchor whose
    centre lies outside its image (in the zero padding) is never sampled as a negative: it is
    ignored (-1) unless it is a positive (a GT at the border may have its best anchor there).
    Anchors crossing the border are kept. Then ``cfg.batch_per_image`` anchors are sampled per image
    with at most ``cfg.positive_fraction`` positives (:func:`subsample_labels`). Box targets encode
    the matched GT with ``RPN_BOX_WEIGHTS`` (1, 1, 1, 1). ``cfg`` is the model's
    :class:`~maskrcnn_body.config.sections.RpnConfig`.
    """
    anchors = tf.convert_to_tensor(anchors, tf.float32)
    gt_boxes = tf.convert_to_tensor(gt_boxes, tf.float32)
    gt_valid = gt_valid_mask(num_gt, tf.shape(gt_boxes)[1])
    iou = pairwise_iou(gt_boxes, anchors[None])  # (B, P, N)
    matched, labels = match(iou, cfg.pos_iou, cfg.neg_iou, True, gt_valid)
    if image_shape is not None:
        hw = tf.cast(image_shape, tf.float32)  # (B, 2)
        cx = 0.5 * (anchors[:, 0] + anchors[:, 2])
        cy = 0.5 * (anchors[:, 1] + anchors[:, 3])
        inside = (cx[None] < hw[:, 1:2]) & (cy[None] < hw[:, 0:1])  # (B, N)
        labels = tf.where(inside | tf.equal(labels, 1), labels, -1)
    labels = subsample_labels(labels, cfg.batch_per_image, cfg.positive_fraction, seed)
    positive = tf.cast(tf.equal(labels, 1), tf.float32)[..., None]
    box_targets = encode_boxes(gather_per_roi(gt_boxes, matched), anchors[None], RPN_BOX_WEIGHTS) * positive
    return RpnTargets(tf.stop_gradient(labels), tf.stop_gradient(box_targets))


class SampledRois(NamedTuple):
    rois: tf.Tensor  # (B, K, 4) float32 image pixels; padding rows are 0
    matched_gt: tf.Tensor  # (B, K) int32 index into the P GT rows (0 for bg/padding)
    labels: tf.Tensor  # (B, K) int32: 1 foreground, 0 background or padding
    box_targets: tf.Tensor  # (B, K, 4) float32 deltas (box_weights), 0 unless foreground
    weights: tf.Tensor  # (B, K) float32: 1 real sampled RoI, 0 padding
    num_fg: tf.Tensor  # (B,) int32: foreground RoIs are rows [0, num_fg)


@_no_autograph
def sample_rois(
    proposals: tf.Tensor,
    gt_boxes: tf.Tensor,
    num_gt: tf.Tensor,
    cfg: RoiConfig,
    box_weights: Sequence[float],
    proposal_valid: Optional[tf.Tensor] = None,
    seed=None,
) -> SampledRois:
    """Sample K = ``cfg.per_image`` RoIs per image for the box/mask/keypoint heads
    (``cfg``: :class:`~maskrcnn_body.config.sections.RoiConfig`; box targets encoded with ``box_weights``).

    Candidates are the proposals (B, Np, 4) followed by the real GT boxes (B, P, 4) (padding
    GT rows and proposals with ``proposal_valid`` False -- default: zero-area proposals --
    never get sampled). Each candidate takes its max IoU over real GT (0 when the image has
    no GT) and the first GT reaching it. Foreground: IoU >= ``cfg.fg_iou``; background:
    ``cfg.bg_iou_low <= IoU < cfg.bg_iou_high`` and not foreground. Up to
    ``round(K * cfg.positive_fraction)`` random foreground then random background
    candidates fill K rows; foreground rows come first (rows [0, num_fg)), then background,
    then padding rows (zero boxes, label 0, weight 0) when there are not enough candidates.
    """
    proposals = tf.convert_to_tensor(proposals, tf.float32)
    gt_boxes = tf.convert_to_tensor(gt_boxes, tf.float32)
    if gt_boxes.shape[1] == 0:
        raise ValueError("sample_rois: gt_boxes has 0 rows; pad GT to (B, P>=1, 4) and pass num_gt")
    k = int(cfg.per_image)
    max_fg = int(round(k * cfg.positive_fraction))
    gt_valid = gt_valid_mask(num_gt, tf.shape(gt_boxes)[1])
    if proposal_valid is None:
        proposal_valid = box_area(proposals) > 0.0
    candidates = tf.concat([proposals, gt_boxes], axis=1)  # (B, Nc, 4)
    candidate_valid = tf.concat([tf.cast(proposal_valid, tf.bool), gt_valid], axis=1)

    iou = tf.where(gt_valid[..., None], pairwise_iou(gt_boxes, candidates), -1.0)  # (B, P, Nc)
    max_iou = tf.reduce_max(iou, axis=1)
    matched = _first_argmax(iou, max_iou)
    matched = tf.where(matched >= tf.shape(gt_boxes)[1], 0, matched)
    max_iou = tf.maximum(max_iou, 0.0)
    fg = candidate_valid & (max_iou >= cfg.fg_iou)
    bg = candidate_valid & ~fg & (max_iou < cfg.bg_iou_high) & (max_iou >= cfg.bg_iou_low)

    num_fg = tf.minimum(_count(fg), max_fg)
    num_bg = tf.minimum(_count(bg), k - num_fg)
    scores = _uniform(tf.shape(max_iou), seed, 1)
    fg_idx, _ = _random_pick(fg, num_fg, max_fg, scores)
    bg_idx, _ = _random_pick(bg, num_bg, k, scores)
    fg_idx = tf.pad(fg_idx, [[0, 0], [0, k - max_fg]])

    pos = tf.range(k)[None, :]
    take_fg = pos < num_fg[:, None]
    valid = pos < (num_fg + num_bg)[:, None]
    bg_pos = tf.clip_by_value(pos - num_fg[:, None], 0, k - 1)
    index = tf.where(take_fg, fg_idx, tf.where(valid, tf.gather(bg_idx, bg_pos, batch_dims=1), 0))

    valid_f = tf.cast(valid, tf.float32)
    rois = tf.gather(candidates, index, batch_dims=1) * valid_f[..., None]
    roi_gt = tf.where(valid, tf.gather(matched, index, batch_dims=1), 0)
    labels = tf.cast(take_fg, tf.int32)
    box_targets = encode_boxes(gather_per_roi(gt_boxes, roi_gt), rois, box_weights)
    box_targets *= tf.cast(take_fg, tf.float32)[..., None]
    out = SampledRois(rois, roi_gt, labels, box_targets, valid_f, num_fg)
    return SampledRois(*(tf.stop_gradient(t) for t in out))


# --------------------------------------------------------------------------- mask / keypoint targets
@_no_autograph
def mask_targets(
    rois: tf.Tensor,
    gt_boxes: tf.Tensor,
    gt_masks: tf.Tensor,
    matched_gt: tf.Tensor,
    output_size: int,
    sampling_ratio: int = 2,
) -> tf.Tensor:
    """Binary mask targets of each RoI, cropped from its GT's box-frame mask.

    Args:
      rois: (B, K, 4) image pixels.
      gt_boxes: (B, P, 4) image pixels; gt_masks: (B, P, MS, MS, C) in [0, 1], each GT's
        masks resized to its own box (pixel k of MS covers ``[k, k+1) * w / MS`` of the box).
      matched_gt: (B, K) int32 row of the GT of each RoI.
      output_size: S; sampling_ratio: RoIAlign sr.
    The RoI is expressed in the GT mask's pixel frame (``(x - gx1) * MS / gw``), the mask is
    zero-padded by one pixel (everything outside the GT box is 0) and cropped with the
    aligned RoIAlign of ``ops.roi_align`` (same gather code, XLA-compatible), then
    thresholded: ``target = value >= 0.5``.
    Returns: (B, K, S, S, C) float32 in {0, 1}.
    """
    rois = tf.convert_to_tensor(rois, tf.float32)
    gt_boxes = tf.convert_to_tensor(gt_boxes, tf.float32)
    gt_masks = tf.convert_to_tensor(gt_masks, tf.float32)
    matched_gt = tf.cast(matched_gt, tf.int32)
    ms = gt_masks.shape[2]
    if ms is None or gt_masks.shape[3] != ms or gt_masks.shape.rank != 5:
        raise ValueError(f"mask_targets: gt_masks must be (B, P, MS, MS, C) with static MS, got {gt_masks.shape}")
    c = gt_masks.shape[-1]
    b = tf.shape(rois)[0]
    k = tf.shape(rois)[1]
    num_p = tf.shape(gt_masks)[1]
    padded = tf.pad(gt_masks, [[0, 0], [0, 0], [1, 1], [1, 1], [0, 0]])
    side = ms + 2
    table = tf.reshape(padded, [-1, c])
    flat_gt = tf.reshape(tf.range(b)[:, None] * num_p + matched_gt, [-1])
    base = flat_gt * (side * side)

    gt = gather_per_roi(gt_boxes, matched_gt)  # (B, K, 4)
    gw = tf.maximum(gt[..., 2] - gt[..., 0], 1e-6)
    gh = tf.maximum(gt[..., 3] - gt[..., 1], 1e-6)
    sx = ms / gw
    sy = ms / gh
    rel = tf.stack(
        [
            (rois[..., 0] - gt[..., 0]) * sx + 1.0,
            (rois[..., 1] - gt[..., 1]) * sy + 1.0,
            (rois[..., 2] - gt[..., 0]) * sx + 1.0,
            (rois[..., 3] - gt[..., 1]) * sy + 1.0,
        ],
        axis=-1,
    )
    n = b * k
    sizes = tf.fill([n], side)
    crops = roi_align_flat(
        table, base, sizes, sizes, tf.reshape(rel, [-1, 4]), output_size, sampling_ratio, aligned=True
    )
    crops = tf.reshape(crops, [b, k, output_size, output_size, c])
    return tf.stop_gradient(tf.cast(crops >= 0.5, tf.float32))


@_no_autograph
def keypoint_targets(rois: tf.Tensor, keypoints: tf.Tensor, heatmap_size: int):
    """Keypoint R-CNN heatmap targets.

    Args:
      rois: (B, K, 4) image pixels; keypoints: (B, K, J, 3) x, y, v of each RoI's GT
        (``gather_per_roi(gt_keypoints, matched_gt)``); heatmap_size: H.
    A joint maps to heatmap cell ``x = floor((kx - x1) * H / (x2 - x1))`` (a joint exactly
    on ``x2`` goes to ``H - 1``), same for y; heatmap cell (y, x) therefore covers
    ``[x1 + x * w / H, x1 + (x + 1) * w / H)`` of the RoI. It is valid when ``v > 0`` and
    the cell is inside ``[0, H)`` in both axes.
    Returns: index (B, K, J) int32 ``y * H + x`` (0 where invalid) and weight (B, K, J)
    float32 (1 valid, 0 not).
    """
    rois = tf.convert_to_tensor(rois, tf.float32)
    keypoints = tf.convert_to_tensor(keypoints, tf.float32)
    hm = int(heatmap_size)
    x1, y1 = rois[..., 0:1], rois[..., 1:2]
    x2, y2 = rois[..., 2:3], rois[..., 3:4]
    kx, ky, v = keypoints[..., 0], keypoints[..., 1], keypoints[..., 2]
    x = tf.floor((kx - x1) * (hm / tf.maximum(x2 - x1, 1e-6)))
    y = tf.floor((ky - y1) * (hm / tf.maximum(y2 - y1, 1e-6)))
    x = tf.where(tf.equal(kx, x2), float(hm - 1), x)
    y = tf.where(tf.equal(ky, y2), float(hm - 1), y)
    valid = (v > 0) & (x >= 0) & (y >= 0) & (x < hm) & (y < hm)
    index = tf.where(valid, tf.cast(y, tf.int32) * hm + tf.cast(x, tf.int32), 0)
    return tf.stop_gradient(index), tf.stop_gradient(tf.cast(valid, tf.float32))
