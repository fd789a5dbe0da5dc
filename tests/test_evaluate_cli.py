"""train/evaluate.py end to end: a random-weight model on a few synthetic records -> one dump per image,
metrics JSON in the documented format; draw/metric.py reads the same dumps without TensorFlow."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = {
    "input.min_size": 64,
    "input.max_size": 64,
    "model.postprocess.score_threshold": 0.0,
    "model.postprocess.max_detections": 5,
}

pytestmark = pytest.mark.slow  # end-to-end CLI: `make test-fast` leaves these out


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from helpers.models import write_random_train_dir
    from maskrcnn_body.convert import synthetic

    d = tmp_path_factory.mktemp("eval")
    synthetic.write_dataset(
        str(d / "syn"), num_train=0, num_val=3, seed=1, size=64, num_shards=1, num_workers=1, progress=False
    )
    write_random_train_dir(str(d / "run"), "cpu_small", **SMALL)  # returns the checkpoint path
    return d, str(d / "run")


def _run(args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable] + args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_evaluate_writes_dumps_and_metrics(setup):
    d, train_dir = setup
    dumps, js = str(d / "dumps"), str(d / "m.json")
    r = _run(
        [
            "train/evaluate.py",
            "--train_dir",
            train_dir,
            "--records",
            str(d / "syn_val-*.tfrecord"),
            "--dump_dir",
            dumps,
            "--json",
            js,
        ]
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert len([f for f in os.listdir(dumps) if f.endswith(".npz")]) == 3
    m = json.load(open(js))
    assert set(m) >= {"box", "mask", "parsing", "keypoints", "left_right_confusion", "legacy"}
    assert set(m["mask"]) == {"body", "head", "torso", "left_arm", "right_arm", "left_leg", "right_leg", "complete"}
    r2 = _run(["draw/metric.py", "--dumps", dumps, "--json", str(d / "m2.json")])
    assert r2.returncode == 0, r2.stderr[-3000:]
    assert json.load(open(d / "m2.json")) == m


def test_evaluate_missing_train_dir_is_a_clear_error(setup):
    d, _ = setup
    r = _run(["train/evaluate.py", "--train_dir", str(d / "nope")])
    assert r.returncode == 2 and "config.json not found" in r.stderr
