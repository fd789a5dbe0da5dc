"""Config serialisation and typed overrides.

* :func:`to_dict` / :func:`from_dict`: the ``config.json`` layout (version
  :data:`~maskrcnn_body.config.sections.CONFIG_VERSION`). Loading is strict: an unknown key is an
  error naming it, a value of the wrong type an error naming the field and the expected type.
  Configs written by earlier releases (version 1: flat ``model`` section, ``input.size_divisor``)
  are upgraded key by key (:data:`V1_MODEL_KEYS`); a v1 key that has no home is an error too.
* :func:`parse_value` / :func:`apply_overrides`: ``--set SECTION.FIELD=VALUE`` with the value
  parsed and checked against the field's declared type (ints, floats, bools, tuples, the allowed
  strings of ``Literal`` fields, ``None`` for optional fields).
* :func:`describe_fields`: every key with its type, default and help (``--list-config``).
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import json
import typing
from typing import Any, Dict, Iterator, List, Tuple

from maskrcnn_body.config.sections import CONFIG_VERSION, Config, ConfigError
from maskrcnn_body.constants import CAFFE_MEAN_BGR, TORCH_MEAN, TORCH_STD

_MISSING = object()

# version 1 (flat ModelConfig) key -> version 2 key(s) under "model"
V1_MODEL_KEYS: Dict[str, Tuple[str, ...]] = {
    "backbone": ("backbone.name",),
    "backbone_weights": ("backbone.weights",),
    "norm": ("backbone.norm",),
    "group_norm_groups": ("backbone.group_norm_groups",),
    "tiny_widths": ("backbone.tiny_widths",),
    "pixel_mean": (),
    "pixel_std": (),
    "input_bgr": (),  # -> backbone.preprocessing, see upgrade_v1
    "fpn_channels": ("fpn.channels",),
    "rpn_max_level": ("anchors.max_level",),
    "anchor_size": ("anchors.size",),
    "anchor_scales": ("anchors.scales",),
    "aspect_ratios": ("anchors.aspect_ratios",),
    "rpn_pos_iou": ("rpn.pos_iou",),
    "rpn_neg_iou": ("rpn.neg_iou",),
    "rpn_batch_per_image": ("rpn.batch_per_image",),
    "rpn_positive_fraction": ("rpn.positive_fraction",),
    "rpn_pre_nms_topk_train": ("rpn.pre_nms_topk_train",),
    "rpn_post_nms_topk_train": ("rpn.post_nms_topk_train",),
    "rpn_pre_nms_topk_test": ("rpn.pre_nms_topk_test",),
    "rpn_post_nms_topk_test": ("rpn.post_nms_topk_test",),
    "rpn_nms_iou": ("rpn.nms_iou",),
    "rpn_min_box_size": ("rpn.min_box_size",),
    "roi_fg_iou": ("roi.fg_iou",),
    "roi_bg_iou_high": ("roi.bg_iou_high",),
    "roi_bg_iou_low": ("roi.bg_iou_low",),
    "rois_per_image": ("roi.per_image",),
    "roi_positive_fraction": ("roi.positive_fraction",),
    "level_k0": ("roi.level_k0",),
    "level_canonical_size": ("roi.canonical_size",),
    "roi_sampling_ratio": ("roi.sampling_ratio",),
    "roi_aligned": ("roi.aligned",),
    "box_weights": ("box_head.box_weights",),
    "box_roi_size": ("box_head.roi_size",),
    "box_head_dim": ("box_head.fc_dim",),
    "head_norm": (),  # bool -> the heads' own normalisation kind, see upgrade_v1
    "head_global_dim": ("mask_head.global_dim", "keypoint_head.global_dim"),
    "mask_roi_size": ("mask_head.roi_size",),
    "mask_head_convs": ("mask_head.convs",),
    "mask_head_dim": ("mask_head.dim",),
    "mask_output_size": ("mask_head.output_size",),
    "max_mask_rois_per_image": ("mask_head.max_rois_per_image",),
    "mask_dice_weight": ("mask_head.dice_weight",),
    "keypoint_head": ("keypoint_head.kind",),
    "keypoint_roi_size": ("keypoint_head.roi_size",),
    "keypoint_head_convs": ("keypoint_head.convs",),
    "keypoint_head_dim": ("keypoint_head.dim",),
    "keypoint_heatmap_size": ("keypoint_head.heatmap_size",),
    "score_threshold": ("postprocess.score_threshold",),
    "nms_iou": ("postprocess.nms_iou",),
    "max_detections": ("postprocess.max_detections",),
    "loss_weights": ("loss_weights",),
}
# version 1 keys that only ever had one working value: dropped when they hold it
V1_FIXED = {("model", "min_level"): 2, ("model", "max_level"): 5, ("input", "size_divisor"): 32}


# --------------------------------------------------------------------------- types
def _hints(cls) -> Dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_section(tp) -> bool:
    return dataclasses.is_dataclass(tp)


def type_name(tp) -> str:
    """A readable name of a field type (``int``, ``one of 'a', 'b'``, ``tuple of float``, ...)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is typing.Union:
        inner = [a for a in args if a is not type(None)]
        return f"{type_name(inner[0])} or None"
    if origin in (tuple, Tuple):
        if len(args) == 2 and args[1] is Ellipsis:
            return f"tuple of {type_name(args[0])}"
        return f"tuple of {len(args)} {type_name(args[0])}"
    if origin in (dict, Dict):
        return f"dict of {type_name(args[0])} -> {type_name(args[1])}"
    return getattr(tp, "__name__", str(tp))


