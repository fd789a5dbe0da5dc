"""The evaluate workflow: a model over records -> one ``.npz`` dump per image, the metrics table, its JSON, plots.

    from maskrcnn_body.workflows.evaluate import evaluate
    result = evaluate("output/mask_rcnn", "data/records/synthetic_val-*.tfrecord")
    result.summary["mask"]["left_arm"]["AP"]

``model``: a training directory, by default run as TensorFlow over the input pipeline in batches (the resizing of
training; what the training run's evaluation does), or, with ``backend`` / ``device`` given or for an exported
SavedModel / ``.onnx`` / ``.tflite``, through :meth:`Model.evaluate <maskrcnn_body.inference.api.Model.evaluate>`:
each image at full resolution through that backend, exactly as a call would run it (e.g. to score a quantised
TFLite file on the same images as the float model). The dumps are the input of ``maskrcnn-body metric --dumps DIR``
and ``maskrcnn-body draw --dumps DIR`` (format in docs/GUIDE.md, "Evaluation dumps"). ``maskrcnn-body evaluate``
is :func:`evaluate` with flags.
"""

from __future__ import annotations

import os
import shutil
from typing import Callable, Optional, Sequence, Union

from maskrcnn_body.errors import UserError

DEFAULT_RECORDS = "data/records/synthetic_val-*.tfrecord"


def default_dump_dir(model: str, fmt: str) -> str:
    """``<train_dir>/eval_dumps`` for a training directory, else ``<export stem>_eval_dumps`` beside the export."""
    if fmt == "train_dir":
        from maskrcnn_body.config.train_dir import TrainDir

        return TrainDir(model).evaluate_dumps_dir
    return os.path.splitext(model.rstrip("/"))[0] + "_eval_dumps"


def evaluate(
    model: str = "output/mask_rcnn",
    records: Union[str, Sequence[str]] = DEFAULT_RECORDS,
    *,
    checkpoint: Optional[str] = None,
    backend: str = "",
    precision: str = "float32",
    device: Optional[str] = None,
    dump_dir: Optional[str] = None,
    json_path: Optional[str] = None,
    plots_dir: Optional[str] = None,
    max_images: Optional[int] = None,
    batch_size: int = 4,
    score_threshold: Optional[float] = None,
    skip_corrupt: bool = False,
    log: Callable[[str], None] = print,
):
    """Scores ``model`` (a path; module docstring) on ``records``; returns the
    :class:`~maskrcnn_body.evaluation.evaluator.EvaluationResult`. Writes the dumps into ``dump_dir`` (emptied
    first; default :func:`default_dump_dir`), the metrics JSON to ``json_path`` (default
    ``DUMP_DIR/metrics.json``) and, with ``plots_dir``, the PR curves and the per-part AP chart; logs the table.
    ``score_threshold`` overrides a training directory's ``model.postprocess.score_threshold``; ``batch_size``:
    images per forward pass on the pipeline path."""
    from maskrcnn_body.evaluation import evaluator, report
    from maskrcnn_body.inference import backends

    patterns = [records] if isinstance(records, str) else list(records)
    if batch_size < 1:
        raise UserError(f"batch_size must be >= 1, got {batch_size}")
    path = os.fspath(model)
    exported = backends.is_saved_model(path) or (os.path.isfile(path) and path.lower().endswith((".onnx", ".tflite")))
    fmt = backends.model_format(path) if exported else "train_dir"  # else: the training-directory errors
    dump_dir = dump_dir or default_dump_dir(path, fmt)
    if backend or device or fmt != "train_dir":
        from maskrcnn_body.workflows.model import load

        if score_threshold is not None and fmt != "train_dir":
            raise UserError("score_threshold applies to a training directory; an export has its threshold built in")
        loaded = load(  # score threshold 0: AP needs every detection
            path,
            score_threshold=0.0,
            checkpoint=checkpoint,
            backend=backend or "auto",
            precision=precision,
            device=device,
        )
        log(f"evaluating {path} ({loaded.format}) on backend {loaded.backend} on {patterns} -> {dump_dir}")
        result = loaded.evaluate(patterns, max_images=max_images, dump_dir=dump_dir, skip_corrupt=skip_corrupt)
    else:
        from maskrcnn_body.inference.loading import load_trained_model
        from maskrcnn_body.inference.record_dumps import write_dumps

        keras_model, cfg, ckpt = load_trained_model(
            path,
            checkpoint,
            None,
            **{
                "model.postprocess.score_threshold": score_threshold,
                "input.skip_corrupt": True if skip_corrupt else None,
            },
        )
        shutil.rmtree(dump_dir, ignore_errors=True)
        log(f"evaluating {ckpt} on {patterns} -> {dump_dir}")
        write_dumps(keras_model, patterns, cfg, dump_dir, batch_size, max_images)
        result = evaluator.evaluate_dir(dump_dir)
    log(f"wrote {result.num_images} dumps")
    log(report.format_report(result.summary, result.num_images))
    log(f"wrote {report.write_json(result.summary, json_path or os.path.join(dump_dir, 'metrics.json'))}")
    if plots_dir:
        from maskrcnn_body.drawing import plots

        for written in plots.save_plots(result, plots_dir):
            log(f"wrote {written}")
    return result
