"""Typed configuration with named presets.

One :class:`Config` holds the input pipeline (:class:`InputConfig`), the model
(:class:`ModelConfig`) and training (:class:`TrainConfig`) settings. Presets:

* ``r50_fpn``: the standard model (ResNet-50 + FPN, 800 px images, GroupNorm).
* ``cpu_small``: a small, fast model for CPU training on the synthetic dataset (default of
  ``train/train.py``).
* ``legacy``: the hyper-parameters of the 2017 original, expressed in this config.

``get_config(name, **overrides)`` returns a fresh copy; ``overrides`` use dotted keys,
e.g. ``get_config("cpu_small", **{"train.batch_size": 4})``.
"""
from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any, Dict, Optional, Tuple


@dataclasses.dataclass
class InputConfig:
    """Input pipeline settings. Images are resized so the shorter side is ``min_size``
    unless that makes the longer side exceed ``max_size``; then padded (bottom/right, zeros)
    to a fixed ``pad_size`` square so a ``tf.function`` traces once."""
    min_size: int = 256
    max_size: int = 256
    size_divisor: int = 32          # pad_size = ceil(max_size / size_divisor) * size_divisor
    max_persons: int = 20           # people beyond this (largest kept) are dropped and counted
    gt_mask_size: int = 128         # GT masks are cropped to their box and resized to this
    flip: bool = True               # training only: random horizontal flip (swaps sides)
    scale_jitter: Tuple[float, float] = (0.8, 1.2)  # training only; (1, 1) disables
    shuffle_buffer: int = 256
    skip_corrupt: bool = False      # True: skip+count corrupt records; False: stop with an error

    @property
    def pad_size(self) -> int:
        d = self.size_divisor
        return -(-self.max_size // d) * d


@dataclasses.dataclass
class ModelConfig:
    """Mask R-CNN for one class (person) with 7 part masks and 15 keypoints."""
    # backbone
    backbone: str = "resnet50"      # "resnet50" | "resnet18" | "tiny"
    backbone_weights: Optional[str] = None  # None | local .h5/.weights.h5 path | "imagenet"
    norm: str = "group"             # "group" | "frozen_bn" | "batch" | "sync_batch"
    group_norm_groups: int = 32
    tiny_widths: Tuple[int, ...] = (32, 64, 128, 256)  # C2..C5 widths of the "tiny" backbone
    # input normalisation inside the model: (image / 255 - pixel_mean) / pixel_std (RGB order,
    # or BGR when input_bgr, e.g. Keras' caffe-style ImageNet weights)
    pixel_mean: Tuple[float, float, float] = (0.485, 0.456, 0.406)
    pixel_std: Tuple[float, float, float] = (0.229, 0.224, 0.225)
    input_bgr: bool = False
    # FPN
    fpn_channels: int = 256
    min_level: int = 2
    max_level: int = 5              # RoI levels P2..P5
    rpn_max_level: int = 6          # P6 (stride-2 subsample of P5) for the RPN only
    # anchors: size = anchor_size * stride * scale, for each scale and aspect ratio (h/w)
    anchor_size: float = 8.0
    anchor_scales: Tuple[float, ...] = (1.0,)
    aspect_ratios: Tuple[float, ...] = (0.5, 1.0, 2.0)
    # RPN
    rpn_pos_iou: float = 0.7
    rpn_neg_iou: float = 0.3
    rpn_batch_per_image: int = 256
    rpn_positive_fraction: float = 0.5
    rpn_pre_nms_topk_train: int = 2000   # per level
    rpn_post_nms_topk_train: int = 1000  # per image
    rpn_pre_nms_topk_test: int = 1000
    rpn_post_nms_topk_test: int = 1000
    rpn_nms_iou: float = 0.7
    rpn_min_box_size: float = 0.0
    # RoI sampling / box head
    roi_fg_iou: float = 0.5
    roi_bg_iou_high: float = 0.5
    roi_bg_iou_low: float = 0.0
    rois_per_image: int = 512
    roi_positive_fraction: float = 0.25
    box_weights: Tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)
    box_roi_size: int = 7
    box_head_dim: int = 1024
    # level assignment k = floor(k0 + log2(sqrt(wh) / canonical_size)), clipped to levels
    level_k0: int = 4
    level_canonical_size: float = 224.0
    roi_sampling_ratio: int = 2
    roi_aligned: bool = True
    # mask head
    head_norm: bool = True            # `norm` after each mask/keypoint head convolution
    mask_roi_size: int = 14
    mask_head_convs: int = 4
    mask_head_dim: int = 256
    mask_output_size: int = 112       # masks are upsampled late to this size
    max_mask_rois_per_image: int = 64  # training: masks only on (at most this many) positives
    mask_dice_weight: float = 1.0      # soft Dice term added to the per-channel BCE (thin limbs)
    head_global_dim: int = 256         # RoI-wide FC context in the mask/keypoint heads (0 = none)
    # keypoint head
    # "heatmap" (own tower, Keypoint R-CNN) | "shared" (heatmaps from the mask head's tower)
    # | "regression" (the original's 30 outputs) | "none"
    keypoint_head: str = "heatmap"
    keypoint_roi_size: int = 14
    keypoint_head_convs: int = 8
    keypoint_head_dim: int = 512
    keypoint_heatmap_size: int = 56
    # inference
    score_threshold: float = 0.05
    nms_iou: float = 0.5
    max_detections: int = 100
    # losses
    loss_weights: Dict[str, float] = dataclasses.field(default_factory=lambda: {
        "rpn_class": 1.0, "rpn_box": 1.0, "class": 1.0, "box": 1.0, "mask": 1.0, "keypoint": 1.0})

    @property
    def num_anchors_per_location(self) -> int:
        return len(self.anchor_scales) * len(self.aspect_ratios)


