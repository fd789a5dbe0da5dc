"""The 3-line Python API: mb.load(path) -> model(inputs) -> Result, the same whatever was loaded."""

import json
import os

import numpy as np
import pytest
from PIL import Image

import maskrcnn_body as mb
from helpers.masks import assert_masks_close
from helpers.models import write_random_train_dir
from maskrcnn_body import constants
from maskrcnn_body.drawing.people import render_dump
from maskrcnn_body.errors import UserError
from maskrcnn_body.inference.api import InputImageError, Model, load_image
from maskrcnn_body.inference.result_json import json_to_masks

SMALL = {
    "input.min_size": 96,
    "input.max_size": 128,
    "model.postprocess.score_threshold": 0.0,
    "model.postprocess.max_detections": 5,
}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("api")
    write_random_train_dir(str(d / "run"), "cpu_small", seed=0, **SMALL)
    return d


@pytest.fixture(scope="module")
def model(model_dir):
    return mb.load(str(model_dir / "run"), score_threshold=0.0)


def _image(h=72, w=100, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_three_lines(model, tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(_image()).save(path)
    r = model(str(path))[0]
    h, w = 72, 100
    assert r.source == str(path) and r.image.shape == (h, w, 3) and len(r.persons) > 0
    p = r.persons[0]
    assert p.box.shape == (4,) and isinstance(p.score, float)
    x1, y1, x2, y2 = p.box
    assert 0 <= x1 <= x2 <= w and 0 <= y1 <= y2 <= h
    assert p.keypoints.shape == (constants.NUM_KEYPOINTS, 3)
    assert list(p.masks) == list(constants.CHANNELS)
    for name, m in p.masks.items():
        assert m.shape == (h, w) and m.dtype == bool
        assert not (m & ~p.masks["body"]).any(), name  # parts clipped to the body
    assert [q.score for q in r.persons] == sorted((q.score for q in r.persons), reverse=True)
    assert r.part_map.shape == (h, w) and r.part_map.dtype == np.uint8 and r.part_map.max() <= 6
    for k in constants.PART_CHANNELS:  # every labelled pixel belongs to that part of some person
        covered = np.any([q.masks[constants.CHANNELS[k]] for q in r.persons], axis=0)
        assert not ((r.part_map == k) & ~covered).any()
    drawing = np.asarray(
        render_dump({"image": r.image, **r.detections}, side_by_side=False, score_threshold=0.0, min_size=0).convert(
            "RGB"
        )
    )
    # the drawing of draw/draw.py with every joint and the legend; by default the input's size
    np.testing.assert_array_equal(r.plot(kpt_thr=0.0, legend=True, line_width=1), drawing)
    assert r.plot().shape == (h, w, 3)
    js = r.to_json()
    assert (js["width"], js["height"], js["source"]) == (w, h, str(path)) and len(js["persons"]) == len(r.persons)
    decoded = json_to_masks(js)
    np.testing.assert_array_equal(decoded[0], np.stack([p.masks[n] for n in constants.CHANNELS], -1))
    r.save(tmp_path / "out.png")
    r.save(tmp_path / "out.json")
    assert Image.open(tmp_path / "out.png").size == (w, h)
    assert json.loads((tmp_path / "out.json").read_text()) == js


def test_inputs_of_every_kind_give_the_same_result(model, tmp_path):
    img = _image(seed=3)
    Image.fromarray(img).save(tmp_path / "a.png")
    folder = tmp_path / "folder"
    folder.mkdir()
    Image.fromarray(img).save(folder / "b.png")
    (folder / "notes.txt").write_text("not an image")
    results = model([str(tmp_path / "a.png"), img, Image.fromarray(img), folder])
    assert len(results) == 4 and results[3].source.endswith("b.png")
    for r in results[1:]:
        np.testing.assert_allclose(r.detections["boxes"], results[0].detections["boxes"], atol=1e-4)
    gray = model(img[..., 0])[0]
    assert gray.image.shape == (72, 100, 3)


def test_batches_equal_one_at_a_time_and_long_lists_show_progress(model, capsys):
    images = [_image(seed=s) for s in range(5)] + [_image(80, 60, seed=9)]
    one = [model(im, batch_size=1)[0] for im in images]
    batched = model(images, batch_size=4)
    for a, b in zip(one, batched):
        np.testing.assert_allclose(a.detections["boxes"], b.detections["boxes"], atol=1e-3)
        assert_masks_close(a.detections["masks"], b.detections["masks"], atol=1e-4)  # point head: top-k ties
    assert "6/6" in capsys.readouterr().err  # more images than batch_size: a progress bar


def test_score_threshold_filters_persons(model):
    img = _image()
    everything = model(img, score_threshold=0.0)[0]
    median = float(np.median([p.score for p in everything.persons]))
    some = model(img, score_threshold=median)[0]
    assert 0 < len(some.persons) < len(everything.persons) and min(p.score for p in some.persons) >= median


@pytest.mark.slow  # exports a SavedModel and a TFLite file
def test_every_backend_gives_the_same_result_object(model_dir, model):
    from maskrcnn_body.inference.exporting import export_saved_model, export_tflite
    from maskrcnn_body.inference.loading import load_trained_model

    keras_model, cfg, _ = load_trained_model(str(model_dir / "run"))
    sm = export_saved_model(keras_model, cfg, str(model_dir / "saved_model"))
    tfl = export_tflite(sm, str(model_dir / "model.tflite"))
    img = _image(seed=5)
    want = model(img)[0]
    for path, fmt, backend, atol in ((sm, "savedmodel", "tensorflow", 1e-3), (tfl, "tflite", "tflite", 2e-2)):
        other = mb.load(path, score_threshold=0.0)
        assert isinstance(other, Model) and (other.format, other.backend) == (fmt, backend)
        got = other(img)[0]
        assert type(got) is type(want) and len(got.persons) == len(want.persons)
        np.testing.assert_allclose(got.detections["boxes"], want.detections["boxes"], atol=atol)
        agree = np.mean(got.part_map == want.part_map)
        assert agree > 0.99, (backend, agree)


def test_clear_errors(model, tmp_path):
    with pytest.raises(UserError, match="expected a training directory .* a .tflite file"):
        mb.load(str(tmp_path / "nothing"))
    (tmp_path / "model.onnx.txt").write_text("x")
    with pytest.raises(UserError, match="is none of them"):
        mb.load(str(tmp_path))
    for bad, message in (
        (3, "cannot use int"),
        (np.zeros((4, 4, 3), np.float32), "uint8"),
        (np.zeros((4, 4, 5), np.uint8), "RGB uint8"),
        (str(tmp_path / "no.jpg"), "not an image file"),
        ([], "no images"),
    ):
        with pytest.raises(InputImageError, match=message):
            model(bad)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    with pytest.raises(InputImageError, match="cannot be read as an image"):
        load_image(str(tmp_path / "broken.jpg"))
    assert os.path.exists(tmp_path / "broken.jpg")  # nothing is lost


def test_boxes_flattened_by_clipping_are_dropped():
    """Issue 25, item 4: on a 16x20000 image the model put boxes in the padding, which clipping flattened to
    zero height ([x, 16, x, 16]); every returned person has a box of positive size."""
    from maskrcnn_body.inference.api import make_result

    k = len(constants.KEYPOINTS)
    det = {
        "boxes": np.array([[10, 16, 40, 16], [5, 2, 30, 14], [7, 3, 7, 9]], np.float32),
        "scores": np.array([0.9, 0.8, 0.7], np.float32),
        "keypoints": np.zeros((3, k, 3), np.float32),
        "masks": np.zeros((3, 28, 28, 7), np.float32),
    }
    r = make_result(np.zeros((16, 20000, 3), np.uint8), det, 0.5)
    assert len(r.persons) == 1 and r.persons[0].score == pytest.approx(0.8)
    x1, y1, x2, y2 = r.persons[0].box
    assert x2 > x1 and y2 > y1


def test_load_reads_the_training_directory_config_once(model_dir, monkeypatch, tmp_path):
    """mb.load(train_dir) parses config.json once and passes the Config down (backend choice, cache key,
    score threshold, the model build), whatever the backend choice reads."""
    from maskrcnn_body.config import train_dir

    monkeypatch.setenv("MASKRCNN_BODY_CACHE", str(tmp_path / "cache"))
    reads = []
    parse = train_dir.load_file
    monkeypatch.setattr(train_dir, "load_file", lambda path: reads.append(path) or parse(path))
    loaded = mb.load(str(model_dir / "run"), score_threshold=0.3)
    assert loaded.format == "train_dir" and reads == [str(model_dir / "run" / "config.json")]
