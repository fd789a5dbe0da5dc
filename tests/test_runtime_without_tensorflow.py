"""The TensorFlow-free install routes (docs/DEPLOY.md): ``pip install "maskrcnn_body[runtime-onnx]"`` /
``[runtime-tflite]`` run an exported model through ``mb.load`` with neither TensorFlow nor scipy, matplotlib or
pycocotools installed, and give the same results as the TensorFlow install.

Fast tier: a Python started with ``-S`` that sees only the route's packages (:mod:`helpers.restricted`: links
to the installed base and runtime distributions and what they require) runs stand-in exports
(:mod:`helpers.exports`) through the API and the command line. Slow tier: the wheel, built as users get it,
installed into a fresh venv that sees only those packages, runs a real ``cpu_small`` export (ONNX and TFLite)
and matches TensorFlow's result on the SavedModel of the same model.
"""

import json
import os
import pathlib
import subprocess
import sys
import sysconfig
import textwrap

import numpy as np
import pytest
from PIL import Image

import maskrcnn_body as mb
from helpers import restricted
from helpers.exports import MIN_SIZE, write_standin_onnx, write_standin_tflite
from helpers.masks import assert_masks_close

ROOT = pathlib.Path(__file__).resolve().parents[1]
ENGINE = {"runtime-onnx": "onnxruntime", "runtime-tflite": "ai_edge_litert"}

# asserts that the route sees none of the heavy packages, then runs the model and prints its results as JSON
PROBE = textwrap.dedent("""
    import importlib.util, json, sys
    import numpy as np
    forbidden = {forbidden!r}
    for name in forbidden:
        assert importlib.util.find_spec(name) is None, name + " is importable"
    try:
        import tensorflow  # noqa: F401
        raise AssertionError("import tensorflow worked")
    except ModuleNotFoundError:
        pass
    import maskrcnn_body as mb
    from maskrcnn_body.inference import backends
    assert mb.__file__.startswith({package_root!r}), mb.__file__
    model = mb.load(sys.argv[1], score_threshold=0.0)
    r = model(sys.argv[2])[0]
    plot = r.plot()
    print("PROBE " + json.dumps({{
        "backend": model.backend, "json": r.to_json(), "boxes": r.detections["boxes"].tolist(),
        "masks": r.detections["masks"].tolist(), "keypoints": r.detections["keypoints"].tolist(),
        "part_map": np.bincount(r.part_map.ravel(), minlength=7).tolist(), "plot": list(plot.shape),
        "tflite_runtime": backends.tflite_runtime() if backends.is_available("tflite") else None,
        "loaded": sorted(m for m in forbidden if m in sys.modules),
    }}))
""")


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600, **kw)
    assert r.returncode == 0, f"{cmd}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    return r


def _probe(python, args, env, package_root: str) -> dict:
    code = PROBE.format(forbidden=restricted.FORBIDDEN, package_root=package_root)
    out = _run([*python, "-c", code, *args], env=env, cwd=os.path.dirname(args[1])).stdout  # not this checkout
    return json.loads(next(x for x in out.splitlines() if x.startswith("PROBE "))[len("PROBE ") :])


def _route_site(tmp_path, route: str) -> str:
    if route == "runtime-tflite":
        pytest.importorskip("ai_edge_litert", reason="the [runtime-tflite] extra (ai-edge-litert) is not installed")
    else:
        pytest.importorskip(ENGINE[route], reason=f"the [{route}] extra is not installed")
    site = str(tmp_path / f"site-{route}")
    linked = restricted.link_packages(site, restricted.BASE + restricted.ROUTES[route])
    assert not linked & set(restricted.FORBIDDEN)
    return site


