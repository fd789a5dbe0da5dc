"""Typed, validated config: presets from the registry, typed --set overrides, strict loading with the
upgrade of version-1 files, cross-field rules, JSON round trip."""

import json
import pathlib

import pytest

from maskrcnn_body.config import (
    CONFIG_VERSION,
    Config,
    ConfigError,
    PointHeadConfig,
    apply_overrides,
    build_preset,
    describe_fields,
    from_dict,
    get_config,
    load_file,
    parse_overrides,
    preset_names,
)

DATA = pathlib.Path(__file__).parent / "data"


def test_presets_come_from_the_registry():
    assert {"r50_fpn", "r50_fpn_imagenet", "cpu_small", "cpu_quality", "legacy"} <= set(preset_names())
    with pytest.raises(ConfigError, match="unknown preset 'nope'.*cpu_small"):
        get_config("nope")
    a, b = build_preset("cpu_small"), build_preset("cpu_small")
    a.model.mask_head.roi_size = 99
    assert b.model.mask_head.roi_size == 14  # fresh copies


def test_the_quality_configuration_is_cpu_small_trained_longer_with_128_px_targets():
    """Issue 26's quality configuration changes the run, not the network: the same model (its weights load into
    a cpu_small model), 14,000 steps of the same schedule, 128 px mask targets, a val curve every 2000 steps."""
    from maskrcnn_body.config import to_dict

    small, quality = to_dict(build_preset("cpu_small")), to_dict(build_preset("cpu_quality"))
    assert small.pop("model") == quality.pop("model")
    changed = {
        f"{section}.{k}": (small[section][k], quality[section][k])
        for section in ("input", "train")
        for k in small[section]
        if small[section][k] != quality[section][k]
    }
    assert changed == {
        "input.gt_mask_size": (64, 128),
        "train.max_images": (12_000, 56_000),
        "train.eval_every": (0, 2000),
        "train.checkpoint_every": (200, 1000),
        "train.keep_checkpoints": (3, 14),
    }
    assert build_preset("cpu_quality").train.max_steps == 14_000


@pytest.mark.parametrize(
    "key, text, expected",
    [
        ("model.mask_head.roi_size", "28", 28),
        ("train.learning_rate", "1e-3", 1e-3),
        ("train.learning_rate", "3", 3.0),
        ("input.flip", "false", False),
        ("input.flip", "1", True),
        ("model.anchors.aspect_ratios", "(1.0, 2.0)", (1.0, 2.0)),
        ("model.anchors.aspect_ratios", "0.5,1,2", (0.5, 1.0, 2.0)),
        ("input.scale_jitter", "0.9, 1.1", (0.9, 1.1)),
        ("train.decay_images", "100,200", (100, 200)),
        ("train.schedule", "step", "step"),
        ("model.anchors.max_level", "5", 5),
        ("model.backbone.weights", "none", None),
        ("model.backbone.name", "resnet18", "resnet18"),
        (
            "model.loss_weights",
            "{'rpn_class': 1, 'rpn_box': 1, 'class': 1, 'box': 1, 'mask': 3, 'keypoint': 1}",
            {"rpn_class": 1.0, "rpn_box": 1.0, "class": 1.0, "box": 1.0, "mask": 3.0, "keypoint": 1.0},
        ),
    ],
)
def test_set_values_are_parsed_by_the_field_type(key, text, expected):
    overrides = parse_overrides([f"{key}={text}"])
    if key == "train.schedule":
        overrides["train.decay_images"] = "10"
    cfg = apply_overrides(build_preset("cpu_small"), overrides)
    section, *path = key.split(".")
    value = getattr(cfg, section)
    for name in path:
        value = getattr(value, name)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    "item, message",
    [
        ("train.batch_size=abc", "train.batch_size: 'abc' is not a valid value; expected int"),
        ("train.batch_size=2.5", "expected int"),
        ("input.flip=maybe", "expected bool"),
        ("model.keypoint_head.kind=bones", "expected one of 'heatmap', 'shared', 'regression', 'none'"),
        ("model.backbone.norm=layer", "one of 'group', 'frozen_bn', 'batch', 'sync_batch'"),
        ("input.scale_jitter=1,2,3", "tuple of 2 float"),
        ("train.batch_siz=4", "unknown config key 'train.batch_siz'; did you mean train.batch_size"),
        ("model.mask_roi_size=28", "it is model.mask_head.roi_size since config version 2"),
        ("model.mask_head=3", "is a section"),
        ("train.batch_size=0", "train.batch_size: must be > 0"),
        ("model.rpn.neg_iou=0.9", "model.rpn.neg_iou: 0.9 is above pos_iou"),
        ("input.min_size=512", "input.min_size: 512 is larger than max_size"),
    ],
)
def test_bad_keys_and_values_name_the_field_and_the_choices(item, message):
    with pytest.raises(ConfigError) as err:
        apply_overrides(build_preset("cpu_small"), parse_overrides([item]))
    assert message in str(err.value)


