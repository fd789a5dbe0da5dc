"""The training directory (maskrcnn_body.config.train_dir): its layout, the atomic config write, the
message for a missing or invalid config, and checkpoint discovery from the state file (without TensorFlow)."""

import os

import pytest

from maskrcnn_body.config import get_config
from maskrcnn_body.config.train_dir import (
    TrainDir,
    TrainDirError,
    checkpoint_step,
    is_train_dir,
)
from maskrcnn_body.errors import UserError
from maskrcnn_body.utils import files


def test_layout(tmp_path):
    d = TrainDir(tmp_path)
    assert d.path == str(tmp_path)
    assert d.config_path == str(tmp_path / "config.json")
    assert d.state_path == str(tmp_path / "checkpoint")
    assert d.checkpoint(7) == str(tmp_path / "ckpt-7") and checkpoint_step(d.checkpoint(7)) == 7
    assert d.summaries_dir == str(tmp_path / "train")
    assert d.eval_dir == str(tmp_path / "eval") and d.eval_dumps_dir == str(tmp_path / "eval" / "dumps")
    assert d.evaluate_dumps_dir == str(tmp_path / "eval_dumps") and d.draw_dir == str(tmp_path / "draw")
    assert d.step_error_log == str(tmp_path / "step_error.log")
    assert d.worker_scratch_dir(2) == str(tmp_path / ".worker2_tmp")
    assert checkpoint_step("no_step") == -1


def test_config_round_trip_and_is_train_dir(tmp_path):
    d = TrainDir(tmp_path / "run")
    assert not is_train_dir(d.path) and not d.is_train_dir()
    cfg = get_config("cpu_small", **{"train.batch_size": 3})
    assert d.write_config(cfg) == d.config_path  # the directory is created
    assert is_train_dir(d.path)
    back = d.read_config()
    assert back.to_json() == cfg.to_json() and back.train.batch_size == 3
    assert open(d.config_path).read().endswith("\n")
    assert sorted(os.listdir(d.path)) == ["config.json"]  # no temporary left


def test_config_write_that_fails_midway_keeps_the_old_one(tmp_path, monkeypatch):
    d = TrainDir(tmp_path)
    d.write_config(get_config("cpu_small"))
    before = open(d.config_path).read()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        d.write_config(get_config("r50_fpn"))
    assert open(d.config_path).read() == before
    assert sorted(os.listdir(tmp_path)) == ["config.json"]


def test_missing_or_invalid_config_says_what_to_run(tmp_path):
    d = TrainDir(tmp_path)
    with pytest.raises(TrainDirError, match=r"config.json not found: .*maskrcnn-body train") as e:
        d.read_config()
    assert isinstance(e.value, UserError)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(TrainDirError, match="config.json"):
        d.read_config()
    (tmp_path / "config.json").write_text('{"model": {"no_such_key": 1}}')
    with pytest.raises(TrainDirError, match="no_such_key"):
        d.read_config()


def _touch_checkpoint(d: TrainDir, step: int) -> str:
    prefix = d.checkpoint(step)
    for ext in (".index", ".data-00000-of-00001"):
        open(prefix + ext, "w").close()
    return prefix


def test_checkpoint_discovery(tmp_path):
    d = TrainDir(tmp_path)
    assert d.checkpoints() == [] and d.latest_checkpoint() is None  # no state file
    paths = [_touch_checkpoint(d, s) for s in (2, 4, 10)]
    d.write_state(paths)  # oldest first, newest last
    assert open(d.state_path).read().splitlines() == [
        'model_checkpoint_path: "ckpt-10"',
        'all_model_checkpoint_paths: "ckpt-2"',
        'all_model_checkpoint_paths: "ckpt-4"',
        'all_model_checkpoint_paths: "ckpt-10"',
    ]  # relative, as TensorFlow writes it
    assert d.checkpoints() == paths[::-1]  # newest first
    assert d.latest_checkpoint() == paths[-1]
    os.remove(paths[-1] + ".index")  # listed but gone: no latest (as tf.train.latest_checkpoint)
    assert d.latest_checkpoint() is None
    open(tmp_path / "ckpt-11_temp_abc", "w").close()
    open(tmp_path / "ckpt-x.index", "w").close()
    names = [name for name, _ in d.checkpoint_files()]
    assert names == ["ckpt-10", "ckpt-11", "ckpt-2", "ckpt-2", "ckpt-4", "ckpt-4"]


def test_state_file_written_by_tensorflow_style_with_absolute_and_escaped_paths(tmp_path):
    d = TrainDir(tmp_path)
    other = tmp_path / 'we"ird dir'
    other.mkdir()
    prefix = str(other / "ckpt-5")
    open(prefix + ".index", "w").close()
    escaped = prefix.replace("\\", "\\\\").replace('"', '\\"')
    (tmp_path / "checkpoint").write_text(
        f'model_checkpoint_path: "{escaped}"\nall_model_checkpoint_paths: "ckpt-1"\n'
        f'all_model_checkpoint_paths: "{escaped}"\n'
    )
    assert d.latest_checkpoint() == prefix
    assert d.checkpoints() == [prefix, str(tmp_path / "ckpt-1")]
    (tmp_path / "checkpoint").write_text("garbage without a colon\n")
    assert d.checkpoints() == [] and d.latest_checkpoint() is None


def test_state_file_agrees_with_tensorflow(tmp_path):
    tf = pytest.importorskip("tensorflow")
    d = TrainDir(tmp_path)
    paths = [_touch_checkpoint(d, s) for s in (1, 3)]
    d.write_state(paths)
    state = tf.train.get_checkpoint_state(str(tmp_path))
    assert list(state.all_model_checkpoint_paths) == paths and state.model_checkpoint_path == paths[-1]
    assert tf.train.latest_checkpoint(str(tmp_path)) == d.latest_checkpoint() == paths[-1]
    tf.compat.v1.train.update_checkpoint_state(str(tmp_path), paths[0], paths[::-1])  # TensorFlow's writer
    assert d.latest_checkpoint() == paths[0] and d.checkpoints() == paths[::-1]


def test_state_file_with_tensorflow_timestamps(tmp_path):
    """tf.train.CheckpointManager adds numeric fields; they are skipped."""
    d = TrainDir(tmp_path)
    prefix = _touch_checkpoint(d, 0)
    (tmp_path / "checkpoint").write_text(
        'model_checkpoint_path: "ckpt-0"\nall_model_checkpoint_paths: "ckpt-0"\n'
        "all_model_checkpoint_timestamps: 1796453514.8161054\nlast_preserved_timestamp: 1.5e9\n"
    )
    assert d.latest_checkpoint() == prefix and d.checkpoints() == [prefix]
    (tmp_path / "checkpoint").write_text("model_checkpoint_path: 3\n")
    assert d.latest_checkpoint() is None
