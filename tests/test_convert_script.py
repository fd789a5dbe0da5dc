"""convert_data/download_and_convert_data.sh: conversion steps with --no-download (downloads cannot run here)."""

import os
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.slow  # end-to-end script: `make test-fast` leaves these out

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "convert_data", "download_and_convert_data.sh")


def _run(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(["bash", SCRIPT, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_shellcheck_clean():
    r = subprocess.run(["shellcheck", SCRIPT], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout


def test_convert_step_runs_alone_and_is_skipped_when_done(fixtures_dir, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    os.symlink(fixtures_dir / "pascal_part", data / "pascal_part")
    out = tmp_path / "records"
    r = _run("--no-download", "--data_dir", str(data), "--out_dir", str(out), "--num_workers", "1", "pascal_part")
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(out)) == ["pascal_part_all-00000-of-00001.tfrecord", "pascal_part_all.summary.json"]
    r = _run("--no-download", "--data_dir", str(data), "--out_dir", str(out), "pascal_part")
    assert r.returncode == 0 and "exists, skipped" in r.stderr
    r = _run("--no-download", "--data_dir", str(data), "coco")
    assert r.returncode != 0 and "coco/annotations is missing" in r.stderr
    r = _run("bogus")
    assert r.returncode == 2 and "unknown argument" in r.stderr
