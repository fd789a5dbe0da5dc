"""HTTP server error handling and bounded queue, with a stand-in predictor (no model needed)."""

import contextlib
import http.client
import io
import json
import re
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
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


@contextlib.contextmanager
def running_server(model_s=0.0, predict=None, render=None, **overrides):
    """A server on a free loopback port whose stand-in model answers ``{"width", "height", "persons": []}``
    after ``model_s`` seconds (and waits while ``srv.gate`` is cleared); ``predict``/``render`` replace the
    stand-ins (RGB uint8 image -> dict / PNG bytes)."""
    gate = threading.Event()
    gate.set()

    def stand_in(img):
        gate.wait(10)
        time.sleep(model_s)
        return {"width": img.shape[1], "height": img.shape[0], "persons": []}

    kw = dict(
        port=0,
        max_body_bytes=200_000,
        read_timeout_s=1.0,
        num_workers=2,
        max_queue=2,
        max_pixels=1_000_000,
        shutdown_timeout_s=1.0,
    )
    kw.update(overrides)
    srv = InferenceServer(ServerConfig(**kw), predict or stand_in, render or (lambda img: _png(8, 8)))
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    srv.gate = gate
    try:
        yield srv
    finally:
        gate.set()
        srv.shutdown()
        srv.server_close()


@pytest.fixture()
def server():
    with running_server() as srv:
        yield srv


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
    s.sendall(
        b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\nContent-Length: 300000\r\n\r\n"
    )
    data = _recv_all(s)
    s.close()
    assert b" 413 " in data.split(b"\r\n")[0] and b"over the limit" in data


