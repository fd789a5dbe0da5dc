"""The workflow layer (maskrcnn_body/workflows): train, evaluate, predict, track and export as Python functions,
the user-facing model's methods, and the one input walker they share."""

import json
import os

import numpy as np
import pytest
from PIL import Image

import maskrcnn_body as mb
from maskrcnn_body.data import inputs
from maskrcnn_body.inference import api
from maskrcnn_body.workflows import predict as predict_workflow
from maskrcnn_body.workflows.model import Model


def _one_person(image):
    """A stand-in backend: one person covering the middle of the image."""
    h, w = image.shape[:2]
    return {
        "boxes": np.array([[w * 0.25, h * 0.25, w * 0.75, h * 0.75]], np.float32),
        "scores": np.array([0.9], np.float32),
        "masks": np.ones((1, 8, 8, 7), np.float32),
        "keypoints": np.zeros((1, 15, 3), np.float32),
    }


def _stand_in(**kwargs):
    return Model(lambda images: [_one_person(im) for im in images], name="stand-in", **kwargs)


def _folder(tmp_path):
    """A folder with images of every accepted kind, a TIFF (refused by the decoder), a text file and a sub-folder."""
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    for name, fmt in [("b.png", "PNG"), ("a.jpg", "JPEG"), ("c.webp", "WEBP"), ("d.bmp", "BMP"), ("e.tif", "TIFF")]:
        Image.fromarray(np.full((40, 30, 3), 90, np.uint8)).save(folder / name, fmt)
    (folder / "notes.txt").write_text("not an image")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "sub" / "inner.png")
    return folder


def test_one_walker_lists_the_same_images_for_the_api_predict_and_the_client(tmp_path):
    folder = _folder(tmp_path)
    expected = [str(folder / n) for n in ("a.jpg", "b.png", "c.webp", "d.bmp")]  # sorted; no .tif, no sub-folder
    assert inputs.expand(str(folder)) == expected
    assert [r.source for r in _stand_in()(str(folder))] == expected  # the API
    out = tmp_path / "out"
    summary = predict_workflow.predict(_stand_in(), [str(folder)], str(out), progress=False)  # the predict workflow
    assert summary["images"] == 4
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{s}.{e}" for s in "abcd" for e in ("png", "json"))
    from maskrcnn_body.serving import client

    assert [name for name, _, _ in client.iter_inputs([str(folder)])] == expected  # the HTTP client


def _video(path, frames=5, size=(64, 48)):
    cv2 = pytest.importorskip("cv2")
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (w, h))
    for t in range(frames):
        frame = np.zeros((h, w, 3), np.uint8)
        frame[10:40, 5 + 5 * t : 25 + 5 * t] = 200
        writer.write(frame)
    writer.release()
    return str(path)


def test_a_video_from_python_one_result_per_frame_and_tracked(tmp_path):
    clip = _video(tmp_path / "clip.avi", frames=5)
    model = _stand_in()
    results = model(clip)
    assert [r.source for r in results] == [f"clip_{i:06d}" for i in range(5)]
    assert all(r.image.shape == (48, 64, 3) and len(r.persons) == 1 for r in results)
    tracked = list(model.track(clip, batch_size=2))
    assert len(tracked) == 5 and tracked[0].source == "clip_000000"
    ids = {p.track_id for r in tracked[2:] for p in r.persons}
    assert len(ids) == 1 and None not in ids  # one person, confirmed, one identity
    assert [r.source for r in model.track(clip, max_frames=2, frame_step=2)] == ["clip_000000", "clip_000002"]


def test_track_reopens_a_thresholded_model_lower_once(tmp_path):
    """A training directory drops detections below the load threshold inside the model: track() reopens it at
    the tracker's low score (once; later calls reuse it) so the second pass sees the low-score detections."""
    opened = []

    def reopen(min_score):
        opened.append(min_score)
        return lambda images: [_one_person(im) for im in images]

    model = _stand_in(score_threshold=0.5, reopen=reopen, format="train_dir")
    frames = [np.zeros((32, 32, 3), np.uint8)] * 3
    list(model.track(frames))
    list(model.track(frames))
    assert opened == [0.1]
    assert model.at_threshold(0.7) is model


