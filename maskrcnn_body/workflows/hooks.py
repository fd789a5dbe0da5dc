"""The training hooks of the train workflow: periodic evaluation and drawn predictions.

As in Detectron2's ``engine/hooks.py`` (``EvalHook``, wired by ``DefaultTrainer.build_hooks``), the loop
(:class:`~maskrcnn_body.training.trainer.Trainer`) only calls ``hook.fn(step)``; what a hook does (run the model
over val records, score it, draw it) is wired here, so ``training`` never imports evaluation or drawing.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

if TYPE_CHECKING:
    from maskrcnn_body.training.trainer import Hook


def stack_images(pictures) -> np.ndarray:
    """PIL images -> uint8 (K, H, W, 3), zero-padded to the largest size (one TensorBoard image summary)."""
    arrays = [np.asarray(p.convert("RGB")) for p in pictures]
    h = max(a.shape[0] for a in arrays)
    w = max(a.shape[1] for a in arrays)
    out = np.zeros((len(arrays), h, w, 3), np.uint8)
    for i, a in enumerate(arrays):
        out[i, : a.shape[0], : a.shape[1]] = a
    return out


def prediction_images_hook(
    trainer, val_patterns: Sequence[str], every: int, num_images: int = 4, draw_dir: Optional[str] = None
) -> Hook:
    """Every ``every`` steps: detections on the first ``num_images`` val images drawn (ground
    truth | prediction) into TensorBoard (``predictions``) and, when ``draw_dir`` is set, saved
    as ``draw_dir/step_<N>/<source_id>.png`` with the ``.npz`` dumps next to them."""
    from maskrcnn_body.drawing.people import render_dump
    from maskrcnn_body.evaluation import dumps
    from maskrcnn_body.inference.record_dumps import predict_dumps
    from maskrcnn_body.training.trainer import Hook
    from maskrcnn_body.utils.files import safe_file_name

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
            trainer.summaries.images(step, "predictions", stack_images(pics), max_outputs=num_images)
            trainer.summaries.flush()

    return Hook(every, run, chief_only=True, at_end=bool(draw_dir))


def calibration_hook(trainer, patterns: Sequence[str], max_images: Optional[int] = None) -> Hook:
    """After the last step: the mask decoding chosen on the calibration records ``patterns``
    (:func:`~maskrcnn_body.workflows.calibrate.calibrate_model`), set on the trainer's config (the
    evaluation hooks that follow use it) and written into ``TRAIN_DIR/config.json``."""
    from maskrcnn_body.training.trainer import Hook
    from maskrcnn_body.workflows.calibrate import calibrate_model, describe

    def run(step: int) -> None:
        if step < trainer.cfg.train.max_steps:
            return
        chosen = calibrate_model(
            trainer.model, trainer.cfg, patterns, trainer.dir.calibration_dumps_dir, max_images=max_images
        )
        print(f"\n{describe(chosen)}", flush=True)
        trainer.dir.write_config(trainer.cfg)

    return Hook(0, run, chief_only=True, at_end=True)


def evaluation_hook(
    trainer,
    val_patterns: Sequence[str],
    every: int,
    max_images: Optional[int] = None,
    train_patterns: Sequence[str] = (),
) -> Hook:
    """Every ``every`` steps and after the last step: full evaluation on the val records,
    printed as the per-part table, written to ``TRAIN_DIR/eval/metrics-<step>.json`` and to
    TensorBoard (``eval/...``). After the last step, with ``train_patterns``, the same evaluation on
    as many training images (``TRAIN_DIR/eval/metrics-train-<step>.json``), printed beside val's AP
    (:func:`~maskrcnn_body.evaluation.report.format_split_comparison`)."""
    from maskrcnn_body.evaluation import report
    from maskrcnn_body.inference.record_dumps import evaluate_model
    from maskrcnn_body.training.trainer import Hook

    def run(step: int) -> None:
        eval_dir = trainer.dir.eval_dir
        res = evaluate_model(
            trainer.model, val_patterns, trainer.cfg, trainer.dir.eval_dumps_dir, max_images=max_images
        )
        print(
            f"\nevaluation at step {step} on {list(val_patterns)}:\n"
            + report.format_report(res.summary, res.num_images),
            flush=True,
        )
        report.write_json(res.summary, os.path.join(eval_dir, f"metrics-{step}.json"))
        s = res.summary
        scalars = {"eval/box_AP": s["box"]["AP"]}
        for ch, v in s["mask"].items():
            scalars[f"eval/mask_{ch}_AP"] = v["AP"]
            scalars[f"eval/mask_{ch}_AP50"] = v["AP50"]
        scalars["eval/keypoints_AP"] = s["keypoints"]["AP"]
        trainer.summaries.scalars(step, {k: v for k, v in scalars.items() if v is not None})
        if train_patterns and step >= trainer.cfg.train.max_steps:
            on_train = evaluate_model(
                trainer.model,
                train_patterns,
                trainer.cfg,
                trainer.dir.train_split_dumps_dir,
                max_images=res.num_images,
            )
            report.write_json(on_train.summary, os.path.join(eval_dir, f"metrics-train-{step}.json"))
            print("\n" + report.format_split_comparison(s, on_train.summary, on_train.num_images), flush=True)

    return Hook(every, run, chief_only=True, at_end=True)
