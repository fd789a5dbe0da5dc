"""The user-facing scripts end to end on a random-weight cpu_small model (128 px):

* ``train/test.py`` (the server) in a subprocess on a free loopback port: every bad request gets a clear JSON
  error with the right status and the server keeps serving; then /v1/predict, /v1/render and /healthz;
* ``train/infer.py`` on a folder of two images (+ a tiny .avi when OpenCV is installed): PNG + JSON per image;
* ``train/client.py --mode both`` against the server, whose answers equal infer.py's for the same files.
"""

import io
import json
import os
import socket
import subprocess
import sys
import types
import urllib.request

import numpy as np
import pytest
from PIL import Image
from test_http_server import BAD, _jpeg, _post, _recv_all, png_header_only
from test_images import exif_jpeg

from bench.load_test_hostile import encode, scene
from helpers.models import write_random_train_dir
from helpers.servers import start_server, stop_server
from maskrcnn_body import constants
from maskrcnn_body.inference.result_json import json_to_masks

pytestmark = pytest.mark.slow  # serving end to end: `make test-fast` leaves these out

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = {"input.min_size": 128, "input.max_size": 128, "model.postprocess.max_detections": 5}
MAX_BODY_MB = 0.05  # 52428 bytes: the over-limit case stays small
IMAGES = {"a.jpg": (100, 150), "b.png": (70, 60)}


def _run(args, timeout=300):
    r = subprocess.run([sys.executable] + args, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{args} failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    return r


def _have_cv2():
    try:
        import cv2  # noqa: F401

        return True
    except ImportError:
        return False


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """train_dir (random weights), a folder of two images and, with OpenCV, a 3-frame video."""
    d = tmp_path_factory.mktemp("serving")
    write_random_train_dir(str(d / "run"), "cpu_small", seed=0, **SMALL)
    folder = d / "images"
    folder.mkdir()
    for name, (h, w) in IMAGES.items():
        Image.fromarray(np.random.default_rng(h).integers(0, 255, (h, w, 3), np.uint8)).save(folder / name)
    video = None
    if _have_cv2():
        import cv2

        video = str(d / "clip.avi")
        out = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"MJPG"), 5, (96, 64))
        for i in range(3):
            out.write(np.random.default_rng(i).integers(0, 255, (64, 96, 3), np.uint8))
        out.release()
    return types.SimpleNamespace(root=d, train_dir=str(d / "run"), folder=str(folder), video=video)


@pytest.fixture(scope="module")
def server(data):
    """``train/test.py`` on port 0 (the OS picks a free one); yields an object with ``url``/``server_address``."""
    proc, url = start_server(
        [
            sys.executable,
            "train/test.py",
            "--train_dir",
            data.train_dir,
            "--port",
            "0",
            "--score_threshold",
            "0",
            "--max_body_mb",
            str(MAX_BODY_MB),
            "--read_timeout",
            "1",
            "--max_queue",
            "4",
        ],
        cwd=ROOT,
    )
    host, port = url.split("//")[1].split(":")
    yield types.SimpleNamespace(url=url, server_address=(host, int(port)))
    stop_server(proc)


def _image_bytes(data, name):
    with open(os.path.join(data.folder, name), "rb") as f:
        return f.read()


def _check_result(res, h, w):
    assert (res["width"], res["height"]) == (w, h) and len(res["persons"]) > 0  # score_threshold 0
    for p in res["persons"]:
        x1, y1, x2, y2 = p["box"]
        assert 0 <= x1 <= x2 <= w and 0 <= y1 <= y2 <= h and 0 <= p["score"] <= 1
        assert np.array(p["keypoints"]).shape == (constants.NUM_KEYPOINTS, 3)
        assert list(p["masks"]) == list(constants.CHANNELS)
        assert all(m["size"] == [h, w] for m in p["masks"].values())
    masks = json_to_masks(res)
    assert masks.shape == (len(res["persons"]), h, w, constants.NUM_CHANNELS)
    assert not (masks[..., 1:] & ~masks[..., :1]).any()  # parts inside the body


def _healthy(server):
    with urllib.request.urlopen(server.url + "/healthz", timeout=10) as r:
        return r.status == 200 and json.loads(r.read())["status"] == "ok"


CASES = dict(BAD)
CASES["huge_20000px"] = (png_header_only(20000, 20000), "image/png", 400, "pixel limit")
CASES["over_size_limit"] = (_jpeg(400, 400), "image/jpeg", 413, "over the limit")


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_requests_then_the_server_keeps_serving(server, case):
    body, ctype, status, msg = CASES[case]
    if case == "over_size_limit":
        assert len(body) > MAX_BODY_MB * 1024 * 1024
    got, raw = _post(server, "/v1/predict", body, ctype)
    err = json.loads(raw)
    assert (got, err["status"]) == (status, status) and msg in err["error"], err
    assert _healthy(server)


