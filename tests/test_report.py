"""evaluation/report.py: the printed tables."""

from maskrcnn_body import constants
from maskrcnn_body.evaluation import report


def _summary(box, part_ap, kp):
    mask = {ch: {"AP": part_ap(k), "AP50": None, "AP75": None} for k, ch in enumerate(constants.CHANNELS)}
    return {"box": {"AP": box}, "mask": mask, "keypoints": {"AP": kp}}


def test_split_comparison_puts_val_and_train_ap_side_by_side():
    val = _summary(0.5, lambda k: 0.1 * k, 0.6)
    train = _summary(0.55, lambda k: None if k == 3 else 0.1 * k + 0.05, 0.7)
    lines = report.format_split_comparison(val, train, 100).splitlines()
    assert lines[0].endswith("(100 training images)")
    rows = {line[:16].strip(): line[16:].split() for line in lines[2:]}
    assert rows["box"] == ["50.0", "55.0"]
    assert rows["mask left_arm"] == ["30.0", "-"]  # undefined on one split: shown, not dropped
    assert rows["mask right_leg"] == ["60.0", "65.0"]
    assert rows["keypoints"] == ["60.0", "70.0"]
    assert len(rows) == 2 + constants.NUM_CHANNELS