def _restricted_env(site: str) -> dict:
    """``python -S`` with only the route's packages and this checkout on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return dict(env, PYTHONPATH=f"{ROOT}{os.pathsep}{site}", PYTHONNOUSERSITE="1", TF_CPP_MIN_LOG_LEVEL="2")


def _image(path) -> str:
    h, w = MIN_SIZE
    image = np.random.default_rng(0).integers(0, 255, (h, w, 3), np.uint8)
    Image.fromarray(image).save(path)
    return str(path)


@pytest.mark.parametrize("route", ["runtime-onnx", "runtime-tflite"])
def test_an_export_runs_through_mb_load_where_only_the_route_is_installed(tmp_path, route):
    """The route's packages only (no TensorFlow, keras, scipy, matplotlib, pycocotools): the same Result, JSON,
    part map and drawing as in the full install."""
    site = _route_site(tmp_path, route)
    if route == "runtime-onnx":
        pytest.importorskip("onnx", reason="the onnx package writes the stand-in model")
        model = write_standin_onnx(str(tmp_path / "m.onnx"))
    else:
        pytest.importorskip("tensorflow", reason="TensorFlow converts the stand-in model")
        model = write_standin_tflite(str(tmp_path / "m.tflite"))
    image = _image(tmp_path / "in.png")
    got = _probe([sys.executable, "-S"], [model, image], _restricted_env(site), str(ROOT))
    assert got["loaded"] == []
    assert got["backend"] == {"runtime-onnx": "onnxruntime", "runtime-tflite": "tflite"}[route]
    if route == "runtime-tflite":
        assert got["tflite_runtime"] == "litert"  # LiteRT, not tf.lite
    want = mb.load(model, score_threshold=0.0)(image)[0]  # this process: the full install
    assert got["json"] == json.loads(json.dumps(want.to_json())) and len(want.persons) == 2
    np.testing.assert_array_equal(got["boxes"], want.detections["boxes"])
    np.testing.assert_array_equal(got["masks"], want.detections["masks"])
    assert got["part_map"] == np.bincount(want.part_map.ravel(), minlength=7).tolist()
    assert got["plot"] == list(want.plot().shape)


def test_predict_command_runs_an_onnx_export_without_tensorflow(tmp_path):
    """``maskrcnn-body predict`` (the command line, not only the API) on the runtime-onnx route, and a device
    this machine lacks is a one-line error naming what to install."""
    site = _route_site(tmp_path, "runtime-onnx")
    pytest.importorskip("onnx", reason="the onnx package writes the stand-in model")
    model = write_standin_onnx(str(tmp_path / "m.onnx"))
    image = _image(tmp_path / "in.png")
    env = _restricted_env(site)
    cli = [sys.executable, "-S", "-m", "maskrcnn_body.cli.main", "predict", "--model", model, "--input", image]
    _run([*cli, "--output", tmp_path / "out", "--score_threshold", "0.5"], env=env, cwd=tmp_path)
    (written,) = (tmp_path / "out").glob("*.json")
    assert [p["score"] for p in json.loads(written.read_text())["persons"]] == [0.9, 0.7]
    r = subprocess.run([str(c) for c in [*cli, "--device", "cuda"]], env=env, capture_output=True, text=True)
    assert r.returncode == 2 and "onnxruntime-gpu" in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]


def test_serve_answers_with_an_onnx_export_without_tensorflow(tmp_path, monkeypatch):
    """``maskrcnn-body serve`` on the runtime-onnx route answers /v1/predict with the JSON of the full install."""
    import urllib.request

    from helpers.servers import start_server, stop_server

    site = _route_site(tmp_path, "runtime-onnx")
    pytest.importorskip("onnx", reason="the onnx package writes the stand-in model")
    model = write_standin_onnx(str(tmp_path / "m.onnx"))
    image = _image(tmp_path / "in.png")
    for key in [k for k in os.environ if k.startswith("PYTHON")]:
        monkeypatch.delenv(key)
    for key, value in _restricted_env(site).items():
        monkeypatch.setenv(key, value)
    cmd = [sys.executable, "-S", "-m", "maskrcnn_body.cli.main", "serve", "--model", model, "--port", "0"]
    proc, url = start_server(cmd + ["--score_threshold", "0.5"], cwd=str(tmp_path))
    try:
        body = pathlib.Path(image).read_bytes()
        request = urllib.request.Request(f"{url}/v1/predict", data=body, headers={"Content-Type": "image/png"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            got = json.loads(answer.read())
    finally:
        stop_server(proc)
    want = mb.load(model)(image)[0].to_json()
    assert got["persons"] == json.loads(json.dumps(want["persons"])) and len(got["persons"]) == 2


def test_missing_route_says_which_extra_to_install(tmp_path):
    """Only the base install: loading an export names the runtime extra to install."""
    site = str(tmp_path / "site-base")
    restricted.link_packages(site, restricted.BASE)
    pytest.importorskip("onnx", reason="the onnx package writes the stand-in model")
    model = write_standin_onnx(str(tmp_path / "m.onnx"))
    code = "import maskrcnn_body as mb, sys; mb.load(sys.argv[1])"
    r = subprocess.run(
        [sys.executable, "-S", "-c", code, model], env=_restricted_env(site), capture_output=True, text=True
    )
    assert r.returncode != 0 and 'pip install "maskrcnn_body[runtime-onnx]"' in r.stderr, r.stderr[-2000:]
    # a training directory needs TensorFlow: the command line says so and what to load instead
    train_dir = tmp_path / "run"
    train_dir.mkdir()
    (train_dir / "config.json").write_text("{}")
    cli = [sys.executable, "-S", "-m", "maskrcnn_body.cli.main", "predict", "--model", train_dir, "--input", model]
    r = subprocess.run([str(c) for c in cli], env=_restricted_env(site), capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "is a training directory, which needs TensorFlow" in r.stderr and "--onnx model.onnx" in r.stderr


def test_the_routes_here_are_the_ones_pyproject_declares():
    """helpers.restricted's package lists are pyproject.toml's: the base dependencies (none of the heavy ones)
    and each runtime extra's single engine; the backends' install hints name those extras."""
    import tomllib

    from maskrcnn_body.inference import backends

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(reqs):
        return tuple(restricted._norm(r.split(">")[0].split("=")[0].split("<")[0].split("[")[0]) for r in reqs)

    assert names(project["dependencies"]) == restricted.BASE
    assert not set(names(project["dependencies"])) & set(restricted.FORBIDDEN)
    for route, engines in restricted.ROUTES.items():
        assert names(project["optional-dependencies"][route]) == engines, route
    assert {backends.install_hint(b, "onnx" if b != "tflite" else "tflite") for b in ENGINE_BACKENDS} == {
        f'pip install "maskrcnn_body[{route}]"' for route in restricted.ROUTES
    }


ENGINE_BACKENDS = ("onnxruntime", "tflite", "openvino")


# --------------------------------------------------------------------------- slow: the wheel in a fresh venv
@pytest.fixture(scope="module")
def real_exports(tmp_path_factory):
    """A random-weight cpu_small training directory and its SavedModel, ONNX and TFLite exports (the CLI)."""
    pytest.importorskip("tf2onnx")
    from helpers.models import write_random_train_dir

    d = tmp_path_factory.mktemp("real")
    train_dir = str(d / "run")
    write_random_train_dir(train_dir, "cpu_small", seed=0, **{"model.postprocess.score_threshold": 0.0})
    paths = {"savedmodel": str(d / "sm"), "onnx": str(d / "model.onnx"), "tflite": str(d / "model.tflite")}
    export = ["train/export.py", "--train_dir", train_dir, "--saved_model", paths["savedmodel"]]
    _run([sys.executable, *export, "--onnx", paths["onnx"], "--tflite", paths["tflite"]], cwd=ROOT)
    return paths


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_runs_exports_without_tensorflow_and_matches_it(tmp_path, real_exports):
    """The wheel (as ``pip install`` gets it) in a fresh venv that sees only the base install and the
    runtime-onnx and runtime-tflite routes: ``import tensorflow`` fails there, ``mb.load(export)`` works and
    its result matches TensorFlow's on the SavedModel of the same model (ONNX: the backend tolerances of
    tests/test_backends.py; TFLite: the same)."""
    from test_wheel import _build_wheel

    pytest.importorskip("ai_edge_litert", reason="the [runtime-tflite] extra (ai-edge-litert) is not installed")
    wheel = _build_wheel(tmp_path, with_ops=False)
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    py = venv / "bin" / "python"
    site = pathlib.Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    allowed = tmp_path / "allowed"
    restricted.link_packages(str(allowed), restricted.BASE + restricted.ROUTES["runtime-onnx"] + ("ai-edge-litert",))
    (site / "zz_route_packages.pth").write_text(f"{allowed}\n")  # only the route's packages, not the test env's
    _run([sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "--no-index", wheel])
    assert sysconfig.get_paths()["purelib"] not in (site / "zz_route_packages.pth").read_text()

    image = _image(tmp_path / "in.png")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", MASKRCNN_BODY_CACHE=str(tmp_path / "cache"))
    want = mb.load(real_exports["savedmodel"], backend="tensorflow", score_threshold=0.0)(image)[0].detections
    assert len(want["boxes"]) > 0
    for fmt, backend in (("onnx", "onnxruntime"), ("tflite", "tflite")):
        got = _probe([py], [real_exports[fmt], image], env, str(site))
        assert got["backend"] == backend and got["loaded"] == []
        if fmt == "tflite":
            assert got["tflite_runtime"] == "litert"
        boxes, masks, kps = (np.asarray(got[k], np.float32) for k in ("boxes", "masks", "keypoints"))
        assert len(boxes) == len(want["boxes"]), fmt
        order = np.abs(boxes[:, None] - want["boxes"][None]).max(-1).argmin(1)
        np.testing.assert_allclose(boxes, want["boxes"][order], atol=2e-2, err_msg=fmt)
        assert_masks_close(masks, want["masks"][order], atol=1e-3)
        close = np.abs(kps[..., :2] - want["keypoints"][order][..., :2]).max(-1) <= 1e-2
        assert close.mean() >= 0.9, (fmt, close.mean())
    r = _run(
        [venv / "bin" / "maskrcnn-body", "predict", "--model", real_exports["onnx"], "--input", image]
        + ["--output", tmp_path / "out"],
        env=env,
        cwd=tmp_path,
    )
    assert list((tmp_path / "out").glob("*.json")), r.stdout[-2000:]


def test_features_outside_the_base_install_name_their_extra(tmp_path):
    """Only the base install: the metrics' plots, COCO metrics and dataset converters say which extra to install
    (a one-line UserError, not a bare ModuleNotFoundError); inference's JSON needs none of them."""
    site = str(tmp_path / "site-base")
    restricted.link_packages(site, restricted.BASE)
    code = textwrap.dedent("""
        import numpy as np
        from maskrcnn_body.errors import MissingDependency, UserError
        def message(fn):
            try:
                fn()
            except MissingDependency as e:
                assert isinstance(e, UserError) and isinstance(e, ImportError)
                return str(e)
            raise AssertionError("no error")
        print(message(lambda: __import__("maskrcnn_body.drawing.plots")))
        from maskrcnn_body.evaluation import metrics
        print(message(lambda: metrics._rle(np.zeros((4, 4, 1), bool))))
        from maskrcnn_body.convert import jhmdb
        print(message(lambda: jhmdb._loadmat_var("x.mat", "part_mask", 3)))
        from maskrcnn_body.inference import result_json as results
        from maskrcnn_body.ops import paste
        crop = paste.PastedCrop(1, 2, np.ones((3, 2, 7), bool))
        print(results.detections_to_json.__name__, results.encode_crop(crop, 6, 5)[0])
    """)
    out = _run([sys.executable, "-S", "-c", code], env=_restricted_env(site)).stdout.splitlines()
    hint = ", which is not installed: pip install "
    assert out[0] == f'plotting the metrics (PR curves, AP bars) needs matplotlib{hint}"maskrcnn_body[eval]"'
    assert out[1] == f'computing the COCO metrics needs pycocotools{hint}"maskrcnn_body[eval]"'
    assert out[2] == f'reading the dataset\'s .mat annotations needs scipy{hint}"maskrcnn_body[convert]"'
    assert out[3] == "detections_to_json {'size': [6, 5], 'counts': '=3305'}"
