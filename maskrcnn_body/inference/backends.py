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
``.tflite`` file   ``tflite`` (LiteRT's interpreter with XNNPACK)
=================  ==========================================================================

An exported ``.onnx`` or ``.tflite`` file runs without TensorFlow: ``pip install "maskrcnn_body[runtime-onnx]"``
(ONNX Runtime), ``[runtime-tflite]`` (LiteRT, ``ai-edge-litert``; TensorFlow's deprecated ``tf.lite``
interpreter only when LiteRT is not installed) or ``[runtime-openvino]`` (docs/DEPLOY.md). Converting a
training directory or SavedModel needs TensorFlow (``[cpu]``, plus ``[onnx]`` for ONNX).

``device`` (:data:`DEVICES`): ``None`` (default) runs on the CPU, except TensorFlow, which places the model
on its first GPU when it sees one (its own default); ``"cpu"``; ``"cuda"`` / ``"cuda:N"`` (``"gpu"`` is the
same) for TensorFlow's GPU or ONNX Runtime's ``CUDAExecutionProvider``; ``"tensorrt"`` / ``"tensorrt:N"``
(ONNX Runtime's ``TensorrtExecutionProvider``, CUDA then the CPU for what TensorRT does not run); ``"gpu"`` /
``"gpu:N"`` / ``"npu"`` on OpenVINO (``openvino.Core().available_devices``). A device the backend cannot use,
or that is absent here, is a :class:`BackendError` saying what is available and what to install.

``backend="auto"`` (the default) picks by what ``make bench`` measured on CPUs (docs/BENCHMARKS.md,
"Backends" and "cpu_small"): a ``.onnx`` file runs on ONNX Runtime (else OpenVINO), a ``.tflite`` file
on TFLite, a SavedModel on TensorFlow. A training directory runs on TensorFlow (fastest for
``r50_fpn``), except a small-input model (``input.max_size`` <= 320, e.g. ``cpu_small``, where TFLite's
XNNPACK was fastest) whose TFLite export is already in the cache. ``auto`` never converts, so loading
stays fast and predictable: pass ``backend="tflite"`` once to export (about a minute for ``cpu_small``)
and ``auto`` uses the cached file from then on. With a ``device`` other than the CPU ``auto`` skips the backends
that cannot use it (TFLite; ONNX Runtime for an NPU). ``auto`` keeps float32 (``precision="bfloat16"`` is
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
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np

from maskrcnn_body.config import Config
from maskrcnn_body.config.train_dir import TrainDir, is_train_dir
from maskrcnn_body.errors import UserError
from maskrcnn_body.utils.files import atomic_path

SIGNATURE = "serving_default"
"""The exports' single-image signature (:mod:`~maskrcnn_body.inference.exporting` writes it)."""
BATCH_SIGNATURE = "serving_batch"
"""The SavedModel's batch signature (same-size images in one call)."""
Runner = Callable[[Sequence[np.ndarray]], List[Dict[str, np.ndarray]]]
"""RGB uint8 images -> per image ``boxes`` (R, 4), ``scores`` (R,), ``masks`` (R, M, M, 7), ``keypoints``
(R, 15, 3) in that image's pixels."""

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
PRECISIONS: Dict[str, Optional[Set[Tuple[str, str]]]] = {
    "float32": None,
    "bfloat16": {("tensorflow", "train_dir"), *(("openvino", f) for f in ("train_dir", "savedmodel", "onnx"))},
}
"""Which (backend, format) pairs run in bfloat16 (float32: all)."""
EXTRA = {"onnxruntime": "runtime-onnx", "openvino": "runtime-openvino", "tflite": "runtime-tflite", "tensorflow": "cpu"}
"""``pip install "maskrcnn_body[EXTRA]"`` brings the backend's engine (exported files need nothing else)."""
CONVERT_EXTRA = {"onnxruntime": "cpu,onnx", "openvino": "cpu,openvino", "tflite": "cpu", "tensorflow": "cpu"}
"""What runs a training directory or SavedModel on the backend: TensorFlow (and tf2onnx) convert it first."""
TFLITE_RUNTIMES = {"litert": "ai_edge_litert.interpreter", "tensorflow": "tensorflow"}
"""The modules whose ``Interpreter`` runs ``.tflite`` files, preferred first (:func:`tflite_runtime`)."""
DEVICES = {
    "tensorflow": ("cpu", "cuda"),
    "onnxruntime": ("cpu", "cuda", "tensorrt"),
    "openvino": ("cpu", "gpu", "npu"),
    "tflite": ("cpu",),
}
"""The device kinds each backend can use (``gpu`` means ``cuda`` on TensorFlow and ONNX Runtime)."""
ORT_PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
"""ONNX Runtime's execution provider of each device kind."""


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


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module.split(".")[0]) is not None


def is_available(backend: str) -> bool:
    """Whether ``backend``'s Python package is installed (tflite: LiteRT, or TensorFlow's ``tf.lite``)."""
    if backend == "tflite":
        return any(_installed(m) for m in TFLITE_RUNTIMES.values())
    return _installed(backend)


def tflite_runtime() -> str:
    """``litert`` (``ai_edge_litert``, no TensorFlow needed) when installed, else ``tensorflow`` (the
    deprecated ``tf.lite.Interpreter``, which warns on use); a :class:`BackendError` when neither is."""
    for name, module in TFLITE_RUNTIMES.items():
        if _installed(module):
            return name
    raise BackendError(f'no TFLite interpreter installed: pip install "maskrcnn_body[{EXTRA["tflite"]}]" (LiteRT)')


def install_hint(backend: str, fmt: str) -> str:
    """``pip install "maskrcnn_body[...]"`` that runs a ``fmt`` model on ``backend``."""
    extra = EXTRA[backend] if fmt in ("onnx", "tflite") else CONVERT_EXTRA[backend]
    return f'pip install "maskrcnn_body[{extra}]"'


# --------------------------------------------------------------------------- devices
def parse_device(device: Optional[str]) -> Tuple[Optional[str], Optional[int]]:
    """``(kind, index)`` of a device string: ``None``/``""`` -> ``(None, None)`` (the backend's default);
    ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"gpu"`` (kept as ``gpu``: its meaning depends on the backend),
    ``"tensorrt:0"``, ``"npu"`` -> the lower-case kind and the index (None: the first). Case and an OpenVINO
    style ``"GPU.1"`` are accepted. Anything else is a :class:`BackendError` listing the kinds."""
    if device is None or not str(device).strip():
        return None, None
    text = str(device).strip().lower().replace(".", ":")
    kind, _, index = text.partition(":")
    kinds = sorted({k for ks in DEVICES.values() for k in ks} | {"gpu"})
    if kind not in kinds or (index and not index.isdigit()):
        raise BackendError(
            f"unknown device {device!r}: choose one of {', '.join(kinds)} (with :N for the N-th, e.g. cuda:1)"
        )
    return kind, (int(index) if index else None)


def device_kind(backend: str, device: Optional[str]) -> Optional[str]:
    """The kind of ``device`` as ``backend`` names it (``gpu`` -> ``cuda`` on TensorFlow and ONNX Runtime);
    None for the backend's default; a :class:`BackendError` when the backend cannot use that kind."""
    kind, _ = parse_device(device)
    if kind == "gpu" and "cuda" in DEVICES[backend]:
        kind = "cuda"
    if kind is not None and kind not in DEVICES[backend]:
        others = [b for b in BACKENDS if kind in DEVICES[b] or (kind == "gpu" and "cuda" in DEVICES[b])]
        raise BackendError(
            f"backend {backend!r} cannot run on device {device!r}: it runs on {', '.join(DEVICES[backend])}"
            + (f"; {kind} runs on {', '.join(others)}" if others else "")
        )
    return kind


def available_backends() -> List[str]:
    return [b for b in BACKENDS if is_available(b)]


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


def _small_input(cfg: Config) -> bool:
    return cfg.input.max_size <= SMALL_INPUT


def _has_gpu() -> bool:
    try:
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    except Exception:
        return False


def _can_use(backend: str, device: Optional[str]) -> bool:
    try:
        device_kind(backend, device)
        return True
    except BackendError:
        return False


def choose_backend(
    path: str,
    backend: str = "auto",
    checkpoint: Optional[str] = None,
    min_score: Optional[float] = None,
    device: Optional[str] = None,
    cfg: Optional[Config] = None,
) -> Tuple[str, str]:
    """``(format, backend)`` that :func:`open_runner` uses for ``path`` (``auto`` resolved, see the
    module docstring); :class:`BackendError` when the backend is unknown, not installed or cannot run
    that format (or, for ``auto``, when none installed can use ``device``). ``cfg``: a training
    directory's config when the caller has read it already (else it is read here when needed)."""
    fmt = model_format(path)
    name = canonical(backend)
    parse_device(device)
    if fmt in ("train_dir", "savedmodel") and not _installed("tensorflow"):
        what = "a training directory" if fmt == "train_dir" else "a SavedModel"
        raise BackendError(
            f"{path!r} is {what}, which needs TensorFlow to run or to convert (pip install "
            f'"maskrcnn_body[cpu]"); without TensorFlow, load its .onnx or .tflite export (maskrcnn-body export '
            f"--model {path} --onnx model.onnx --tflite model.tflite, where TensorFlow is installed; docs/DEPLOY.md)"
        )
    if name == "auto":
        for cand in AUTO_ORDER[fmt]:
            cached_only = cand.endswith("*")
            cand = cand.rstrip("*")
            if not is_available(cand) or not _can_use(cand, device):
                continue
            if cached_only:
                if _has_gpu():
                    continue
                cfg = cfg or TrainDir(path).read_config()
                if not _small_input(cfg) or not os.path.exists(cache_path(path, fmt, cand, checkpoint, min_score, cfg)):
                    continue
            return fmt, cand
        usable = [b for b in RUNS_ON[fmt] if _can_use(b, device)]
        on = f" on device {device!r}" if device else ""
        if not usable:
            raise BackendError(f"no backend runs {path!r} ({fmt}){on}; it runs on {', '.join(RUNS_ON[fmt])}")
        raise BackendError(
            f"no installed backend runs {path!r} ({fmt}){on}; it runs on {', '.join(usable)}: "
            f"{install_hint(usable[0], fmt)}"
        )
    if name not in RUNS_ON[fmt]:
        raise BackendError(f"backend {name!r} cannot run {path!r} ({fmt}); it runs on {', '.join(RUNS_ON[fmt])}")
    if not is_available(name):
        raise BackendError(
            f"backend {name!r} is not installed: {install_hint(name, fmt)} "
            f"(installed here: {', '.join(available_backends()) or 'none'})"
        )
    device_kind(name, device)
    return fmt, name


# --------------------------------------------------------------------------- on-the-fly exports
def cache_root() -> str:
    return os.environ.get("MASKRCNN_BODY_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "maskrcnn_body")


def _score_override(cfg: Config, min_score: Optional[float]) -> Optional[float]:
    """The score threshold to build a training directory's model (config ``cfg``) with so that it keeps
    exactly the detections scoring >= ``min_score`` (None: keep the model's own, which is higher)."""
    if min_score is None:
        return None
    own = cfg.model.postprocess.score_threshold
    if min_score <= own:
        return None
    # the model keeps scores > threshold, the caller scores >= min_score
    return float(max(np.nextafter(np.float32(min_score), np.float32(-np.inf)), own))


def _source_key(
    path: str, fmt: str, checkpoint: Optional[str], min_score: Optional[float] = None, cfg: Optional[Config] = None
) -> str:
    from maskrcnn_body.version import __version__

    path = os.path.abspath(path)
    parts = [path, fmt, __version__]
    if fmt == "train_dir":
        train_dir = TrainDir(path)
        score = _score_override(cfg or train_dir.read_config(), min_score)
        if score is not None:
            parts.append(f"score>{score!r}")
        ckpt = checkpoint or train_dir.latest_checkpoint() or ""
        parts.append(ckpt)
        for f in (train_dir.config_path, ckpt + ".index"):
            if os.path.exists(f):
                parts.append(str(os.stat(f).st_mtime_ns))
    else:
        parts.append(str(os.stat(os.path.join(path, "saved_model.pb")).st_mtime_ns))
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()[:16]


def cache_path(
    path: str,
    fmt: str,
    backend: str,
    checkpoint: Optional[str] = None,
    min_score: Optional[float] = None,
    cfg: Optional[Config] = None,
) -> str:
    """Where the on-the-fly export of ``path`` for ``backend`` lives (a SavedModel dir, ``.onnx``
    or ``.tflite`` file; it may not exist yet). ``cfg``: a training directory's config when read already."""
    name = {
        "tensorflow": "saved_model",
        "onnxruntime": "model.onnx",
        "openvino": "model.onnx",
        "tflite": "model.tflite",
    }[backend]
    return os.path.join(cache_root(), "exports", _source_key(path, fmt, checkpoint, min_score, cfg), name)


def export_for(
    path: str,
    fmt: str,
    backend: str,
    checkpoint: Optional[str] = None,
    log=print,
    min_score: Optional[float] = None,
    cfg: Optional[Config] = None,
) -> str:
    """The exported file of a training directory or SavedModel that ``backend`` runs: from the
    cache, or exported now (then cached). A training directory is exported with its score threshold
    raised to ``min_score`` (:func:`tensorflow_runner`), part of the cache key. ``cfg``: a training
    directory's config when read already."""
    if fmt == "train_dir" and cfg is None:
        cfg = TrainDir(path).read_config()
    target = cache_path(path, fmt, backend, checkpoint, min_score, cfg)
    if os.path.exists(target):
        return target
    needs = ["tensorflow"] + (["tf2onnx"] if backend in ("onnxruntime", "openvino") else [])
    missing = [m for m in needs if not _installed(m)]
    if missing:
        raise BackendError(
            f"running the {fmt} {path!r} on {backend} converts it first, which needs {' and '.join(missing)}: "
            f"{install_hint(backend, fmt)}; or export it where TensorFlow is installed (maskrcnn-body export) "
            f"and load the exported file here"
        )
    from maskrcnn_body.inference import exporting

    saved_model = path
    if fmt == "train_dir":
        assert cfg is not None
        saved_model = cache_path(path, fmt, "tensorflow", checkpoint, min_score, cfg)
        if not is_saved_model(saved_model):
            from maskrcnn_body.inference.loading import load_trained_model

            log(f"exporting {path} as a SavedModel -> {saved_model} (once; cached)")
            model, built, _ = load_trained_model(
                path, checkpoint, cfg, **{"model.postprocess.score_threshold": _score_override(cfg, min_score)}
            )
            with atomic_path(saved_model) as tmp:
                exporting.export_saved_model(model, built, tmp)
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


def tensorflow_device(device: Optional[str] = None) -> Optional[str]:
    """The TensorFlow device name (``/CPU:0``, ``/GPU:N``) for ``device``; None: TensorFlow's own placement.
    A GPU TensorFlow does not see is a :class:`BackendError`."""
    kind = device_kind("tensorflow", device)
    if kind is None:
        return None
    if kind == "cpu":
        return "/CPU:0"
    import tensorflow as tf

    index = parse_device(device)[1] or 0
    gpus = tf.config.list_physical_devices("GPU")
    if index >= len(gpus):
        raise BackendError(
            f"device {device!r}: TensorFlow sees {len(gpus)} GPU(s) here"
            + ("" if gpus else ' (a CUDA build of TensorFlow and an NVIDIA driver: pip install "maskrcnn_body[gpu]")')
            + "; device='cpu' runs on the CPU"
        )
    return f"/GPU:{index}"


def _on_device(name: Optional[str]):
    """A context placing TensorFlow ops on ``name`` (nothing for None)."""
    if name is None:
        return contextlib.nullcontext()
    import tensorflow as tf

    return tf.device(name)


def tensorflow_runner(
    train_dir: str,
    checkpoint: Optional[str] = None,
    precision: str = "float32",
    min_score: Optional[float] = None,
    device: Optional[str] = None,
    cfg: Optional[Config] = None,
) -> Runner:
    """:class:`~maskrcnn_body.inference.predictor.Predictor` of a training directory (``cfg``: its config
    when read already). ``precision
    ="bfloat16"`` builds the model under Keras' ``mixed_bfloat16`` policy (float32 weights,
    bfloat16 convolutions and matrix products, float32 heads' outputs, GroupNorm and RoIAlign),
    which oneDNN runs on AMX / AVX512-BF16 units: several times faster on CPUs that have them
    (docs/BENCHMARKS.md), emulated and slower on CPUs that do not.

    ``min_score``: raise the model's own score threshold to this (never lower it): detections below
    it are dropped before NMS and the mask and keypoint heads run on fewer rows. The detections at or
    above it are the same (a box below the threshold never suppresses a higher-scoring one)."""
    from maskrcnn_body.inference.predictor import Predictor

    cfg = cfg or TrainDir(train_dir).read_config()
    overrides: Dict[str, Any] = {"model.postprocess.score_threshold": _score_override(cfg, min_score)}
    place = tensorflow_device(device)
    with keras_policy("mixed_bfloat16" if precision == "bfloat16" else "float32"), _on_device(place):
        predictor = Predictor.from_train_dir(train_dir, checkpoint, cfg=cfg, **overrides)

    def run(images: Sequence[np.ndarray]) -> List[Dict[str, np.ndarray]]:
        with _on_device(place):
            return [predictor(images[0])] if len(images) == 1 else predictor.predict_batch(images)

    return run


def saved_model_runner(export_dir: str, device: Optional[str] = None) -> Runner:
    """TensorFlow on a SavedModel: same-size images in one ``serving_batch`` call when the
    SavedModel has that signature (exports of this version), else one call per image."""
    import tensorflow as tf

    place = tensorflow_device(device)
    with _on_device(place):
        loaded = tf.saved_model.load(export_dir)
    one = loaded.signatures[SIGNATURE]
    batch = loaded.signatures.get(BATCH_SIGNATURE)

    def run(images: Sequence[np.ndarray]) -> List[Dict[str, np.ndarray]]:
        with _on_device(place):
            return run_groups(images)

    def run_groups(images: Sequence[np.ndarray]) -> List[Dict[str, np.ndarray]]:
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


def tflite_runner(path: str, num_threads: Optional[int] = None, device: Optional[str] = None) -> Runner:
    """The TFLite file on LiteRT (:func:`load_tflite`), on the CPU (XNNPACK) only."""
    device_kind("tflite", device)
    runner = load_tflite(path, num_threads=num_threads or os.cpu_count() or 2)
    return exported_runner(lambda image: runner(image=image), serialize=True)


def onnxruntime_providers(device: Optional[str] = None) -> list:
    """ONNX Runtime's execution providers for ``device`` (most preferred first, the CPU last, as ONNX
    Runtime runs what a provider cannot on the next one): ``cpu``/None -> CPU; ``cuda[:N]`` -> CUDA, CPU;
    ``tensorrt[:N]`` -> TensorRT, CUDA, CPU. A provider this onnxruntime does not have is a
    :class:`BackendError` saying which package has it."""
    import onnxruntime as ort

    kind = device_kind("onnxruntime", device) or "cpu"
    if kind == "cpu":
        return [ORT_PROVIDERS["cpu"]]
    index = parse_device(device)[1] or 0
    chain = ["tensorrt", "cuda"] if kind == "tensorrt" else ["cuda"]
    have = ort.get_available_providers()
    missing = [ORT_PROVIDERS[k] for k in chain if ORT_PROVIDERS[k] not in have]
    if missing:
        raise BackendError(
            f"device {device!r} needs ONNX Runtime's {' and '.join(missing)}, which this onnxruntime "
            f"{ort.__version__} does not have (it has {', '.join(have)}): install the GPU build instead "
            f"(pip uninstall -y onnxruntime && pip install onnxruntime-gpu; NVIDIA driver, CUDA 12 and cuDNN 9"
            + (", TensorRT 10" if kind == "tensorrt" else "")
            + "), or use device='cpu'"
        )
    return [(ORT_PROVIDERS[k], {"device_id": index}) for k in chain] + [ORT_PROVIDERS["cpu"]]


def onnxruntime_session(path: str, num_threads: Optional[int] = None, device: Optional[str] = None):
    """An ONNX Runtime session of ``path`` on ``device`` (:func:`onnxruntime_providers`). A provider that is
    installed but fails to start (ONNX Runtime then silently falls back to the CPU, e.g. without the CUDA
    libraries) is a :class:`BackendError`."""
    import onnxruntime as ort

    providers = onnxruntime_providers(device)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = num_threads or os.cpu_count() or 2
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # No memory pattern: with our dynamic shapes ORT planned buffers per shape and kept them; off, the r50_fpn
    # export's peak memory drops 3.7 -> 2.1 GB with identical outputs and no slower runs (Intel Xeon, 2 cores).
    opts.enable_mem_pattern = False
    opts.log_severity_level = 3
    sess = ort.InferenceSession(path, opts, providers=providers)
    wanted = providers[0] if isinstance(providers[0], str) else providers[0][0]
    if wanted not in sess.get_providers():
        raise BackendError(
            f"device {device!r}: ONNX Runtime has {wanted} but could not start it (it runs on "
            f"{', '.join(sess.get_providers())}); check the NVIDIA driver and the CUDA/cuDNN"
            f"{'/TensorRT' if 'Tensorrt' in wanted else ''} libraries it needs, or use device='cpu'"
        )
    return sess


def onnxruntime_runner(path: str, num_threads: Optional[int] = None, device: Optional[str] = None) -> Runner:
    sess = onnxruntime_session(path, num_threads, device)
    names = [o.name for o in sess.get_outputs()]
    (inp,) = sess.get_inputs()
    return exported_runner(lambda image: dict(zip(names, sess.run(None, {inp.name: image}))))


def openvino_device(device: Optional[str], available: Sequence[str]) -> str:
    """OpenVINO's name (``CPU``, ``GPU``, ``GPU.1``, ``NPU``) for ``device`` among ``available``
    (``openvino.Core().available_devices``); a :class:`BackendError` naming what is available otherwise."""
    kind = device_kind("openvino", device) or "cpu"
    index = parse_device(device)[1]
    wanted = kind.upper() if index is None else f"{kind.upper()}.{index}"
    if wanted in available:
        return wanted
    if index is None and any(d.startswith(kind.upper() + ".") for d in available):
        return kind.upper()  # the first of several (OpenVINO picks GPU.0 for "GPU")
    if index == 0 and kind.upper() in available:
        return kind.upper()  # a single GPU is listed as "GPU"
    raise BackendError(
        f"device {device!r}: OpenVINO sees {', '.join(available) or 'no device'} here; an Intel "
        f"{kind.upper()} needs its driver (docs.openvino.ai, 'Configurations for Intel {kind.upper()}'), "
        f"or use device='cpu'"
    )


def openvino_runner(
    path: str, num_threads: Optional[int] = None, precision: Optional[str] = None, device: Optional[str] = None
) -> Runner:
    """OpenVINO from an ONNX file, on ``device`` (:func:`openvino_device`; default the CPU). ``precision``
    (CPU and GPU): ``f32`` (default: outputs match TensorFlow) or ``bf16`` (AMX/AVX512-BF16 CPUs: faster,
    ~1e-2 relative differences); ``$MASKRCNN_BODY_OPENVINO_PRECISION`` sets the default. ``num_threads``:
    the CPU's."""
    import openvino as ov

    core = ov.Core()
    target = openvino_device(device, core.available_devices)
    precision = precision or os.environ.get("MASKRCNN_BODY_OPENVINO_PRECISION", "f32")
    config: Dict[str, object] = {"PERFORMANCE_HINT": "LATENCY"}
    if not target.startswith("NPU"):
        config["INFERENCE_PRECISION_HINT"] = precision
    if num_threads and target == "CPU":
        config["INFERENCE_NUM_THREADS"] = int(num_threads)
    compiled = core.compile_model(core.read_model(path), target, config)
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
    device: Optional[str] = None,
) -> Tuple[Runner, str]:
    """``(runner, backend name)`` for a training directory, a SavedModel directory, a ``.onnx`` or a
    ``.tflite`` file on ``backend`` (module docstring); a :class:`~maskrcnn_body.errors.UserError`
    saying what is expected otherwise. ``precision``: ``float32`` (default) or ``bfloat16``
    (:data:`PRECISIONS`: TensorFlow on a training directory, OpenVINO). ``min_score``: the lowest
    score the caller keeps (TensorFlow on a training directory then skips the heads below it,
    :func:`tensorflow_runner`). ``device``: where it runs (module docstring, :data:`DEVICES`).
    A training directory's ``config.json`` is read once, here, and passed down."""
    cfg = TrainDir(path).read_config() if model_format(path) == "train_dir" else None
    fmt, name = choose_backend(path, backend, checkpoint, min_score, device, cfg)
    if checkpoint and fmt != "train_dir":
        raise UserError(f"checkpoint= applies to a training directory only; {path!r} is a {fmt}")
    precision = (precision or "float32").lower()
    if precision in ("bf16",):
        precision = "bfloat16"
    if precision not in ("float32", "bfloat16"):
        raise BackendError(f"unknown precision {precision!r}: choose float32 or bfloat16")
    if precision == "bfloat16" and (name, fmt) not in (PRECISIONS["bfloat16"] or set()):
        raise BackendError(
            f"precision bfloat16 runs on tensorflow with a training directory, or on openvino; "
            f"not on {name} with a {fmt}"
        )
    source = path
    if fmt in ("train_dir", "savedmodel") and name != "tensorflow":
        source = export_for(path, fmt, name, checkpoint, log=log, min_score=min_score, cfg=cfg)
    if name == "tensorflow":
        if fmt == "train_dir":
            return tensorflow_runner(path, checkpoint, precision, min_score, device, cfg), name
        return saved_model_runner(path, device), name
    if name == "onnxruntime":
        return onnxruntime_runner(source, num_threads, device), name
    if name == "openvino":
        return openvino_runner(source, num_threads, "bf16" if precision == "bfloat16" else "f32", device), name
    return tflite_runner(source, num_threads, device), name


# --------------------------------------------------------------------------- TFLite interpreter
def load_tflite(tflite_path: str, num_threads: int = 2, runtime: Optional[str] = None):
    """The ``serving_default`` signature runner of a TFLite file (reuse it for many images). ``runtime``:
    ``litert`` (``ai_edge_litert``) or ``tensorflow`` (``tf.lite``, deprecated); default
    :func:`tflite_runtime` (LiteRT when installed)."""
    runtime = runtime or tflite_runtime()
    if runtime not in TFLITE_RUNTIMES:
        raise BackendError(f"unknown TFLite runtime {runtime!r}: choose {' or '.join(TFLITE_RUNTIMES)}")
    if runtime == "litert":
        from ai_edge_litert.interpreter import Interpreter
    else:  # warns once per interpreter that tf.lite is deprecated in favour of LiteRT: what to install
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    interp = Interpreter(model_path=tflite_path, num_threads=num_threads)
    return interp.get_signature_runner(SIGNATURE)