def test_set_needs_key_and_value():
    with pytest.raises(ConfigError, match="SECTION.FIELD=VALUE"):
        parse_overrides(["model.mask_head.roi_size"])


def test_cross_field_rules():
    with pytest.raises(ConfigError, match="'shared'.*mask_head.convs > 0"):
        get_config("r50_fpn", **{"model.mask_head.convs": 0})
    with pytest.raises(ConfigError, match="model.backbone.norm.*frozen_bn"):
        get_config("r50_fpn", **{"model.backbone.weights": "imagenet"})
    with pytest.raises(ConfigError, match="weights exist for 'resnet50' only"):
        get_config("cpu_small", **{"model.backbone.weights": "imagenet", "model.backbone.norm": "frozen_bn"})
    with pytest.raises(ConfigError, match="schedule 'step' needs at least one value"):
        get_config("cpu_small", **{"train.schedule": "step"})


@pytest.mark.parametrize("name", ["r50_fpn", "cpu_small", "legacy"])
def test_json_roundtrip(name):
    cfg = get_config(name)
    d = json.loads(cfg.to_json())
    assert d["config_version"] == CONFIG_VERSION
    again = Config.from_dict(d)
    assert again.to_dict() == cfg.to_dict()


def test_loading_rejects_unknown_keys_and_wrong_types(tmp_path):
    d = get_config("cpu_small").to_dict()
    d["model"]["mask_head"]["roi_sise"] = 28
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) \['model.mask_head.roi_sise'\]"):
        from_dict(d)
    d = get_config("cpu_small").to_dict()
    d["train"]["max_images"] = "many"
    path = tmp_path / "config.json"
    path.write_text(json.dumps(d))
    with pytest.raises(ConfigError, match=f"{path}: train.max_images: 'many' is not a valid value"):
        load_file(str(path))
    d = get_config("cpu_small").to_dict()
    d["config_version"] = 99
    with pytest.raises(ConfigError, match="config_version 99 is not supported"):
        from_dict(d)


def test_version_1_config_files_are_upgraded():
    """config.json of the flat layout (written by releases before 0.2) loads into the same values."""
    old = json.loads((DATA / "config_v1_cpu_small.json").read_text())
    assert "config_version" not in old and "mask_roi_size" in old["model"]
    cfg = from_dict(old)
    # a version-1 run had no point head (its checkpoint has no point-head weights): it stays off
    assert cfg.model.mask_head.point == PointHeadConfig()
    now = get_config("cpu_small")
    now.model.mask_head.point = PointHeadConfig()
    assert cfg.to_dict() == now.to_dict()
    old["model"]["head_norm"] = False
    assert from_dict(old).model.mask_head.norm == "none" and from_dict(old).model.keypoint_head.norm == "none"
    old["model"]["no_such_thing"] = 1
    with pytest.raises(ConfigError, match=r"\['model.no_such_thing'\] in a version-1 config"):
        from_dict(old)
    old = json.loads((DATA / "config_v1_cpu_small.json").read_text())
    old["model"]["max_level"] = 6
    with pytest.raises(ConfigError, match="model.max_level=6.*only 5 ever worked"):
        from_dict(old)


def test_every_field_is_documented():
    rows = describe_fields(get_config("r50_fpn"))
    assert len(rows) > 60
    undocumented = [key for key, _, _, doc in rows if not doc]
    assert not undocumented
    assert rows[[r[0] for r in rows].index("model.mask_head.roi_size")][:3] == ("model.mask_head.roi_size", "int", 14)


def test_legacy_preset_expresses_the_original():
    m = get_config("legacy").model
    assert (len(m.anchors.scales), len(m.anchors.aspect_ratios)) == (3, 3)
    assert (m.rpn.pos_iou, m.rpn.neg_iou, m.roi.per_image) == (0.7, 0.3, 80)
    assert m.box_head.box_weights == (10.0, 10.0, 5.0, 5.0)
    assert (m.mask_head.roi_size, m.mask_head.output_size, m.keypoint_head.kind) == (56, 112, "regression")


def test_version_2_adamw_configs_keep_their_per_step_learning_rate():
    """Version 2 scaled AdamW's rate linearly with the batch (issue 26: now by the square root); a saved
    version-2 config is restated so that it trains at the same per-step rate."""
    d = get_config("cpu_small").to_dict()
    d["config_version"] = 2
    d["train"]["learning_rate"] = 8e-3  # cpu_small as version 2 wrote it: 8e-3 x 4/16 = 2e-3 per step
    cfg = from_dict(d)
    assert cfg.train.effective_learning_rate == pytest.approx(2e-3)
    assert cfg.to_dict() == get_config("cpu_small").to_dict()
    d["train"].update(optimizer="sgd", learning_rate=0.02)  # SGD's linear rule is unchanged
    assert from_dict(d).train.learning_rate == pytest.approx(0.02)
