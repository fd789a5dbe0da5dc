"""The RoI heads as one unit: sample -> crop -> heads -> losses (training) or detections (inference).

:class:`RoIHeads` holds references to the head networks of :mod:`maskrcnn_body.model.heads`
(Keras sub-models owned, and saved, by :class:`~maskrcnn_body.model.maskrcnn.MaskRCNN`) and does
everything between the RPN's proposals and the model's outputs:

* training (:meth:`RoIHeads.losses`): sample RoIs against the GT, crop them (multilevel RoIAlign),
  box head -> class/box losses; mask and keypoint heads on the real positive RoIs only (at most
  ``mask_head.max_rois_per_image`` per image, a dynamic count) -> mask/keypoint losses;
* inference (:meth:`RoIHeads.detect`): crop the proposals, box head -> scored, NMS-ed detections,
  mask and keypoint heads on the D detection slots -> masks and keypoints.
* the point head (``model.mask_head.point``, optional): in training a point loss at
  uncertainty-biased points of the positives (:meth:`RoIHeads.point_loss`); at inference the
  masks are refined by adaptive subdivision (:meth:`RoIHeads.refine_masks`).

Coordinates: boxes in the (resized, padded) image's pixel-edge frame, as the RPN gives them.
"""

from __future__ import annotations

from typing import Dict, NamedTuple, Optional, Tuple

import keras
import tensorflow as tf

from maskrcnn_body import constants
from maskrcnn_body.config import ModelConfig
from maskrcnn_body.model import losses, postprocess
from maskrcnn_body.model.fpn import ROI_LEVELS
from maskrcnn_body.model.heads import IMAGE_POINT_FEATURES
from maskrcnn_body.ops import points, roi_align, targets


def apply_head(head: keras.Model, rois: tf.Tensor, training: bool):
    """Runs a per-RoI head on (B, R, S, S, C) crops; outputs keep the (B, R) leading dims."""
    shape = tf.shape(rois)
    flat = tf.reshape(rois, tf.concat([[shape[0] * shape[1]], shape[2:]], 0))
    outs = head(flat, training=training)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    res = [tf.reshape(o, tf.concat([shape[:2], tf.shape(o)[1:]], 0)) for o in outs]
    return res if len(res) > 1 else res[0]


def pad_stand_in(t: tf.Tensor, n: tf.Tensor) -> tf.Tensor:
    """The stand-in row of a head run on a dynamic number N of rows (N may be 0): (N, ...) ->
    (max(N, 1), ...), one zero row appended when N is 0.

    A head never runs on an empty batch: TF's oneDNN convolution (Intel Xeon) returns a wrongly
    shaped result for one. The caller then slices the outputs back to their N real rows
    (:meth:`RoIHeads.part_outputs`) or gives the stand-in row weight 0 (its padded weights are 0,
    :meth:`RoIHeads.point_loss`): zero losses and zero gradients, one trace either way."""
    pad = tf.zeros(tf.concat([[1], tf.shape(t)[1:]], 0), t.dtype)
    return tf.concat([t, pad], 0)[: tf.maximum(n, 1)]


class PointLossRois(NamedTuple):
    """The N real positive RoIs (N may be 0) of the point loss and the GT they match."""

    image_index: tf.Tensor  # (N,) int: image of each RoI in the batch
    boxes: tf.Tensor  # (N, 4) float32 image pixels
    coarse: tf.Tensor  # (N, M, M, 7) the mask head's logits
    gt_index: tf.Tensor  # (N,) int32: row of gt_boxes / gt_masks
    weights: tf.Tensor  # (N, 7) float32 per-channel weight (1 = channel annotated)
    gt_boxes: tf.Tensor  # (G, 4) float32 image pixels
    gt_masks: tf.Tensor  # (G, MS, MS, 7) float32 box-frame GT masks


def point_pixels(images: tf.Tensor) -> tf.Tensor:
    """float32 RGB [0, 255] (B, H, W, 3) -> the point head's pixel features: ``(x / 255 - mean) / std``
    (ImageNet statistics, whatever the backbone's ``preprocessing``)."""
    x = tf.cast(images, tf.float32)
    mean = tf.constant(constants.TORCH_MEAN, tf.float32)
    return (x / 255.0 - mean) / tf.constant(constants.TORCH_STD, tf.float32)


