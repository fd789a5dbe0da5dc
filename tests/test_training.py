"""Trainer: schedules, NaN skipping, divergence stop, exact resume, checkpoint fallback, partial
restore, precision policies and the mirrored strategy (stand-in model, a few steps each)."""

import contextlib
import glob
import os
import signal

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import standin
from maskrcnn_body.training import checkpoints, schedules
from maskrcnn_body.training.faults import TrainingDivergedError
from maskrcnn_body.training.trainer import Hook, RunOptions, Trainer


@pytest.fixture(autouse=True)
def _float32_policy():
    yield
    keras.mixed_precision.set_global_policy("float32")


def _trainer(train_dir, data=None, shuffle=True, **train):
    cfg = standin.tiny_config(**train)
    data = standin.make_batches(16, cfg.input.pad_size) if data is None else data
    return Trainer(
        cfg,
        standin.build_standin,
        standin.dataset_fn_from(data, shuffle),
        str(train_dir),
        options=RunOptions(progress=False),
    )


def _weights(model):
    return [v.numpy().copy() for v in model.weights]


def test_warmup_cosine_and_step_schedules():
    s = schedules.WarmupDecay(1.0, total_steps=110, warmup_steps=10, schedule="cosine", warmup_start=0.0)
    assert float(s(0)) == pytest.approx(0.0)
    assert float(s(5)) == pytest.approx(0.5)
    assert float(s(10)) == pytest.approx(1.0)
    assert float(s(60)) == pytest.approx(0.5, abs=1e-6)  # half-way through the cosine
    assert float(s(110)) == pytest.approx(0.0, abs=1e-6)
    assert float(s(500)) == pytest.approx(0.0, abs=1e-6)  # clipped after the end
    st = schedules.WarmupDecay(2.0, 100, 0, "step", decay_steps=(30, 60))
    assert [round(float(st(i)), 6) for i in (0, 29, 30, 59, 60, 99)] == [2.0, 2.0, 0.2, 0.2, 0.02, 0.02]
    with pytest.raises(ValueError, match="schedule"):
        schedules.WarmupDecay(1.0, 10, schedule="linear")


def test_nan_batch_is_skipped_and_counted(tmp_path):
    # batch size 2, no shuffle: examples 2,3 form step 2 -> poisoned
    data = standin.make_batches(8, 32, nan_at=(2,))
    tr = _trainer(tmp_path, data, shuffle=False, max_steps=3, checkpoint_every=0)
    tr.restore()
    it = tr.make_iterator(0)
    from maskrcnn_body.training.step import make_train_step

    step = make_train_step(tr.model, tr.optimizer, tr.strategy, tr.cfg.train.clip_norm)
    out1 = step(next(it))
    w1, it1 = _weights(tr.model), int(tr.optimizer.iterations.numpy())
    out2 = step(next(it))
    assert float(out1["finite"]) == 1.0 and float(out2["finite"]) == 0.0
    # the loss or the gradient is not finite (which one depends on the CPU's kernels: with
    # oneDNN on an Intel Xeon a NaN image can give a finite loss and NaN gradients)
    assert not (np.isfinite(float(out2["total"])) and np.isfinite(float(out2["grad_norm"])))
    for a, b in zip(w1, _weights(tr.model)):
        np.testing.assert_array_equal(a, b)  # bad step changed no weight
    assert int(tr.optimizer.iterations.numpy()) == it1  # nor the optimizer state
    out3 = step(next(it))
    assert float(out3["finite"]) == 1.0
    assert not all(np.array_equal(a, b) for a, b in zip(w1, _weights(tr.model)))

    tr2 = _trainer(tmp_path / "run", data, shuffle=False, max_steps=4, checkpoint_every=0)
    result = tr2.train()
    assert result.step == 4 and result.skipped_steps == 1 and result.stopped_by == "max_steps"


