"""The in-browser demo: a self-contained static folder (page, ONNX Runtime Web, model) that runs the model in
the visitor's browser (``maskrcnn-body export --web DIR``; docs/BROWSER.md): the folder writer.
The page's files are package data beside the server's page (``maskrcnn_body/serving/static/browser/``).

The folder::

    index.html  app.js  paste.js                the page (static/browser/): the server demo's look and controls
    style.css                                   the server demo page's own <style> (static/index.html): one look
    sw.js                                       service worker: a copy of everything, so the page opens offline
    config.json                                 drawing constants (drawing.palette), model input, thresholds
    model.onnx                                  the ONNX export (inference.exporting.export_onnx)
    runtime/ort.wasm.min.mjs, runtime/ort-wasm-simd-threaded.{mjs,wasm}, runtime/package.json
                                                ONNX Runtime Web, from the npm registry (static/browser/runtime.json:
                                                pinned version + sha512; fetched by web/fetch_runtime.py, `make web`)

Any static file server serves it (``python -m http.server``: one WebAssembly thread); with the
cross-origin isolation headers (:data:`ISOLATION_HEADERS`) the page can use several threads.
``maskrcnn-body serve --web DIR`` serves it under ``/web/`` with those headers. The page carries its own
Content-Security-Policy (a ``<meta>`` tag): it loads nothing from any other origin.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from importlib import resources
from typing import Dict, List

from maskrcnn_body.drawing import palette
from maskrcnn_body.errors import UserError

PAGE_FILES = ("index.html", "app.js", "paste.js", "sw.js")
ISOLATION_HEADERS = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp"}
"""Headers that make the page cross-origin isolated (SharedArrayBuffer: multi-threaded WebAssembly)."""
MASK_THRESHOLD = 0.5
FETCH_HINT = "run `make web` (= python web/fetch_runtime.py) in a source checkout; it needs Node.js's npm"


def static_dir() -> str:
    """The page's source folder inside the package (``serving/static/browser``)."""
    return str(resources.files("maskrcnn_body.serving").joinpath("static/browser"))


def runtime_spec() -> dict:
    """``static/browser/runtime.json``: the pinned npm package, its sha512 integrity and the files used."""
    with open(os.path.join(static_dir(), "runtime.json")) as f:
        return json.load(f)


def runtime_dir() -> str:
    """Where ``web/fetch_runtime.py`` puts the runtime's files (``static/browser/runtime``, not in git)."""
    return os.path.join(static_dir(), "runtime")


def runtime_files() -> Dict[str, str]:
    """``{name: path}`` of the fetched runtime files; a :class:`UserError` saying how to get them when
    they are missing, from another version than ``runtime.json`` pins, or changed since the fetch (their
    SHA-256 against the fetch's stamp)."""
    spec, folder = runtime_spec(), runtime_dir()
    stamp = os.path.join(folder, "runtime.json")
    files = {os.path.basename(f): os.path.join(folder, os.path.basename(f)) for f in spec["files"]}
    missing = [n for n, p in files.items() if not os.path.isfile(p)]
    have = None
    if os.path.isfile(stamp):
        with open(stamp) as stamp_file:
            have = json.load(stamp_file)
    changed = []
    if not missing and have and have.get("integrity") == spec["integrity"]:
        sums = have.get("sha256", {})
        for name, path in files.items():
            with open(path, "rb") as f:
                if hashlib.sha256(f.read()).hexdigest() != sums.get(name):
                    changed.append(name)
    if missing or not have or have.get("integrity") != spec["integrity"] or changed:
        if missing:
            what = f"missing {', '.join(missing)}"
        elif changed:
            what = f"not as npm shipped it ({', '.join(changed)} changed since the fetch)"
        else:
            what = "not the pinned version"
        raise UserError(
            f"the browser runtime ({spec['package']}@{spec['version']}) is {what} in {folder}: {FETCH_HINT}"
        )
    return files


def page_style() -> str:
    """The CSS of the server's demo page (the ``<style>`` block of ``static/index.html``): the in-browser
    page's ``style.css``, so the two pages share one look."""
    html = resources.files("maskrcnn_body.serving").joinpath("static/index.html").read_text("utf-8")
    found = re.search(r"<style>(.*?)</style>", html, re.S)
    if not found:
        raise RuntimeError("static/index.html has no <style> block for the in-browser page")
    return "/* maskrcnn_body/serving/static/index.html's style, for the in-browser page */\n" + found.group(1).lstrip()


def page_config(onnx_path: str, score_threshold: float, threads: int = 0) -> dict:
    """``config.json`` of the page: :func:`~maskrcnn_body.drawing.palette.page_constants` (colours, names), the
    upload limits, the model's input name, the thresholds and the runtime's version."""
    import onnx

    model = onnx.load(onnx_path, load_external_data=False)
    inputs = [i.name for i in model.graph.input]
    if len(inputs) != 1:
        raise UserError(f"{onnx_path}: expected one input (image), found {inputs}")
    spec = runtime_spec()
    return {
        **palette.page_constants(),
        "max_body_bytes": 100 * 1024 * 1024,
        "max_pixels": 40_000_000,
        "min_side": 16,
        "model": "model.onnx",
        "input": inputs[0],
        "score_threshold": float(score_threshold),
        "mask_threshold": MASK_THRESHOLD,
        "threads": int(threads),
        "runtime": {"package": spec["package"], "version": spec["version"]},
    }


def export_web(onnx_path: str, out_dir: str, score_threshold: float = 0.5, threads: int = 0) -> List[str]:
    """Writes the static folder (module doc) for the ONNX model ``onnx_path`` (an ``export_onnx``
    file) into ``out_dir``; returns the files written. ``score_threshold``: the page's default
    (``?threshold=`` overrides it); ``threads``: WebAssembly threads when cross-origin isolated (0:
    ONNX Runtime Web's default, min(4, ceil(cores / 2)); ``?threads=`` overrides it)."""
    runtime = runtime_files()
    if not os.path.isfile(onnx_path):
        raise UserError(f"{onnx_path}: no such ONNX file")
    config = page_config(onnx_path, score_threshold, threads)
    os.makedirs(os.path.join(out_dir, "runtime"), exist_ok=True)
    written = []
    for name in PAGE_FILES:
        written.append(shutil.copyfile(os.path.join(static_dir(), name), os.path.join(out_dir, name)))
    with open(os.path.join(out_dir, "style.css"), "w") as f:
        f.write(page_style())
    written.append(os.path.join(out_dir, "style.css"))
    for name, path in runtime.items():
        written.append(shutil.copyfile(path, os.path.join(out_dir, "runtime", name)))
    target = os.path.join(out_dir, "model.onnx")
    if os.path.abspath(onnx_path) != os.path.abspath(target):
        shutil.copyfile(onnx_path, target)
    written.append(target)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    written.append(os.path.join(out_dir, "config.json"))
    return written


def folder_size(path: str) -> int:
    """Bytes of the files under ``path``."""
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)
