"""HTTP inference server with bounded concurrency and a bounded queue.

Endpoints:

* ``POST /v1/predict``: body = image bytes (``image/jpeg``, ``image/png``, ``image/bmp``, ``image/webp`` or
  ``application/octet-stream``); answers JSON ``{"width", "height", "persons": [...]}`` (the format of
  ``train/infer.py``, see :mod:`maskrcnn_body.serving.results`).
* ``POST /v1/render``: same input; answers ``image/png`` with the drawn prediction.
* ``GET /healthz``: ``{"status": "ok", "queue": n, "in_flight": n}``.

Errors are JSON ``{"error": message, "status": code}``: 400 (not an image, empty body, truncated image,
image too small or too large in pixels), 404 (unknown path), 408 (client too slow to send its body), 411
(no Content-Length), 413 (body over ``max_body_bytes``), 415 (wrong content type), 503 (queue full), 500
(the model failed; the server keeps serving).

Concurrency: connections are accepted by one thread and handed to a fixed pool of ``num_workers`` handler
threads through a queue of at most ``max_queue`` connections; when the queue is full the connection is
answered 503 at once. Model calls are serialised further by a semaphore of ``max_inflight``. Memory is
therefore bounded by (num_workers + max_queue) x max_body_bytes plus the model's own needs.
"""
from __future__ import annotations

import dataclasses
import http.server
import io
import json
import logging
import queue
import threading
import time
from typing import Callable, Optional

import numpy as np

log = logging.getLogger(__name__)

IMAGE_TYPES = ("image/jpeg", "image/jpg", "image/png", "image/bmp", "image/webp", "application/octet-stream")


@dataclasses.dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 20 * 1024 * 1024   # 413 above this
    max_pixels: int = 40_000_000             # 400 above this (decompression-bomb guard)
    min_side: int = 16                       # 400 below this
    read_timeout_s: float = 10.0             # 408 when the body does not arrive in time
    num_workers: int = 4                     # handler threads
    max_queue: int = 16                      # waiting connections; 503 beyond
    max_inflight: int = 1                    # concurrent model calls


class HTTPError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def decode_request_image(body: bytes, cfg: ServerConfig) -> np.ndarray:
    """Image bytes -> RGB uint8 (H, W, 3), or :class:`HTTPError` 400 saying what is wrong."""
    from PIL import Image
    if not body:
        raise HTTPError(400, "empty body: send the image bytes (JPEG or PNG) as the request body")
    try:
        im = Image.open(io.BytesIO(body))
    except Image.DecompressionBombError as e:  # PIL refuses images over 2 x MAX_IMAGE_PIXELS at open
        raise HTTPError(400, f"image is above the pixel limit of {cfg.max_pixels} ({e}); resize it") from None
    except Exception:
        raise HTTPError(400, "body is not an image PIL can read (send JPEG or PNG bytes)") from None
    w, h = im.size
    if w * h > cfg.max_pixels:
        raise HTTPError(400, f"image is {w}x{h} = {w * h} pixels, above the pixel limit of {cfg.max_pixels}; "
                             "resize it")
    if min(w, h) < cfg.min_side:
        raise HTTPError(400, f"image is {w}x{h}; both sides must be at least {cfg.min_side} pixels")
    try:
        im.load()
        arr = np.asarray(im.convert("RGB"))
    except Exception as e:
        raise HTTPError(400, f"image data is truncated or corrupt ({e})") from None
    return arr


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "maskrcnn_body/0.1"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # route to logging, not stderr
        log.info("%s - %s", self.address_string(), fmt % args)

    def setup(self):
        self.timeout = self.server.cfg.read_timeout_s  # per-recv limit while reading the request head
        super().setup()

    def handle_one_request(self):
        """A client that opens a connection but does not send its request line in time gets 408."""
        try:
            self.rfile.peek(1)
        except TimeoutError:
            self.close_connection = True
            try:
                self.request_version, self.requestline, self.command = "HTTP/1.1", "", ""
                self._error(408, f"request not received within {self.server.cfg.read_timeout_s:g} s")
            except OSError:
                pass
            return
        super().handle_one_request()

    # ------------------------------------------------------------------ helpers
    def _send(self, status: int, body: bytes, content_type: str):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def _send_json(self, status: int, obj):
        self._send(status, json.dumps(obj).encode(), "application/json")

    def _error(self, status: int, message: str):
        self._send_json(status, {"error": message, "status": status})

    def _read_body(self) -> bytes:
        cfg: ServerConfig = self.server.cfg
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype not in IMAGE_TYPES:
            raise HTTPError(415, f"Content-Type {ctype or '(none)'!r} is not supported; use one of {IMAGE_TYPES}")
        length = self.headers.get("Content-Length")
        if length is None:
            raise HTTPError(411, "Content-Length is required")
        try:
            n = int(length)
        except ValueError:
            raise HTTPError(400, f"bad Content-Length {length!r}") from None
        if n > cfg.max_body_bytes:
            raise HTTPError(413, f"body of {n} bytes is over the limit of {cfg.max_body_bytes} bytes")
        deadline = time.monotonic() + cfg.read_timeout_s
        chunks, got = [], 0
        while got < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise HTTPError(408, f"body not received within {cfg.read_timeout_s:g} s")
            self.connection.settimeout(remaining)
            try:
                chunk = self.rfile.read1(min(n - got, 1 << 20))
            except TimeoutError:
                raise HTTPError(408, f"body not received within {cfg.read_timeout_s:g} s") from None
            if not chunk:
                raise HTTPError(400, f"connection closed after {got} of {n} body bytes")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    # ------------------------------------------------------------------ routes
    def do_GET(self):
        if self.path == "/healthz":
            srv = self.server
            self._send_json(200, {"status": "ok", "queue": srv.pending.qsize(), "in_flight": srv.in_flight})
        else:
            self._error(404, f"unknown path {self.path}; use POST /v1/predict, POST /v1/render or GET /healthz")

    def do_POST(self):
        try:
            if self.path not in ("/v1/predict", "/v1/render"):
                raise HTTPError(404, f"unknown path {self.path}; use POST /v1/predict or /v1/render")
            body = self._read_body()
            image = decode_request_image(body, self.server.cfg)
            with self.server.model_slot:
                self.server.in_flight += 1
                try:
                    if self.path == "/v1/predict":
                        out = self.server.predict_fn(image)
                    else:
                        out = self.server.render_fn(image)
                finally:
                    self.server.in_flight -= 1
        except HTTPError as e:
            return self._error(e.status, e.message)
        except Exception as e:  # the model failed: report, keep serving
            log.exception("request failed")
            return self._error(500, f"internal error: {type(e).__name__}: {e}")
        if self.path == "/v1/predict":
            self._send_json(200, out)
        else:
            self._send(200, out, "image/png")


