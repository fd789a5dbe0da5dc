"""MultiWorkerMirroredStrategy: two CPU worker processes on 127.0.0.1 train the stand-in model
for a few steps and must end with identical weights (and the chief's checkpoint), equal to one
process training at the same global batch."""

import json
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

pytestmark = pytest.mark.slow  # multi-worker processes: `make test-fast` leaves these out

STANDIN = pathlib.Path(__file__).parent / "helpers" / "standin.py"


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_two_workers_finish_with_identical_weights(tmp_path):
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    procs = []
    for i in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}
        env = dict(os.environ, TF_CONFIG=json.dumps(tf_config), TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
        cmd = [
            sys.executable,
            str(STANDIN),
            "--strategy",
            "multi_worker",
            "--train_dir",
            str(tmp_path / "run"),
            "--max_steps",
            "3",
            "--checkpoint_every",
            "2",
            "--weights_out",
            str(tmp_path / f"w{i}.npz"),
        ]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=240))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-4000:]
        assert '"event": "done", "step": 3' in out
    w0, w1 = np.load(tmp_path / "w0.npz"), np.load(tmp_path / "w1.npz")
    assert len(w0.files) == len(w1.files) > 0
    for k in w0.files:
        np.testing.assert_array_equal(w0[k], w1[k])
    assert tf.train.latest_checkpoint(str(tmp_path / "run")).endswith("ckpt-3")
    assert not os.path.exists(tmp_path / "run" / ".worker1_tmp")  # non-chief scratch removed
    # one process at the same global batch (2 workers x 2) sees the same batches: the same weights
    single = subprocess.run(
        [
            sys.executable,
            str(STANDIN),
            "--train_dir",
            str(tmp_path / "single"),
            "--max_steps",
            "3",
            "--checkpoint_every",
            "0",
            "--global_batch",
            "4",
            "--weights_out",
            str(tmp_path / "single.npz"),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES=""),
    )
    assert single.returncode == 0, single.stderr[-3000:]
    ws = np.load(tmp_path / "single.npz")
    for k in w0.files:
        np.testing.assert_allclose(w0[k], ws[k], rtol=1e-5, atol=1e-6, err_msg=k)
    init = tf.train.load_checkpoint(str(tmp_path / "run" / "ckpt-2"))
    assert not np.array_equal(
        init.get_tensor("model.Sstandin.Sbox.Skernel/.ATTRIBUTES/VARIABLE_VALUE"), w0["arr_2"]
    )  # the weights did move after step 2
