"""Inference backends: what runs a trained or exported model, behind one :data:`Runner`.

A model comes in one of four *formats* and runs on one of four *backends* (engines):

=================  ==========================================================================
format             backends it runs on
=================  ==========================================================================
training dir       ``tensorflow`` (:class:`~maskrcnn_body.inference.predictor.Predictor`, the
(config.json +     compiled ops when built, batches of same-size images in one call);
ckpt-N)            ``onnxruntime``, ``openvino``, ``tflite``: exported on the fly (cached, below)
SavedModel dir     ``tensorflow`` (its ``serving_batch`` signature: same-size images in one call);
                   ``onnxruntime``, ``openvino``, ``tflite``: converted on the fly (cached)
``.onnx`` file     ``onnxruntime``, ``openvino``
``.tflite`` file   ``tflite`` (the TFLite interpreter with XNNPACK)
=================  ==========================================================================

``backend="auto"`` (the default) picks by what ``make bench`` measured on CPUs (docs/BENCHMARKS.md,
"Backends" and "cpu_small"): a ``.onnx`` file runs on ONNX Runtime (else OpenVINO), a ``.tflite`` file
on TFLite, a SavedModel on TensorFlow. A training directory runs on TensorFlow (fastest for
``r50_fpn``), except a small-input model (``input.max_size`` <= 320, e.g. ``cpu_small``, where TFLite's
XNNPACK was fastest) whose TFLite export is already in the cache. ``auto`` never converts, so loading
stays fast and predictable: pass ``backend="tflite"`` once to export (about a minute for ``cpu_small``)
and ``auto`` uses the cached file from then on. ``auto`` keeps float32 (``precision="bfloat16"`` is
faster on CPUs with AMX / AVX512-BF16 but changes the outputs within bfloat16's rounding) and, on a
machine with a GPU, TensorFlow.

On-the-fly exports go to ``$MASKRCNN_BODY_CACHE`` (default ``~/.cache/maskrcnn_body``) under a
key of the model's absolute path, checkpoint, file times and this package's version, so a new
checkpoint or package version exports again.

Every runner returns, per image, the detections the model kept in that image's pixels: ``boxes``
(R, 4), ``scores`` (R,), ``masks`` (R, M, M, 7) box-frame probabilities, ``keypoints`` (R, 15, 3).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import threading
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from maskrcnn_body.errors import UserError

SIGNATURE = "serving_default"
BATCH_SIGNATURE = "serving_batch"
Runner = Callable[[Sequence[np.ndarray]], List[Dict[str, np.ndarray]]]

BACKENDS = ("tensorflow", "onnxruntime", "openvino", "tflite")
ALIASES = {"tf": "tensorflow", "onnx": "onnxruntime", "ort": "onnxruntime", "ov": "openvino", "litert": "tflite"}
FORMATS = ("train_dir", "savedmodel", "onnx", "tflite")
RUNS_ON = {
    "train_dir": ("tensorflow", "onnxruntime", "openvino", "tflite"),
    "savedmodel": ("tensorflow", "onnxruntime", "openvino", "tflite"),
    "onnx": ("onnxruntime", "openvino"),
    "tflite": ("tflite",),
}
AUTO_ORDER = {
    "train_dir": ("tflite*", "tensorflow"),
    "savedmodel": ("tensorflow",),
    "onnx": ("onnxruntime", "openvino"),
    "tflite": ("tflite",),
}
"""``auto``'s choice per format: the first installed; ``*``: only for a small-input model
(:data:`SMALL_INPUT` px) whose converted file is already cached (``auto`` never converts)."""
SMALL_INPUT = 320
PRECISIONS = {
    "float32": None,
    "bfloat16": {("tensorflow", "train_dir"), *(("openvino", f) for f in ("train_dir", "savedmodel", "onnx"))},
}
"""Which (backend, format) pairs run in bfloat16 (float32: all)."""
EXTRA = {"onnxruntime": "onnx", "openvino": "openvino", "tflite": "cpu", "tensorflow": "cpu"}
"""``pip install "maskrcnn_body[EXTRA]"`` brings the backend (and what converts to it)."""


class BackendError(UserError):
    """An unknown or unavailable backend, or a backend that cannot run the given format."""


# --------------------------------------------------------------------------- names and formats
def canonical(backend: str) -> str:
    """``backend``'s canonical name (``tf`` -> ``tensorflow``, ``onnx`` -> ``onnxruntime``, ...); a
    :class:`BackendError` listing the known ones for anything else."""
    name = (backend or "auto").strip().lower()
    name = ALIASES.get(name, name)
    if name != "auto" and name not in BACKENDS:
        raise BackendError(
            f"unknown backend {backend!r}: choose auto or one of {', '.join(BACKENDS)} "
            f"(installed here: {', '.join(available_backends())})"
        )
    return name


def is_available(backend: str) -> bool:
    """Whether ``backend``'s Python package is installed (tflite comes with TensorFlow)."""
    mod = {"tensorflow": "tensorflow", "tflite": "tensorflow", "onnxruntime": "onnxruntime", "openvino": "openvino"}[
        backend
    ]
    return importlib.util.find_spec(mod) is not None


