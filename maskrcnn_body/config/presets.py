"""The preset registry: named, documented starting points for :func:`get_config`.

* ``r50_fpn``: the standard model (ResNet-50 + FPN, 800 px images, GroupNorm).
* ``cpu_small``: a small, fast model for CPU training on the synthetic dataset (the default of
  ``train/train.py`` and ``maskrcnn-body train``).
* ``cpu_quality``: ``cpu_small`` trained longer (14,000 steps) with 128 px mask targets: the quality
  configuration of README "Quality configuration" (about 1.5 hours on 2 cores).
* ``legacy``: the hyper-parameters of the 2017 original, expressed in this config.

The point head (``model.mask_head.point``, PointRend-style mask refinement) is on in ``cpu_small``
(the configuration measured on the limbs branch: dim 128, P2 + RGB point features) and in
``r50_fpn`` / ``r50_fpn_imagenet`` (the same design, 128 wide, P2 features only, refined once at
the head's 112 px output; not measured on real data here). ``legacy`` keeps it off.

Register another with ``@register("name")`` on a function returning a :class:`Config`.
"""

from __future__ import annotations

import copy
from typing import Callable, Dict, List

from maskrcnn_body.config.sections import (
    AnchorConfig,
    BackboneConfig,
    BoxHeadConfig,
    Config,
    ConfigError,
    FpnConfig,
    InputConfig,
    KeypointHeadConfig,
    MaskHeadConfig,
    ModelConfig,
    PointHeadConfig,
    PostprocessConfig,
    RoiConfig,
    RpnConfig,
    TrainConfig,
)

_PRESETS: Dict[str, Callable[[], Config]] = {}
_DESCRIPTIONS: Dict[str, str] = {}


def register(name: str):
    """Decorator adding a preset (a function returning a fresh :class:`Config`) to the registry."""

    def wrap(fn: Callable[[], Config]) -> Callable[[], Config]:
        if name in _PRESETS:
            raise ValueError(f"preset {name!r} is registered twice")
        _PRESETS[name] = fn
        _DESCRIPTIONS[name] = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        return fn

    return wrap


def preset_names() -> List[str]:
    """Registered preset names, in registration order."""
    return list(_PRESETS)


def describe_presets() -> Dict[str, str]:
    """``{name: one-line description}`` of every preset."""
    return dict(_DESCRIPTIONS)


def build_preset(name: str) -> Config:
    """A fresh (deep) copy of preset ``name``."""
    if name not in _PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {preset_names()}")
    return copy.deepcopy(_PRESETS[name]())


@register("r50_fpn")
def r50_fpn() -> Config:
    """ResNet-50 + FPN at 800 px, GroupNorm, keypoints from the mask tower (the standard model)."""
    # keypoints from the mask head's tower: one 4 x 256 tower for parts and joints instead of
    # Keypoint R-CNN's own 8 x 512 tower, which took 70% of a training step (docs/BENCHMARKS.md)
    return Config(
        name="r50_fpn",
        input=InputConfig(min_size=800, max_size=1333),
        model=ModelConfig(
            keypoint_head=KeypointHeadConfig(kind="shared"),
            # PointRend's point head (3 layers, P2 features) refining the 112 px masks at their 784 most uncertain
            # cells, one step at 112: the masks keep their size; 128 wide rather than PointRend's 256 keeps
            # 800x800 inference with 100 detections within torchvision Mask R-CNN's time (docs/BENCHMARKS.md)
            mask_head=MaskHeadConfig(point=PointHeadConfig(dim=128, features="p2", refine_sizes=(112,))),
        ),
        # Detectron's recipe from scratch: 0.02 per 16 images, coupled L2 1e-4 (train.optimizer sgd), and the "3x"
        # length, 270k steps of 16 = 4.32M images: a GroupNorm model trained from scratch needs about 3x the
        # "1x" schedule of a pretrained one (He et al., "Rethinking ImageNet Pre-training", 2019)
        train=TrainConfig(batch_size=2, learning_rate=0.02, max_images=4_320_000, warmup_images=16_000),
    )


@register("r50_fpn_imagenet")
def r50_fpn_imagenet() -> Config:
    """r50_fpn fine-tuned from Keras' ImageNet ResNet50: frozen BatchNorm, caffe input, stem + C2 frozen."""
    cfg = r50_fpn()
    cfg.name = "r50_fpn_imagenet"
    # Keras' ImageNet weights reproduced exactly: their BatchNorm statistics (frozen, as batch 1-2
    # per GPU cannot re-estimate them) and their caffe-style input; the stem and the first stage
    # stay frozen as in Detectron2 (FREEZE_AT=2). The heads keep their own GroupNorm.
    cfg.model.backbone = BackboneConfig(
        name="resnet50", weights="imagenet", norm="frozen_bn", preprocessing="caffe", freeze_at=2
    )
    cfg.train.max_images = 1_440_000  # Detectron's "1x" (90k steps of 16): enough from pretrained weights
    return cfg


