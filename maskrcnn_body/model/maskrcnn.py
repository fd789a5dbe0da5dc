"""The Mask R-CNN model: ``build_model(cfg) -> MaskRCNN``.

``MaskRCNN`` is a ``keras.Model`` made of functional sub-models (backbone, FPN, RPN head, box,
mask and keypoint heads) glued by pure-TF steps (anchors, proposals, targets, RoIAlign, NMS):

* ``compute_losses(batch, training=True)``: dict of float32 scalars ``rpn_class, rpn_box, class,
  box, mask, keypoint, total`` (``total`` weighted by ``cfg.model.loss_weights``); ``batch`` is
  the pipeline dict of ``docs/DESIGN.md``.
* ``detect(images, image_shape)`` / ``model(images, image_shape)``: dict ``boxes`` (B, D, 4),
  ``scores`` (B, D), ``num_detections`` (B,) int32, ``masks`` (B, D, M, M, 7) sigmoid
  probabilities in the box frame, ``keypoints`` (B, D, 15, 3) (x, y, score); boxes and keypoints
  in the resized-image pixel-edge frame. D = ``max_detections``, M = ``mask_output_size``.
* ``inference_model()``: a functional ``keras.Model`` (images, image_shape) -> that dict, for export.

Images are float32 RGB in [0, 255], (B, H, W, 3) with H, W multiples of 32; the model
normalises them. Everything runs as TF ops, so ``tf.function`` traces once per input size.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import keras
import tensorflow as tf

from maskrcnn_body import constants as C
from maskrcnn_body.config import Config
from maskrcnn_body.model import losses as L
from maskrcnn_body.model import postprocess as post
from maskrcnn_body.model.backbone import build_backbone, normalize_images
from maskrcnn_body.model.fpn import build_fpn
from maskrcnn_body.model.heads import build_box_head, build_keypoint_head, build_mask_head
from maskrcnn_body.model.rpn import build_rpn_head, flatten_level_outputs
from maskrcnn_body.ops import anchors as anchor_ops
from maskrcnn_body.ops import roi_align
from maskrcnn_body.ops import targets as T

LOSS_KEYS = ("rpn_class", "rpn_box", "class", "box", "mask", "keypoint")
SIZE_DIVISOR = 32


class InputError(ValueError):
    """The images / batch given to the model are unusable; the message says which and why."""


def _check_images(images, image_shape=None) -> Tuple[int, int]:
    """Static checks with clear messages; returns the static (H, W)."""
    if images.shape.rank != 4 or images.shape[-1] != 3:
        raise InputError(f"images must be (B, H, W, 3) float32 RGB in [0, 255], got shape {images.shape}")
    b, h, w = images.shape[0], images.shape[1], images.shape[2]
    if b == 0:
        raise InputError("images is an empty batch (B = 0); give at least one image")
    if h is None or w is None:
        raise InputError(f"images need a static height and width (got {images.shape}); pad to a fixed size")
    if h % SIZE_DIVISOR or w % SIZE_DIVISOR or h == 0 or w == 0:
        raise InputError(f"images are {h}x{w}; height and width must be positive multiples of {SIZE_DIVISOR} "
                         f"(pad bottom/right with zeros, as the pipeline does)")
    if image_shape is not None and (image_shape.shape.rank != 2 or image_shape.shape[-1] != 2):
        raise InputError(f"image_shape must be (B, 2) int32 (height, width), got shape {image_shape.shape}")
    return int(h), int(w)


class MaskRCNN(keras.Model):
    """Person detector with 7 part masks and 15 keypoints (see module docstring)."""

    def __init__(self, cfg: Config, **kwargs):
        super().__init__(name=kwargs.pop("name", "maskrcnn_body"), **kwargs)
        self.cfg = cfg
        m = cfg.model
        self.backbone = build_backbone(m)
        self.fpn = build_fpn(m, [int(t.shape[-1]) for t in self.backbone.outputs])
        self.rpn_head = build_rpn_head(m)
        self.box_head = build_box_head(m)
        self.mask_head = build_mask_head(m)
        # "shared": the keypoint heatmaps come from the mask head's tower (one head, two outputs)
        self.keypoint_head = None if m.keypoint_head in ("none", "shared") else build_keypoint_head(m)
        self.roi_strides = [2 ** l for l in range(m.min_level, m.max_level + 1)]
        self.built = True

    # ------------------------------------------------------------------ shared pieces
    def _features(self, images, training) -> List[tf.Tensor]:
        """P2..P{rpn_max_level} for float32 RGB [0, 255] images."""
        x = normalize_images(images, self.cfg.model)
        return self.fpn(self.backbone(x, training=training), training=training)

    def _rpn(self, feats, training):
        """Per-level RPN logits (B, N_l) and deltas (B, N_l, 4), float32."""
        flat = [flatten_level_outputs(*self.rpn_head(f, training=training)) for f in feats]
        return [f[0] for f in flat], [f[1] for f in flat]

    def _roi_features(self, feats, boxes, size):
        """RoIAlign (B, R, size, size, C) of ``boxes`` (B, R, 4) from the RoI levels P2..P5."""
        m = self.cfg.model
        levels = roi_align.assign_levels(boxes, m.min_level, m.max_level, m.level_k0, m.level_canonical_size)
        n_levels = m.max_level - m.min_level + 1
        return roi_align.multilevel_roi_align(feats[:n_levels], boxes, levels, self.roi_strides, size,
                                              sampling_ratio=m.roi_sampling_ratio, aligned=m.roi_aligned)

    @staticmethod
    def _apply_head(head, rois, training):
        """Runs a per-RoI head on (B, R, S, S, C) crops; outputs keep the (B, R) leading dims."""
        shape = tf.shape(rois)
        flat = tf.reshape(rois, tf.concat([[shape[0] * shape[1]], shape[2:]], 0))
        outs = head(flat, training=training)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        res = [tf.reshape(o, tf.concat([shape[:2], tf.shape(o)[1:]], 0)) for o in outs]
        return res if len(res) > 1 else res[0]

    # ------------------------------------------------------------------ inference
    def call(self, images, image_shape=None, training=False):
        return self.detect(images, image_shape, training=training)

    def detect(self, images, image_shape=None, training=False) -> Dict[str, tf.Tensor]:
        """Detections for a batch; see the module docstring for the output dict.

        ``image_shape`` (B, 2) int32 is the valid (height, width) before padding (boxes are
        clipped to it); None means the full padded size. NaN/Inf pixels raise
        ``InvalidArgumentError`` naming ``images``.
        """
        m = self.cfg.model
        images = tf.convert_to_tensor(images, tf.float32)
        h, w = _check_images(images)
        images = tf.debugging.check_numerics(images, "images contain NaN or Inf; fix the input image")
        b = tf.shape(images)[0]
        if image_shape is None:
            image_shape = tf.tile(tf.constant([[h, w]], tf.int32), [b, 1])
        image_shape = tf.cast(image_shape, tf.int32)
        _check_images(images, image_shape)

        feats = self._features(images, training)
        logits, deltas = self._rpn(feats, training)
        anchors, _ = anchor_ops.generate_anchors_for_config(m, (h, w))
        proposals, pvalid = post.generate_proposals(
            logits, deltas, anchors, image_shape, m.rpn_pre_nms_topk_test, m.rpn_post_nms_topk_test,
            m.rpn_nms_iou, m.rpn_min_box_size)
        cls, box = self._apply_head(self.box_head, self._roi_features(feats, proposals, m.box_roi_size), training)
        det = post.select_detections(cls, box, proposals, pvalid, image_shape, m.box_weights,
                                     m.score_threshold, m.nms_iou, m.max_detections)
        fvalid = tf.cast(det.pop("valid"), tf.float32)
        mask_logits, kp_out = self._part_heads(feats, det["boxes"], training)
        det["masks"] = tf.sigmoid(mask_logits) * fvalid[:, :, None, None, None]
        det["keypoints"] = self._decode_keypoints(kp_out, det) * fvalid[:, :, None, None]
        return det

    def _part_heads(self, feats, boxes, training, rows=None):
        """Mask logits (B, R, M, M, 7) and the keypoint head's output (heatmap logits
        (B, R, K, K, 15), regression (B, R, 15, 2), or None without a keypoint head) for RoIs
        ``boxes`` (B, R, 4). One RoIAlign serves both heads when their RoI sizes agree.

        ``rows`` (N, 2) int64 ``(image, roi)`` indices: run the heads only on those RoIs; the
        outputs are then (1, N, ...) (training: only real positives cost head time). N may be 0
        (a batch without people): the heads then still run on one row, never on an empty batch.
        """
        m = self.cfg.model
        if rows is not None:
            # never run a convolution on an empty batch: TF's oneDNN convolution (Intel Xeon)
            # returns a wrongly shaped result for one. With no positive RoI the heads run on one
            # stand-in row (image 0, RoI 0) whose outputs are sliced away below, so the caller
            # sees (1, 0, ...) outputs, zero losses and zero gradients (one trace either way).
            n = tf.shape(rows)[0]
            rows = tf.concat([rows, tf.zeros([1, 2], rows.dtype)], 0)[:tf.maximum(n, 1)]

        def crops(size):
            c = self._roi_features(feats, boxes, size)
            return c if rows is None else tf.gather_nd(c, rows)[None]

        def real_rows(t):
            return t if (rows is None or t is None) else t[:, :n]

        mask_rois = crops(m.mask_roi_size)
        out = self._apply_head(self.mask_head, mask_rois, training)
        if m.keypoint_head == "shared":
            return real_rows(out[0]), real_rows(out[1])
        if self.keypoint_head is None:
            return real_rows(out), None
        kp_rois = mask_rois if m.keypoint_roi_size == m.mask_roi_size else crops(m.keypoint_roi_size)
        return real_rows(out), real_rows(self._apply_head(self.keypoint_head, kp_rois, training))

    def _decode_keypoints(self, kp_out, det):
        """(B, D, 15, 3) keypoints (x, y, score) in the image frame from the keypoint head's output."""
        if kp_out is None:
            return tf.zeros(tf.concat([tf.shape(det["scores"]), [C.NUM_KEYPOINTS, 3]], 0), tf.float32)
        if self.cfg.model.keypoint_head == "regression":
            return post.decode_keypoint_regression(kp_out, det["boxes"], det["scores"])
        return post.decode_keypoint_heatmaps(kp_out, det["boxes"])

    def inference_model(self) -> keras.Model:
        """Functional model (images (B, S, S, 3) float32, image_shape (B, 2) int32) -> detect dict,
        S = ``cfg.input.pad_size`` (anchors are static, so the export has one input size).

        A method, built anew on each call: it wraps this model, so an attribute or property would
        make the model contain itself (Keras' weight saving walks attributes and properties). It
        shares this model's weights.
        """
        s = self.cfg.input.pad_size
        images = keras.Input((s, s, 3), dtype="float32", name="images")
        shape = keras.Input((2,), dtype="int32", name="image_shape")
        return keras.Model([images, shape], self(images, shape), name="inference")

    # ------------------------------------------------------------------ training
    def compute_losses(self, batch: Dict[str, tf.Tensor], training: bool = True) -> Dict[str, tf.Tensor]:
        """Losses for a pipeline batch (``docs/DESIGN.md``, "Pipeline batch"); float32 scalars.

        Only the first ``num_gt`` GT rows are used. An image without people gives finite losses
        (only the background terms are non-zero); a zero-area GT box matches nothing.
        """
        m = self.cfg.model
        gt = _prepare_batch(batch)
        images, image_shape = gt["images"], gt["image_shape"]
        h, w = _check_images(images, image_shape)
        images = tf.debugging.check_numerics(images, "batch['images'] contains NaN or Inf; fix the input image")

        feats = self._features(images, training)
        logits, deltas = self._rpn(feats, training)
        anchors, all_anchors = anchor_ops.generate_anchors_for_config(m, (h, w))
        rpn = T.rpn_targets(all_anchors, gt["gt_boxes"], gt["num_gt"], m)
        out = {}
        out["rpn_class"], out["rpn_box"] = L.rpn_losses(tf.concat(logits, 1), tf.concat(deltas, 1),
                                                        rpn.labels, rpn.box_targets)

        proposals, pvalid = post.generate_proposals(
            logits, deltas, anchors, image_shape, m.rpn_pre_nms_topk_train, m.rpn_post_nms_topk_train,
            m.rpn_nms_iou, m.rpn_min_box_size)
        rois = T.sample_rois(proposals, gt["gt_boxes"], gt["num_gt"], m, proposal_valid=pvalid)
        cls, box = self._apply_head(self.box_head, self._roi_features(feats, rois.rois, m.box_roi_size), training)
        labels = tf.where(rois.weights > 0, rois.labels, -1)
        out["class"], out["box"] = L.box_head_losses(cls, box, labels, rois.box_targets)

        # masks and keypoints only on (at most max_mask_rois_per_image) foreground RoIs, which
        # sample_rois puts first, and only on the real ones (rows, a dynamic count N): memory stays
        # bounded whatever rois_per_image is, and head time follows the number of positives.
        k = min(m.max_mask_rois_per_image, rois.rois.shape[1])
        pos_boxes = rois.rois[:, :k]
        pos_gt = rois.matched_gt[:, :k]
        rows = tf.where(tf.range(k)[None, :] < rois.num_fg[:, None])  # (N, 2) (image, roi)

        def take(t):
            """(B, k, ...) per-RoI values -> (1, N, ...) of the real positives."""
            return tf.gather_nd(t, rows)[None]

        def as_one_image(t):
            """(B, P, ...) per-GT values -> (1, B * P, ...): GT row b * P + j is image b's row j."""
            return tf.reshape(t, [1, -1] + t.shape[2:].as_list())

        mask_logits, kp_out = self._part_heads(feats, pos_boxes, training, rows)
        boxes_n = take(pos_boxes)                                                       # (1, N, 4)
        gt_n = take(pos_gt + tf.range(tf.shape(pos_gt)[0])[:, None] * gt["gt_boxes"].shape[1])  # (1, N)
        # targets are binarised, so one sample per output bin is enough
        mask_t = T.mask_targets(boxes_n, as_one_image(gt["gt_boxes"]), as_one_image(gt["gt_masks"]), gt_n,
                                m.mask_output_size, 1)
        mask_w = T.gather_per_roi(as_one_image(gt["gt_parts_valid"]), gt_n)
        out["mask"] = L.mask_loss(mask_logits, mask_t, mask_w, m.mask_dice_weight)
        pos_kp = T.gather_per_roi(as_one_image(gt["gt_keypoints"]), gt_n)
        out["keypoint"] = self._keypoint_loss(kp_out, boxes_n, pos_kp, tf.ones(tf.shape(gt_n), tf.float32))

        weights = m.loss_weights
        out = {k_: tf.cast(v, tf.float32) for k_, v in out.items()}
        out["total"] = tf.add_n([float(weights.get(k_, 1.0)) * out[k_] for k_ in LOSS_KEYS])
        return out

    def _keypoint_loss(self, kp_out, boxes, keypoints, valid):
        """Keypoint loss of the keypoint head's output ``kp_out`` for RoIs ``boxes`` (B, k, 4) with
        GT ``keypoints`` (B, k, 15, 3), only on labelled joints (v > 0) of valid (B, k) RoIs."""
        m = self.cfg.model
        if kp_out is None:
            return tf.constant(0.0)
        if m.keypoint_head == "regression":
            xy, weight = _keypoint_regression_targets(boxes, keypoints)
            return L.keypoint_regression_loss(kp_out, xy, weight * valid[..., None])
        index, weight = T.keypoint_targets(boxes, keypoints, m.keypoint_heatmap_size)
        return L.keypoint_heatmap_loss(kp_out, index, weight * valid[..., None])