@dataclasses.dataclass
class TrainConfig:
    batch_size: int = 2
    max_steps: int = 90000
    optimizer: str = "sgd"          # "sgd" (momentum 0.9) | "adamw"
    learning_rate: float = 0.02
    warmup_steps: int = 1000
    schedule: str = "cosine"        # "cosine" | "step" | "constant"
    decay_steps: Tuple[int, ...] = ()   # for "step": multiply by 0.1 at each
    weight_decay: float = 1e-4
    clip_norm: float = 10.0
    max_bad_steps: int = 20         # consecutive non-finite steps before stopping
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    log_every: int = 20
    eval_every: int = 0


@dataclasses.dataclass
class Config:
    name: str = "r50_fpn"
    input: InputConfig = dataclasses.field(default_factory=InputConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "Config":
        def build(klass, values):
            kwargs = {}
            for f in dataclasses.fields(klass):
                if f.name in values:
                    v = values[f.name]
                    if isinstance(v, list):
                        v = tuple(v)
                    kwargs[f.name] = v
            return klass(**kwargs)
        return cls(name=d.get("name", "custom"), input=build(InputConfig, d.get("input", {})),
                   model=build(ModelConfig, d.get("model", {})), train=build(TrainConfig, d.get("train", {})))


def _r50_fpn() -> Config:
    # keypoints from the mask head's tower: one 4 x 256 tower for parts and joints instead of
    # Keypoint R-CNN's own 8 x 512 tower, which took 70% of a training step (docs/BENCHMARKS.md)
    return Config(name="r50_fpn",
                  input=InputConfig(min_size=800, max_size=1333),
                  model=ModelConfig(keypoint_head="shared"),
                  train=TrainConfig())


def _cpu_small() -> Config:
    return Config(
        name="cpu_small",
        input=InputConfig(min_size=256, max_size=256, max_persons=8, gt_mask_size=64),
        model=ModelConfig(
            backbone="tiny", fpn_channels=64, anchor_size=4.0, anchor_scales=(1.0, 2.0),
            rpn_pre_nms_topk_train=500, rpn_post_nms_topk_train=200,
            rpn_pre_nms_topk_test=300, rpn_post_nms_topk_test=100,
            rpn_batch_per_image=128, rois_per_image=64, box_head_dim=256,
            mask_head_convs=4, mask_head_dim=64, mask_output_size=56, max_mask_rois_per_image=16,
            roi_sampling_ratio=1,
            keypoint_head_convs=2, keypoint_head_dim=64, keypoint_heatmap_size=28,
            max_detections=20,
            loss_weights={"rpn_class": 1.0, "rpn_box": 1.0, "class": 1.0, "box": 1.0, "mask": 2.0,
                          "keypoint": 1.0}),
        train=TrainConfig(batch_size=4, max_steps=3000, optimizer="adamw", learning_rate=2e-3,
                          warmup_steps=100, weight_decay=1e-4, checkpoint_every=200, log_every=10))


def _legacy() -> Config:
    """The 2017 original's hyper-parameters (see README, "legacy preset")."""
    return Config(
        name="legacy",
        input=InputConfig(min_size=600, max_size=1000, flip=True, scale_jitter=(1.0, 1.0)),
        model=ModelConfig(
            norm="batch", anchor_scales=(1.0, 2.0, 4.0), aspect_ratios=(0.5, 1.0, 2.0),
            rpn_pos_iou=0.7, rpn_neg_iou=0.3, rois_per_image=80, roi_positive_fraction=0.25,
            box_weights=(10.0, 10.0, 5.0, 5.0), mask_roi_size=56, mask_output_size=112,
            max_mask_rois_per_image=80, keypoint_head="regression", mask_dice_weight=0.0,
            head_global_dim=0),
        train=TrainConfig(batch_size=1, optimizer="sgd", learning_rate=0.002, schedule="constant"))


PRESETS = {"r50_fpn": _r50_fpn, "cpu_small": _cpu_small, "legacy": _legacy}


def parse_overrides(items) -> Dict[str, Any]:
    """``["model.mask_roi_size=28", "train.schedule=step"]`` -> ``{"model.mask_roi_size": 28,
    "train.schedule": "step"}``: values are Python literals when they parse as one, else strings
    (the ``--set`` flag of ``train/train.py``)."""
    import ast
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set {item!r}: expected SECTION.FIELD=VALUE, e.g. model.mask_roi_size=28")
        try:
            out[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            out[key.strip()] = value.strip()
    return out


def get_config(name: str = "r50_fpn", **overrides) -> Config:
    """A fresh copy of preset ``name`` with dotted-key ``overrides`` applied."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    cfg = copy.deepcopy(PRESETS[name]())
    for key, value in overrides.items():
        section, _, field = key.partition(".")
        target = getattr(cfg, section, None)
        if target is None or not field or not hasattr(target, field):
            raise ValueError(f"unknown config key {key!r} (expected e.g. 'train.batch_size')")
        setattr(target, field, value)
    return cfg
