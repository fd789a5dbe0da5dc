"""Process-level fault: SIGKILL mid-run, then the restarted process resumes.

The stand-in trainer runs in a subprocess (``python tests/helpers/standin.py``)."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from maskrcnn_body.training import checkpoints

pytestmark = pytest.mark.slow  # faults in subprocesses: `make test-fast` leaves these out

STANDIN = pathlib.Path(__file__).parent / "helpers" / "standin.py"


def _start(train_dir, max_steps, step_sleep=0.0, checkpoint_every=1):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    cmd = [
        sys.executable,
        str(STANDIN),
        "--train_dir",
        str(train_dir),
        "--max_steps",
        str(max_steps),
        "--checkpoint_every",
        str(checkpoint_every),
        "--step_sleep",
        str(step_sleep),
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _events(stdout):
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def _wait_for_checkpoint(train_dir, min_step, proc, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        latest = tf.train.latest_checkpoint(str(train_dir))
        if latest and int(latest.rsplit("-", 1)[1]) >= min_step:
            return latest
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint >= {min_step} after {timeout}s")


def test_sigkill_mid_run_then_resume(tmp_path):
    proc = _start(tmp_path, max_steps=10_000, step_sleep=0.02)
    _wait_for_checkpoint(tmp_path, 3, proc)
    time.sleep(0.13)  # land somewhere inside a later step / save
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    latest = tf.train.latest_checkpoint(str(tmp_path))
    killed_at = int(latest.rsplit("-", 1)[1])
    # every checkpoint the state file lists must load
    state = tf.train.get_checkpoint_state(str(tmp_path))
    for p in state.all_model_checkpoint_paths:
        assert tf.train.load_checkpoint(p).get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == int(p.rsplit("-", 1)[1])
    saved_kernel = tf.train.load_checkpoint(latest).get_tensor(
        checkpoints.escape_name("model/standin/box/kernel") + checkpoints.VALUE_SUFFIX
    )

    again = _start(tmp_path, max_steps=killed_at + 2)
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err[-3000:]
    ev = _events(out)
    assert ev[0]["event"] == "start" and ev[0]["step"] == killed_at
    assert ev[0]["restored"].endswith(f"ckpt-{killed_at}")
    assert ev[-1] == {"event": "done", "step": killed_at + 2, "stopped_by": "max_steps"}
    # the resumed run started from the saved weights: two small steps away from them
    final = tf.train.load_checkpoint(str(tmp_path)).get_tensor(
        checkpoints.escape_name("model/standin/box/kernel") + checkpoints.VALUE_SUFFIX
    )
    assert 0 < np.abs(final - saved_kernel).max() < 0.5