def coerce(value: Any, tp, key: str) -> Any:
    """``value`` converted to the declared type ``tp`` of ``key``; :class:`ConfigError` when it does
    not fit (no silent conversions: 2.5 is not an int, "yes" is not a float)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)

    def bad(extra: str = ""):
        return ConfigError(f"{key}: {value!r} is not a valid value; expected {type_name(tp)}{extra}")

    if origin is typing.Literal:
        for a in args:
            if value == a and type(value) is type(a):
                return a
            if isinstance(a, int) and isinstance(value, str) and value.strip() == str(a):
                return a
        raise bad()
    if origin is typing.Union:
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")):
            return None
        inner = next(a for a in args if a is not type(None))
        return coerce(value, inner, key)
    if origin in (tuple, Tuple):
        if isinstance(value, str):
            text = value.strip()
            try:
                value = (
                    ast.literal_eval(text)
                    if text.startswith(("(", "["))
                    else tuple(ast.literal_eval(v.strip()) for v in text.split(",") if v.strip())
                )
            except (ValueError, SyntaxError):
                raise bad(" (write e.g. 1,2,3 or (1, 2, 3))") from None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = (value,)
        if not isinstance(value, (list, tuple)):
            raise bad()
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(v, args[0], key) for v in value)
        if len(value) != len(args):
            raise bad(f" ({len(args)} values, got {len(value)})")
        return tuple(coerce(v, a, key) for v, a in zip(value, args))
    if origin in (dict, Dict):
        if isinstance(value, str):
            try:
                value = ast.literal_eval(value.strip())
            except (ValueError, SyntaxError):
                raise bad(" (write e.g. {'mask': 2.0, ...})") from None
        if not isinstance(value, dict):
            raise bad()
        return {coerce(k, args[0], key): coerce(v, args[1], key) for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on"):
            return True
        if isinstance(value, str) and value.strip().lower() in ("false", "0", "no", "off"):
            return False
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise bad(" (true or false)")
    if tp is int:
        if isinstance(value, bool):
            raise bad()
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                raise bad() from None
        raise bad()
    if tp is float:
        if isinstance(value, bool):
            raise bad()
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                raise bad() from None
        raise bad()
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad()
    raise ConfigError(f"{key}: unsupported field type {tp!r}")


# --------------------------------------------------------------------------- keys
def iter_fields(obj=None, prefix: str = "", cls=Config) -> Iterator[Tuple[str, Any, dataclasses.Field, Any]]:
    """Yields ``(dotted key, declared type, field, current value)`` for every leaf field."""
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        value = getattr(obj, f.name) if obj is not None else _MISSING
        key = f"{prefix}{f.name}"
        if _is_section(tp):
            yield from iter_fields(value if obj is not None else None, key + ".", tp)
        else:
            yield key, tp, f, value


def all_keys() -> List[str]:
    return [k for k, _, _, _ in iter_fields()]


def describe_fields(cfg: Config) -> List[Tuple[str, str, Any, str]]:
    """``(key, type, value in cfg, help)`` for every field (the ``--list-config`` table)."""
    return [(k, type_name(tp), v, f.metadata.get("help", "")) for k, tp, f, v in iter_fields(cfg)]


def _suggest(key: str) -> str:
    parts = key.split(".")
    if len(parts) == 2 and parts[0] == "model" and parts[1] in V1_MODEL_KEYS:
        new = " and ".join("model." + k for k in V1_MODEL_KEYS[parts[1]])
        return f"; it is {new} since config version 2"
    close = difflib.get_close_matches(key, all_keys(), n=3, cutoff=0.6)
    return f"; did you mean {', '.join(close)}?" if close else "; list the keys with --list-config"


def _resolve(cfg: Config, key: str):
    """(section object, field name, declared type) of a dotted leaf key."""
    parts = key.split(".")
    obj, cls = cfg, Config
    for i, name in enumerate(parts):
        hints = _hints(cls)
        if name not in hints or name not in {f.name for f in dataclasses.fields(cls)}:
            raise ConfigError(f"unknown config key {key!r}{_suggest(key)}")
        tp = hints[name]
        if i == len(parts) - 1:
            if _is_section(tp):
                raise ConfigError(
                    f"config key {key!r} is a section; set one of its fields, e.g. "
                    f"{key}.{dataclasses.fields(tp)[0].name}"
                )
            return obj, name, tp
        if not _is_section(tp):
            raise ConfigError(f"unknown config key {key!r}{_suggest(key)}")
        obj, cls = getattr(obj, name), tp
    raise ConfigError(f"unknown config key {key!r}")


def set_value(cfg: Config, key: str, value: Any) -> None:
    """Sets dotted ``key`` to ``value`` converted to the field's type (:func:`coerce`)."""
    obj, name, tp = _resolve(cfg, key)
    setattr(obj, name, coerce(value, tp, key))