def test_consecutive_bad_steps_stop_and_keep_last_good_checkpoint(tmp_path):
    data = standin.make_batches(8, 32, nan_at=(4, 5, 6, 7))  # steps 3 and 4 are bad
    tr = _trainer(tmp_path, data, shuffle=False, max_steps=10, checkpoint_every=2, max_bad_steps=2)
    with pytest.raises(TrainingDivergedError, match="2 consecutive steps up to step 4"):
        tr.train()
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("ckpt-2")
    reader = tf.train.load_checkpoint(str(tmp_path))
    assert all(np.isfinite(reader.get_tensor(checkpoints.model_variable_key(v))).all() for v in tr.model.weights)


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path):
    straight = _trainer(tmp_path / "a", max_steps=6, checkpoint_every=0)
    assert straight.train().step == 6
    first = _trainer(tmp_path / "b", max_steps=6, checkpoint_every=0)
    assert first.train(max_steps=3).checkpoint.endswith("ckpt-3")
    resumed = _trainer(tmp_path / "b", max_steps=6, checkpoint_every=0)
    result = resumed.train()
    assert result.step == 6 and int(resumed.checkpointer.step.numpy()) == 6
    assert int(resumed.optimizer.iterations.numpy()) == 6
    for a, b in zip(_weights(straight.model), _weights(resumed.model)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)  # same data order, same state
    assert sorted(os.path.basename(p) for p in glob.glob(str(tmp_path / "b" / "ckpt-*.index"))) == [
        "ckpt-3.index",
        "ckpt-6.index",
    ]


def test_corrupt_latest_checkpoint_falls_back_to_previous(tmp_path):
    tr = _trainer(tmp_path, max_steps=4, checkpoint_every=2)
    tr.train()
    w4 = tf.train.load_checkpoint(str(tmp_path / "ckpt-2"))
    for f in glob.glob(str(tmp_path / "ckpt-4.data-*")):
        with open(f, "r+b") as fh:
            fh.truncate(8)
    again = _trainer(tmp_path, max_steps=4, checkpoint_every=2)
    path = again.restore()
    assert path.endswith("ckpt-2") and again.step == 2
    v = again.model.weights[0]
    np.testing.assert_array_equal(v.numpy(), w4.get_tensor(checkpoints.model_variable_key(v)))


def test_partial_restore_matches_name_and_shape(tmp_path):
    src = _trainer(tmp_path / "src", max_steps=2, checkpoint_every=0)
    src.train()
    cfg = standin.tiny_config()
    bigger = standin.build_standin(cfg, extra_head=True)
    report = checkpoints.restore_partial(bigger, str(tmp_path / "src"))
    assert sorted(report.restored) == sorted(v.path for v in src.model.weights)
    assert sorted(p for p, _ in report.skipped) == ["standin/extra_head/bias", "standin/extra_head/kernel"]
    for v in src.model.weights:
        np.testing.assert_array_equal(v.numpy(), next(w for w in bigger.weights if w.path == v.path).numpy())
    # shape mismatch: a model whose box layer is wider is skipped with a reason, rest restored
    wide = standin.StandInModel(cfg, name="standin")
    wide.box = keras.layers.Dense(6, name="box")
    wide(tf.zeros((1, 32, 32, 3)))
    rep = checkpoints.restore_partial(wide, str(tmp_path / "src" / "ckpt-2"))
    assert dict(rep.skipped)["standin/box/kernel"].startswith("shape (4, 4) in checkpoint vs (4, 6)")
    assert "standin/conv/kernel" in rep.restored
    assert "  skipped standin/extra_head/kernel: not in checkpoint" in report.summary()
    assert "  skipped standin/box/kernel: shape (4, 4) in checkpoint vs (4, 6)" in rep.summary()
    assert rep.summary().startswith(f"partial restore from {tmp_path / 'src' / 'ckpt-2'}: ")
    # partial restore through the trainer: a fresh dir + --restore_from
    tr = Trainer(
        cfg,
        lambda c: standin.build_standin(c, extra_head=True),
        standin.dataset_fn_from(standin.make_batches(8, 32)),
        str(tmp_path / "dst"),
        options=RunOptions(restore_from=str(tmp_path / "src"), progress=False),
    )
    assert tr.restore() is None and tr.step == 0
    np.testing.assert_array_equal(tr.model.get_layer("conv").kernel.numpy(), src.model.get_layer("conv").kernel.numpy())


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_trains(tmp_path, policy):
    cfg = standin.tiny_config(max_steps=3, checkpoint_every=0)
    tr = Trainer(
        cfg,
        standin.build_standin,
        standin.dataset_fn_from(standin.make_batches(8, 32)),
        str(tmp_path),
        options=RunOptions(precision=policy, progress=False),
    )
    assert tr.model.conv.compute_dtype == policy.split("_")[1]
    result = tr.train()
    assert result.step == 3 and np.isfinite(result.logs["total"])
    assert (policy == "mixed_float16") == ("loss_scale" in result.logs)