@register("cpu_small")
def cpu_small() -> Config:
    """Tiny ResNet + 64-channel FPN at 256 px: trains on 2 CPU cores in the default run."""
    return Config(
        name="cpu_small",
        input=InputConfig(min_size=256, max_size=256, max_persons=8, gt_mask_size=64),
        model=ModelConfig(
            backbone=BackboneConfig(name="tiny"),
            fpn=FpnConfig(channels=64),
            anchors=AnchorConfig(size=4.0, scales=(1.0, 2.0)),
            rpn=RpnConfig(
                pre_nms_topk_train=500,
                post_nms_topk_train=200,
                pre_nms_topk_test=300,
                post_nms_topk_test=100,
                batch_per_image=128,
            ),
            roi=RoiConfig(per_image=64, sampling_ratio=1),
            box_head=BoxHeadConfig(fc_dim=256),
            # the point head with P2 + RGB point features, refining the 56 px masks at 56 and 112
            # (the configuration measured on the limbs branch, docs/LIMBS.md there)
            mask_head=MaskHeadConfig(
                convs=4,
                dim=64,
                output_size=56,
                max_rois_per_image=16,
                point=PointHeadConfig(dim=128, features="p2+image", refine_sizes=(56, 112)),
            ),
            keypoint_head=KeypointHeadConfig(kind="heatmap", convs=2, dim=64, heatmap_size=28),
            postprocess=PostprocessConfig(max_detections=20),
            loss_weights={"rpn_class": 1.0, "rpn_box": 1.0, "class": 1.0, "box": 1.0, "mask": 2.0, "keypoint": 1.0},
        ),
        # 3000 steps of 4 images at 2e-3 (= 4e-3 per 16 images with AdamW's square-root scaling), 100 warm-up
        # steps
        train=TrainConfig(
            batch_size=4,
            max_images=12_000,
            optimizer="adamw",
            learning_rate=4e-3,
            warmup_images=400,
            weight_decay=1e-4,
            checkpoint_every=200,
            log_every=10,
        ),
    )


@register("cpu_quality")
def cpu_quality() -> Config:
    """cpu_small trained 4.7x longer with 128 px mask targets: the quality configuration (about 1.5 h here)."""
    cfg = cpu_small()
    cfg.name = "cpu_quality"
    # The default run is limited by its budget, not by its model (docs/LIMBS.md): the same network, 14,000
    # steps of 4 images (56,000 images: 7 passes over the 8,000 synthetic training images the quality run is
    # documented with, README "Quality configuration"), the cosine schedule stretched over them.
    cfg.train.max_images = 56_000
    # 64 px targets cap a perfect network's arms at IoU 0.87-0.90 for people >= 150 px (0.92-0.94 at 128;
    # tests/test_limb_targets.py): neutral in the 3000-step budget, binding once the heads are sharp.
    cfg.input.gt_mask_size = 128
    # the learning curve of the run (val AP per part every 2000 steps); checkpoints kept for re-scoring
    cfg.train.eval_every = 2000
    cfg.train.checkpoint_every = 1000
    cfg.train.keep_checkpoints = 14
    return cfg


@register("legacy")
def legacy() -> Config:
    """The 2017 original's hyper-parameters (docs/GUIDE.md, "the original's hyper-parameters beside ours")."""
    return Config(
        name="legacy",
        input=InputConfig(min_size=600, max_size=1000, flip=True, scale_jitter=(1.0, 1.0)),
        model=ModelConfig(
            backbone=BackboneConfig(norm="batch"),
            anchors=AnchorConfig(scales=(1.0, 2.0, 4.0), aspect_ratios=(0.5, 1.0, 2.0)),
            rpn=RpnConfig(pos_iou=0.7, neg_iou=0.3),
            roi=RoiConfig(per_image=80, positive_fraction=0.25),
            box_head=BoxHeadConfig(box_weights=(10.0, 10.0, 5.0, 5.0)),
            mask_head=MaskHeadConfig(
                roi_size=56, output_size=112, max_rois_per_image=80, dice_weight=0.0, global_dim=0, norm="batch"
            ),
            keypoint_head=KeypointHeadConfig(kind="regression", global_dim=0, norm="batch"),
        ),
        # the original: SGD 0.002 at 1 image per step (= 0.032 per 16 images), constant
        train=TrainConfig(
            batch_size=1,
            optimizer="sgd",
            learning_rate=0.032,
            max_images=90_000,
            warmup_images=1000,
            schedule="constant",
        ),
    )