def parse_overrides(items) -> Dict[str, str]:
    """``["model.mask_head.roi_size=28", ...]`` -> ``{"model.mask_head.roi_size": "28", ...}``
    (values stay text; :func:`apply_overrides` converts them to each field's type)."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected SECTION.FIELD=VALUE, e.g. model.mask_head.roi_size=28")
        out[key.strip()] = value.strip()
    return out


def apply_overrides(cfg: Config, overrides: Dict[str, Any]) -> Config:
    """Applies ``{dotted key: value}`` (text or Python values) to ``cfg`` and validates it."""
    for key, value in overrides.items():
        set_value(cfg, key, value)
    return cfg.validate()


# --------------------------------------------------------------------------- dict / JSON
def _plain(value):
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def to_dict(cfg: Config) -> dict:
    """Plain JSON-able dict with ``"config_version"``."""
    return {"config_version": CONFIG_VERSION, **_plain(cfg)}


def to_json(cfg: Config) -> str:
    return json.dumps(to_dict(cfg), indent=2, sort_keys=True)


def _build(cls, values: dict, where: str):
    if not isinstance(values, dict):
        raise ConfigError(f"{where or 'config'}: expected an object of fields, got {type(values).__name__}")
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        keys = [f"{where}.{k}" if where else k for k in unknown]
        raise ConfigError(f"unknown config key(s) {keys}{_suggest(keys[0])}")
    kwargs = {}
    for name in names & set(values):
        key = f"{where}.{name}" if where else name
        tp = hints[name]
        kwargs[name] = _build(tp, values[name], key) if _is_section(tp) else coerce(values[name], tp, key)
    return cls(**kwargs)


def upgrade_v1(d: dict) -> dict:
    """A version-1 config dict (flat ``model``) -> the version-2 layout; unknown keys are an error."""
    d = json.loads(json.dumps(d))  # deep copy of plain data
    model = d.get("model", {}) or {}
    new_model: Dict[str, Any] = {}
    unknown = []
    for key, value in model.items():
        if ("model", key) in V1_FIXED:
            if value != V1_FIXED[("model", key)]:
                raise ConfigError(
                    f"model.{key}={value!r} in a version-1 config: only {V1_FIXED[('model', key)]} "
                    "ever worked; remove the key"
                )
            continue
        if key not in V1_MODEL_KEYS:
            unknown.append(f"model.{key}")
            continue
        for target in V1_MODEL_KEYS[key]:
            node = new_model
            *path, leaf = target.split(".")
            for p in path:
                node = node.setdefault(p, {})
            node[leaf] = value
    pixels = tuple(model.get(k) for k in ("pixel_mean", "pixel_std", "input_bgr"))
    if any(v is not None for v in pixels):
        mean, std, bgr = (tuple(pixels[0] or TORCH_MEAN), tuple(pixels[1] or TORCH_STD), bool(pixels[2]))
        close = lambda a, b: all(abs(x - y) < 1e-6 for x, y in zip(a, b))  # noqa: E731
        if close(mean, TORCH_MEAN) and close(std, TORCH_STD) and not bgr:
            new_model.setdefault("backbone", {})["preprocessing"] = "torch"
        elif close(mean, [v / 255 for v in CAFFE_MEAN_BGR]) and close(std, [1 / 255] * 3) and bgr:
            new_model.setdefault("backbone", {})["preprocessing"] = "caffe"
        else:
            raise ConfigError(
                f"model.pixel_mean/pixel_std/input_bgr = {mean}/{std}/{bgr} in a version-1 config match "
                "neither 'torch' nor 'caffe' preprocessing (model.backbone.preprocessing)"
            )
    if "head_norm" in model:
        # version 1 normalised the heads with the backbone's kind (frozen_bn froze the heads too)
        kind = {"group": "group", "batch": "batch", "sync_batch": "batch"}.get(model.get("norm", "group"), "group")
        value = kind if model["head_norm"] else "none"
        for head in ("mask_head", "keypoint_head"):
            new_model.setdefault(head, {})["norm"] = value
    inp = dict(d.get("input", {}) or {})
    if "size_divisor" in inp:
        if inp["size_divisor"] != 32:
            raise ConfigError(
                f"input.size_divisor={inp['size_divisor']!r} in a version-1 config: the model needs 32; remove the key"
            )
        del inp["size_divisor"]
    if unknown:
        raise ConfigError(f"unknown config key(s) {unknown} in a version-1 config")
    train = dict(d.get("train", {}) or {})
    # version 1 stated the learning rate at the preset's own batch and counted the schedule in steps
    batch = int(train.get("batch_size", 2))
    if "learning_rate" in train:
        train["learning_rate"] = float(train["learning_rate"]) * 16 / batch
    for old, new in (("max_steps", "max_images"), ("warmup_steps", "warmup_images")):
        if old in train:
            train[new] = int(train.pop(old)) * batch
    if "decay_steps" in train:
        train["decay_images"] = [int(s) * batch for s in train.pop("decay_steps")]
    out = {k: v for k, v in d.items() if k not in ("model", "input", "train", "config_version")}
    out.update(model=new_model, input=inp, train=train)
    return out


def upgrade_v2(d: dict) -> dict:
    """A version-2 config dict -> version 3: with ``train.optimizer = "adamw"`` the stated
    ``learning_rate`` was scaled linearly to the batch, now by the square root; it is restated so that
    the per-step rate stays the same (``lr * sqrt(batch / 16)``). Other fields are unchanged."""
    from maskrcnn_body.config.sections import LR_REFERENCE_BATCH

    train = dict(d.get("train", {}))
    if train.get("optimizer", "sgd") == "adamw" and "learning_rate" in train:
        ratio = float(train.get("batch_size", 2)) / LR_REFERENCE_BATCH
        train["learning_rate"] = float(train["learning_rate"]) * ratio**0.5
    return {**d, "train": train}


def from_dict(d: dict) -> Config:
    """A validated :class:`Config` from :func:`to_dict` output (any known version)."""
    if not isinstance(d, dict):
        raise ConfigError(f"a config must be a JSON object, got {type(d).__name__}")
    version = d.get("config_version", 1)
    if version == 1:
        d = upgrade_v2(upgrade_v1(d))
    elif version == 2:
        d = upgrade_v2(d)
    elif version != CONFIG_VERSION:
        raise ConfigError(
            f"config_version {version!r} is not supported by this release (it reads 1 to "
            f"{CONFIG_VERSION}); upgrade maskrcnn_body"
        )
    d = {k: v for k, v in d.items() if k != "config_version"}
    return _build(Config, d, "").validate()


def load_file(path: str) -> Config:
    """A validated :class:`Config` from a JSON file (e.g. a training directory's ``config.json``)."""
    try:
        with open(path) as f:
            d = json.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"config file {path} is not valid JSON: {e}") from None
    try:
        return from_dict(d)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def get_config(name: str = "r50_fpn", **overrides) -> Config:
    """A fresh copy of preset ``name`` with dotted-key ``overrides`` applied (type-checked) and
    validated, e.g. ``get_config("cpu_small", **{"train.batch_size": 8, "model.mask_head.roi_size": 28})``."""
    from maskrcnn_body.config.presets import build_preset

    return apply_overrides(build_preset(name), overrides)