def png_header_only(w, h):
    """A PNG whose header claims w x h (1-bit grey) with almost no pixel data: cheap 'huge image' bodies."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


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
    s.sendall(
        b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\nabc"
    )
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


# --------------------------------------------------------------------------- what the framework change added
def _get(srv, path):
    host, port = srv.server_address[:2]
    c = http.client.HTTPConnection(host, port, timeout=10)
    c.request("GET", path)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, dict(r.getheaders()), data


def _multipart(fields):
    """(body, content type) of a multipart/form-data form: fields = [(name, filename or None, type, bytes)]."""
    boundary = "----maskrcnnbodytest7MA4YWxkTrZu0gW"
    out = b""
    for name, filename, ctype, data in fields:
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disp}\r\n".encode()
        if ctype:
            out += f"Content-Type: {ctype}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


def test_multipart_upload_equals_raw_body(server):
    raw = _post(server, "/v1/predict", _png(40, 30))
    body, ctype = _multipart([("note", None, None, b"hello"), ("image", "a.png", "image/png", _png(40, 30))])
    form = _post(server, "/v1/predict", body, ctype)
    assert form == raw and form[0] == 200
    body, ctype = _multipart([("picture", "a.jpg", "image/jpeg", _jpeg(40, 30))])  # any file field
    status, data = _post(server, "/v1/render", body, ctype)
    assert status == 200 and data.startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "fields,ctype,status,msg",
    [
        ([("note", None, None, b"no file here")], None, 400, "no file"),
        ([("image", "a.txt", "text/plain", b"hello")], None, 415, "Content-Type"),
        ([("image", "a.png", "image/png", b"not a png")], None, 400, "not an image"),
        ([("image", "a.png", "image/png", _png(40, 30))], "multipart/form-data", 400, "multipart"),  # no boundary
    ],
)
def test_bad_multipart_forms_get_json_errors(server, fields, ctype, status, msg):
    body, form_type = _multipart(fields)
    got, data = _post(server, "/v1/predict", body, ctype or form_type)
    err = json.loads(data)
    assert (got, err["status"]) == (status, status) and msg in err["error"], err
    assert _post(server, "/v1/predict", _png(32, 32))[0] == 200


def test_unknown_paths_and_methods_get_json_errors(server):
    status, headers, data = _get(server, "/nope")
    assert status == 404 and json.loads(data)["status"] == 404
    status, headers, data = _get(server, "/v1/predict")
    assert status == 405 and json.loads(data)["status"] == 405 and "POST" in headers["allow"]
    assert _post(server, "/v1/nope", _png(32, 32))[0] == 404


def test_page_is_small_self_contained_and_locked_down(server):
    status, headers, data = _get(server, "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    html = data.decode()
    assert len(data) < 40_000, len(data)
    # no external resources: every src/href/action is relative or a data: URL
    refs = re.findall(r'(?:src|href|action)="([^"]*)"', html)
    assert refs and all(not re.match(r"(https?:)?//", r) for r in refs), refs
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp and "unsafe-inline" not in csp
    assert "{{CONFIG}}" not in html and '"part_colours"' in html


def test_openapi_describes_every_route(server):
    status, _, data = _get(server, "/openapi.json")
    schema = json.loads(data)
    assert status == 200 and schema["openapi"].startswith("3.")
    routes = {r.path for r in server.app.starlette.routes}
    assert set(schema["paths"]) == routes
    body = schema["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in body and "image/jpeg" in body


def test_25mb_body_over_the_limit_reads_413_with_urllib():
    """urllib sends the whole body before reading: the server drains it and the client reads the 413
    (the thread-pool server reset the connection: BrokenPipeError / ConnectionResetError)."""
    with running_server(read_timeout_s=20.0) as srv:
        body = np.zeros(25 * 1024 * 1024, np.uint8).tobytes()
        req = urllib.request.Request(srv.url + "/v1/predict", data=body, headers={"Content-Type": "image/jpeg"})
        for _ in range(2):  # and the server keeps serving
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(req, timeout=30)
            assert e.value.code == 413
            err = json.loads(e.value.read())
            assert err["status"] == 413 and "over the limit" in err["error"]
        assert _post(srv, "/v1/predict", _png(32, 32))[0] == 200


def test_refused_small_bodies_are_read_before_closing(server):
    """415 and 503 before the body was read: the client still reads the JSON error (no reset)."""
    body = _png(300, 200)  # ~ 1 KB, sent with the request
    for _ in range(5):
        got, data = _post(server, "/v1/predict", body, "text/plain")
        assert got == 415 and json.loads(data)["status"] == 415


def _stall(srv, n, declared=100_000):
    """n connections that send a POST head declaring ``declared`` bytes, then 10 bytes, then nothing."""
    head = (
        f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\nContent-Length: {declared}\r\n\r\n"
    ).encode() + b"\x89PNG\r\n\x1a\n\0\0"
    socks = []
    for _ in range(n):
        s = socket.create_connection(srv.server_address, timeout=30)
        s.sendall(head)
        socks.append(s)
    return socks


def _timed(fn):
    t0 = time.monotonic()
    out = fn()
    return time.monotonic() - t0, out


def test_stalled_clients_do_not_hold_up_others():
    """60 clients send 10 bytes of a 100 KB body and stall: /healthz stays instant and a normal request
    takes its usual time (the thread-pool server made /healthz wait 9 s with 6 such clients)."""
    with running_server(model_s=0.05, read_timeout_s=10.0, max_queue=16) as srv:
        usual = min(_timed(lambda: _post(srv, "/v1/predict", _png(64, 64)))[0] for _ in range(3))
        socks = _stall(srv, 60)
        try:
            deadline = time.monotonic() + 5
            while json.loads(_get(srv, "/healthz")[2])["receiving"] < 60 and time.monotonic() < deadline:
                time.sleep(0.05)
            t_health, (status, _, data) = _timed(lambda: _get(srv, "/healthz"))
            assert status == 200 and json.loads(data)["receiving"] == 60
            assert t_health < 0.5, t_health
            t_req, (status, data) = _timed(lambda: _post(srv, "/v1/predict", _png(64, 64)))
            assert status == 200 and json.loads(data)["width"] == 64
            assert t_req < usual + 0.5, (t_req, usual)
        finally:
            for s in socks:
                s.close()


def test_stalled_clients_get_408_at_their_deadline():
    with running_server(read_timeout_s=1.0) as srv:
        socks = _stall(srv, 20)
        t0 = time.monotonic()
        heads = [_recv_all(s).split(b"\r\n")[0] for s in socks]
        assert all(b" 408 " in h for h in heads) and time.monotonic() - t0 < 4
        for s in socks:
            s.close()
        assert _post(srv, "/v1/predict", _png(32, 32))[0] == 200


def test_half_sent_request_head_gets_408(server):
    s = socket.create_connection(server.server_address, timeout=5)
    s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
    data = _recv_all(s)
    s.close()
    assert b" 408 " in data.split(b"\r\n")[0] and json.loads(data.split(b"\r\n\r\n", 1)[1])["status"] == 408


def test_upload_memory_budget_gives_503():
    with running_server(read_timeout_s=5.0, max_pending_bytes=150_000) as srv:
        socks = _stall(srv, 1, declared=100_000)  # holds 100 KB of the 150 KB budget
        try:
            time.sleep(0.2)
            got, data = _post(srv, "/v1/predict", _jpeg(200, 200) + b"\0" * 60_000, "image/jpeg")
            assert got == 503 and "uploads in progress" in json.loads(data)["error"]
            assert _post(srv, "/v1/predict", _png(32, 32))[0] == 200  # small ones still fit
        finally:
            socks[0].close()


def test_keep_alive_and_server_timing(server):
    host, port = server.server_address[:2]
    c = http.client.HTTPConnection(host, port, timeout=10)
    for _ in range(3):  # one connection, three answers
        c.request("POST", "/v1/predict", body=_png(32, 32), headers={"Content-Type": "image/png"})
        r = c.getresponse()
        assert r.status == 200 and json.loads(r.read())["width"] == 32
        assert re.fullmatch(r"queue;dur=[\d.]+, model;dur=[\d.]+", r.headers["Server-Timing"])
    c.close()


def test_unparsable_request_gets_json_400(server):
    s = socket.create_connection(server.server_address, timeout=5)
    s.sendall(b"HELLO THERE\r\n\r\n")
    data = _recv_all(s)
    s.close()
    assert b" 400 " in data.split(b"\r\n")[0] and json.loads(data.split(b"\r\n\r\n", 1)[1])["status"] == 400
    assert _post(server, "/v1/predict", _png(32, 32))[0] == 200


def assert_cap_refuses_then_recovers(srv, n: int, counter, message: str):
    """``n`` stalled uploads fill a cap: the next predict is a 503 whose error says ``message``; once they are
    closed and ``counter(srv)`` is back to 0, predict answers 200 again."""
    socks = _stall(srv, n)
    try:
        deadline = time.monotonic() + 5
        while srv.app.open_requests < n and time.monotonic() < deadline:
            time.sleep(0.05)
        got, data = _post(srv, "/v1/predict", _png(32, 32))
        assert got == 503 and message in json.loads(data)["error"]
    finally:
        for s in socks:
            s.close()
    deadline = time.monotonic() + 5
    while counter(srv) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _post(srv, "/v1/predict", _png(32, 32))[0] == 200


def test_open_request_cap_gives_503():
    with running_server(read_timeout_s=5.0, max_open_requests=5) as srv:
        assert_cap_refuses_then_recovers(srv, 5, lambda s: s.app.open_requests, "requests open")


def test_listens_on_loopback_unless_told_otherwise(server):
    from maskrcnn_body.cli.main import build_parser

    assert ServerConfig().host == "127.0.0.1" and server.server_address[0] == "127.0.0.1"
    assert build_parser(("serve",)).parse_args(["serve"]).host == "127.0.0.1"
