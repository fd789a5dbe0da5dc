"""HTTP inference server: Starlette on uvicorn, uploads read asynchronously, one model call at a time.

Endpoints:

* ``GET /``: the browser demo page (:mod:`maskrcnn_body.serving.web`): pick or drop an image, or turn
  on the webcam; the page draws parts, skeleton and boxes with a toggle per part and lists the people.
* ``POST /v1/predict``: the image as the raw body (``Content-Type`` ``image/jpeg``, ``image/png``,
  ``image/bmp``, ``image/webp`` or ``application/octet-stream``) or as the file of a
  ``multipart/form-data`` form (field ``image``, else the first file); answers the JSON of
  ``train/infer.py`` byte for byte (:mod:`maskrcnn_body.inference.result_json`).
* ``POST /v1/render``: same input; answers ``image/png`` with the drawn prediction.
* ``GET /healthz``: ``{"status": "ok", "queue": n, "in_flight": n, "receiving": n}``.
* ``GET /openapi.json``: the OpenAPI description.
* ``GET /web/``: with ``ServerConfig.web_dir`` (``serve --web DIR``), the in-browser page that ``export --web``
  wrote (:mod:`maskrcnn_body.serving.browser`), with the cross-origin isolation headers.

Errors are JSON ``{"error": message, "status": code}`` (docs/SERVING.md has the table of limits): 400 (not an
image, empty body, truncated image, image too small or too large in pixels or too elongated, bad form, a
``Host`` not allowed, a body framed by both ``Content-Length`` and ``Transfer-Encoding``), 403 (a cross-origin
POST), 404 (unknown path), 405 (wrong method), 408 (client too slow to send its request), 411 (no
Content-Length), 413 (body over ``max_body_bytes``, counted on the bytes received), 415 (wrong content type or
an image format other than JPEG, PNG, WebP, BMP), 503 (queue full, too many bytes being uploaded at once, too
many requests open, from everyone or from one address; ``Retry-After: 1``), 500 (the model failed; the body
says only ``internal error (id ...)``, the log carries the id and the traceback; the server keeps serving).
Answers carry ``Server-Timing`` (``queue``, ``model``, ms) and every answer ``X-Content-Type-Options: nosniff``.
Images are decoded by :mod:`maskrcnn_body.data.images` (EXIF orientation applied: coordinates are in the
upright frame every viewer shows).

How it behaves under load and abuse:

* Slow clients cost no thread: bodies are read by the event loop (``receive()`` with a deadline of
  ``read_timeout_s`` from the request head), so stalled uploads neither hold the model nor delay
  ``/healthz``. A connection that sends no complete request head within ``read_timeout_s`` gets a
  408 and is closed (:mod:`~maskrcnn_body.serving.http_protocol`). A client that does not read its answer is
  disconnected after ``write_timeout_s`` without progress (counted in ``/healthz`` as ``slow_readers_closed``).
* Nothing that parses image bytes runs on the event loop: the header check runs in a small decode pool
  (bounded by ``decode_timeout_s``), the decoding in the model worker, and the decoder's structure walk
  bounds the parsing work, so no upload delays ``/healthz``.
* Refused bodies are drained: an error sent before the body has arrived (413, 415, 411, 503, ...) is
  written at once, then up to ``max_drain_bytes`` of the body are read and discarded (within the read
  deadline) before the connection is closed, so clients that send their whole body before reading the
  answer (Python's urllib, requests) read the error instead of a connection reset.
* The model runs in one worker thread, ``max_inflight`` call(s) at a time; at most ``max_queue`` more
  requests wait for it, beyond that the answer is 503 at once. Images are decoded in that worker,
  just before their model call.
* Memory is bounded: request bodies being received or waiting take at most ``max_pending_bytes``
  (declared Content-Length, or ``max_body_bytes`` for a chunked body; 503 beyond), at most ``max_inflight``
  images are decoded at a time (<= 3 x ``max_pixels`` bytes each), at most ``max_open_requests`` uploads are
  open, at most ``max_open_per_client`` of them from one address (503 beyond; ``GET`` requests, the page
  and ``/healthz`` are never refused by these caps). After a large request the freed memory is handed
  back to the system (glibc ``malloc_trim``).
* Browser hygiene: the ``Host`` header must be a loopback name, an IP address or one of ``allowed_hosts``
  (DNS rebinding), a POST with an ``Origin`` must come from the server's own origin or ``allowed_origins``.

Modules: :mod:`~maskrcnn_body.serving.http_config` (limits), :mod:`~maskrcnn_body.serving.http_errors`,
:mod:`~maskrcnn_body.serving.http_protocol` (connection deadlines; uvicorn's private h11 protocol, isolated),
:mod:`~maskrcnn_body.serving.http_admission` (Host/Origin, open-upload caps, draining, fair model queue),
:mod:`~maskrcnn_body.serving.http_decode` (decode pool, memory), :mod:`~maskrcnn_body.serving.http_app` (routes,
model worker); this module binds the socket and runs uvicorn.
"""

