"""Typed config: presets, dotted overrides (the --set flag), JSON round trip."""
import pytest

from maskrcnn_body.config import Config, get_config, parse_overrides


def test_parse_overrides_literals_and_strings():
    got = parse_overrides(["model.mask_roi_size=28", "train.schedule=step", "model.aspect_ratios=(1.0, 2.0)",
                           "input.flip=False"])
    assert got == {"model.mask_roi_size": 28, "train.schedule": "step", "model.aspect_ratios": (1.0, 2.0),
                   "input.flip": False}
    with pytest.raises(ValueError, match="SECTION.FIELD=VALUE"):
        parse_overrides(["model.mask_roi_size"])


def test_overrides_apply_and_unknown_keys_fail():
    cfg = get_config("cpu_small", **parse_overrides(["model.mask_roi_size=28", "train.max_steps=5"]))
    assert cfg.model.mask_roi_size == 28 and cfg.train.max_steps == 5
    assert get_config("cpu_small").model.mask_roi_size == 14  # presets are fresh copies
    with pytest.raises(ValueError, match="unknown config key"):
        get_config("cpu_small", **{"model.no_such_field": 1})
    with pytest.raises(ValueError, match="unknown preset"):
        get_config("nope")


@pytest.mark.parametrize("name", ["r50_fpn", "cpu_small", "legacy"])
def test_json_roundtrip(name):
    import json
    cfg = get_config(name)
    again = Config.from_dict(json.loads(cfg.to_json()))
    assert again.to_dict() == cfg.to_dict()


def test_legacy_preset_expresses_the_original():
    m = get_config("legacy").model
    assert (len(m.anchor_scales), len(m.aspect_ratios)) == (3, 3)
    assert (m.rpn_pos_iou, m.rpn_neg_iou, m.rois_per_image) == (0.7, 0.3, 80)
    assert m.box_weights == (10.0, 10.0, 5.0, 5.0)
    assert (m.mask_roi_size, m.mask_output_size, m.keypoint_head) == (56, 112, "regression")