class InferenceServer(http.server.HTTPServer):
    """HTTP server with a fixed handler pool and a bounded connection queue.

    Args:
      cfg: limits and address.
      predict_fn: RGB uint8 (H, W, 3) -> JSON-serialisable dict.
      render_fn: RGB uint8 (H, W, 3) -> PNG bytes.
    """

    daemon_threads = True

    def __init__(self, cfg: ServerConfig, predict_fn: Callable, render_fn: Callable):
        self.cfg = cfg
        self.predict_fn = predict_fn
        self.render_fn = render_fn
        self.pending: queue.Queue = queue.Queue(maxsize=cfg.max_queue)
        self.model_slot = threading.Semaphore(cfg.max_inflight)
        self.in_flight = 0
        super().__init__((cfg.host, cfg.port), _Handler)
        self._workers = [threading.Thread(target=self._work, daemon=True, name=f"http-worker-{i}")
                         for i in range(cfg.num_workers)]
        for t in self._workers:
            t.start()

    def process_request(self, request, client_address):
        try:
            self.pending.put_nowait((request, client_address))
        except queue.Full:
            self._reject_busy(request)

    def _reject_busy(self, request):
        body = json.dumps({"error": "server busy: request queue is full, retry later", "status": 503}).encode()
        head = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n").encode()
        try:
            # read (and drop) what the client already sent, briefly, so it sees the 503 rather than a reset
            request.settimeout(0.05)
            deadline, drained = time.monotonic() + 0.25, 0
            while time.monotonic() < deadline and drained < (1 << 20):
                try:
                    chunk = request.recv(65536)
                except (TimeoutError, BlockingIOError):
                    break
                if not chunk:
                    break
                drained += len(chunk)
            request.settimeout(1.0)
            request.sendall(head + body)
        except OSError:
            pass
        self.shutdown_request(request)

    def _work(self):
        while True:
            request, client_address = self.pending.get()
            try:
                self.finish_request(request, client_address)
            except Exception:
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


def serve(cfg: ServerConfig, predict_fn: Callable, render_fn: Callable,
          ready: Optional[Callable[[str], None]] = None) -> None:
    """Runs the server until interrupted."""
    srv = InferenceServer(cfg, predict_fn, render_fn)
    if ready:
        ready(srv.url)
    try:
        srv.serve_forever()
    finally:
        srv.server_close()
