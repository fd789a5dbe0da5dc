"""The Mask R-CNN model: ``build_model(cfg) -> MaskRCNN``.

The data flow (both paths share the front half)::

    images -> normalise -> backbone -> FPN -> RPN (anchors, proposals) -> RoI heads
                                               |                          |-> detections   (detect)
                                               |-> RPN losses             |-> head losses  (compute_losses)

``MaskRCNN`` is a ``keras.Model`` made of functional sub-models (backbone, FPN, RPN head, box,
mask and keypoint heads) glued by pure-TF steps (:mod:`maskrcnn_body.model.rpn`,
:mod:`maskrcnn_body.model.roi_heads`):

* ``compute_losses(batch, training=True)``: dict of float32 scalars ``rpn_class, rpn_box, class,
  box, mask, keypoint, total`` (``total`` weighted by ``cfg.model.loss_weights``), plus ``point``
  with the point head (``model.mask_head.point.dim > 0``; in the total with weight
  ``loss_weights["mask"] * point.loss_weight``); ``batch`` is the pipeline dict of ``docs/DESIGN.md``.
* ``detect(images, image_shape)`` / ``model(images, image_shape)``: dict ``boxes`` (B, D, 4),
  ``scores`` (B, D), ``num_detections`` (B,) int32, ``masks`` (B, D, M, M, 7) sigmoid
  probabilities in the box frame, ``keypoints`` (B, D, 15, 3) (x, y, score); boxes and keypoints
  in the resized-image pixel-edge frame. D = ``postprocess.max_detections``, M = ``mask_head.mask_size``
  (``output_size``, or the last ``point.refine_sizes`` with the point head).
* ``inference_model()``: a functional ``keras.Model`` (images, image_shape) -> that dict, for export.

Images are float32 RGB in [0, 255], (B, H, W, 3) with H, W multiples of 32 (static or not: with
unknown H, W one trace serves every input size; anchors follow the actual size); the model
normalises them. Everything runs as TF ops.
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Tuple

import keras
import tensorflow as tf

from maskrcnn_body.config import Config
from maskrcnn_body.constants import LOSS_KEYS, SIZE_DIVISOR
from maskrcnn_body.model.backbone import build_backbone, normalize_images
from maskrcnn_body.model.fpn import build_fpn
from maskrcnn_body.model.heads import build_box_head, build_keypoint_head, build_mask_head, build_point_head
from maskrcnn_body.model.norm import valid_sizes
from maskrcnn_body.model.roi_heads import RoIHeads
from maskrcnn_body.model.rpn import RegionProposalNetwork, RpnOutput, build_rpn_head


class InputError(ValueError):
    """The images / batch given to the model are unusable; the message says which and why."""


def _check_images(images, image_shape=None):
    """Checks with clear messages; returns the padded (H, W): Python ints when static, else int32
    tensors (then a multiple-of-32 check runs in the graph)."""
    if images.shape.rank != 4 or images.shape[-1] != 3:
        raise InputError(f"images must be (B, H, W, 3) float32 RGB in [0, 255], got shape {images.shape}")
    b, h, w = images.shape[0], images.shape[1], images.shape[2]
    if b == 0:
        raise InputError("images is an empty batch (B = 0); give at least one image")
    if image_shape is not None and (image_shape.shape.rank != 2 or image_shape.shape[-1] != 2):
        raise InputError(f"image_shape must be (B, 2) int32 (height, width), got shape {image_shape.shape}")
    if h is not None and w is not None:
        if h % SIZE_DIVISOR or w % SIZE_DIVISOR or h == 0 or w == 0:
            raise InputError(
                f"images are {h}x{w}; height and width must be positive multiples of {SIZE_DIVISOR} "
                f"(pad bottom/right with zeros, as the pipeline does)"
            )
        return int(h), int(w)
    size = tf.shape(images)[1:3]
    tf.debugging.assert_equal(
        size % SIZE_DIVISOR,
        0,
        message=f"images: height and width must be multiples of "
        f"{SIZE_DIVISOR} (pad bottom/right with zeros, as the pipeline does)",
    )
    return size[0], size[1]


PARTS = ("backbone", "fpn", "rpn_head", "box_head", "mask_head", "keypoint_head", "point_head")
"""The functional sub-models of :class:`MaskRCNN` (attributes of the same names; the last two may be None)."""


class MaskRCNN(keras.Model):
    """Person detector with 7 part masks and 15 keypoints (see module docstring).

    ``parts``: sub-models (names from :data:`PARTS`) to use instead of building them, e.g. another
    model's (shared weights) or a folded backbone (:func:`maskrcnn_body.model.fold.fold_frozen_batchnorm`);
    they must be what ``cfg`` builds (same inputs and outputs). The others are built from ``cfg``.
    """

    def __init__(self, cfg: Config, parts: Optional[Mapping[str, Optional[keras.Model]]] = None, **kwargs):
        super().__init__(name=kwargs.pop("name", "maskrcnn_body"), **kwargs)
        cfg.validate()
        self.cfg = cfg
        m = cfg.model
        channels = m.fpn.channels
        given = dict(parts or {})
        unknown = sorted(set(given) - set(PARTS))
        if unknown:
            raise ValueError(f"MaskRCNN parts {unknown}: expected names from {PARTS}")

        def part(name, build):
            return given[name] if name in given else build()

        self.backbone = part("backbone", lambda: build_backbone(m.backbone))
        widths = [int(t.shape[-1]) for t in self.backbone.outputs]
        self.fpn = part("fpn", lambda: build_fpn(channels, widths, m.anchors.max_level))
        self.rpn_head = part("rpn_head", lambda: build_rpn_head(channels, m.anchors.per_location))
        self.box_head = part("box_head", lambda: build_box_head(m.box_head, channels))
        self.mask_head = part("mask_head", lambda: build_mask_head(m.mask_head, channels, m.keypoint_head))
        # "shared": the keypoint heatmaps come from the mask head's tower (one head, two outputs)
        own_keypoint_head = m.keypoint_head.kind not in ("none", "shared")
        self.keypoint_head = part(
            "keypoint_head",
            lambda: build_keypoint_head(m.keypoint_head, channels, m.box_head.fc_dim) if own_keypoint_head else None,
        )
        # PointRend-style refinement of the mask logits at uncertain points (point.dim > 0)
        point = m.mask_head.point
        self.point_head = part("point_head", lambda: build_point_head(point, channels) if point.enabled else None)
        # the units hold references to the sub-models above (plain objects: Keras does not track
        # them, so every variable keeps its one path under this model)
        self.rpn = RegionProposalNetwork(self.rpn_head, m.anchors, m.rpn)
        self.roi_heads = RoIHeads(self.box_head, self.mask_head, self.keypoint_head, m, self.point_head)
        self.built = True

    # ------------------------------------------------------------------ the shared front half
    def features(self, images: tf.Tensor, training: bool = False, image_shape=None) -> List[tf.Tensor]:
        """P2..P{anchors.max_level} (B, H / 2^l, W / 2^l, C) for float32 RGB [0, 255] images.

        ``image_shape`` (B, 2) int32: each image's valid (height, width) before the bottom/right zero
        padding (None: the whole padded size). The features are 0 on the padding and GroupNorm's
        statistics ignore it, so an image's features do not depend on how much it was padded
        (training batches, evaluation batches and single-image serving agree)."""
        images = tf.convert_to_tensor(images, tf.float32)
        size = tf.shape(images)[1:3]
        if image_shape is None:
            image_shape = tf.tile(size[None], [tf.shape(images)[0], 1])
        valid = valid_sizes(image_shape, (size[0], size[1]))
        x = normalize_images(images, self.cfg.model.backbone)
        return self.fpn([*self.backbone([x, valid], training=training), valid], training=training)

    def _front(self, images, image_shape, training: bool) -> Tuple[List[tf.Tensor], RpnOutput]:
        """Checked images -> (pyramid features, RPN output with proposals)."""
        h, w = _check_images(images, image_shape)
        feats = self.features(images, training, image_shape)
        return feats, self.rpn(feats, (h, w), image_shape, training)

    # ------------------------------------------------------------------ inference
    def call(self, images, image_shape=None, training=False):
        return self.detect(images, image_shape, training=training)

    def detect(self, images, image_shape=None, training=False) -> Dict[str, tf.Tensor]:
        """Detections for a batch; see the module docstring for the output dict.

        ``image_shape`` (B, 2) int32 is the valid (height, width) before padding (boxes are
        clipped to it); None means the full padded size. NaN/Inf pixels raise
        ``InvalidArgumentError`` naming ``images``.
        """
        images = tf.convert_to_tensor(images, tf.float32)
        h, w = _check_images(images)
        images = tf.debugging.check_numerics(images, "images contain NaN or Inf; fix the input image")
        if image_shape is None:
            image_shape = tf.tile(tf.reshape(tf.stack([h, w]), [1, 2]), [tf.shape(images)[0], 1])
        image_shape = tf.cast(image_shape, tf.int32)
        feats, rpn = self._front(images, image_shape, training)
        return self.roi_heads.detect(feats, rpn.proposals, rpn.valid, image_shape, training, images=images)

    def inference_model(self) -> keras.Model:
        """Functional model (images (B, H, W, 3) float32, any H, W multiples of 32; image_shape
        (B, 2) int32) -> detect dict.

        A method, built anew on each call: it wraps this model, so an attribute or property would
        make the model contain itself (Keras' weight saving walks attributes and properties). It
        shares this model's weights.
        """
        images = keras.Input((None, None, 3), dtype="float32", name="images")
        shape = keras.Input((2,), dtype="int32", name="image_shape")
        return keras.Model([images, shape], self(images, shape), name="inference")

    # ------------------------------------------------------------------ training
    def compute_losses(self, batch: Dict[str, tf.Tensor], training: bool = True) -> Dict[str, tf.Tensor]:
        """Losses for a pipeline batch (``docs/DESIGN.md``, "Pipeline batch"); float32 scalars.

        Only the first ``num_gt`` GT rows are used. An image without people gives finite losses
        (only the background terms are non-zero); a zero-area GT box matches nothing.
        """
        gt = _prepare_batch(batch)
        images = tf.debugging.check_numerics(gt["images"], "batch['images'] contains NaN or Inf; fix the input image")
        feats, rpn = self._front(images, gt["image_shape"], training)
        out = {}
        out["rpn_class"], out["rpn_box"] = self.rpn.losses(rpn, gt["gt_boxes"], gt["num_gt"], gt["image_shape"])
        out.update(self.roi_heads.losses(feats, rpn.proposals, rpn.valid, gt, training))
        weights = self.cfg.model.loss_weights
        out = {k: tf.cast(v, tf.float32) for k, v in out.items()}
        terms = [float(weights[k]) * out[k] for k in LOSS_KEYS]
        if "point" in out:  # part of the mask objective, logged on its own
            terms.append(float(weights["mask"]) * self.cfg.model.mask_head.point.loss_weight * out["point"])
        out["total"] = tf.add_n(terms)
        return out


_BATCH_KEYS = {
    "images": 4,
    "image_shape": 2,
    "num_gt": 1,
    "gt_boxes": 3,
    "gt_masks": 5,
    "gt_parts_valid": 3,
    "gt_keypoints": 4,
}


def _prepare_batch(batch) -> Dict[str, tf.Tensor]:
    """Checks the pipeline batch (keys, ranks) and casts it; raises :class:`InputError` naming the key."""
    missing = [k for k in _BATCH_KEYS if k not in batch]
    if missing:
        raise InputError(
            f"batch is missing {missing}; compute_losses needs {sorted(_BATCH_KEYS)} "
            f"(see docs/DESIGN.md, 'Pipeline batch')"
        )
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
