"""File-name and atomic-write helpers (no TensorFlow).

Every file or directory the package writes for others to read (configs, checkpoint state, dumps,
summaries, exports, TFRecord shards) goes through :func:`atomic_path`: the content is written under
a temporary name in the target's own directory (so the rename never crosses file systems) and
renamed onto the target only when complete; a failure removes the temporary and leaves the target
as it was. Readers therefore see the old content or the new one, never a half-written file.

Temporary names are ``.<name>.tmp-<pid>-<n>[suffix]`` beside the target: hidden, and containing
``.tmp-`` (so globs such as ``*.npz`` or ``PREFIX-*.tfrecord`` never match them).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
from typing import Iterator

_counter = itertools.count()


def safe_file_name(text: str) -> str:
    """``text`` with everything but letters, digits, ``.``, ``_`` and ``-`` replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "image"


def temp_path(path: str, suffix: str = "") -> str:
    """A fresh temporary name for ``path`` in the same directory (unique per process and call)."""
    directory = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(os.path.normpath(path))
    return os.path.join(directory, f".{name}.tmp-{os.getpid()}-{next(_counter)}{suffix}")


def remove_path(path: str) -> None:
    """Removes a file or a directory tree at ``path``; nothing when there is none."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def commit(tmp: str, path: str) -> None:
    """Renames ``tmp`` (a complete file or directory) onto ``path``. A directory replaces an existing
    directory of the same name: the old one is moved aside first, then deleted."""
    if os.path.isdir(tmp) and os.path.isdir(path) and not os.path.islink(path):
        old = temp_path(path, ".old")
        os.replace(path, old)
        try:
            os.replace(tmp, path)
        except BaseException:
            os.replace(old, path)
            raise
        shutil.rmtree(old, ignore_errors=True)
        return
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = "") -> Iterator[str]:
    """Yields a temporary path beside ``path`` (its directory is created); write a file or a
    directory there. When the block ends normally the temporary is renamed onto ``path``
    (:func:`commit`); when it raises, the temporary is removed and ``path`` is left untouched.
    ``suffix``: an extension the temporary must end with (for writers that check it, e.g. ``.onnx``).

        with atomic_path("out/model.tflite") as tmp:
            open(tmp, "wb").write(data)
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = temp_path(path, suffix)
    try:
        yield tmp
        if not os.path.lexists(tmp):
            raise FileNotFoundError(f"{tmp}: nothing was written for {path}")
        commit(tmp, path)
    finally:
        if os.path.lexists(tmp):
            remove_path(tmp)


def write_bytes_atomic(path: str, data: bytes) -> str:
    """Writes ``data`` to ``path`` through a temporary file and a rename (never a half file)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
    return path


def write_text_atomic(path: str, text: str) -> str:
    """Writes ``text`` to ``path`` through a temporary file and a rename (never a half file)."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text)
    return path