from __future__ import annotations

import socket
import threading
from typing import Any, Callable, Optional

import uvicorn

from maskrcnn_body.serving.http_app import InferenceApp
from maskrcnn_body.serving.http_config import ServerConfig
from maskrcnn_body.serving.http_protocol import protocol_class

__all__ = ["InferenceServer", "ServerConfig", "serve"]


class InferenceServer:
    """The server bound to ``cfg.host:cfg.port`` (port 0: any free port), run by uvicorn.

    ``serve_forever()`` blocks (in any thread); ``shutdown()`` (from another thread) stops it and waits;
    ``server_close()`` releases the socket and the model worker. ``server_address``/``url`` are known as
    soon as the object exists.
    """

    def __init__(self, cfg: ServerConfig, predict_fn: Callable, render_fn: Callable):
        self.cfg = cfg
        self.app = InferenceApp(cfg, predict_fn, render_fn)
        family = socket.AF_INET6 if ":" in cfg.host else socket.AF_INET
        self.socket = socket.create_server((cfg.host, cfg.port), family=family, backlog=1024)
        self.server_address = self.socket.getsockname()[:2]
        graceful: Any = cfg.shutdown_timeout_s  # some uvicorn versions type it int; a float works in all
        config = uvicorn.Config(
            self.app,
            http=protocol_class(cfg, self.app.stats),
            ws="none",
            lifespan="off",
            interface="asgi3",
            loop="asyncio",
            log_config=None,
            log_level="warning",
            access_log=False,
            server_header=False,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=graceful,
        )
        self._uvicorn = uvicorn.Server(config)
        self._running = threading.Event()
        self._stopped = threading.Event()

    @property
    def in_flight(self) -> int:
        return self.app.in_flight

    def serve_forever(self) -> None:
        self._running.set()
        try:
            self._uvicorn.run(sockets=[self.socket])
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        self._uvicorn.should_exit = True
        if self._running.is_set():
            self._stopped.wait()

    def server_close(self) -> None:
        self.socket.close()
        self.app.close()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(
    cfg: ServerConfig, predict_fn: Callable, render_fn: Callable, ready: Optional[Callable[[str], None]] = None
) -> None:
    """Runs the server until interrupted (SIGINT/SIGTERM: graceful shutdown)."""
    srv = InferenceServer(cfg, predict_fn, render_fn)
    if ready:
        ready(srv.url)
    try:
        srv.serve_forever()
    finally:
        srv.server_close()


def serve_model(
    model: str,
    cfg: ServerConfig,
    score_threshold: float = 0.5,
    log: Callable[[str], None] = print,
    **load_options,
) -> None:
    """Loads ``model`` (a training directory, SavedModel, ``.onnx`` or ``.tflite``:
    :func:`maskrcnn_body.workflows.model.load` with ``load_options``), traces it once on a small image (one trace
    serves every size, so request 1 is not slow) and serves it with ``cfg`` until interrupted: ``POST /v1/predict``
    answers the JSON of :func:`~maskrcnn_body.inference.api.predict_json`, ``POST /v1/render`` the drawing of
    :func:`~maskrcnn_body.inference.api.render_png`, persons scoring at least ``score_threshold``."""
    import numpy as np

    from maskrcnn_body.inference.api import predict_json, render_png
    from maskrcnn_body.workflows.model import load

    loaded = load(model, **load_options)
    runner = loaded.runner

    def predictor(image):
        return runner([image])[0]

    predictor(np.zeros((64, 64, 3), np.uint8))
    log(f"model {model} ({loaded.format}) on backend {loaded.backend}")
    pages = ", GET /web/ in-browser page" if cfg.web_dir else ""
    serve(
        cfg,
        lambda image: predict_json(predictor, image, score_threshold=score_threshold),
        lambda image: render_png(image, predictor(image), score_threshold),
        ready=lambda url: log(
            f"serving on {url} (GET / demo page{pages}, POST /v1/predict, POST /v1/render, GET /healthz, "
            "GET /openapi.json)"
        ),
    )
