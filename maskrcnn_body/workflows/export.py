"""The export workflow: a training directory -> SavedModel, TFLite (float or quantised), ONNX and the in-browser
page, for use without this package (docs/DEPLOY.md, docs/BROWSER.md).

    from maskrcnn_body.workflows import export
    export.export("output/mask_rcnn", saved_model="output/export/saved_model", onnx="output/export/model.onnx",
                  tflite="output/export/model.tflite", tflite_quant=["none", "float16"])
    mb.load("output/mask_rcnn").export("onnx")           # the same, one format, from the loaded model

The SavedModel is always written (the TFLite and ONNX converters read it). ``tflite_quant``: ``none`` (float32),
``float16``, ``dynamic`` (int8 weights) or ``int8`` (int8 weights and activations, calibrated on the first
``calib_images`` images of ``calib_records``); with one variant the file is ``tflite``, with several each goes to
``NAME.<quant>.tflite`` beside it (``none``: ``NAME.tflite``). ``onnx_quant``: ``int8`` also writes
``NAME.int8.onnx`` (:mod:`maskrcnn_body.inference.quantize`: the convolutions int8 with per-channel weights,
calibrated on ``calib_records``, the rest float: the variant that keeps the accuracy).

**Accuracy is part of a quantised export**: with ``score_records`` (a held-out split with ground truth) every
quantised file is scored beside its float32 file with the project's metrics (:func:`score_quantised`: box AP,
body AP, arm APs, keypoint OKS AP), the table is logged and written to ``FILE.accuracy.json``, and a file that
loses more than :data:`MAX_AP_LOSS` AP points on any of them gets a warning. Without ``score_records`` a quantised
file gets a warning that its accuracy is unmeasured. On the trained ``cpu_small`` model full-int8 TFLite loses
all of it (docs/BENCHMARKS.md, "int8 that keeps the accuracy"). ``maskrcnn-body export`` is :func:`export` with
flags.
"""

from __future__ import annotations

import dataclasses
import glob
import importlib.util
import os
import shutil
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from maskrcnn_body.errors import UserError
from maskrcnn_body.workflows.train import as_globs

QUANTS = ("none", "float16", "dynamic", "int8")
ONNX_QUANTS = ("none", "int8")
FORMATS = ("savedmodel", "tflite", "onnx", "web")
MAX_AP_LOSS = 1.0
"""AP points (of 100) a quantised export may lose on any scored figure before it is labelled lossy."""
SCORED = (
    ("box AP", ("box", "AP")),
    ("body AP", ("mask", "body", "AP")),
    ("left arm AP", ("mask", "left_arm", "AP")),
    ("right arm AP", ("mask", "right_arm", "AP")),
    ("keypoint OKS AP", ("keypoints", "AP")),
)
"""The figures :func:`score_quantised` compares: (name, path in the metrics JSON)."""
INT8_WARNING = (
    "warning: full int8 TFLite lost all accuracy on the trained cpu_small model (docs/BENCHMARKS.md); "
    "--onnx_quant int8 keeps it; score a file with --score_records GLOB or maskrcnn-body evaluate --model {path}"
)
UNSCORED_WARNING = (
    "warning: the accuracy of {path} is unmeasured: give --score_records GLOB (a held-out split) to score it "
    "beside float32, or run maskrcnn-body evaluate --model {path}"
)


def _figure(summary: dict, keys: Sequence[str]) -> Optional[float]:
    value: Any = summary
    for k in keys:
        if not isinstance(value, dict) or k not in value:
            return None
        value = value[k]
    return None if value is None else 100.0 * float(value)


