"""The calibrate workflow: choose the per-channel mask decoding thresholds of a trained model.

A fixed 0.5 cut erodes thin parts (issue 26): the model runs over a *calibration* split (never the
reporting val split) with its decoding set to the identity (every threshold 0.5, no body union), and
:func:`maskrcnn_body.evaluation.thresholds.choose_thresholds` picks per channel the cut with the best mean
mask IoU of the detections matched to a person. The values go into the config
(``model.postprocess.mask_thresholds``, ``mask_body_union``), hence into the training directory's
``config.json`` and every export: ``mb.load``, ``evaluate``, ``predict``, ``serve``, SavedModel, TFLite and
ONNX all decode alike (the model graph applies them: ``model/postprocess.decode_mask_logits``).

The default run (``python train/train.py``) calibrates after its last step on ``synthetic_calib``, 100
synthetic images of another seed; ``maskrcnn-body calibrate --model DIR --records GLOB`` does it for any
training directory.
"""

from __future__ import annotations

import shutil
from typing import Callable, Dict, Optional, Sequence

from maskrcnn_body import constants


def raw_decoding(cfg) -> None:
    """Sets ``cfg``'s decoding to plain sigmoid probabilities (every threshold 0.5, no body union)."""
    cfg.model.postprocess.mask_thresholds = (0.5,) * constants.NUM_CHANNELS
    cfg.model.postprocess.mask_body_union = False


def calibrate_model(
    model, cfg, patterns: Sequence[str], dump_dir: str, max_images: Optional[int] = None
) -> Dict[str, object]:
    """Chooses the decoding of ``model`` (built from ``cfg``, the same object as ``model.cfg``) on the
    records ``patterns`` and sets it on ``cfg.model.postprocess`` (in memory; the caller writes the
    config). ``dump_dir``: the calibration dumps (emptied first). Returns the choice
    (:meth:`~maskrcnn_body.evaluation.thresholds.ThresholdSearch.result`)."""
    from maskrcnn_body.evaluation.thresholds import choose_thresholds
    from maskrcnn_body.inference.record_dumps import write_dumps

    raw_decoding(cfg)
    shutil.rmtree(dump_dir, ignore_errors=True)
    write_dumps(model, list(patterns), cfg, dump_dir, max_images=max_images)
    chosen = choose_thresholds(dump_dir)
    thresholds = chosen["mask_thresholds"]
    assert isinstance(thresholds, tuple)
    cfg.model.postprocess.mask_thresholds = thresholds
    cfg.model.postprocess.mask_body_union = bool(chosen["mask_body_union"])
    cfg.validate()
    return chosen


def describe(chosen: Dict[str, object]) -> str:
    """One line per channel: the threshold and the matched detections' mean IoU at 0.5 -> at it."""
    thresholds = chosen["mask_thresholds"]
    mean_iou = chosen["mean_iou"]
    assert isinstance(thresholds, tuple) and isinstance(mean_iou, dict)
    lines = ["mask decoding chosen on the calibration split (threshold; matched mean IoU at 0.5 -> at it):"]
    for k, name in enumerate(constants.CHANNELS):
        half, best = mean_iou[name]
        lines.append(f"  {name:<10} {thresholds[k]:.3f}   {100 * half:5.1f} -> {100 * best:5.1f}")
    lines.append(f"  body decoded as max(body, parts): {chosen['mask_body_union']}")
    return "\n".join(lines)


def calibrate(
    model_dir: str,
    records: Sequence[str],
    *,
    checkpoint: Optional[str] = None,
    dump_dir: Optional[str] = None,
    max_images: Optional[int] = None,
    log: Callable[[str], None] = print,
) -> Dict[str, object]:
    """Calibrates the training directory ``model_dir`` on ``records`` (a split that is not the one you
    report on) and writes the decoding into its ``config.json``. Returns the choice."""
    from maskrcnn_body.config.train_dir import TrainDir
    from maskrcnn_body.inference.loading import load_trained_model

    run = TrainDir(model_dir)
    model, cfg, _ = load_trained_model(model_dir, checkpoint)
    chosen = calibrate_model(model, cfg, records, dump_dir or run.calibration_dumps_dir, max_images)
    log(describe(chosen))
    log(f"wrote {run.write_config(cfg)}")
    return chosen
