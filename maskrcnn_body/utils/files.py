"""File-name and atomic-write helpers (no TensorFlow)."""

from __future__ import annotations

import os
import re


def safe_file_name(text: str) -> str:
    """``text`` with everything but letters, digits, ``.``, ``_`` and ``-`` replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "image"


def write_text_atomic(path: str, text: str) -> str:
    """Writes ``text`` to ``path`` through a temporary file and a rename (never a half file)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    return path