def available_backends() -> List[str]:
    return [b for b in BACKENDS if is_available(b)]


def is_train_dir(path: str) -> bool:
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, "config.json"))


def is_saved_model(path: str) -> bool:
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, "saved_model.pb"))


def model_format(path: str) -> str:
    """``train_dir``, ``savedmodel``, ``onnx`` or ``tflite``; a :class:`UserError` saying what is
    expected otherwise."""
    if is_train_dir(path):
        return "train_dir"
    if is_saved_model(path):
        return "savedmodel"
    if os.path.isfile(path) and path.lower().endswith(".tflite"):
        return "tflite"
    if os.path.isfile(path) and path.lower().endswith(".onnx"):
        return "onnx"
    what = "does not exist" if not os.path.exists(path) else "is none of them"
    raise UserError(
        f"cannot load {path!r}: expected a training directory (config.json + ckpt-N files, written by "
        f"maskrcnn-body train), an exported SavedModel directory (saved_model.pb, from maskrcnn-body "
        f"export), a .onnx or a .tflite file; {path!r} {what}"
    )


def _small_input(train_dir: str) -> bool:
    from maskrcnn_body.inference.loading import load_config

    return load_config(train_dir).input.max_size <= SMALL_INPUT


def _has_gpu() -> bool:
    try:
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    except Exception:
        return False


def choose_backend(
    path: str, backend: str = "auto", checkpoint: Optional[str] = None, min_score: Optional[float] = None
) -> Tuple[str, str]:
    """``(format, backend)`` that :func:`open_runner` uses for ``path`` (``auto`` resolved, see the
    module docstring); :class:`BackendError` when the backend is unknown, not installed or cannot run
    that format."""
    fmt = model_format(path)
    name = canonical(backend)
    if name == "auto":
        for cand in AUTO_ORDER[fmt]:
            cached_only = cand.endswith("*")
            cand = cand.rstrip("*")
            if not is_available(cand):
                continue
            if cached_only and (
                _has_gpu()
                or not _small_input(path)
                or not os.path.exists(cache_path(path, fmt, cand, checkpoint, min_score))
            ):
                continue
            return fmt, cand
        raise BackendError(
            f"no installed backend runs {path!r} ({fmt}); it runs on "
            f'{", ".join(RUNS_ON[fmt])}: pip install "maskrcnn_body[{EXTRA[RUNS_ON[fmt][0]]}]"'
        )
    if name not in RUNS_ON[fmt]:
        raise BackendError(f"backend {name!r} cannot run {path!r} ({fmt}); it runs on {', '.join(RUNS_ON[fmt])}")
    if not is_available(name):
        raise BackendError(
            f'backend {name!r} is not installed: pip install "maskrcnn_body[{EXTRA[name]}]" '
            f"(installed here: {', '.join(available_backends())})"
        )
    return fmt, name


