"""Typed, validated configuration (see :mod:`maskrcnn_body.config.sections` for every field).

from maskrcnn_body.config import get_config
cfg = get_config("cpu_small", **{"train.batch_size": 8, "model.mask_head.roi_size": 28})
"""

from maskrcnn_body.config.io import (
    apply_overrides,
    describe_fields,
    from_dict,
    get_config,
    load_file,
    parse_overrides,
    set_value,
    to_dict,
)
from maskrcnn_body.config.presets import build_preset, describe_presets, preset_names, register
from maskrcnn_body.config.sections import (
    CONFIG_VERSION,
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

__all__ = [
    "CONFIG_VERSION",
    "AnchorConfig",
    "BackboneConfig",
    "BoxHeadConfig",
    "Config",
    "ConfigError",
    "FpnConfig",
    "InputConfig",
    "KeypointHeadConfig",
    "MaskHeadConfig",
    "ModelConfig",
    "PointHeadConfig",
    "PostprocessConfig",
    "RoiConfig",
    "RpnConfig",
    "TrainConfig",
    "apply_overrides",
    "build_preset",
    "describe_fields",
    "describe_presets",
    "from_dict",
    "get_config",
    "load_file",
    "parse_overrides",
    "preset_names",
    "register",
    "set_value",
    "to_dict",
]
