"""An environment that holds only some of the installed packages (the TensorFlow-free install routes).

:func:`link_packages` fills a folder with links to the named distributions and everything they require
(from their installed metadata), and nothing else; a Python started with ``-S`` (no site-packages) and that
folder on ``PYTHONPATH`` then sees exactly those packages, as a fresh ``pip install`` of them would, without
downloading anything. ``python -S`` with such a folder is what the fast tests use; the slow test installs
the wheel into a real fresh venv and exposes the same folder there through a ``.pth`` file.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
from typing import Iterable, Set

BASE = ("numpy", "pillow", "threadpoolctl", "starlette", "uvicorn", "h11", "python-multipart")
"""The base install's distributions (pyproject.toml [project] dependencies)."""
ROUTES = {"runtime-onnx": ("onnxruntime",), "runtime-tflite": ("ai-edge-litert",), "runtime-openvino": ("openvino",)}
"""What each TensorFlow-free extra adds (pyproject.toml [project.optional-dependencies])."""
FORBIDDEN = ("tensorflow", "keras", "scipy", "matplotlib", "pycocotools", "tf2onnx")
"""Modules the TensorFlow-free routes must neither need nor see."""


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_closure(names: Iterable[str]) -> Set[str]:
    """The installed distributions ``names`` need (their requirements without extras, recursively)."""
    todo, seen = [_norm(n) for n in names], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # an optional or platform requirement that is not installed here
        seen.add(name)
        for req in dist.requires or []:
            if "extra ==" in req or "extra==" in req:
                continue
            if ";" in req and "python_version" not in req and "sys_platform" not in req:
                continue
            todo.append(_norm(re.split(r"[\s;<>=!~\[(]", req, maxsplit=1)[0]))
    return seen


def link_packages(dest: str, names: Iterable[str]) -> Set[str]:
    """Links in ``dest`` to the installed files of ``names`` and their requirements (top-level modules,
    their ``.libs`` folders and dist-info); returns the distributions linked. A name in
    :data:`FORBIDDEN` among them is a ValueError (the route would pull it in)."""
    dists = requirement_closure(names)
    bad = sorted(dists & set(FORBIDDEN))
    if bad:
        raise ValueError(f"{sorted(names)} require {bad}")
    os.makedirs(dest, exist_ok=True)
    for name in dists:
        dist = importlib.metadata.distribution(name)
        root = str(dist.locate_file(""))
        tops = {str(f).split("/")[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops:
            src, link = os.path.join(root, top), os.path.join(dest, top)
            if top.endswith(".pth") or top == "__pycache__" or os.path.lexists(link) or not os.path.exists(src):
                continue
            os.symlink(src, link)
    return dists
