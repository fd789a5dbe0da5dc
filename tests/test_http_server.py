"""HTTP server error handling and bounded queue, with a stand-in predictor (no model needed)."""
import http.client
import io
import json
import socket
import struct
import threading
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from maskrcnn_body.serving.http_server import InferenceServer, ServerConfig


def _png(w, h):
    buf = io.BytesIO()
    Image.fromarray(np.full((h, w, 3), 120, np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _jpeg(w, h):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (h, w, 3), np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture()
def server():
    gate = threading.Event()
    gate.set()

    def predict(img):
        gate.wait(10)
        return {"width": img.shape[1], "height": img.shape[0], "persons": []}

    cfg = ServerConfig(port=0, max_body_bytes=200_000, read_timeout_s=1.0, num_workers=2, max_queue=2,
                       max_pixels=1_000_000)
    srv = InferenceServer(cfg, predict, lambda img: _png(8, 8))
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    srv.gate = gate
    yield srv
    gate.set()
    srv.shutdown()
    srv.server_close()


def _recv_all(s):
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            return data
        data += chunk


def _post(srv, path, body, ctype="image/png", headers=None):
    host, port = srv.server_address[:2]
    c = http.client.HTTPConnection(host, port, timeout=10)
    h = {"Content-Type": ctype}
    h.update(headers or {})
    c.request("POST", path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def test_healthz_and_predict(server):
    host, port = server.server_address[:2]
    c = http.client.HTTPConnection(host, port, timeout=5)
    c.request("GET", "/healthz")
    r = c.getresponse()
    assert r.status == 200 and json.loads(r.read())["status"] == "ok"
    status, data = _post(server, "/v1/predict", _png(40, 30))
    assert status == 200 and json.loads(data) == {"width": 40, "height": 30, "persons": []}
    status, data = _post(server, "/v1/render", _jpeg(40, 30), "image/jpeg")
    assert status == 200 and data.startswith(b"\x89PNG")


_TRUNC = _jpeg(64, 64)
BAD = {
    "empty": (b"", "image/png", 400, "empty body"),
    "not_image": (b"hello world, not an image", "image/png", 400, "not an image"),
    "truncated_jpeg": (_TRUNC[: len(_TRUNC) * 6 // 10], "image/jpeg", 400, "truncated"),
    "one_pixel": (_png(1, 1), "image/png", 400, "at least"),
    "wrong_type": (_png(64, 64), "text/plain", 415, "Content-Type"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_requests_get_clear_json_errors(server, case):
    body, ctype, status, msg = BAD[case]
    got, data = _post(server, "/v1/predict", body, ctype)
    assert got == status
    err = json.loads(data)
    assert err["status"] == status and msg in err["error"]
    # the server keeps serving
    assert _post(server, "/v1/predict", _png(32, 32))[0] == 200


def test_body_over_limit_gets_413_before_upload(server):
    host, port = server.server_address[:2]
    s = socket.create_connection((host, port), timeout=5)
    s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
              b"Content-Length: 300000\r\n\r\n")
    data = _recv_all(s)
    s.close()
    assert b" 413 " in data.split(b"\r\n")[0] and b"over the limit" in data


def png_header_only(w, h):
    """A PNG whose header claims w x h (1-bit grey) with almost no pixel data: cheap 'huge image' bodies."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("side", [2000, 20000])  # 4 M pixels (over this server's 1 M), 400 M (over PIL's own cap)
def test_huge_image_rejected_without_decoding(server, side):
    got, data = _post(server, "/v1/predict", png_header_only(side, side))
    assert got == 400
    assert "pixel limit" in json.loads(data)["error"]
    assert _post(server, "/v1/predict", _png(32, 32))[0] == 200


def test_idle_connection_gets_408(server):
    host, port = server.server_address[:2]
    s = socket.create_connection((host, port), timeout=5)
    t0 = time.monotonic()
    data = _recv_all(s)  # send nothing at all
    s.close()
    assert b" 408 " in data.split(b"\r\n")[0] and time.monotonic() - t0 < 4
    assert _post(server, "/v1/predict", _png(32, 32))[0] == 200


def test_slow_client_gets_408(server):
    host, port = server.server_address[:2]
    s = socket.create_connection((host, port), timeout=5)
    s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\nabc")
    data = _recv_all(s)
    s.close()
    assert b" 408 " in data.split(b"\r\n")[0]
    assert _post(server, "/v1/predict", _png(32, 32))[0] == 200


def test_queue_full_gives_503(server):
    server.gate.clear()  # block the model: 2 workers busy, then 2 queued, then 503
    results = []

    def call():
        try:
            results.append(_post(server, "/v1/predict", _png(32, 32))[0])
        except OSError as e:
            results.append(repr(e))

    threads = [threading.Thread(target=call) for _ in range(7)]
    for t in threads:
        t.start()
        time.sleep(0.05)
    time.sleep(0.3)
    server.gate.set()
    for t in threads:
        t.join(10)
    assert sorted(set(results), key=str) == [200, 503], results  # no resets, no other codes
    assert results.count(200) >= 3
    assert _post(server, "/v1/predict", _png(32, 32))[0] == 200
