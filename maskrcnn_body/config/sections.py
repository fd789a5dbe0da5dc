"""The typed configuration: one dataclass per component, nested under :class:`Config`.

Every field has a documented default (``help`` in its metadata, listed by
``maskrcnn-body train --list-config``). Enum-like fields are ``Literal`` choices. Values are
checked in one place, :meth:`Config.validate` (each section's ``validate`` plus the rules that
span sections); :func:`maskrcnn_body.config.get_config`, :meth:`Config.from_dict` and
``build_model`` call it, so a bad value fails with a message naming the field and what is
allowed before anything runs.

Layout (``SECTION.FIELD`` keys of ``--set``)::

    input.*                     resizing, padding, augmentation, GT mask size
    model.backbone.*            architecture, normalisation, pretrained weights, pixel normalisation
    model.fpn.*                 pyramid width
    model.anchors.*             anchor sizes/ratios, highest RPN level
    model.rpn.*                 anchor matching/sampling, proposal selection
    model.roi.*                 RoI sampling for the heads, level assignment, RoIAlign
    model.box_head.*            box/class head
    model.mask_head.*           7-channel part mask head
    model.mask_head.point.*     PointRend-style point head refining the masks (dim 0: off)
    model.keypoint_head.*       15-joint keypoint head
    model.postprocess.*         score threshold, NMS, detections per image
    model.loss_weights          weight of each loss term
    train.*                     optimiser, schedule, batch, checkpoints, logging
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Literal, Optional, Tuple

from maskrcnn_body.constants import LOSS_KEYS, NUM_CHANNELS, SIZE_DIVISOR, ceil_div, round_up

CONFIG_VERSION = 3
"""Version of the ``config.json`` layout written by :meth:`Config.to_dict` (1: the flat layout of
releases before 0.2; 2: ``train.learning_rate`` scaled linearly with AdamW too; both upgraded on load by
:mod:`maskrcnn_body.config.io`, keeping the per-step learning rate)."""


class ConfigError(ValueError):
    """A configuration value, key or file is invalid; the message names it and what is allowed."""


def field(default, help: str):
    """A dataclass field with its documentation (shown by ``--list-config``)."""
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


def section(cls, help: str):
    return dataclasses.field(default_factory=cls, metadata={"help": help})


def _require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {message}")


def _positive(obj, prefix: str, *names: str) -> None:
    for n in names:
        _require(getattr(obj, n) > 0, f"{prefix}.{n}", f"must be > 0, got {getattr(obj, n)!r}")


def _fraction(obj, prefix: str, *names: str) -> None:
    for n in names:
        v = getattr(obj, n)
        _require(0.0 <= v <= 1.0, f"{prefix}.{n}", f"must be in [0, 1], got {v!r}")


# --------------------------------------------------------------------------- input
@dataclasses.dataclass
class InputConfig:
    """Input pipeline (``data.pipeline``): resize, augment, pad, batch."""

    min_size: int = field(256, "Shorter image side after resizing (unless that puts the longer side over max_size).")
    max_size: int = field(
        256,
        "Longer image side cap. Images are zero-padded bottom/right to multiples of 32 (a batch to its largest "
        "image); a training zoom-in (input.zoom_in) is cut to a random window of max_size rounded up to 32.",
    )
    max_persons: int = field(20, "GT people kept per image (the largest boxes); the rest are dropped and counted.")
    gt_mask_size: int = field(128, "GT part masks are cropped to their box and resized to this square size.")
    flip: bool = field(True, "Training only: random horizontal flip (mirrors pixels and swaps left/right labels).")
    scale_jitter: Tuple[float, float] = field(
        (0.8, 1.2),
        "Training only: random resize factor range; a draw that makes the image larger than max_size (rounded up "
        "to 32) allows is capped to fit unless zoom_in; (1, 1) disables.",
    )
    zoom_in: bool = field(
        False,
        "Training only: scale_jitter draws above what fits zoom in (the image is resized past max_size and a random "
        "window of that size is kept, annotations cut alike) instead of being capped. Off by default: in the "
        "30-minute cpu_small run it cost arms 5-7 and legs 9-11 AP (docs/LIMBS.md).",
    )
    shuffle_buffer: int = field(256, "Training only: records in the shuffle buffer.")
    skip_corrupt: bool = field(
        False, "True: skip and count corrupt records; False: stop with an error naming the record."
    )

    @property
    def pad_size(self) -> int:
        """The largest resized side: ``max_size`` rounded up to ``SIZE_DIVISOR`` (32); a training zoom-in is
        cut to a window of this side."""
        return round_up(self.max_size, SIZE_DIVISOR)

    def validate(self, p: str = "input") -> None:
        _positive(self, p, "min_size", "max_size", "max_persons", "gt_mask_size", "shuffle_buffer")
        _require(
            self.min_size <= self.max_size, f"{p}.min_size", f"{self.min_size} is larger than max_size {self.max_size}"
        )
        lo, hi = self.scale_jitter
        _require(
            0 < lo <= hi, f"{p}.scale_jitter", f"must be (low, high) with 0 < low <= high, got {self.scale_jitter}"
        )


# --------------------------------------------------------------------------- model sections
@dataclasses.dataclass
class BackboneConfig:
    """The backbone giving C2..C5 (strides 4..32), and how the model normalises its input."""

    name: Literal["resnet50", "resnet18", "tiny"] = field("resnet50", "Architecture.")
    weights: Optional[str] = field(
        None,
        "Pretrained weights: None, a local Keras ResNet50 weights file (.h5 or "
        ".weights.h5), or 'imagenet' (Keras downloads them).",
    )
    norm: Literal["group", "frozen_bn", "batch", "sync_batch"] = field(
        "group",
        "Normalisation in the backbone: GroupNorm (batch-independent, for training from scratch), "
        "frozen BatchNorm (fine-tuning pretrained weights), BatchNorm, or BatchNorm synced across replicas.",
    )
    group_norm_groups: int = field(32, "GroupNorm groups (fewer when a layer's width is not divisible).")
    tiny_widths: Tuple[int, ...] = field((32, 64, 128, 256), "C2..C5 widths of the 'tiny' backbone.")
    preprocessing: Literal["torch", "caffe"] = field(
        "torch",
        "How the model normalises RGB [0, 255] pixels for the backbone, as keras.applications' "
        "preprocess_input modes: torch = (x / 255 - ImageNet mean) / std, RGB (training from scratch); "
        "caffe = BGR, minus the ImageNet mean in [0, 255], no scaling (Keras' ResNet50 ImageNet weights).",
    )
    freeze_at: int = field(
        0,
        "Frozen layers (Detectron2's FREEZE_AT): 0 none, 1 the stem, 2 the stem and the first "
        "stage (C2), 3 up to C3, ...",
    )

    def validate(self, p: str = "model.backbone") -> None:
        _positive(self, p, "group_norm_groups")
        _require(
            len(self.tiny_widths) == 4 and all(w > 0 for w in self.tiny_widths),
            f"{p}.tiny_widths",
            f"needs 4 positive widths (C2..C5), got {self.tiny_widths}",
        )
        _require(0 <= self.freeze_at <= 5, f"{p}.freeze_at", f"must be in 0..5, got {self.freeze_at}")
        if self.weights is not None:
            _require(
                self.name == "resnet50",
                f"{p}.weights",
                f"pretrained weights exist for 'resnet50' only, not {self.name!r}",
            )
            # weights whose features the model cannot reproduce are an error, never a silent mismatch
            _require(
                self.norm != "group",
                f"{p}.norm",
                "'group' drops the BatchNorm statistics of the pretrained weights in model.backbone.weights; "
                "set model.backbone.norm=frozen_bn (or use the r50_fpn_imagenet preset)",
            )
            _require(
                self.preprocessing == "caffe",
                f"{p}.preprocessing",
                "Keras' ImageNet ResNet50 weights expect caffe-style input (BGR, mean-subtracted, 0-255); "
                "set model.backbone.preprocessing=caffe (or use the r50_fpn_imagenet preset)",
            )


@dataclasses.dataclass
class FpnConfig:
    """Feature pyramid P2..P5 (RoI levels) plus P6 for the RPN."""

    channels: int = field(256, "Width of every pyramid level (and of the RoI crops the heads see).")

    def validate(self, p: str = "model.fpn") -> None:
        _positive(self, p, "channels")


@dataclasses.dataclass
class AnchorConfig:
    """RPN anchors: side ``size * stride * scale`` per level, for each scale and aspect ratio (h / w)."""

    size: float = field(8.0, "Anchor side in units of the level's stride (8 x stride 4 = 32 px on P2).")
    scales: Tuple[float, ...] = field((1.0,), "Extra scale factors per level.")
    aspect_ratios: Tuple[float, ...] = field((0.5, 1.0, 2.0), "Height / width ratios.")
    max_level: Literal[5, 6] = field(6, "Highest RPN level: 6 adds P6 (a stride-2 subsample of P5) for large people.")

    @property
    def per_location(self) -> int:
        """Anchors per feature-map location."""
        return len(self.scales) * len(self.aspect_ratios)

    def validate(self, p: str = "model.anchors") -> None:
        _positive(self, p, "size")
        _require(
            len(self.scales) > 0 and all(s > 0 for s in self.scales),
            f"{p}.scales",
            f"needs at least one positive scale, got {self.scales}",
        )
        _require(
            len(self.aspect_ratios) > 0 and all(r > 0 for r in self.aspect_ratios),
            f"{p}.aspect_ratios",
            f"needs at least one positive ratio, got {self.aspect_ratios}",
        )


@dataclasses.dataclass
class RpnConfig:
    """Region proposal network: anchor labelling and sampling (training), proposal selection."""

    pos_iou: float = field(0.7, "Anchors with IoU >= this with a GT box are positive (plus each GT's best anchor).")
    neg_iou: float = field(0.3, "Anchors whose best IoU is below this are negative; in between: ignored.")
    batch_per_image: int = field(256, "Anchors sampled per image for the RPN losses.")
    positive_fraction: float = field(0.5, "Largest fraction of positives among the sampled anchors.")
    pre_nms_topk_train: int = field(2000, "Training: proposals kept per level before NMS.")
    post_nms_topk_train: int = field(1000, "Training: proposals kept per image after NMS.")
    pre_nms_topk_test: int = field(1000, "Inference: proposals kept per level before NMS.")
    post_nms_topk_test: int = field(1000, "Inference: proposals kept per image after NMS.")
    nms_iou: float = field(0.7, "NMS IoU threshold between proposals.")
    min_box_size: float = field(0.0, "Proposals with a side of at most this many pixels are dropped.")

    def validate(self, p: str = "model.rpn") -> None:
        _fraction(self, p, "pos_iou", "neg_iou", "positive_fraction", "nms_iou")
        _require(self.neg_iou <= self.pos_iou, f"{p}.neg_iou", f"{self.neg_iou} is above pos_iou {self.pos_iou}")
        _positive(
            self,
            p,
            "batch_per_image",
            "pre_nms_topk_train",
            "post_nms_topk_train",
            "pre_nms_topk_test",
            "post_nms_topk_test",
        )
        _require(self.min_box_size >= 0, f"{p}.min_box_size", f"must be >= 0, got {self.min_box_size}")


@dataclasses.dataclass
class RoiConfig:
    """RoIs for the heads: sampling (training), FPN level assignment and RoIAlign."""

    fg_iou: float = field(0.5, "Sampled RoIs with IoU >= this with a GT box are foreground.")
    bg_iou_high: float = field(0.5, "Background RoIs have IoU below this ...")
    bg_iou_low: float = field(0.0, "... and at least this.")
    per_image: int = field(512, "RoIs sampled per image for the box head (GT boxes are candidates too).")
    positive_fraction: float = field(0.25, "Largest fraction of foreground among the sampled RoIs.")
    level_k0: int = field(4, "Level assignment k = floor(k0 + log2(sqrt(wh) / canonical_size)), clipped to P2..P5.")
    canonical_size: float = field(224.0, "Box side that maps to level k0.")
    sampling_ratio: int = field(2, "RoIAlign bilinear samples per bin side.")
    aligned: bool = field(True, "RoIAlign half-pixel alignment (Detectron2's aligned=True).")

    def validate(self, p: str = "model.roi") -> None:
        _fraction(self, p, "fg_iou", "bg_iou_high", "bg_iou_low", "positive_fraction")
        _require(self.bg_iou_low <= self.bg_iou_high, f"{p}.bg_iou_low", f"{self.bg_iou_low} is above bg_iou_high")
        _positive(self, p, "per_image", "sampling_ratio", "canonical_size")
        _require(2 <= self.level_k0 <= 5, f"{p}.level_k0", f"must be a level in 2..5, got {self.level_k0}")


@dataclasses.dataclass
class BoxHeadConfig:
    """Box/class head: two fully connected layers over the RoI crop."""

    roi_size: int = field(7, "RoIAlign output side for the box head.")
    fc_dim: int = field(1024, "Width of the two fully connected layers.")
    box_weights: Tuple[float, float, float, float] = field((10.0, 10.0, 5.0, 5.0), "Box coder weights (x, y, w, h).")

    def validate(self, p: str = "model.box_head") -> None:
        _positive(self, p, "roi_size", "fc_dim")
        _require(all(w > 0 for w in self.box_weights), f"{p}.box_weights", f"must be > 0, got {self.box_weights}")


@dataclasses.dataclass
class PointHeadConfig:
    """PointRend-style point head (Kirillov et al., CVPR 2020) refining the mask logits at points.

    A small MLP re-predicts the 7 mask logits at points from fine features sampled there (P2, and
    optionally the 3x3 RGB neighbourhood) plus the coarse head's logits at the point. Training: a
    point loss at uncertainty-biased random points of each positive RoI. Inference: adaptive
    subdivision -- the logits are resized to each of ``refine_sizes`` in turn and the
    ``refine_points`` most uncertain cells re-predicted; the model's masks are then
    ``refine_sizes[-1]`` square instead of ``model.mask_head.output_size``.
    """

    dim: int = field(
        0, "Width of the point head's fully connected layers (0: no point head, masks as the head gives them)."
    )
    layers: int = field(3, "Fully connected layers of the point head (each also fed the coarse logits).")
    features: Literal["p2", "p2+image"] = field(
        "p2",
        "Fine features at a point: p2 = the finest pyramid level (stride 4), bilinearly sampled; p2+image = "
        "plus the normalised RGB of the point's 3x3 pixel neighbourhood (27 values: edges one pixel wide).",
    )
    train_points: int = field(196, "Training: points per positive RoI for the point loss.")
    oversample: float = field(
        3.0, "Training: uniform random candidates per point (>= 1); the most uncertain of them are kept."
    )
    importance: float = field(
        0.75, "Training: fraction of the points chosen by uncertainty; the rest are uniform random."
    )
    loss_weight: float = field(
        1.0,
        "Weight of the point loss relative to the mask head's loss (the total adds "
        "loss_weights['mask'] * loss_weight * point).",
    )
    selection: Literal["shared", "per_channel"] = field(
        "shared",
        "Training: how the uncertain points are chosen: shared = by the one uncertainty of all channels "
        "(-min_c |logit_c|, PointRend's); per_channel = an equal share per channel, each by its own "
        "-|logit_c| (arm boundaries no longer compete with the body's and torso's).",
    )
    limb_weight: float = field(
        1.0, "Training: weight of the four limb channels in the point loss (the others weigh 1)."
    )
    refine_sizes: Tuple[int, ...] = field(
        (56, 112),
        "Inference: the mask logits are resized (bilinear) to each side in turn and refined; the last is "
        "the side of the output masks (empty: no refinement, the head's own masks).",
    )
    refine_points: int = field(784, "Inference: most uncertain cells re-predicted at each refine size.")

    @property
    def enabled(self) -> bool:
        return self.dim > 0

    def validate(self, p: str = "model.mask_head.point") -> None:
        _require(self.dim >= 0, f"{p}.dim", f"must be >= 0 (0 = no point head), got {self.dim!r}")
        if not self.enabled:
            return
        _positive(self, p, "layers", "train_points", "refine_points")
        _require(self.oversample >= 1.0, f"{p}.oversample", f"must be >= 1, got {self.oversample!r}")
        _fraction(self, p, "importance")
        _require(self.loss_weight >= 0, f"{p}.loss_weight", f"must be >= 0, got {self.loss_weight!r}")
        _require(self.limb_weight > 0, f"{p}.limb_weight", f"must be > 0, got {self.limb_weight!r}")
        _require(
            all(s > 0 for s in self.refine_sizes),
            f"{p}.refine_sizes",
            f"sides must be > 0, got {self.refine_sizes}",
        )


@dataclasses.dataclass
class MaskHeadConfig:
    """7-channel part mask head (body, head, torso, arms, legs), run on positives only in training."""

    roi_size: int = field(14, "RoIAlign output side for the mask head.")
    convs: int = field(4, "3x3 convolutions in the tower.")
    dim: int = field(256, "Width of the tower.")
    norm: Literal["group", "batch", "none"] = field(
        "group",
        "Normalisation after each tower convolution, independent of the backbone's: GroupNorm, "
        "BatchNorm, or none (the convolutions then have a bias).",
    )
    global_dim: int = field(
        256,
        "RoI-wide fully connected context added to every position (0: none); lets the "
        "head tell left from right far from the face.",
    )
    output_size: int = field(112, "Mask logits are upsampled late (7 channels only) to this side.")
    max_rois_per_image: int = field(64, "Training: masks on at most this many positive RoIs per image.")
    dice_weight: float = field(1.0, "Weight of the soft Dice term added to the per-channel BCE (thin limbs).")
    point: PointHeadConfig = section(PointHeadConfig, "PointRend-style point head refining the masks (dim 0: off).")

    @property
    def mask_size(self) -> int:
        """Side of the masks the model outputs: the last refine size with the point head, else ``output_size``."""
        if self.point.enabled and self.point.refine_sizes:
            return self.point.refine_sizes[-1]
        return self.output_size

    def validate(self, p: str = "model.mask_head") -> None:
        _positive(self, p, "roi_size", "dim", "output_size", "max_rois_per_image")
        _require(
            self.convs >= 0 and self.global_dim >= 0 and self.dice_weight >= 0,
            p,
            "convs, global_dim and dice_weight must be >= 0",
        )
        self.point.validate(f"{p}.point")


@dataclasses.dataclass
class KeypointHeadConfig:
    """15-joint keypoint head."""

    kind: Literal["heatmap", "shared", "regression", "none"] = field(
        "heatmap",
        "heatmap: own tower, one softmax heatmap per joint (Keypoint R-CNN); shared: heatmaps from the "
        "mask head's tower (one pass for parts and joints); regression: the 2017 original's 30 outputs; "
        "none: no keypoints.",
    )
    roi_size: int = field(14, "RoIAlign output side for the keypoint head (own tower only).")
    convs: int = field(8, "3x3 convolutions in the own tower.")
    dim: int = field(512, "Width of the own tower.")
    norm: Literal["group", "batch", "none"] = field(
        "group", "Normalisation after each convolution of the own tower (as model.mask_head.norm)."
    )
    global_dim: int = field(256, "RoI-wide fully connected context in the own tower (0: none).")
    heatmap_size: int = field(56, "Heatmap side.")

    def validate(self, p: str = "model.keypoint_head") -> None:
        _positive(self, p, "roi_size", "dim", "heatmap_size")
        _require(self.convs >= 0 and self.global_dim >= 0, p, "convs and global_dim must be >= 0")


@dataclasses.dataclass
class PostprocessConfig:
    """Inference: from box-head scores to detections."""

    score_threshold: float = field(0.05, "Detections need a person score above this.")
    nms_iou: float = field(0.5, "Class-agnostic NMS IoU threshold.")
    max_detections: int = field(100, "Detection slots per image (D).")
    mask_thresholds: Tuple[float, ...] = field(
        (0.5,) * 7,
        "Per-channel mask decoding thresholds (body, head, torso, left/right arm, left/right leg): the model "
        "outputs sigmoid(logit - logit(t_k)), so every consumer's 0.5 cut means probability >= t_k. Chosen on a "
        "split other than the reporting val split (maskrcnn_body.evaluation.thresholds) and stored in the "
        "training directory's config.json, hence in every export.",
    )
    mask_body_union: bool = field(
        False,
        "Decode the body as max(body, parts) (no part pixel is cut off by a thinner body mask); "
        "False: parts are clipped to the body.",
    )

    def validate(self, p: str = "model.postprocess") -> None:
        _fraction(self, p, "score_threshold", "nms_iou")
        _positive(self, p, "max_detections")
        _require(
            len(self.mask_thresholds) == NUM_CHANNELS and all(0.0 < t < 1.0 for t in self.mask_thresholds),
            f"{p}.mask_thresholds",
            f"needs {NUM_CHANNELS} values in (0, 1), one per channel, got {self.mask_thresholds}",
        )


def _default_loss_weights() -> Dict[str, float]:
    return dict.fromkeys(LOSS_KEYS, 1.0)


@dataclasses.dataclass
class ModelConfig:
    """Mask R-CNN for one class (person) with 7 part masks and 15 keypoints."""

    backbone: BackboneConfig = section(BackboneConfig, "Backbone and input normalisation.")
    fpn: FpnConfig = section(FpnConfig, "Feature pyramid.")
    anchors: AnchorConfig = section(AnchorConfig, "RPN anchors.")
    rpn: RpnConfig = section(RpnConfig, "Region proposal network.")
    roi: RoiConfig = section(RoiConfig, "RoI sampling, level assignment, RoIAlign.")
    box_head: BoxHeadConfig = section(BoxHeadConfig, "Box/class head.")
    mask_head: MaskHeadConfig = section(MaskHeadConfig, "Part mask head.")
    keypoint_head: KeypointHeadConfig = section(KeypointHeadConfig, "Keypoint head.")
    postprocess: PostprocessConfig = section(PostprocessConfig, "Inference post-processing.")
    loss_weights: Dict[str, float] = dataclasses.field(
        default_factory=_default_loss_weights,
        metadata={"help": f"Weight of each loss term in the total ({', '.join(LOSS_KEYS)})."},
    )

    def validate(self, p: str = "model") -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if hasattr(value, "validate"):
                value.validate(f"{p}.{f.name}")
        keys = set(self.loss_weights)
        _require(
            keys == set(LOSS_KEYS), f"{p}.loss_weights", f"needs exactly the keys {list(LOSS_KEYS)}, got {sorted(keys)}"
        )
        _require(all(w >= 0 for w in self.loss_weights.values()), f"{p}.loss_weights", "weights must be >= 0")


# --------------------------------------------------------------------------- training
LR_REFERENCE_BATCH = 16
"""Learning rates are stated for a global batch of this many images (the linear scaling rule)."""


def _steps(images: int, batch: int) -> int:
    return max(1, ceil_div(int(images), int(batch)))


@dataclasses.dataclass
class TrainConfig:
    """Optimiser, schedule, batch and the training loop's intervals.

    The recipe does not depend on the batch size: the learning rate is stated per
    :data:`LR_REFERENCE_BATCH` (16) images and scaled to the global batch, linearly for SGD (Goyal et
    al., 2017), by the square root for AdamW (whose normalised step does not grow with the batch as
    SGD's does; Malladi et al., 2022), and the schedule is counted in images seen, so ``batch_size`` 1,
    2 or 16 follow the same curve over the data (:attr:`effective_learning_rate`, :attr:`max_steps`,
    ... give the per-step values the trainer uses).
    """

    batch_size: int = field(2, "Global batch (all replicas together).")
    learning_rate: float = field(
        0.02,
        "Peak learning rate for a global batch of 16 images; the trainer uses "
        "learning_rate * batch_size / 16 with sgd (linear scaling), learning_rate * sqrt(batch_size / 16) "
        "with adamw (square-root scaling).",
    )
    max_images: int = field(1_440_000, "Training length in images seen (steps = max_images / batch_size).")
    warmup_images: int = field(16_000, "Linear warm-up, in images seen.")
    optimizer: Literal["sgd", "adamw"] = field(
        "sgd", "sgd: momentum 0.9, L2 coupled to the gradient (Detectron's); adamw: decoupled weight decay."
    )
    schedule: Literal["cosine", "step", "constant"] = field("cosine", "Decay after warm-up.")
    decay_images: Tuple[int, ...] = field(
        (), "For schedule 'step': images seen at which the rate is multiplied by 0.1."
    )
    weight_decay: float = field(
        1e-4,
        "Weight decay, not on biases and normalisation parameters: sgd adds weight_decay * w to the gradient "
        "(coupled L2, as Detectron's WEIGHT_DECAY); adamw decays w by lr * weight_decay * w (decoupled).",
    )
    clip_norm: float = field(10.0, "Clip the global gradient norm to this (0: no clipping).")
    max_bad_steps: int = field(20, "Stop after this many consecutive non-finite steps (0: never).")
    checkpoint_every: int = field(500, "Checkpoint every N steps (0: only at the end).")
    keep_checkpoints: int = field(3, "Checkpoints kept.")
    log_every: int = field(20, "Progress and TensorBoard scalars every N steps.")
    eval_every: int = field(0, "Evaluate on the validation records every N steps (0: only at the end).")

    # ------------------------------------------------------------------ per-step values
    @property
    def effective_learning_rate(self) -> float:
        """The peak learning rate of a step: ``learning_rate * batch_size / 16`` (sgd) or
        ``learning_rate * sqrt(batch_size / 16)`` (adamw)."""
        ratio = self.batch_size / LR_REFERENCE_BATCH
        return self.learning_rate * (ratio**0.5 if self.optimizer == "adamw" else ratio)

    @property
    def max_steps(self) -> int:
        return _steps(self.max_images, self.batch_size)

    @property
    def warmup_steps(self) -> int:
        return int(round(self.warmup_images / self.batch_size))

    @property
    def decay_steps(self) -> Tuple[int, ...]:
        return tuple(int(round(i / self.batch_size)) for i in self.decay_images)

    def describe(self) -> str:
        """One line with the effective per-step values (printed when training starts)."""
        return (
            f"global batch {self.batch_size}: learning rate {self.effective_learning_rate:.4g} "
            f"({self.learning_rate:g} per {LR_REFERENCE_BATCH} images x "
            f"{'sqrt(' if self.optimizer == 'adamw' else ''}{self.batch_size}/{LR_REFERENCE_BATCH}"
            f"{')' if self.optimizer == 'adamw' else ''}, "
            f"{self.optimizer}), {self.max_steps} steps ({self.max_images} images), warm-up "
            f"{self.warmup_steps} steps, {self.schedule} decay"
            + (f" at steps {list(self.decay_steps)}" if self.schedule == "step" else "")
        )

    def validate(self, p: str = "train") -> None:
        _positive(self, p, "batch_size", "max_images", "learning_rate", "keep_checkpoints", "log_every")
        for n in ("warmup_images", "weight_decay", "clip_norm", "max_bad_steps", "checkpoint_every", "eval_every"):
            _require(getattr(self, n) >= 0, f"{p}.{n}", f"must be >= 0, got {getattr(self, n)!r}")
        _require(list(self.decay_images) == sorted(self.decay_images), f"{p}.decay_images", "must be increasing")
        if self.schedule == "step":
            _require(len(self.decay_images) > 0, f"{p}.decay_images", "schedule 'step' needs at least one value")


@dataclasses.dataclass
class Config:
    """Everything a run needs: ``input``, ``model`` and ``train`` sections plus the preset's name."""

    name: str = field("r50_fpn", "Name of the preset this config came from.")
    input: InputConfig = section(InputConfig, "Input pipeline.")
    model: ModelConfig = section(ModelConfig, "The model.")
    train: TrainConfig = section(TrainConfig, "Training.")

    def validate(self) -> Config:
        """Checks every section and the rules between sections; returns ``self``.

        Raises :class:`ConfigError` naming the first bad field.
        """
        self.input.validate()
        self.model.validate()
        self.train.validate()
        m = self.model
        if m.keypoint_head.kind == "shared":
            _require(
                m.mask_head.convs > 0,
                "model.keypoint_head.kind",
                "'shared' predicts keypoints from the mask head's tower, which needs model.mask_head.convs > 0",
            )
        return self

    # serialisation lives in config.io (to_dict/from_dict with upgrade of older layouts)
    def to_dict(self) -> dict:
        from maskrcnn_body.config import io

        return io.to_dict(self)

    def to_json(self) -> str:
        from maskrcnn_body.config import io

        return io.to_json(self)

    @classmethod
    def from_dict(cls, d: dict) -> Config:
        from maskrcnn_body.config import io

        return io.from_dict(d)
