"""Periodic chief-side hooks of ``train/train.py``: evaluation and drawn predictions."""
from __future__ import annotations

import os
from typing import List, Optional

import numpy as np

from maskrcnn_body.training.predict import evaluate_model, predict_dumps
from maskrcnn_body.training.trainer import Hook


def _stack_images(pictures) -> np.ndarray:
    """PIL images -> uint8 (K, H, W, 3), zero-padded to the largest size."""
    arrays = [np.asarray(p.convert("RGB")) for p in pictures]
    h = max(a.shape[0] for a in arrays)
    w = max(a.shape[1] for a in arrays)
    out = np.zeros((len(arrays), h, w, 3), np.uint8)
    for i, a in enumerate(arrays):
        out[i, :a.shape[0], :a.shape[1]] = a
    return out


def prediction_images_hook(trainer, val_patterns, every: int, num_images: int = 4,
                           draw_dir: Optional[str] = None) -> Hook:
    """Every ``every`` steps: detections on the first ``num_images`` val images drawn (ground
    truth | prediction) into TensorBoard (``predictions``) and, when ``draw_dir`` is set, saved
    as ``draw_dir/step_<N>/<source_id>.png`` with the ``.npz`` dumps next to them."""
    from maskrcnn_body.drawing.draw import render_dump, safe_file_name
    from maskrcnn_body.evaluation import dumps

    def run(step: int) -> None:
        pics = []
        for d in predict_dumps(trainer.model, val_patterns, trainer.cfg, max_images=num_images):
            pic = render_dump(d, side_by_side=True)
            pics.append(pic)
            if draw_dir:
                base = os.path.join(draw_dir, f"step_{step:06d}", safe_file_name(d["source_id"]))
                dumps.write_dump(base + ".npz", **d)
                pic.save(base + ".png")
        if pics:
            trainer.summaries.images(step, "predictions", _stack_images(pics), max_outputs=num_images)
            trainer.summaries.flush()
    return Hook(every, run, chief_only=True, at_end=bool(draw_dir))


def evaluation_hook(trainer, val_patterns, every: int, max_images: Optional[int] = None,
                    results: Optional[List] = None) -> Hook:
    """Every ``every`` steps and after the last step: full evaluation on the val records,
    printed as the per-part table, written to ``TRAIN_DIR/eval/metrics-<step>.json`` and to
    TensorBoard (``eval/...``). Each result is appended to ``results`` when given."""
    from maskrcnn_body.evaluation import report

    def run(step: int) -> None:
        eval_dir = os.path.join(trainer.train_dir, "eval")
        res = evaluate_model(trainer.model, val_patterns, trainer.cfg, os.path.join(eval_dir, "dumps"),
                             max_images=max_images)
        print(f"\nevaluation at step {step} on {val_patterns}:\n"
              + report.format_report(res.summary, res.num_images), flush=True)
        report.write_json(res.summary, os.path.join(eval_dir, f"metrics-{step}.json"))
        s = res.summary
        scalars = {"eval/box_AP": s["box"]["AP"]}
        for ch, v in s["mask"].items():
            scalars[f"eval/mask_{ch}_AP50"] = v["AP50"]
        trainer.summaries.scalars(step, {k: v for k, v in scalars.items() if v is not None})
        if results is not None:
            results.append((step, res))
    return Hook(every, run, chief_only=True, at_end=True)