# --------------------------------------------------------------------------- on-the-fly exports
def cache_root() -> str:
    return os.environ.get("MASKRCNN_BODY_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "maskrcnn_body")


def _score_override(train_dir: str, min_score: Optional[float]) -> Optional[float]:
    """The score threshold to build a training directory's model with so that it keeps exactly the
    detections scoring >= ``min_score`` (None: keep the model's own, which is higher)."""
    if min_score is None:
        return None
    from maskrcnn_body.inference.loading import load_config

    own = load_config(train_dir).model.postprocess.score_threshold
    if min_score <= own:
        return None
    # the model keeps scores > threshold, the caller scores >= min_score
    return float(max(np.nextafter(np.float32(min_score), np.float32(-np.inf)), own))


def _source_key(path: str, fmt: str, checkpoint: Optional[str], min_score: Optional[float] = None) -> str:
    from maskrcnn_body.version import __version__

    path = os.path.abspath(path)
    parts = [path, fmt, __version__]
    if fmt == "train_dir" and _score_override(path, min_score) is not None:
        parts.append(f"score>{_score_override(path, min_score)!r}")
    if fmt == "train_dir":
        from maskrcnn_body.model.weights import latest_checkpoint

        ckpt = checkpoint or latest_checkpoint(path) or ""
        parts.append(ckpt)
        for f in (os.path.join(path, "config.json"), ckpt + ".index"):
            if os.path.exists(f):
                parts.append(str(os.stat(f).st_mtime_ns))
    else:
        parts.append(str(os.stat(os.path.join(path, "saved_model.pb")).st_mtime_ns))
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()[:16]


def cache_path(
    path: str, fmt: str, backend: str, checkpoint: Optional[str] = None, min_score: Optional[float] = None
) -> str:
    """Where the on-the-fly export of ``path`` for ``backend`` lives (a SavedModel dir, ``.onnx``
    or ``.tflite`` file; it may not exist yet)."""
    name = {
        "tensorflow": "saved_model",
        "onnxruntime": "model.onnx",
        "openvino": "model.onnx",
        "tflite": "model.tflite",
    }[backend]
    return os.path.join(cache_root(), "exports", _source_key(path, fmt, checkpoint, min_score), name)


def export_for(
    path: str, fmt: str, backend: str, checkpoint: Optional[str] = None, log=print, min_score: Optional[float] = None
) -> str:
    """The exported file of a training directory or SavedModel that ``backend`` runs: from the
    cache, or exported now (then cached). A training directory is exported with its score threshold
    raised to ``min_score`` (:func:`tensorflow_runner`), part of the cache key."""
    from maskrcnn_body.inference import exporting

    target = cache_path(path, fmt, backend, checkpoint, min_score)
    if os.path.exists(target):
        return target
    saved_model = path
    if fmt == "train_dir":
        saved_model = cache_path(path, fmt, "tensorflow", checkpoint, min_score)
        if not is_saved_model(saved_model):
            from maskrcnn_body.inference.loading import load_trained_model

            log(f"exporting {path} as a SavedModel -> {saved_model} (once; cached)")
            model, cfg, _ = load_trained_model(
                path, checkpoint, **{"model.postprocess.score_threshold": _score_override(path, min_score)}
            )
            tmp = f"{saved_model}.tmp-{os.getpid()}"
            exporting.export_saved_model(model, cfg, tmp)
            os.replace(tmp, saved_model)
    if backend in ("onnxruntime", "openvino"):
        log(f"converting {saved_model} to ONNX -> {target} (once; cached)")
        exporting.export_onnx(saved_model, target)
    elif backend == "tflite":
        log(f"converting {saved_model} to TFLite -> {target} (once; cached)")
        exporting.export_tflite(saved_model, target)
    return target


# --------------------------------------------------------------------------- runners
def exported_runner(run_one: Callable[[np.ndarray], Dict[str, np.ndarray]], serialize: bool = False) -> Runner:
    """A runner over a single-image exported signature (D padded rows + ``num_detections``): a
    batch runs as a loop, one call per image. ``serialize``: one call at a time (the TFLite
    interpreter and an OpenVINO infer request are not thread-safe; the server calls from threads)."""
    lock = threading.Lock() if serialize else contextlib.nullcontext()

    def run(images: Sequence[np.ndarray]) -> List[Dict[str, np.ndarray]]:
        out = []
        for image in images:
            image = np.ascontiguousarray(image, np.uint8)
            with lock:
                out.append(trim(run_one(image)))
        return out

    return run


def trim(det: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """The first ``num_detections`` rows of an exported signature's output."""
    n = int(np.asarray(det["num_detections"]).reshape(-1)[0])
    return {k: np.asarray(det[k])[:n] for k in ("boxes", "scores", "masks", "keypoints")}


@contextlib.contextmanager
def keras_policy(name: str):
    """The global Keras dtype policy set to ``name`` while layers are built in the block."""
    import keras

    before = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(before)


def tensorflow_runner(
    train_dir: str, checkpoint: Optional[str] = None, precision: str = "float32", min_score: Optional[float] = None
) -> Runner:
    """:class:`~maskrcnn_body.inference.predictor.Predictor` of a training directory. ``precision
    ="bfloat16"`` builds the model under Keras' ``mixed_bfloat16`` policy (float32 weights,
    bfloat16 convolutions and matrix products, float32 heads' outputs, GroupNorm and RoIAlign),
    which oneDNN runs on AMX / AVX512-BF16 units: several times faster on CPUs that have them
    (docs/BENCHMARKS.md), emulated and slower on CPUs that do not.

    ``min_score``: raise the model's own score threshold to this (never lower it): detections below
    it are dropped before NMS and the mask and keypoint heads run on fewer rows. The detections at or
    above it are the same (a box below the threshold never suppresses a higher-scoring one)."""
    from maskrcnn_body.inference.predictor import Predictor

    overrides = {"model.postprocess.score_threshold": _score_override(train_dir, min_score)}
    with keras_policy("mixed_bfloat16" if precision == "bfloat16" else "float32"):
        predictor = Predictor.from_train_dir(train_dir, checkpoint, **overrides)

    def run(images: Sequence[np.ndarray]) -> List[Dict[str, np.ndarray]]:
        return [predictor(images[0])] if len(images) == 1 else predictor.predict_batch(images)

    return run


def saved_model_runner(export_dir: str) -> Runner:
    """TensorFlow on a SavedModel: same-size images in one ``serving_batch`` call when the
    SavedModel has that signature (exports of this version), else one call per image."""
    import tensorflow as tf

    loaded = tf.saved_model.load(export_dir)
    one = loaded.signatures[SIGNATURE]
    batch = loaded.signatures.get(BATCH_SIGNATURE)

    def run(images: Sequence[np.ndarray]) -> List[Dict[str, np.ndarray]]:
        images = [np.asarray(im, np.uint8) for im in images]
        out: List[Optional[Dict[str, np.ndarray]]] = [None] * len(images)
        groups: Dict[tuple, List[int]] = {}
        for i, im in enumerate(images):
            groups.setdefault(im.shape, []).append(i)
        for index in groups.values():
            if batch is None or len(index) == 1:
                for i in index:
                    out[i] = trim({k: v.numpy() for k, v in one(image=tf.constant(images[i])).items()})
                continue
            det = {k: v.numpy() for k, v in batch(images=tf.constant(np.stack([images[i] for i in index]))).items()}
            for j, i in enumerate(index):
                out[i] = trim({k: v[j] for k, v in det.items()})
        return out  # type: ignore[return-value]

    return run


def tflite_runner(path: str, num_threads: Optional[int] = None) -> Runner:
    runner = load_tflite(path, num_threads=num_threads or os.cpu_count() or 2)
    return exported_runner(lambda image: runner(image=image), serialize=True)


def onnxruntime_session(path: str, num_threads: Optional[int] = None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = num_threads or os.cpu_count() or 2
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def onnxruntime_runner(path: str, num_threads: Optional[int] = None) -> Runner:
    sess = onnxruntime_session(path, num_threads)
    names = [o.name for o in sess.get_outputs()]
    (inp,) = sess.get_inputs()
    return exported_runner(lambda image: dict(zip(names, sess.run(None, {inp.name: image}))))


def openvino_runner(path: str, num_threads: Optional[int] = None, precision: Optional[str] = None) -> Runner:
    """OpenVINO on the CPU from an ONNX file. ``precision``: ``f32`` (default: outputs match
    TensorFlow) or ``bf16`` (AMX/AVX512-BF16 CPUs: faster, ~1e-2 relative differences);
    ``$MASKRCNN_BODY_OPENVINO_PRECISION`` sets the default."""
    import openvino as ov

    core = ov.Core()
    precision = precision or os.environ.get("MASKRCNN_BODY_OPENVINO_PRECISION", "f32")
    config = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"}
    if num_threads:
        config["INFERENCE_NUM_THREADS"] = int(num_threads)
    compiled = core.compile_model(core.read_model(path), "CPU", config)
    request = compiled.create_infer_request()
    outputs = [(o.get_any_name(), o) for o in compiled.outputs]

    def run_one(image):
        res = request.infer({0: image})
        return {name: np.asarray(res[o]) for name, o in outputs}

    return exported_runner(run_one, serialize=True)


def open_runner(
    path: str,
    checkpoint: Optional[str] = None,
    backend: str = "auto",
    num_threads: Optional[int] = None,
    log=print,
    precision: str = "float32",
    min_score: Optional[float] = None,
) -> Tuple[Runner, str]:
    """``(runner, backend name)`` for a training directory, a SavedModel directory, a ``.onnx`` or a
    ``.tflite`` file on ``backend`` (module docstring); a :class:`~maskrcnn_body.errors.UserError`
    saying what is expected otherwise. ``precision``: ``float32`` (default) or ``bfloat16``
    (:data:`PRECISIONS`: TensorFlow on a training directory, OpenVINO). ``min_score``: the lowest
    score the caller keeps (TensorFlow on a training directory then skips the heads below it,
    :func:`tensorflow_runner`)."""
    fmt, name = choose_backend(path, backend, checkpoint, min_score)
    if checkpoint and fmt != "train_dir":
        raise UserError(f"checkpoint= applies to a training directory only; {path!r} is a {fmt}")
    precision = (precision or "float32").lower()
    if precision in ("bf16",):
        precision = "bfloat16"
    if precision not in ("float32", "bfloat16"):
        raise BackendError(f"unknown precision {precision!r}: choose float32 or bfloat16")
    if precision == "bfloat16" and (name, fmt) not in PRECISIONS["bfloat16"]:
        raise BackendError(
            f"precision bfloat16 runs on tensorflow with a training directory, or on openvino; "
            f"not on {name} with a {fmt}"
        )
    source = path
    if fmt in ("train_dir", "savedmodel") and name != "tensorflow":
        source = export_for(path, fmt, name, checkpoint, log=log, min_score=min_score)
    if name == "tensorflow":
        if fmt == "train_dir":
            return tensorflow_runner(path, checkpoint, precision, min_score), name
        return saved_model_runner(path), name
    if name == "onnxruntime":
        return onnxruntime_runner(source, num_threads), name
    if name == "openvino":
        return openvino_runner(source, num_threads, "bf16" if precision == "bfloat16" else "f32"), name
    return tflite_runner(source, num_threads), name


# --------------------------------------------------------------------------- one-image helpers
def load_tflite(tflite_path: str, num_threads: int = 2):
    """The ``serving_default`` signature runner of a TFLite file (reuse it for many images)."""
    import tensorflow as tf

    interp = tf.lite.Interpreter(model_path=tflite_path, num_threads=num_threads)
    return interp.get_signature_runner(SIGNATURE)


def run_tflite(tflite_path: str, image, runner=None) -> dict:
    """Runs the TFLite file on one RGB uint8 (H, W, 3) image of any size; returns the output dict
    (numpy, as :func:`run_saved_model`). The signature runner resizes the input tensor and
    re-allocates when the size changes."""
    runner = runner or load_tflite(tflite_path)
    return runner(image=np.asarray(image, np.uint8))


def run_saved_model(export_dir: str, image, loaded: Optional[object] = None) -> dict:
    import tensorflow as tf

    loaded = loaded or tf.saved_model.load(export_dir)
    out = loaded.signatures[SIGNATURE](image=tf.constant(image))
    return {k: v.numpy() for k, v in out.items()}


def run_onnx(onnx_path: str, image, session=None) -> dict:
    """Runs the ONNX file with ONNX Runtime on one RGB uint8 image; the output dict as
    :func:`run_saved_model`."""
    session = session or onnxruntime_session(onnx_path)
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {session.get_inputs()[0].name: np.asarray(image, np.uint8)})))