def score_quantised(
    float_path: str,
    quant_path: str,
    records: Sequence[str],
    max_images: Optional[int] = None,
    log: Callable[[str], None] = print,
    cache: Optional[dict] = None,
) -> dict:
    """Scores the quantised export ``quant_path`` beside its float32 export ``float_path`` on ``records`` (same
    runner path, same metrics: :func:`maskrcnn_body.workflows.evaluate.evaluate`); returns and writes to
    ``quant_path + ".accuracy.json"`` ``{"records", "images", "figures": [{"name", "float32", "quantised",
    "change"}], "max_loss", "lossy"}`` (AP in points of 100; ``lossy``: some figure lost more than
    :data:`MAX_AP_LOSS`), logging the table and, when lossy, a warning naming the figures. ``cache``: a dict
    kept between calls so that a float32 file scored once is not scored again."""
    import json
    import tempfile

    from maskrcnn_body.utils.files import write_bytes_atomic
    from maskrcnn_body.workflows.evaluate import evaluate

    def quiet(msg: str) -> None:
        del msg

    cache = {} if cache is None else cache
    results = []
    for path in (float_path, quant_path):
        key = (os.path.abspath(path), tuple(records), max_images)
        if key not in cache:
            with tempfile.TemporaryDirectory(prefix="quant_score_") as tmp:
                cache[key] = evaluate(path, list(records), dump_dir=tmp, max_images=max_images, log=quiet)
        results.append(cache[key])
    rows: List[Tuple[str, Optional[float], Optional[float], Optional[float]]] = []
    for name, keys in SCORED:
        a, b = (_figure(r.summary, keys) for r in results)
        rows.append((name, a, b, None if a is None or b is None else b - a))
    lost = [(name, change) for name, _, _, change in rows if change is not None and -change > MAX_AP_LOSS]
    report = {
        "float32": float_path,
        "quantised": quant_path,
        "records": list(records),
        "images": results[1].num_images,
        "figures": [{"name": n, "float32": a, "quantised": b, "change": c} for n, a, b, c in rows],
        "max_loss": max((-c for *_, c in rows if c is not None), default=0.0),
        "lossy": bool(lost),
    }
    write_bytes_atomic(quant_path + ".accuracy.json", (json.dumps(report, indent=1) + "\n").encode())

    def fmt(v: Optional[float], sign: str = "") -> str:
        return "-" if v is None else f"{v:{sign}.1f}"

    log(f"accuracy of {quant_path} beside float32 on {report['images']} images of {list(records)}:")
    for name, a, b, change in rows:
        log(f"  {name:<16} {fmt(a):>6} -> {fmt(b):>6}  ({fmt(change, '+')})")
    if lost:
        named = ", ".join(f"{name} {change:.1f}" for name, change in lost)
        log(f"warning: {quant_path} loses more than {MAX_AP_LOSS:g} AP ({named}): check it on your data before use")
    return report


def tflite_paths(path: str, quants: Sequence[str]) -> Dict[str, str]:
    """``{quant: file}``: ``path`` itself for a single variant, else ``NAME.<quant>.tflite``."""
    if len(quants) == 1:
        return {quants[0]: path}
    stem = path[: -len(".tflite")] if path.endswith(".tflite") else path
    return {q: (f"{stem}.tflite" if q == "none" else f"{stem}.{q}.tflite") for q in quants}


