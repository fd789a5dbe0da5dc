"""train/train.py on a fresh machine: no records yet -> it generates the synthetic splits, trains,
checkpoints, evaluates on the synthetic val split and prints the per-part table.

Run in a temporary working directory so the default ``data/records/`` globs match nothing."""

import glob
import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf

pytestmark = pytest.mark.slow  # end-to-end CLI: `make test-fast` leaves these out

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_fresh_machine_run_generates_data_trains_and_evaluates(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    cmd = [
        sys.executable,
        os.path.join(ROOT, "train", "train.py"),
        "--num_train",
        "4",
        "--num_val",
        "2",
        "--max_steps",
        "2",
        "--batch_size",
        "2",
        "--set",
        "input.min_size=64",
        "--set",
        "input.max_size=64",
        "--set",
        "train.checkpoint_every=1",
        "--set",
        "train.log_every=1",
        "--set",
        "model.postprocess.max_detections=5",
        "--train_dir",
        "run",
    ]
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    out = r.stdout
    # the synthetic dataset was generated where the default globs look
    assert "generating the synthetic dataset (4 train / 2 val images)" in out
    summary = json.load(open(tmp_path / "data" / "records" / "synthetic.summary.json"))
    assert summary["splits"]["train"]["images_written"] == 4, summary
    assert summary["splits"]["val"]["images_written"] == 2, summary
    assert glob.glob(str(tmp_path / "data" / "records" / "synthetic_val-*.tfrecord"))
    # trained to the end, with a loadable checkpoint at the last step
    assert "finished at step 2 (max_steps)" in out
    ckpt = tf.train.latest_checkpoint(str(tmp_path / "run"))
    assert ckpt.endswith("ckpt-2")
    assert tf.train.load_checkpoint(ckpt).get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 2
    # evaluated on the generated val split: a per-part table with every channel
    for part in ("body", "head", "torso", "left_arm", "right_arm", "left_leg", "right_leg"):
        assert part in out, part
    assert os.path.exists(tmp_path / "run" / "config.json")