def test_mirrored_strategy_one_cpu_replica(tmp_path):
    from maskrcnn_body.training.distribute import make_strategy

    strategy = make_strategy("mirrored")
    assert strategy.num_replicas_in_sync == 1
    cfg = standin.tiny_config(max_steps=2, checkpoint_every=0)
    tr = Trainer(
        cfg,
        standin.build_standin,
        standin.dataset_fn_from(standin.make_batches(8, 32)),
        str(tmp_path),
        options=RunOptions(strategy=strategy, progress=False),
    )
    assert isinstance(tr.model.weights[0].value, tf.distribute.DistributedValues)
    result = tr.train()
    assert result.step == 2 and result.skipped_steps == 0 and np.isfinite(result.logs["total"])


def test_sigterm_saves_a_checkpoint_and_stops_cleanly(tmp_path):
    cfg = standin.tiny_config(max_steps=50, checkpoint_every=0)
    kill = Hook(3, lambda step: os.kill(os.getpid(), signal.SIGTERM))
    tr = Trainer(
        cfg,
        standin.build_standin,
        standin.dataset_fn_from(standin.make_batches(8, 32)),
        str(tmp_path),
        hooks=[kill],
        options=RunOptions(progress=False),
    )
    before = signal.getsignal(signal.SIGTERM)
    result = tr.train()
    assert (result.stopped_by, result.step) == ("SIGTERM", 3)
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("ckpt-3")
    assert signal.getsignal(signal.SIGTERM) == before  # our handler is removed again


class _FailingStandIn(standin.StandInModel):
    """Raises inside the traced step (an op error, not a Python one) on NaN pixels."""

    def compute_losses(self, batch, training=True):
        batch = dict(batch, images=tf.debugging.check_numerics(batch["images"], "pixels"))
        return super().compute_losses(batch, training)


def test_step_error_names_the_step_and_its_images(tmp_path):
    from maskrcnn_body.training.faults import TrainingStepError

    def build(cfg):
        model = _FailingStandIn(cfg, name="standin")
        model(tf.zeros((1, cfg.input.pad_size, cfg.input.pad_size, 3)))
        return model

    cfg = standin.tiny_config(max_steps=4, checkpoint_every=1)
    data = standin.make_batches(8, cfg.input.pad_size, nan_at=(4,))  # step 3 = examples 4, 5
    tr = Trainer(
        cfg, build, standin.dataset_fn_from(data, shuffle=False), str(tmp_path), options=RunOptions(progress=False)
    )
    with pytest.raises(TrainingStepError) as err:
        tr.train()
    msg = str(err.value)
    assert "training step 3 failed" in msg and "standin-4, standin-5" in msg
    assert "What to do" in msg and "ckpt-2" in msg and "Traceback" not in msg
    assert "pixels" in open(tmp_path / "step_error.log").read()  # TensorFlow's own error, in full
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("ckpt-2")