@dataclasses.dataclass
class Exported:
    """What :func:`export` wrote: ``saved_model`` (directory), ``tflite`` (``{quant: file}``), ``onnx``,
    ``onnx_quant`` (``{quant: file}``) and ``web`` (the page folder) paths, empty when not asked for;
    ``accuracy``: ``{quantised file: score_quantised report}`` for the files scored."""

    saved_model: str
    tflite: Dict[str, str] = dataclasses.field(default_factory=dict)
    onnx: str = ""
    onnx_quant: Dict[str, str] = dataclasses.field(default_factory=dict)
    web: str = ""
    accuracy: Dict[str, dict] = dataclasses.field(default_factory=dict)


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
    onnx_quant: Sequence[str] = ("none",),
    score_records: Sequence[str] = (),
    score_images: Optional[int] = None,
    web: str = "",
    score_threshold: Optional[float] = None,
    max_detections: Optional[int] = None,
    overrides: Optional[Mapping[str, object]] = None,
    log: Callable[[str], None] = print,
) -> Exported:
    """Exports the training directory ``train_dir`` (its newest checkpoint, or ``checkpoint``); see the module
    docstring. ``score_threshold`` / ``max_detections`` override the model's (``model.postprocess``) in the
    exports; ``overrides``: any other inference-time config keys (dotted, e.g. ``{"input.min_size": 192,
    "input.max_size": 192}``: the live configuration of docs/DEPLOY.md), applied before the model is built.
    ``onnx_quant``, ``score_records`` / ``score_images``: module docstring. Everything that can be
    checked is checked before the model is built (a bad quantisation name, int8 without calibration records,
    scoring records that match nothing, ONNX without tf2onnx, the browser runtime not fetched)."""
    quants = _names(tflite_quant, QUANTS, "tflite_quant")
    onnx_quants = _names(onnx_quant, ONNX_QUANTS, "onnx_quant")
    calib = as_globs(calib_records)
    score = as_globs(score_records)
    if not calib and ((tflite and "int8" in quants) or (onnx and "int8" in onnx_quants)):
        raise UserError(
            "int8 (--tflite_quant / --onnx_quant int8) needs --calib_records GLOB (calib_records= in Python): "
            "images to calibrate the activations on"
        )
    if "int8" in onnx_quants and not onnx:
        raise UserError("--onnx_quant int8 quantises the ONNX export: give --onnx FILE too")
    if "int8" in onnx_quants and importlib.util.find_spec("onnxruntime") is None:
        raise UserError('--onnx_quant int8 needs onnxruntime: pip install "maskrcnn_body[onnx]"')
    if score and not any(glob.glob(p) for p in score):
        raise UserError(f"no files match --score_records {score}")
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
            **dict(overrides or {}),
            "model.postprocess.score_threshold": score_threshold,
            "model.postprocess.max_detections": max_detections,
        },
    )
    exporting.export_saved_model(model, cfg, saved_model)
    log(f"SavedModel from {ckpt} -> {saved_model}")
    out = Exported(saved_model)
    need_images = (tflite and "int8" in quants) or (onnx and "int8" in onnx_quants)
    images = exporting.calibration_images(calib, calib_images) if need_images else None
    scored: list = []  # (float file, quantised file)
    if tflite:
        paths = tflite_paths(tflite, quants)
        for quant, path in paths.items():
            exporting.export_tflite(saved_model, path, quant=None if quant == "none" else quant, calib_images=images)
            what = "float32" if quant == "none" else quant
            log(f"TFLite ({what}) -> {path} ({os.path.getsize(path) / 1e6:.1f} MB)")
            if quant == "int8" and not score:
                log(INT8_WARNING.format(path=path))
            out.tflite[quant] = path
        scored += [(paths.get("none", ""), p) for q, p in paths.items() if q != "none"]
    if onnx:
        exporting.export_onnx(saved_model, onnx)
        log(f"ONNX -> {onnx} ({os.path.getsize(onnx) / 1e6:.1f} MB)")
        out.onnx = onnx
        if "int8" in onnx_quants:
            from maskrcnn_body.inference.quantize import quant_path, quantize_onnx

            target = quant_path(onnx, "int8")
            quantize_onnx(onnx, target, images or [])
            log(f"ONNX (int8: convolutions, per-channel weights) -> {target} ({os.path.getsize(target) / 1e6:.1f} MB)")
            out.onnx_quant["int8"] = target
            scored.append((onnx, target))
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
    scores: dict = {}
    for float_path, quant_file in scored:
        if not score:
            log(UNSCORED_WARNING.format(path=quant_file))
            continue
        if not float_path:  # a TFLite variant asked for without its float32 file: write one to compare with
            float_path = quant_file + ".float32.tflite"
            exporting.export_tflite(saved_model, float_path)
        out.accuracy[quant_file] = score_quantised(float_path, quant_file, score, score_images, log=log, cache=scores)
    return out


def _names(values: Sequence[str], allowed: Sequence[str], flag: str) -> list:
    names = list(dict.fromkeys(str(q).strip().lower() for q in ([values] if isinstance(values, str) else values)))
    names = [n for n in names if n] or ["none"]
    bad = [q for q in names if q not in allowed]
    if bad:
        raise UserError(f"--{flag} ({flag}) {bad}: choose from {', '.join(allowed)}")
    return names


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
    ``quant``: the TFLite variant, or for ONNX ``int8`` (None: float32; the float ONNX the int8 one is made from
    goes to ``<train_dir>/export/model.onnx``). ``options``: :func:`export`'s keywords."""
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
        q = (quant or "none").lower()
        if q == "none":
            return export(train_dir, saved, onnx=path or os.path.join(folder, "model.onnx"), **common).onnx
        float_onnx = os.path.join(folder, "model.onnx")
        done = export(train_dir, saved, onnx=float_onnx, onnx_quant=[q], **common).onnx_quant[q]
        if path and os.path.abspath(path) != os.path.abspath(done):
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            shutil.move(done, path)
            return path
        return done
    return export(train_dir, saved, web=path or os.path.join(folder, "web"), **common).web
