"""maskrcnn_body.utils.files: the one atomic write (success, failure midway, temporaries beside the target)."""

import os

import pytest

from maskrcnn_body.utils import files


def test_atomic_file_write(tmp_path):
    target = tmp_path / "sub" / "out.bin"
    with files.atomic_path(str(target)) as tmp:
        assert os.path.dirname(tmp) == str(tmp_path / "sub")  # same directory: the rename never copies
        assert os.path.basename(tmp).startswith(".out.bin.tmp-") and not os.path.exists(target)
        with open(tmp, "wb") as f:
            f.write(b"new")
    assert target.read_bytes() == b"new" and os.listdir(tmp_path / "sub") == ["out.bin"]
    assert files.write_bytes_atomic(str(target), b"bytes") == str(target) and target.read_bytes() == b"bytes"
    assert files.write_text_atomic(str(target), "text") == str(target) and target.read_text() == "text"
    assert os.listdir(tmp_path / "sub") == ["out.bin"]


def test_failure_midway_leaves_the_target_and_no_temporary(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="midway"), files.atomic_path(str(target)) as tmp:
        with open(tmp, "w") as f:
            f.write("half")
        raise RuntimeError("midway")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["out.json"]
    # a new target that fails: nothing at all
    with pytest.raises(RuntimeError), files.atomic_path(str(tmp_path / "new.txt")) as tmp:
        open(tmp, "w").close()
        raise RuntimeError
    assert os.listdir(tmp_path) == ["out.json"]
    # nothing written in the block: an error, the target untouched
    with pytest.raises(FileNotFoundError), files.atomic_path(str(target)):
        pass
    assert target.read_text() == "old"


def test_atomic_directory(tmp_path):
    target = tmp_path / "export"
    with files.atomic_path(str(target)) as tmp:
        os.makedirs(os.path.join(tmp, "variables"))
        open(os.path.join(tmp, "saved_model.pb"), "w").close()
    assert sorted(os.listdir(target)) == ["saved_model.pb", "variables"]
    with files.atomic_path(str(target)) as tmp:  # replaces the whole directory
        os.makedirs(tmp)
        open(os.path.join(tmp, "other"), "w").close()
    assert os.listdir(target) == ["other"] and os.listdir(tmp_path) == ["export"]
    with pytest.raises(ValueError), files.atomic_path(str(target)) as tmp:
        os.makedirs(os.path.join(tmp, "half"))
        raise ValueError
    assert os.listdir(target) == ["other"] and os.listdir(tmp_path) == ["export"]


def test_temporaries_are_hidden_unique_and_keep_a_suffix(tmp_path):
    a, b = files.temp_path(str(tmp_path / "m.onnx")), files.temp_path(str(tmp_path / "m.onnx"), ".onnx")
    assert a != b and b.endswith(".onnx") and ".tmp-" in a
    assert all(os.path.basename(p).startswith(".m.onnx.tmp-") for p in (a, b))
