"""Process-level fault: SIGKILL mid-run, then the restarted process resumes.

The stand-in trainer runs in a subprocess (``python tests/helpers/standin.py``)."""

import json
import os
import pathlib
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from maskrcnn_body.training import checkpoints

pytestmark = pytest.mark.slow  # faults in subprocesses: `make test-fast` leaves these out

STANDIN = pathlib.Path(__file__).parent / "helpers" / "standin.py"


def _start(train_dir, max_steps, step_sleep=0.0, checkpoint_every=1, kill_at=""):
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
    if kill_at:
        cmd += ["--kill_at", kill_at]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _events(stdout):
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def _listed_checkpoints_load(train_dir):
    """Every checkpoint the state file lists loads, and holds the step its name says; returns their steps."""
    state = tf.train.get_checkpoint_state(str(train_dir))
    steps = []
    for p in state.all_model_checkpoint_paths:
        step = int(p.rsplit("-", 1)[1])
        assert tf.train.load_checkpoint(p).get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == step
        steps.append(step)
    assert state.model_checkpoint_path == state.all_model_checkpoint_paths[-1]
    return steps


# The kill lands inside the save of step 4 on purpose (Checkpointer.fault_hook), at each stage of the
# save/rotation window: new files complete but not listed / state rewritten but old files not deleted / done.
# max_to_keep is 3, so the save of step 4 rotates ckpt-1 out.
@pytest.mark.parametrize(
    ("point", "newest"),
    [("written", 3), ("recorded", 4), ("deleted", 4)],
)
def test_sigkill_inside_checkpoint_rotation_then_resume(tmp_path, point, newest):
    proc = _start(tmp_path, max_steps=10_000, kill_at=f"{point}:4")
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == -signal.SIGKILL, err[-3000:]
    assert _events(out)[-1] == {"event": "killing", "point": point, "step": 4}
    # what is on disk is consistent: every listed checkpoint loads, the newest complete one is listed
    steps = _listed_checkpoints_load(tmp_path)
    assert steps[-1] == newest and len(steps) <= 3
    killed_at = newest
    saved_kernel = tf.train.load_checkpoint(str(tmp_path)).get_tensor(
        checkpoints.escape_name("model/standin/box/kernel") + checkpoints.VALUE_SUFFIX
    )

    again = _start(tmp_path, max_steps=killed_at + 2)
    out, err = again.communicate(timeout=180)
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
    # after the resumed run's saves, the directory holds exactly the listed checkpoints (left-overs swept)
    steps = _listed_checkpoints_load(tmp_path)
    assert steps == [killed_at, killed_at + 1, killed_at + 2]
    on_disk = sorted({f.name.split(".")[0] for f in tmp_path.glob("ckpt-*")})
    assert on_disk == sorted(f"ckpt-{s}" for s in steps)