def keypoint_regression_targets(boxes: tf.Tensor, keypoints: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """Targets of the regression branch: RoI-normalised (x, y) (B, k, 15, 2) and weight (B, k, 15),
    1 for labelled joints (v > 0) inside the RoI ``boxes`` (B, k, 4)."""
    x1, y1 = boxes[..., 0:1], boxes[..., 1:2]
    w = tf.maximum(boxes[..., 2:3] - x1, 1e-6)
    h = tf.maximum(boxes[..., 3:4] - y1, 1e-6)
    rx = (keypoints[..., 0] - x1) / w
    ry = (keypoints[..., 1] - y1) / h
    inside = (rx >= 0) & (rx <= 1) & (ry >= 0) & (ry <= 1) & (keypoints[..., 2] > 0)
    return tf.stop_gradient(tf.stack([rx, ry], -1)), tf.cast(inside, tf.float32)


class RoIHeads:
    """Box, mask and keypoint heads over the RoIs of P2..P5 (see the module docstring)."""

    def __init__(
        self,
        box_head: keras.Model,
        mask_head: keras.Model,
        keypoint_head: Optional[keras.Model],
        cfg: ModelConfig,
        point_head: Optional[keras.Model] = None,
    ):
        self.box_head, self.mask_head, self.keypoint_head = box_head, mask_head, keypoint_head
        self.point_head = point_head
        self.cfg = cfg
        self.strides = [2**lvl for lvl in ROI_LEVELS]

    # ------------------------------------------------------------------ pieces
    def crop(self, feats, boxes: tf.Tensor, size: int) -> tf.Tensor:
        """RoIAlign (B, R, size, size, C) of ``boxes`` (B, R, 4), each from its FPN level (P2..P5 of
        ``feats``, level by box size: ``model.roi.level_k0`` / ``canonical_size``)."""
        r = self.cfg.roi
        levels = roi_align.assign_levels(boxes, ROI_LEVELS[0], ROI_LEVELS[-1], r.level_k0, r.canonical_size)
        return roi_align.multilevel_roi_align(
            list(feats[: len(ROI_LEVELS)]),
            boxes,
            levels,
            self.strides,
            size,
            sampling_ratio=r.sampling_ratio,
            aligned=r.aligned,
        )

    def box_outputs(self, feats, boxes: tf.Tensor, training: bool) -> Tuple[tf.Tensor, tf.Tensor]:
        """Class logits (B, R, 2) and box deltas (B, R, 4) of RoIs ``boxes`` (B, R, 4)."""
        return apply_head(self.box_head, self.crop(feats, boxes, self.cfg.box_head.roi_size), training)

    def part_outputs(self, feats, boxes: tf.Tensor, training: bool, rows: Optional[tf.Tensor] = None):
        """Mask logits (B, R, M, M, 7) and the keypoint head's output (heatmap logits
        (B, R, K, K, 15), regression (B, R, 15, 2), or None without a keypoint head) for RoIs
        ``boxes`` (B, R, 4). One RoIAlign serves both heads when their RoI sizes agree.

        ``rows`` (N, 2) int64 ``(image, roi)`` indices: run the heads only on those RoIs; the
        outputs are then (1, N, ...) (training: only real positives cost head time). N may be 0
        (a batch without people): the heads then still run on one row, never on an empty batch.
        """
        m = self.cfg
        if rows is not None:
            # with no positive RoI the heads run on one stand-in row (image 0, RoI 0) whose outputs
            # are sliced away below: the caller sees (1, 0, ...) outputs (pad_stand_in)
            n = tf.shape(rows)[0]
            rows = pad_stand_in(rows, n)

        def crops(size):
            c = self.crop(feats, boxes, size)
            return c if rows is None else tf.gather_nd(c, rows)[None]

        def real_rows(t):
            return t if (rows is None or t is None) else t[:, :n]

        mask_rois = crops(m.mask_head.roi_size)
        out = apply_head(self.mask_head, mask_rois, training)
        if m.keypoint_head.kind == "shared":
            return real_rows(out[0]), real_rows(out[1])
        if self.keypoint_head is None:
            return real_rows(out), None
        kp_rois = mask_rois if m.keypoint_head.roi_size == m.mask_head.roi_size else crops(m.keypoint_head.roi_size)
        return real_rows(out), real_rows(apply_head(self.keypoint_head, kp_rois, training))

    def decode_keypoints(self, kp_out, boxes: tf.Tensor, scores: tf.Tensor) -> tf.Tensor:
        """(B, D, 15, 3) keypoints (x, y, score) in the image frame from the keypoint head's output
        for detections ``boxes`` (B, D, 4) with ``scores`` (B, D); zeros without a keypoint head."""
        if kp_out is None:
            return tf.zeros(tf.concat([tf.shape(scores), [constants.NUM_KEYPOINTS, 3]], 0), tf.float32)
        if self.cfg.keypoint_head.kind == "regression":
            return postprocess.decode_keypoint_regression(kp_out, boxes, scores)
        return postprocess.decode_keypoint_heatmaps(kp_out, boxes)

    # ------------------------------------------------------------------ the point head
    def _point_head(self) -> keras.Model:
        if self.point_head is None:
            raise ValueError("this model has no point head (model.mask_head.point.dim is 0)")
        return self.point_head

    def point_features(self, feats, images, image_index: tf.Tensor, boxes: tf.Tensor, rel: tf.Tensor) -> tf.Tensor:
        """Fine features (N, P, F) at RoI-relative points ``rel`` (N, P, 2) of ``boxes`` (N, 4) (image
        pixels) of images ``image_index`` (N,) int32: P2 bilinearly sampled, plus the 3x3 pixel
        neighbourhood of :func:`point_pixels` of ``images`` (B, H, W, 3) with ``features="p2+image"``."""
        pts = points.rel_to_image(rel, boxes)
        fine = points.sample_feature_map(feats[0], image_index, pts, float(self.strides[0]))
        if self.cfg.mask_head.point.features == "p2+image":
            if images is None:
                raise ValueError("model.mask_head.point.features='p2+image' needs the images; pass images=")
            rgb = points.sample_feature_map(point_pixels(images), image_index, points.image_patch_points(pts), 1.0)
            shape = tf.shape(rel)
            fine = tf.concat([fine, tf.reshape(rgb, [shape[0], shape[1], IMAGE_POINT_FEATURES])], axis=-1)
        return fine

    def refine_masks(self, feats, images, boxes: tf.Tensor, mask_logits: tf.Tensor, training: bool) -> tf.Tensor:
        """Adaptive subdivision of mask logits (B, D, M, M, 7) of ``boxes`` (B, D, 4) (D >= 1) ->
        (B, D, S, S, 7), S = the last of ``point.refine_sizes``: for each size in turn the logits are
        resized (bilinear) and the ``point.refine_points`` most uncertain cells re-predicted by the
        point head (fine features + the head's own coarse logits at the cell centre); every other
        cell keeps its resized value."""
        pc = self.cfg.mask_head.point
        shape = tf.shape(mask_logits)
        b, d, size = shape[0], shape[1], mask_logits.shape[2]
        coarse = tf.reshape(mask_logits, [b * d, size, size, constants.NUM_CHANNELS])
        flat_boxes = tf.reshape(boxes, [b * d, 4])
        image_index = tf.reshape(tf.broadcast_to(tf.range(b)[:, None], [b, d]), [-1])
        cur = coarse
        for s in pc.refine_sizes:
            if cur.shape[1] != s:
                cur = tf.image.resize(cur, [s, s], method="bilinear")
            idx, rel = points.most_uncertain_cells(cur, pc.refine_points)
            fine = self.point_features(feats, images, image_index, flat_boxes, rel)
            new = self._point_head()([fine, points.sample_grid(coarse, rel)], training=training)
            cur = points.replace_cells(cur, idx, new)
        s = cur.shape[1]
        return tf.reshape(cur, [b, d, s, s, constants.NUM_CHANNELS])

    def point_loss(
        self, feats, rois: PointLossRois, *, images: Optional[tf.Tensor] = None, training: bool = True
    ) -> tf.Tensor:
        """The point head's training loss on the N real positives ``rois`` (N may be 0: one
        zero-weight stand-in row then runs, never an empty batch, :func:`pad_stand_in`):
        ``point.train_points`` points per RoI (PointRend's uncertainty-biased sampling on the
        ``coarse`` logits), targets from the GT masks at those points. ``images`` (B, H, W, 3) for
        ``point.features="p2+image"``."""
        pc = self.cfg.mask_head.point
        n = tf.shape(rois.boxes)[0]
        coarse, boxes, gt_index, weights, image_index = (
            pad_stand_in(t, n)
            for t in (rois.coarse, rois.boxes, rois.gt_index, rois.weights, tf.cast(rois.image_index, tf.int32))
        )
        rel = points.training_points(
            tf.stop_gradient(coarse),
            pc.train_points,
            pc.oversample,
            pc.importance,
            per_channel=pc.selection == "per_channel",
        )
        fine = self.point_features(feats, images, image_index, boxes, rel)
        logits = self._point_head()([fine, points.sample_grid(coarse, rel)], training=training)
        point_t = points.point_mask_targets(points.rel_to_image(rel, boxes), rois.gt_boxes, rois.gt_masks, gt_index)
        if pc.limb_weight != 1.0:
            limb = {constants.CHANNEL_INDEX[n] for n in ("left_arm", "right_arm", "left_leg", "right_leg")}
            limbs = [float(pc.limb_weight) if k in limb else 1.0 for k in range(constants.NUM_CHANNELS)]
            weights = weights * tf.constant(limbs, weights.dtype)
        return losses.point_mask_loss(logits, point_t, weights)

    # ------------------------------------------------------------------ inference
    def detect(
        self,
        feats,
        proposals: tf.Tensor,
        proposal_valid: tf.Tensor,
        image_shape: tf.Tensor,
        training: bool = False,
        images: Optional[tf.Tensor] = None,
    ) -> Dict[str, tf.Tensor]:
        """Detections from proposals (B, K, 4) + valid (B, K): ``boxes`` (B, D, 4), ``scores`` (B, D),
        ``num_detections`` (B,) int32, ``masks`` (B, D, M, M, 7) decoded probabilities in the box frame
        (:func:`~maskrcnn_body.model.postprocess.decode_mask_logits`, to be cut at 0.5), ``keypoints``
        (B, D, 15, 3); rows past ``num_detections`` are zero. M = ``mask_head.mask_size`` (the last refine
        size with the point head). ``images`` (B, H, W, 3) float32 RGB [0, 255]: needed by a point head
        with ``features="p2+image"``."""
        m = self.cfg
        p = m.postprocess
        cls, box = self.box_outputs(feats, proposals, training)
        det = postprocess.select_detections(
            cls,
            box,
            proposals,
            proposal_valid,
            image_shape,
            m.box_head.box_weights,
            p.score_threshold,
            p.nms_iou,
            p.max_detections,
        )
        fvalid = tf.cast(det.pop("valid"), tf.float32)
        # the mask and keypoint heads run on the first n = max(num_detections) rows only (valid rows
        # come first), at least one (never a convolution on an empty batch, see part_outputs): their
        # time follows the people found, not max_detections; rows past n are zero as before
        d = det["boxes"].shape[1]
        n = tf.maximum(tf.reduce_max(det["num_detections"]), 1)
        boxes, scores = det["boxes"][:, :n], det["scores"][:, :n]
        mask_logits, kp_out = self.part_outputs(feats, boxes, training)
        if self.point_head is not None and m.mask_head.point.refine_sizes:
            mask_logits = self.refine_masks(feats, images, boxes, mask_logits, training)
        masks = _pad_detections(postprocess.decode_mask_logits(mask_logits, p.mask_thresholds, p.mask_body_union), n, d)
        keypoints = _pad_detections(self.decode_keypoints(kp_out, boxes, scores), n, d)
        det["masks"] = masks * fvalid[:, :, None, None, None]
        det["keypoints"] = keypoints * fvalid[:, :, None, None]
        return det

    # ------------------------------------------------------------------ training
    def losses(
        self, feats, proposals: tf.Tensor, proposal_valid: tf.Tensor, gt: Dict[str, tf.Tensor], training: bool = True
    ) -> Dict[str, tf.Tensor]:
        """``class``, ``box``, ``mask`` and ``keypoint`` losses (float32 scalars), and ``point`` with
        the point head, for proposals (B, K, 4) + valid (B, K) and the pipeline's GT (``gt_boxes``
        (B, P, 4), ``num_gt`` (B,), ``gt_masks`` (B, P, MS, MS, 7), ``gt_parts_valid`` (B, P, 7),
        ``gt_keypoints`` (B, P, 15, 3); ``images`` (B, H, W, 3) for ``point.features="p2+image"``)."""
        m = self.cfg
        rois = targets.sample_rois(
            proposals, gt["gt_boxes"], gt["num_gt"], m.roi, m.box_head.box_weights, proposal_valid=proposal_valid
        )
        cls, box = self.box_outputs(feats, rois.rois, training)
        labels = tf.where(rois.weights > 0, rois.labels, -1)
        out = {}
        out["class"], out["box"] = losses.box_head_losses(cls, box, labels, rois.box_targets)

        # masks and keypoints only on (at most max_rois_per_image) foreground RoIs, which
        # sample_rois puts first, and only on the real ones (rows, a dynamic count N): memory stays
        # bounded whatever roi.per_image is, and head time follows the number of positives.
        k = min(m.mask_head.max_rois_per_image, rois.rois.shape[1])
        pos_boxes = rois.rois[:, :k]
        pos_gt = rois.matched_gt[:, :k]
        rows = tf.where(tf.range(k)[None, :] < rois.num_fg[:, None])  # (N, 2) (image, roi)

        def take(t):
            """(B, k, ...) per-RoI values -> (1, N, ...) of the real positives."""
            return tf.gather_nd(t, rows)[None]

        def as_one_image(t):
            """(B, P, ...) per-GT values -> (1, B * P, ...): GT row b * P + j is image b's row j."""
            return tf.reshape(t, [1, -1] + t.shape[2:].as_list())

        mask_logits, kp_out = self.part_outputs(feats, pos_boxes, training, rows)
        boxes_n = take(pos_boxes)  # (1, N, 4)
        gt_n = take(pos_gt + tf.range(tf.shape(pos_gt)[0])[:, None] * gt["gt_boxes"].shape[1])  # (1, N)
        # targets are binarised, so one sample per output bin is enough
        mask_t = targets.mask_targets(
            boxes_n, as_one_image(gt["gt_boxes"]), as_one_image(gt["gt_masks"]), gt_n, m.mask_head.output_size, 1
        )
        mask_w = targets.gather_per_roi(as_one_image(gt["gt_parts_valid"]), gt_n)
        out["mask"] = losses.mask_loss(mask_logits, mask_t, mask_w, m.mask_head.dice_weight)
        if self.point_head is not None:
            point_rois = PointLossRois(
                image_index=rows[:, 0],
                boxes=boxes_n[0],
                coarse=mask_logits[0],
                gt_index=gt_n[0],
                weights=mask_w[0],
                gt_boxes=as_one_image(gt["gt_boxes"])[0],
                gt_masks=as_one_image(gt["gt_masks"])[0],
            )
            out["point"] = self.point_loss(feats, point_rois, images=gt.get("images"), training=training)
        pos_kp = targets.gather_per_roi(as_one_image(gt["gt_keypoints"]), gt_n)
        out["keypoint"] = self.keypoint_loss(kp_out, boxes_n, pos_kp)
        return out

    def keypoint_loss(self, kp_out, boxes: tf.Tensor, keypoints: tf.Tensor) -> tf.Tensor:
        """Keypoint loss of the keypoint head's output ``kp_out`` for RoIs ``boxes`` (B, k, 4) with
        GT ``keypoints`` (B, k, 15, 3), only on labelled joints (v > 0); 0 without a keypoint head."""
        kp = self.cfg.keypoint_head
        if kp_out is None:
            return tf.constant(0.0)
        if kp.kind == "regression":
            xy, weight = keypoint_regression_targets(boxes, keypoints)
            return losses.keypoint_regression_loss(kp_out, xy, weight)
        index, weight = targets.keypoint_targets(boxes, keypoints, kp.heatmap_size)
        return losses.keypoint_heatmap_loss(kp_out, index, weight)


def _pad_detections(t: tf.Tensor, n: tf.Tensor, d: int) -> tf.Tensor:
    """(B, n, ...) -> (B, d, ...) with zero rows appended (static d)."""
    rank = t.shape.rank
    out = tf.pad(t, [[0, 0], [0, d - n]] + [[0, 0]] * (rank - 2))
    out.set_shape([t.shape[0], d] + t.shape[2:].as_list())
    return out
