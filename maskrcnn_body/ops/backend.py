"""The one owner of the op choices a trace makes: the kernels (compiled ops of ``libs/`` or pure
TensorFlow) and the NMS op.

Kernels. Every dispatching op (``roi_align.multilevel_roi_align``, ``boxes.pairwise_iou``,
``targets.match``) asks :func:`resolve` for the implementation to trace:

1. an explicit ``backend=`` argument, else
2. the innermost :func:`use_backend` block of this thread that names ``kernels`` (export traces
   under ``use_backend("tf", nms="v4")``: a SavedModel or TFLite file must never depend on the
   library), else
3. the environment variable ``MASKRCNN_BODY_OPS``, else ``"auto"``.

``"auto"`` uses the compiled ops when the library loads (``ops.custom.load``), else pure TF;
``"tf"`` always pure TF; ``"custom"`` the compiled ops or an error saying why they are missing.

NMS. ``model.postprocess.batched_nms`` traces the op :func:`nms_op` names: the innermost
:func:`use_backend` block that names ``nms``, else ``"v4"``. The two (:data:`NMS_OPS`):

* ``"v4"`` (default): the ``NonMaxSuppressionV4`` kernel itself (``tf.raw_ops``), one op that TFLite and
  ONNX (``NonMaxSuppression``) map directly; training, evaluation, the TensorFlow runner and the exports
  trace it. It is ~12x faster than ``"padded"`` on the RPN's 4 x 500 training boxes (1.0 vs 12.4 ms,
  Intel Xeon, 2 cores), about 3% of the default run's step;
* ``"padded"``: ``tf.image.non_max_suppression_padded``, a tiled TF function (a while loop of small
  ops) that XLA can compile and TFLite fuses into its NON_MAX_SUPPRESSION_V4; the default before
  issue 26.

Both are the same greedy NMS (score order, lower index first on ties, suppress when IoU >
threshold); they compute the IoU with differently ordered float operations, so they can differ
only where an IoU equals the threshold to the last bit (never seen with real boxes; the export
tests compare them).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from typing import Iterator, NamedTuple, Optional

ENV_VAR = "MASKRCNN_BODY_OPS"
BACKENDS = ("auto", "tf", "custom")
NMS_OPS = ("padded", "v4")
DEFAULT_NMS = "v4"


class _Scope(NamedTuple):
    """What the innermost :func:`use_backend` blocks chose (None: not chosen by any block)."""

    kernels: Optional[str] = None
    nms: Optional[str] = None


_NO_BLOCK = _Scope()
_scoped: contextvars.ContextVar[_Scope] = contextvars.ContextVar("maskrcnn_body_ops", default=_NO_BLOCK)


def _check(name: str, source: str) -> str:
    name = name.strip().lower()
    if name not in BACKENDS:
        raise ValueError(f"{source}={name!r} is not one of {BACKENDS}")
    return name


def requested(backend: Optional[str] = None) -> str:
    """The requested backend name (``auto``, ``tf`` or ``custom``) by the precedence above."""
    if backend is not None:
        return _check(backend, "backend")
    scoped = _scoped.get().kernels
    if scoped is not None:
        return scoped
    return _check(os.environ.get(ENV_VAR, "auto"), f"env {ENV_VAR}")


def resolve(backend: Optional[str] = None):
    """The loaded compiled ops (``ops.custom.CustomOps``) to use, or None for pure TF."""
    name = requested(backend)
    if name == "tf":
        return None
    from maskrcnn_body.ops import custom

    ops = custom.load()
    if ops is None and name == "custom":
        raise RuntimeError(
            f"compiled ops requested ({ENV_VAR}=custom or backend='custom') but not available: {custom.load_error()}"
        )
    return ops


def name_of(backend: Optional[str] = None) -> str:
    """``"custom"`` or ``"tf"``: what :func:`resolve` picks."""
    return "tf" if resolve(backend) is None else "custom"


def nms_op() -> str:
    """The NMS op ``model.postprocess.batched_nms`` traces (one of :data:`NMS_OPS`; module docstring)."""
    return _scoped.get().nms or DEFAULT_NMS


@contextlib.contextmanager
def use_backend(kernels: Optional[str] = None, *, nms: Optional[str] = None) -> Iterator[None]:
    """Within the block (this thread / context), ops without an explicit ``backend`` use the kernels
    ``kernels`` (one of :data:`BACKENDS`) and NMS traces with ``nms`` (one of :data:`NMS_OPS`); a
    choice left None keeps the enclosing block's (or the default)."""
    outer = _scoped.get()
    if nms is not None and nms not in NMS_OPS:
        raise ValueError(f"use_backend(nms={nms!r}): expected one of {NMS_OPS}")
    scope = _Scope(
        kernels=outer.kernels if kernels is None else _check(kernels, "use_backend"),
        nms=outer.nms if nms is None else nms,
    )
    token = _scoped.set(scope)
    try:
        yield
    finally:
        _scoped.reset(token)