def test_slow_client_gets_408_and_server_keeps_serving(server):
    s = socket.create_connection(server.server_address, timeout=10)
    s.sendall(
        b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\nabc"
    )
    head = _recv_all(s).split(b"\r\n")[0]
    s.close()
    assert b" 408 " in head
    assert _healthy(server)


def test_predict_render_and_healthz(server, data):
    for name, (h, w) in IMAGES.items():
        ctype = "image/png" if name.endswith(".png") else "image/jpeg"
        status, raw = _post(server, "/v1/predict", _image_bytes(data, name), ctype)
        assert status == 200, raw
        _check_result(json.loads(raw), h, w)
        status, png = _post(server, "/v1/render", _image_bytes(data, name), ctype)
        assert status == 200 and png.startswith(b"\x89PNG")
    assert _healthy(server)


def test_extreme_aspect_ratios_give_a_clear_400_or_positive_boxes(server):
    """Issue 25: 16x20000 answered 500 on /v1/render and zero-height boxes on /v1/predict."""
    thin = np.full((16, 20000, 3), 100, np.uint8)
    for path in ("/v1/predict", "/v1/render"):
        status, raw = _post(server, path, encode(thin, "PNG"), "image/png")
        assert status == 400 and "aspect ratio of 1250:1" in json.loads(raw)["error"], raw
    allowed = np.random.default_rng(1).integers(0, 255, (16, 320, 3), np.uint8)  # 20:1, the default limit
    status, raw = _post(server, "/v1/predict", encode(allowed, "PNG"), "image/png")
    assert status == 200
    res = json.loads(raw)
    _check_result(res, 16, 320)
    assert all(p["box"][2] > p["box"][0] and p["box"][3] > p["box"][1] for p in res["persons"])
    status, png = _post(server, "/v1/render", encode(allowed, "PNG"), "image/png")
    assert status == 200 and Image.open(io.BytesIO(png)).size[0] == 320  # a valid drawing (legend below)


def test_phone_photos_are_answered_in_the_upright_frame(server):
    status, raw = _post(server, "/v1/predict", exif_jpeg(scene(48, 80), 6), "image/jpeg")
    assert status == 200
    _check_result(json.loads(raw), 80, 48)  # stored 80x48 landscape, shown (and answered) 48 wide, 80 high


@pytest.fixture(scope="module")
def infer_out(data):
    """``train/infer.py`` on the folder (and the video): its output directory."""
    out = data.root / "infer"
    inputs = ["--input", data.folder] + (["--input", data.video] if data.video else [])
    _run(["train/infer.py", "--train_dir", data.train_dir, "--out_dir", str(out), "--score_threshold", "0"] + inputs)
    return out


def test_infer_cli_writes_png_and_json_per_image_and_a_video_per_video(data, infer_out):
    out = infer_out
    expected = {os.path.splitext(n)[0]: hw for n, hw in IMAGES.items()}
    files = sorted(f"{s}.{e}" for s in expected for e in ("json", "png"))
    assert data.video, "OpenCV is part of the test install ([test] extra): video must be tested"
    video_out = [f for f in os.listdir(out) if f.startswith("clip.")]
    assert sorted(f for f in os.listdir(out) if not f.startswith("clip.")) == files
    for stem, (h, w) in expected.items():
        with open(out / f"{stem}.json") as f:
            _check_result(json.load(f), h, w)
        with Image.open(out / f"{stem}.png") as im:
            assert im.format == "PNG"
    # a video gives an annotated video and one JSON row per frame (people carry track ids)
    assert sorted(video_out) == ["clip.coco.json", "clip.jsonl", "clip.mp4"]
    rows = [json.loads(line) for line in open(out / "clip.jsonl")]
    assert [r["frame"] for r in rows] == [0, 1, 2]
    for r in rows:
        _check_result(r, 64, 96)
        assert all(p["track_id"] is None or isinstance(p["track_id"], int) for p in r["persons"])  # None: tentative
    import cv2

    cap = cv2.VideoCapture(str(out / "clip.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    ok, frame = cap.read()
    cap.release()
    assert ok and frame.shape[:2] == (64, 96)  # the drawing of each frame, the source's size


def test_client_cli_answers_equal_infer_results(server, data, infer_out):
    out = data.root / "client"
    inputs = ["--input", data.folder] + (["--input", data.video] if data.video else [])
    r = _run(["train/client.py", "--server", server.url, "--mode", "both", "--out_dir", str(out)] + inputs)
    n = len(IMAGES) + (3 if data.video else 0)
    assert f"done: {n} answered, 0 errors" in r.stdout
    for name in IMAGES:
        stem = os.path.splitext(name)[0]
        with open(out / f"{stem}.json") as f:
            got = json.load(f)
        with open(infer_out / f"{stem}.json") as f:
            want = json.load(f)
        assert got["persons"] == want["persons"]
        with Image.open(out / f"{stem}.png") as im:
            assert im.format == "PNG"
    if data.video:  # frames travel as JPEG: the answer has the frame's size
        with open(out / "clip_000000.json") as f:
            _check_result(json.load(f), 64, 96)
