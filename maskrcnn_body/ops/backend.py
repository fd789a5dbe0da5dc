"""The one owner of the op-backend choice: compiled ops of ``libs/`` or pure TensorFlow.

Every dispatching op (``roi_align.multilevel_roi_align``, ``boxes.pairwise_iou``,
``targets.match``) asks :func:`resolve` for the implementation to trace:

1. an explicit ``backend=`` argument, else
2. the innermost :func:`use_backend` block of this thread (export traces under
   ``use_backend("tf")``: a SavedModel or TFLite file must never depend on the library), else
3. the environment variable ``MASKRCNN_BODY_OPS``, else ``"auto"``.

``"auto"`` uses the compiled ops when the library loads (``ops.custom.load``), else pure TF;
``"tf"`` always pure TF; ``"custom"`` the compiled ops or an error saying why they are missing.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from typing import Iterator, Optional

ENV_VAR = "MASKRCNN_BODY_OPS"
BACKENDS = ("auto", "tf", "custom")

_scoped: contextvars.ContextVar[Optional[str]] = contextvars.ContextVar("maskrcnn_body_ops", default=None)


def _check(name: str, source: str) -> str:
    name = name.strip().lower()
    if name not in BACKENDS:
        raise ValueError(f"{source}={name!r} is not one of {BACKENDS}")
    return name


def requested(backend: Optional[str] = None) -> str:
    """The requested backend name (``auto``, ``tf`` or ``custom``) by the precedence above."""
    if backend is not None:
        return _check(backend, "backend")
    scoped = _scoped.get()
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


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Within the block (this thread / context), ops without an explicit ``backend`` use ``name``."""
    token = _scoped.set(_check(name, "use_backend"))
    try:
        yield
    finally:
        _scoped.reset(token)