def _keypoint_regression_targets(boxes, keypoints):
    """Targets of the regression branch: RoI-normalised (x, y) (B, k, 15, 2) and weight (B, k, 15),
    1 for labelled joints (v > 0) inside the RoI."""
    x1, y1 = boxes[..., 0:1], boxes[..., 1:2]
    w = tf.maximum(boxes[..., 2:3] - x1, 1e-6)
    h = tf.maximum(boxes[..., 3:4] - y1, 1e-6)
    rx = (keypoints[..., 0] - x1) / w
    ry = (keypoints[..., 1] - y1) / h
    inside = (rx >= 0) & (rx <= 1) & (ry >= 0) & (ry <= 1) & (keypoints[..., 2] > 0)
    return tf.stop_gradient(tf.stack([rx, ry], -1)), tf.cast(inside, tf.float32)


_BATCH_KEYS = {"images": 4, "image_shape": 2, "num_gt": 1, "gt_boxes": 3, "gt_masks": 5,
               "gt_parts_valid": 3, "gt_keypoints": 4}


def _prepare_batch(batch) -> Dict[str, tf.Tensor]:
    """Checks the pipeline batch (keys, ranks) and casts it; raises :class:`InputError` naming the key."""
    missing = [k for k in _BATCH_KEYS if k not in batch]
    if missing:
        raise InputError(f"batch is missing {missing}; compute_losses needs {sorted(_BATCH_KEYS)} "
                         f"(see docs/DESIGN.md, 'Pipeline batch')")
    out = {}
    for key, rank in _BATCH_KEYS.items():
        t = tf.convert_to_tensor(batch[key])
        if t.shape.rank != rank:
            raise InputError(f"batch[{key!r}] has shape {t.shape}, expected rank {rank} (docs/DESIGN.md)")
        out[key] = tf.cast(t, tf.int32 if key in ("image_shape", "num_gt") else tf.float32)
    p = out["gt_boxes"].shape[1]
    if p == 0:
        raise InputError("batch['gt_boxes'] has 0 rows; pad to max_persons >= 1 and set num_gt = 0 for no people")
    out["num_gt"] = tf.minimum(out["num_gt"], p)
    return out


def build_model(cfg: Config) -> MaskRCNN:
    """A freshly initialised :class:`MaskRCNN` for ``cfg`` (backbone weights loaded if configured)."""
    return MaskRCNN(cfg)
