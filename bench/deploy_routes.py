"""Install size and start-up time of each install route (docs/DEPLOY.md; docs/BENCHMARKS.md, "Deployment").

    python -m bench.deploy_routes --out output/deploy_routes          # all routes (downloads from PyPI once)
    python -m bench.deploy_routes --routes base,runtime-onnx --repeats 3

For each route (``base``: ``pip install maskrcnn_body``; ``runtime-onnx``, ``runtime-tflite``,
``runtime-openvino``: ``pip install "maskrcnn_body[ROUTE]"``; ``cpu``: ``[cpu]``, TensorFlow) a fresh venv
without pip gets this checkout's wheel and the route's dependencies (resolved by pip from the configured
index; ``--pip_cache`` keeps the downloads for reruns; ``base-before``: the base install as it was before
issue 29, for comparison). Measured:

* ``site-packages MB``: ``du`` of the venv's site-packages (the package, its dependencies, nothing else);
* ``import s``: wall time of ``import maskrcnn_body; from maskrcnn_body.inference import api`` plus the
  engine's own import (the first thing :func:`mb.load` does), in a fresh process;
* ``load s`` / ``first call s``: :func:`mb.load` of a random-weight ``cpu_small`` model (the route's format:
  ``.onnx``, ``.tflite``, or the training directory for ``cpu``) and its first call on a 128x96 image
  (``to_json`` included); medians of ``--repeats`` fresh processes.

The models are exported here once, with the TensorFlow of the running interpreter (the orchestrator needs
TensorFlow and tf2onnx; the measured venvs do not).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROUTES = {
    "base-before": ("", None, None),
    "base": ("", None, None),
    "runtime-onnx": ("runtime-onnx", "onnx", "onnxruntime"),
    "runtime-tflite": ("runtime-tflite", "tflite", "tflite"),
    "runtime-openvino": ("runtime-openvino", "onnx", "openvino"),
    "cpu": ("cpu", "train_dir", "tensorflow"),
}
"""route -> (extra, model format, backend)."""
BASE_BEFORE = [
    "numpy>=1.26",
    "pillow>=10",
    "scipy>=1.11",
    "pycocotools>=2.0.7",
    "absl-py>=2.0",
    "matplotlib>=3.8",
    "starlette>=0.40,<2",
    "uvicorn>=0.30,<1",
    "h11>=0.14",
    "python-multipart>=0.0.18",
    "threadpoolctl>=3.1",
]
"""The base dependencies before issue 29 (``base-before``: the wheel with these instead of its own)."""
ENGINE_MODULE = {"onnxruntime": "onnxruntime", "tflite": "ai_edge_litert.interpreter", "openvino": "openvino"}

WORKER = r"""
import json, sys, time
t0 = time.perf_counter()
import maskrcnn_body as mb
from maskrcnn_body.inference import api
t_pkg = time.perf_counter() - t0
path, backend = sys.argv[1], sys.argv[2]
out = {"import_package_s": t_pkg, "modules": []}
if backend != "none":
    import importlib
    from maskrcnn_body.inference import backends
    t0 = time.perf_counter()
    importlib.import_module(backends.TFLITE_RUNTIMES[backends.tflite_runtime()] if backend == "tflite" else backend)
    out["import_engine_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = mb.load(path, backend=backend, score_threshold=0.0)
    out["load_s"] = time.perf_counter() - t0
    import numpy as np
    image = np.random.default_rng(0).integers(0, 255, (96, 128, 3), np.uint8)
    t0 = time.perf_counter()
    r = model(image)[0]
    r.to_json()
    out["first_call_s"] = time.perf_counter() - t0
    out["persons"] = len(r.persons)
out["modules"] = sorted(m for m in ("tensorflow", "keras", "scipy", "matplotlib", "pycocotools", "cv2")
                        if m in sys.modules)
print("DEPLOY_RESULT " + json.dumps(out))
"""


def run(cmd, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return r


def build_wheel(work: str) -> str:
    """This checkout's tracked files (as they are now) as a pure wheel (no compiled ops)."""
    src = os.path.join(work, "src")
    for f in run(["git", "ls-files"], cwd=REPO_ROOT).stdout.split():
        os.makedirs(os.path.dirname(os.path.join(src, f)) or src, exist_ok=True)
        shutil.copy2(os.path.join(REPO_ROOT, f), os.path.join(src, f))
    dist = os.path.join(work, "dist")
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", dist, src])
    (wheel,) = [os.path.join(dist, f) for f in os.listdir(dist) if f.endswith(".whl")]
    return wheel


def export_models(work: str) -> dict:
    """A random-weight cpu_small training directory and its .onnx and .tflite exports."""
    train_dir = os.path.join(work, "model", "run")
    onnx, tflite = os.path.join(work, "model", "model.onnx"), os.path.join(work, "model", "model.tflite")
    if os.path.exists(onnx) and os.path.exists(tflite):  # from an earlier run in the same --out
        return {"train_dir": train_dir, "onnx": onnx, "tflite": tflite}
    script = (
        "import sys; sys.path.insert(0, 'tests')\n"
        "from helpers.models import write_random_train_dir\n"
        f"write_random_train_dir({train_dir!r}, 'cpu_small', seed=0)\n"
    )
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env)
    export = [sys.executable, "train/export.py", "--train_dir", train_dir, "--onnx", onnx, "--tflite", tflite]
    run(export, cwd=REPO_ROOT, env=env)
    return {"train_dir": train_dir, "onnx": onnx, "tflite": tflite}