@pytest.mark.parametrize("preset", ["r50_fpn", "cpu_small"])
def test_learning_rate_and_schedule_follow_the_batch_size(preset):
    """The scaling rule: the rate is stated per 16 images and scaled to the global batch (linearly for SGD,
    by the square root for AdamW), the
    schedule is counted in images, so batch 1, 2 and 16 follow the same curve over the data."""
    from maskrcnn_body.config import get_config

    base = get_config(preset).train
    curves = {}
    for batch in (1, 2, 16):
        t = get_config(preset, **{"train.batch_size": batch}).train
        scaling = (batch / 16) ** 0.5 if t.optimizer == "adamw" else batch / 16  # square root for AdamW
        assert t.effective_learning_rate == pytest.approx(base.learning_rate * scaling)
        assert abs(t.max_steps * batch - base.max_images) < batch
        sched = schedules.from_config(t)
        # the rate relative to its peak at the same points of the data (images seen)
        curves[batch] = [
            float(sched(int(f * base.max_images) // batch)) / t.effective_learning_rate
            for f in (0.016, 0.02, 0.25, 0.5, 0.9)
        ]
    for batch in (2, 16):
        np.testing.assert_allclose(curves[batch], curves[1], atol=2e-3)
    assert get_config("cpu_small").train.effective_learning_rate == pytest.approx(2e-3)  # the default run


def test_checkpoint_rotation_is_consistent_at_every_stage(tmp_path, monkeypatch):
    """At each stage of a save (files written / state rewritten / old files deleted) the state file lists only
    checkpoints that load, always including the newest complete one; files it no longer lists are deleted,
    also those left by a process stopped between its state write and its deletion."""
    model = standin.build_standin(standin.tiny_config())
    ckpt = checkpoints.Checkpointer(str(tmp_path), model, keras.optimizers.SGD(0.1), max_to_keep=2)
    seen = []

    def check(point, step):
        state = tf.train.get_checkpoint_state(str(tmp_path))
        listed = [int(p.rsplit("-", 1)[1]) for p in state.all_model_checkpoint_paths] if state else []
        for p in state.all_model_checkpoint_paths if state else []:
            tf.train.load_checkpoint(p)  # raises if any file of a listed checkpoint is missing
        seen.append((point, step, listed))
        if (point, step) == ("recorded", 3):
            raise KeyboardInterrupt  # stopped between the state write and the deletion of ckpt-1

    monkeypatch.setattr(checkpoints.Checkpointer, "fault_hook", staticmethod(check))
    for step in (1, 2, 3):
        with contextlib.suppress(KeyboardInterrupt):
            ckpt.save(step)
    assert seen == [
        ("written", 1, []),
        ("recorded", 1, [1]),
        ("deleted", 1, [1]),
        ("written", 2, [1]),
        ("recorded", 2, [1, 2]),
        ("deleted", 2, [1, 2]),
        ("written", 3, [1, 2]),
        ("recorded", 3, [2, 3]),
    ]
    assert os.path.exists(tmp_path / "ckpt-1.index")  # the stop left ckpt-1's files behind, unlisted
    ckpt.save(4)
    names = sorted({os.path.basename(f).split(".")[0] for f in glob.glob(str(tmp_path / "ckpt-*"))})
    assert names == ["ckpt-3", "ckpt-4"]
    assert ckpt.restore_latest() == (str(tmp_path / "ckpt-4"), 4)


def test_at_end_hooks_run_once_after_the_last_step(tmp_path):
    """A hook both periodic and at_end whose period divides the run runs once at the last step, after the loop
    (the calibration then the final evaluation: an evaluation at the last step before the calibration is wasted);
    a periodic hook runs once at the last step too."""
    cfg = standin.tiny_config(max_steps=4, checkpoint_every=0)
    calls = []
    both = Hook(2, lambda step: calls.append(("both", step)), at_end=True)
    periodic = Hook(2, lambda step: calls.append(("periodic", step)))
    tr = Trainer(
        cfg,
        standin.build_standin,
        standin.dataset_fn_from(standin.make_batches(8, 32)),
        str(tmp_path),
        hooks=[both, periodic],
        options=RunOptions(progress=False),
    )
    tr.train()
    assert calls == [("both", 2), ("periodic", 2), ("periodic", 4), ("both", 4)]