def test_export_is_refused_for_what_is_already_an_export():
    from maskrcnn_body.errors import UserError

    with pytest.raises(UserError, match="already an export"):
        _stand_in(format="onnx").export("tflite")


def test_predict_paths_loads_low_for_videos(monkeypatch, tmp_path):
    """The command line's call: with a video among the inputs the model is loaded down to the tracker's low
    score, else at the user's threshold."""
    seen = []

    def fake_load(path, score_threshold, **options):
        seen.append(score_threshold)
        return _stand_in(score_threshold=score_threshold)

    monkeypatch.setattr("maskrcnn_body.workflows.model.load", fake_load)
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "x.png")
    predict_workflow.predict_paths("m", [str(tmp_path / "x.png")], str(tmp_path / "o1"), progress=False)
    predict_workflow.predict_paths("m", [_video(tmp_path / "v.avi", 2)], str(tmp_path / "o2"), progress=False)
    assert seen == [0.5, 0.1]


def _leaves(tree, prefix=""):
    """``{"a/b/c": number}`` of a nested metrics summary (None -> nan)."""
    if isinstance(tree, dict):
        return {k: v for key, sub in tree.items() for k, v in _leaves(sub, f"{prefix}/{key}").items()}
    return {prefix: float("nan") if tree is None else float(tree)}


@pytest.mark.slow
def test_train_returns_a_loadable_model_that_evaluates_and_exports(tmp_path, monkeypatch):
    """mb.train() -> the trained model: callable, with its TrainResult, evaluate() scores it on the val records
    (the same numbers as the evaluate workflow through the same runner), export() writes a SavedModel."""
    monkeypatch.chdir(tmp_path)
    model = mb.train(
        num_train=4,
        num_val=2,
        max_steps=2,
        batch_size=2,
        overrides=["input.min_size=64", "input.max_size=64", "model.postprocess.max_detections=5"],
        train_dir="run",
        progress=False,
    )
    assert isinstance(model, Model) and model.format == "train_dir" and model.training.step == 2
    # the end-of-training evaluation also scored as many training images as val ones (train-split AP)
    with open(os.path.join("run", "eval", "metrics-train-2.json")) as f:
        assert "left_arm" in json.load(f)["mask"]
    (result,) = model(np.zeros((64, 64, 3), np.uint8))
    assert isinstance(result, api.Result)
    val = "data/records/synthetic_val-*.tfrecord"
    scored = model.evaluate(val)
    assert scored.num_images == 2 and "left_arm" in scored.summary["mask"]
    from maskrcnn_body.workflows.evaluate import evaluate

    again = evaluate("run", val, backend="tensorflow", log=lambda msg: None)
    assert _leaves(again.summary) == pytest.approx(
        _leaves(scored.summary), abs=0.01, nan_ok=True
    )  # oneDNN sums vary a little
    saved = model.export("savedmodel")
    assert saved == os.path.join("run", "export", "saved_model") and os.path.isfile(
        os.path.join(saved, "saved_model.pb")
    )


def test_importing_the_workflows_does_not_import_tensorflow():
    """``maskrcnn-body --help`` and the TF-free routes stay instant: TensorFlow loads when a workflow runs."""
    import subprocess
    import sys

    code = (
        "import sys, maskrcnn_body.workflows.train, maskrcnn_body.workflows.evaluate, maskrcnn_body.workflows.predict,"
        " maskrcnn_body.workflows.track, maskrcnn_body.workflows.export, maskrcnn_body.workflows.hooks,"
        " maskrcnn_body.workflows.model; print('tensorflow' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "False", r.stderr[-2000:]
