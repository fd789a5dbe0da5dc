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


def test_wheel_installs_into_a_fresh_venv_and_runs(tmp_path):
    from maskrcnn_body.version import __version__

    # build from a copy of the tracked files (a build writes build/ and *.egg-info/ into its source)
    src = tmp_path / "src"
    files = _run(["git", "ls-files"], cwd=ROOT).stdout.split()
    if not files:
        pytest.skip("not a git checkout")
    for f in files:
        (src / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, src / f)
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", dist, src], cwd=tmp_path)
    (wheel,) = dist.glob("maskrcnn_body-*.whl")
    assert f"-{__version__}-" in wheel.name
    names = zipfile.ZipFile(wheel).namelist()
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