def make_venv(work: str, route: str, wheel: str, pip_cache: str) -> str:
    venv = os.path.join(work, "venv-" + route)
    shutil.rmtree(venv, ignore_errors=True)
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    py = os.path.join(venv, "bin", "python")
    extra = ROUTES[route][0]
    pip = [sys.executable, "-m", "pip", "--python", py, "install", "-q", "--cache-dir", pip_cache]
    if route == "base-before":
        run([*pip, "--no-deps", wheel])
        run([*pip, *BASE_BEFORE], timeout=3600)
    else:
        run([*pip, f"{wheel}[{extra}]" if extra else wheel], timeout=3600)
    return py


def site_packages_mb(py: str) -> float:
    site = run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    return int(run(["du", "-sk", site]).stdout.split()[0]) / 1024


def measure(py: str, route: str, models: dict, repeats: int, work: str) -> dict:
    _, fmt, backend = ROUTES[route]
    path = models[fmt] if fmt else ""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", MASKRCNN_BODY_CACHE=os.path.join(work, "cache"))
    runs = []
    for _ in range(repeats):
        r = run([py, "-c", WORKER, path, backend or "none"], cwd=work, env=env, timeout=900)
        line = next(x for x in r.stdout.splitlines() if x.startswith("DEPLOY_RESULT "))
        runs.append(json.loads(line[len("DEPLOY_RESULT ") :]))
    out = {"site_packages_mb": site_packages_mb(py), "modules": runs[0]["modules"]}
    for key in ("import_package_s", "import_engine_s", "load_s", "first_call_s"):
        if key in runs[0]:
            out[key] = statistics.median(x[key] for x in runs)
    out["packages"] = run([sys.executable, "-m", "pip", "--python", py, "list", "--format=freeze"]).stdout.split()
    return out


def table(results: dict) -> str:
    rows = [
        "| route | install | site-packages MB | import s (package + engine) | load s | first call s | "
        "TensorFlow / scipy / matplotlib / pycocotools imported |",
        "|---|---|---|---|---|---|---|",
    ]
    for route, r in results.items():
        extra = ROUTES[route][0]
        install = f'`pip install "maskrcnn_body[{extra}]"`' if extra else "`pip install maskrcnn_body`"
        if route == "base-before":
            install = "the same, before issue 29 (+ scipy, matplotlib, pycocotools, absl-py)"
        imp = r["import_package_s"] + r.get("import_engine_s", 0.0)
        load = f"{r['load_s']:.2f}" if "load_s" in r else "-"
        first = f"{r['first_call_s']:.2f}" if "first_call_s" in r else "-"
        mods = ", ".join(m for m in r["modules"] if m != "cv2") or "none"
        rows.append(f"| {route} | {install} | {r['site_packages_mb']:.0f} | {imp:.2f} | {load} | {first} | {mods} |")
    return "\n".join(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--routes", default=",".join(ROUTES), help="comma-separated (default: %(default)s)")
    p.add_argument("--out", default="output/deploy_routes", help="work folder and results.json (default: %(default)s)")
    p.add_argument("--pip_cache", default=os.path.join(tempfile.gettempdir(), "maskrcnn_body_pip_cache"))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--reuse", action="store_true", help="measure the venvs of an earlier run again (no install)")
    args = p.parse_args(argv)
    work = os.path.abspath(args.out)
    os.makedirs(work, exist_ok=True)
    wheel = build_wheel(work)
    models = export_models(work)
    results_path = os.path.join(work, "results.json")
    results = {}
    if os.path.exists(results_path):  # an earlier run's routes; those measured now replace theirs
        with open(results_path) as f:
            results = json.load(f)
    for route in args.routes.split(","):
        py = os.path.join(work, "venv-" + route, "bin", "python")
        if not (args.reuse and os.path.exists(py)):
            print(f"{route}: installing", flush=True)
            py = make_venv(work, route, wheel, args.pip_cache)
        results[route] = measure(py, route, models, args.repeats, work)
        print(f"{route}: {json.dumps({k: v for k, v in results[route].items() if k != 'packages'})}", flush=True)
        with open(results_path, "w") as f:
            json.dump(results, f, indent=1)
    print(table({r: results[r] for r in ROUTES if r in results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
