"""The package as users install it: `pip wheel .` builds a wheel, which installs into a fresh venv and
gives the `maskrcnn-body` command and the 3-line API (no compiler needed: the compiled ops are optional).

The fresh venv sees the dependencies already installed for the tests through a path file (TensorFlow
is not downloaded again), but not this checkout: the package it imports is the wheel's copy."""

import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile

import pytest

pytestmark = pytest.mark.slow  # builds a wheel and a venv

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _run(cmd, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600, **kw)
    assert r.returncode == 0, f"{cmd}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    return r


def _build_wheel(tmp_path, with_ops: bool) -> pathlib.Path:
    """A wheel built from a copy of the tracked files (a build writes build/ and *.egg-info/ into its source),
    with or without the compiled ops that `make` built."""
    src = tmp_path / "src"
    files = _run(["git", "ls-files"], cwd=ROOT).stdout.split()
    if not files:
        pytest.skip("not a git checkout")
    if with_ops:
        files += [str(p.relative_to(ROOT)) for p in (ROOT / "maskrcnn_body" / "ops").glob("*.so")]
    for f in files:
        (src / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, src / f)
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", dist, src], cwd=tmp_path)
    (wheel,) = dist.glob("maskrcnn_body-*.whl")
    return wheel


def test_wheel_with_compiled_ops_is_tagged_for_its_platform(tmp_path):
    """Native code in a wheel tagged py3-none-any would install on any platform; with the ops the wheel
    names this platform, without them it is pure."""
    if not list((ROOT / "maskrcnn_body" / "ops").glob("*.so")):
        pytest.skip("the compiled ops are not built (run `make ops`)")
    wheel = _build_wheel(tmp_path, with_ops=True)
    platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    assert wheel.name.endswith(f"-py3-none-{platform}.whl"), wheel.name
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("maskrcnn_body/ops/") and n.endswith(".so") for n in names)
    meta = next(n for n in names if n.endswith(".dist-info/WHEEL"))
    assert "Root-Is-Purelib: false" in zipfile.ZipFile(wheel).read(meta).decode()


def test_metadata_is_pep621_and_agrees_with_the_package(tmp_path):
    """pyproject.toml's [project] is the metadata: name, version (from version.py), the console script and
    the extras that the README and error messages name."""
    import tomllib

    from maskrcnn_body.version import __version__

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["build-system"]["build-backend"] == "setuptools.build_meta"
    meta = project["project"]
    assert meta["name"] == "maskrcnn_body" and "version" in meta["dynamic"]
    assert meta["scripts"] == {"maskrcnn-body": "maskrcnn_body.cli:main"}
    assert {"cpu", "gpu", "onnx", "openvino", "video", "gui", "test"} <= set(meta["optional-dependencies"])
    wheel = _build_wheel(tmp_path, with_ops=False)
    with zipfile.ZipFile(wheel) as z:
        text = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    assert f"Version: {__version__}" in text and "Provides-Extra: gui" in text


def test_wheel_installs_into_a_fresh_venv_and_runs(tmp_path):
    from maskrcnn_body.version import __version__

    wheel = _build_wheel(tmp_path, with_ops=False)
    assert wheel.name == f"maskrcnn_body-{__version__}-py3-none-any.whl"
    names = zipfile.ZipFile(wheel).namelist()
    assert not any(n.endswith(".so") for n in names)
    assert "maskrcnn_body/inference/api.py" in names and not any(n.startswith("tests/") for n in names)
    assert any(n.endswith("entry_points.txt") for n in names)

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    py = venv / "bin" / "python"
    site = pathlib.Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    # the test environment's packages (TensorFlow, numpy, ...) as a fallback, after the venv's own
    (site / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "--no-index", wheel])

    exe = venv / "bin" / "maskrcnn-body"
    assert exe.exists()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH="")
    out = _run([exe, "--help"], env=env, cwd=tmp_path).stdout
    assert "train" in out and "predict" in out

    # a tiny model written by the installed package, then the three lines
    script = textwrap.dedent(f"""
        import numpy as np, keras, maskrcnn_body as mb
        assert mb.__file__.startswith({str(site)!r}), mb.__file__
        from maskrcnn_body.config import get_config
        from maskrcnn_body.inference.loading import write_train_dir
        from maskrcnn_body.model.maskrcnn import build_model
        keras.utils.set_random_seed(0)
        cfg = get_config("cpu_small", **{{"input.min_size": 64, "input.max_size": 64,
                                         "model.postprocess.score_threshold": 0.0}})
        write_train_dir(build_model(cfg), cfg, "tiny")
        model = mb.load("tiny", score_threshold=0.0)
        r = model(np.zeros((48, 64, 3), np.uint8))[0]
        print(len(r.persons), r.part_map.shape, r.plot().dtype)
    """)
    out = _run([py, "-c", script], env=env, cwd=tmp_path).stdout
    assert "(48, 64) uint8" in out
