"""The export workflow: a training directory -> SavedModel, TFLite (float or quantised), ONNX and the in-browser
page, for use without this package (docs/DEPLOY.md, docs/BROWSER.md).

    from maskrcnn_body.workflows import export
    export.export("output/mask_rcnn", saved_model="output/export/saved_model", onnx="output/export/model.onnx",
                  tflite="output/export/model.tflite", tflite_quant=["none", "float16"])
    mb.load("output/mask_rcnn").export("onnx")           # the same, one format, from the loaded model

The SavedModel is always written (the TFLite and ONNX converters read it). ``tflite_quant``: ``none`` (float32),
``float16``, ``dynamic`` (int8 weights) or ``int8`` (int8 weights and activations, calibrated on the first
``calib_images`` images of ``calib_records``); with one variant the file is ``tflite``, with several each goes to
``NAME.<quant>.tflite`` beside it (``none``: ``NAME.tflite``). Check a quantised file's accuracy before deploying
it: ``mb.load(FILE).evaluate(records)`` (on the trained ``cpu_small`` model full int8 loses the AP:
docs/BENCHMARKS.md, "Quantised"). ``maskrcnn-body export`` is :func:`export` with flags.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from typing import Callable, Dict, Optional, Sequence

from maskrcnn_body.errors import UserError

QUANTS = ("none", "float16", "dynamic", "int8")
FORMATS = ("savedmodel", "tflite", "onnx", "web")
INT8_WARNING = (
    "warning: full int8 lost all accuracy on the trained cpu_small model (docs/BENCHMARKS.md); "
    "score it first: maskrcnn-body evaluate --model {path}"
)


def tflite_paths(path: str, quants: Sequence[str]) -> Dict[str, str]:
    """``{quant: file}``: ``path`` itself for a single variant, else ``NAME.<quant>.tflite``."""
    if len(quants) == 1:
        return {quants[0]: path}
    stem = path[: -len(".tflite")] if path.endswith(".tflite") else path
    return {q: (f"{stem}.tflite" if q == "none" else f"{stem}.{q}.tflite") for q in quants}


@dataclasses.dataclass
class Exported:
    """What :func:`export` wrote: ``saved_model`` (directory), ``tflite`` (``{quant: file}``), ``onnx`` and
    ``web`` (the page folder) paths, empty when not asked for."""

    saved_model: str
    tflite: Dict[str, str] = dataclasses.field(default_factory=dict)
    onnx: str = ""
    web: str = ""


def export(
    train_dir: str,
    saved_model: str = "output/export/saved_model",
    *,
    checkpoint: Optional[str] = None,
    tflite: str = "",
    tflite_quant: Sequence[str] = ("none",),
    calib_records: Sequence[str] = (),
    calib_images: int = 32,
    onnx: str = "",
    web: str = "",
    score_threshold: Optional[float] = None,
    max_detections: Optional[int] = None,
    log: Callable[[str], None] = print,
) -> Exported:
    """Exports the training directory ``train_dir`` (its newest checkpoint, or ``checkpoint``); see the module
    docstring. ``score_threshold`` / ``max_detections`` override the model's (``model.postprocess``) in the
    exports. Everything that can be checked is checked before the model is built (a bad quantisation name,
    int8 without calibration records, ONNX without tf2onnx, the browser runtime not fetched)."""
    quants = list(dict.fromkeys(str(q).strip().lower() for q in tflite_quant)) or ["none"]
    bad = [q for q in quants if q not in QUANTS]
    if bad:
        raise UserError(f"--tflite_quant (tflite_quant) {bad}: choose from {', '.join(QUANTS)}")
    calib = [c for c in ([calib_records] if isinstance(calib_records, str) else list(calib_records)) if c]
    if tflite and "int8" in quants and not calib:
        raise UserError(
            "--tflite_quant int8 needs --calib_records GLOB (calib_records= in Python): images to calibrate the "
            "activations on"
        )
    if web:
        from maskrcnn_body.workflows import web_page

        web_page.runtime_files()  # fails now, with what to run, when the runtime is not fetched
    if (onnx or web) and importlib.util.find_spec("tf2onnx") is None:
        raise UserError(f'{"ONNX" if onnx else "the in-browser page"} needs tf2onnx: pip install "maskrcnn_body[onnx]"')
    from maskrcnn_body.inference import exporting
    from maskrcnn_body.inference.loading import load_trained_model

    model, cfg, ckpt = load_trained_model(
        train_dir,
        checkpoint,
        None,
        **{
            "model.postprocess.score_threshold": score_threshold,
            "model.postprocess.max_detections": max_detections,
        },
    )
    exporting.export_saved_model(model, cfg, saved_model)
    log(f"SavedModel from {ckpt} -> {saved_model}")
    out = Exported(saved_model)
    if tflite:
        images = exporting.calibration_images(calib, calib_images) if "int8" in quants else None
        for quant, path in tflite_paths(tflite, quants).items():
            exporting.export_tflite(saved_model, path, quant=None if quant == "none" else quant, calib_images=images)
            what = "float32" if quant == "none" else quant
            log(f"TFLite ({what}) -> {path} ({os.path.getsize(path) / 1e6:.1f} MB)")
            if quant == "int8":
                log(INT8_WARNING.format(path=path))
            out.tflite[quant] = path
    if onnx:
        exporting.export_onnx(saved_model, onnx)
        log(f"ONNX -> {onnx} ({os.path.getsize(onnx) / 1e6:.1f} MB)")
        out.onnx = onnx
    if web:
        from maskrcnn_body.workflows import web_page

        onnx_path = onnx or exporting.export_onnx(saved_model, os.path.join(web, "model.onnx"))
        threshold = 0.5 if score_threshold is None else score_threshold
        web_page.export_web(onnx_path, web, score_threshold=threshold)
        log(
            f"in-browser demo -> {web} ({web_page.folder_size(web) / 1e6:.1f} MB; any static file server, "
            f"e.g. python -m http.server -d {web}, or maskrcnn-body serve --web {web})"
        )
        out.web = web
    return out


def export_format(
    train_dir: str,
    format: str = "onnx",
    path: Optional[str] = None,
    checkpoint: Optional[str] = None,
    quant: Optional[str] = None,
    log: Callable[[str], None] = lambda msg: None,
    **options,
) -> str:
    """One format of :func:`export` (``savedmodel``, ``tflite``, ``onnx`` or ``web``); returns its path.
    ``path`` default: ``<train_dir>/export/`` + ``saved_model`` | ``model.tflite`` (``model.<quant>.tflite``) |
    ``model.onnx`` | ``web``; the SavedModel the converters need goes to ``<train_dir>/export/saved_model``.
    ``quant``: the TFLite variant (None: float32). ``options``: :func:`export`'s keywords."""
    fmt = format.lower().replace("_", "")
    if fmt not in FORMATS:
        raise UserError(f"export format {format!r}: choose from {', '.join(FORMATS)}")
    folder = os.path.join(train_dir, "export")
    saved = path if fmt == "savedmodel" and path else os.path.join(folder, "saved_model")
    common = dict(checkpoint=checkpoint, log=log, **options)
    if fmt == "savedmodel":
        return export(train_dir, saved, **common).saved_model
    if fmt == "tflite":
        q = (quant or "none").lower()
        target = path or os.path.join(folder, "model.tflite" if q == "none" else f"model.{q}.tflite")
        return export(train_dir, saved, tflite=target, tflite_quant=[q], **common).tflite[q]
    if fmt == "onnx":
        return export(train_dir, saved, onnx=path or os.path.join(folder, "model.onnx"), **common).onnx
    return export(train_dir, saved, web=path or os.path.join(folder, "web"), **common).web
