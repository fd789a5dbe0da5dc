"""HTTP inference server: Starlette on uvicorn, uploads read asynchronously, one model call at a time.

Endpoints:

* ``GET /``: the browser demo page (:mod:`maskrcnn_body.serving.web`): pick or drop an image, or turn
  on the webcam; the page draws parts, skeleton and boxes with a toggle per part and lists the people.
* ``POST /v1/predict``: the image as the raw body (``Content-Type`` ``image/jpeg``, ``image/png``,
  ``image/bmp``, ``image/webp`` or ``application/octet-stream``) or as the file of a
  ``multipart/form-data`` form (field ``image``, else the first file); answers the JSON of
  ``train/infer.py`` byte for byte (:mod:`maskrcnn_body.inference.results`).
* ``POST /v1/render``: same input; answers ``image/png`` with the drawn prediction.
* ``GET /healthz``: ``{"status": "ok", "queue": n, "in_flight": n, "receiving": n}``.
* ``GET /openapi.json``: the OpenAPI description.
* ``GET /web/``: with ``ServerConfig.web_dir`` (``serve --web DIR``), the in-browser page that ``export --web``
  wrote (:mod:`maskrcnn_body.serving.browser`), with the cross-origin isolation headers.

Errors are JSON ``{"error": message, "status": code}``: 400 (not an image, empty body, truncated image,
image too small or too large in pixels, bad form), 404 (unknown path), 405 (wrong method), 408 (client
too slow to send its request), 411 (no Content-Length), 413 (body over ``max_body_bytes``), 415 (wrong
content type), 503 (queue full, or too many bytes being uploaded at once; ``Retry-After: 1``), 500 (the
model failed; the server keeps serving). Answers carry ``Server-Timing`` (``queue``, ``model``, ms).

How it behaves under load and abuse:

* Slow clients cost no thread: bodies are read by the event loop (``receive()`` with a deadline of
  ``read_timeout_s`` from the request head), so stalled uploads neither hold the model nor delay
  ``/healthz``. A connection that sends no complete request head within ``read_timeout_s`` gets a
  408 and is closed (:class:`_Protocol`).
* Refused bodies are drained: an error sent before the body has arrived (413, 415, 411, 503, ...) is
  written at once, then up to ``max_drain_bytes`` of the body are read and discarded (within the read
  deadline) before the connection is closed, so clients that send their whole body before reading the
  answer (Python's urllib, requests) read the error instead of a connection reset.
* The model runs in one worker thread, ``max_inflight`` call(s) at a time; at most ``max_queue`` more
  requests wait for it, beyond that the answer is 503 at once. Images are decoded in that worker,
  just before their model call.
* Memory is bounded: request bodies being received or waiting take at most ``max_pending_bytes``
  (declared Content-Length; 503 beyond), at most ``max_inflight`` images are decoded at a time
  (<= 3 x ``max_pixels`` bytes each), and at most ``max_open_requests`` requests are open (503 beyond).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import io
import json
import logging
import socket
import threading
import time
from typing import Callable, Optional

import h11
import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import Headers, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from uvicorn.protocols.http.h11_impl import H11Protocol

from maskrcnn_body.serving import browser, web

log = logging.getLogger(__name__)

IMAGE_TYPES = ("image/jpeg", "image/jpg", "image/png", "image/bmp", "image/webp", "application/octet-stream")
FORM_TYPE = "multipart/form-data"


@dataclasses.dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 20 * 1024 * 1024  # 413 above this
    max_pixels: int = 40_000_000  # 400 above this (decompression-bomb guard)
    min_side: int = 16  # 400 below this
    read_timeout_s: float = 10.0  # 408 when the request head or body does not arrive in time
    num_workers: int = 4  # unused since the server is asynchronous; kept for old callers
    max_queue: int = 16  # requests waiting for the model; 503 beyond
    max_inflight: int = 1  # concurrent model calls (threads of the model worker)
    max_pending_bytes: int = 256 * 1024 * 1024  # bodies being received or waiting for the model; 503 beyond
    max_open_requests: int = 512  # requests in progress (any stage); 503 beyond
    max_drain_bytes: int = 64 * 1024 * 1024  # how much of a refused body is read and discarded
    shutdown_timeout_s: float = 5.0  # graceful shutdown: wait this long for open requests
    web_dir: Optional[str] = None  # an `export --web` folder, served at /web/


class HTTPError(Exception):
    def __init__(self, status: int, message: str, headers: Optional[dict] = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class _ClientGoneError(Exception):
    """The client closed the connection before its body arrived: nobody to answer."""


def decode_request_image(body: bytes, cfg: ServerConfig, load: bool = True) -> Optional[np.ndarray]:
    """Image bytes -> RGB uint8 (H, W, 3), or :class:`HTTPError` 400 saying what is wrong.

    With ``load=False`` only the header is read (type, size and pixel limits; cheap) and None returned."""
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
        raise HTTPError(400, f"image is {w}x{h} = {w * h} pixels, above the pixel limit of {cfg.max_pixels}; resize it")
    if min(w, h) < cfg.min_side:
        raise HTTPError(400, f"image is {w}x{h}; both sides must be at least {cfg.min_side} pixels")
    if not load:
        return None
    try:
        im.load()
        arr = np.asarray(im.convert("RGB"))
    except Exception as e:
        raise HTTPError(400, f"image data is truncated or corrupt ({e})") from None
    return arr


def _error_body(status: int, message: str) -> bytes:
    return json.dumps({"error": message, "status": status}).encode()


def error_response(status: int, message: str, headers: Optional[dict] = None) -> Response:
    return Response(_error_body(status, message), status, headers=headers, media_type="application/json")


# --------------------------------------------------------------------------- connection level
class _Protocol(H11Protocol):
    """uvicorn's h11 protocol plus a request-head deadline: a connection that has not sent a complete
    request head within ``head_timeout_s`` (of opening, or of the first byte after a keep-alive
    answer) gets a JSON 408 and is closed (uvicorn itself waits for a head forever); requests h11
    cannot parse get a JSON 400."""

    head_timeout_s = 10.0

    def connection_made(self, transport):  # type: ignore[override]
        self._head_timer: Optional[asyncio.TimerHandle] = None
        super().connection_made(transport)
        self._arm_head_timer()

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_timeout)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _waiting_for_head(self) -> bool:
        return (
            self.conn.their_state is h11.IDLE
            and not self.transport.is_closing()
            and (self.cycle is None or self.cycle.response_complete)
        )

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._waiting_for_head():
            self._arm_head_timer()  # a head has begun (keep-alive: uvicorn's idle timer is now off)
        else:
            self._cancel_head_timer()

    def connection_lost(self, exc):
        self._cancel_head_timer()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        """A request h11 cannot parse: the same JSON error as every other (uvicorn answers text/plain)."""
        body = _error_body(400, f"{msg} (not an HTTP/1.1 request this server can read)")
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        self.transport.write(self.conn.send(h11.Response(status_code=400, headers=headers, reason=b"Bad Request")))
        self.transport.write(self.conn.send(h11.Data(data=body)))
        self.transport.write(self.conn.send(h11.EndOfMessage()))
        self.transport.close()

    def _head_timeout(self) -> None:
        self._head_timer = None
        if not self._waiting_for_head():
            return
        body = _error_body(408, f"request not received within {self.head_timeout_s:g} s")
        self.transport.write(
            b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
        )
        self.transport.close()


def _protocol_class(head_timeout_s: float) -> type:
    return type("InferenceHTTPProtocol", (_Protocol,), {"head_timeout_s": float(head_timeout_s)})


class _DrainMiddleware:
    """Pure ASGI: counts open requests (JSON 503 beyond ``max_open_requests``) and, when an answer is
    complete before the request body has been read, sends the answer, reads and discards the rest of
    the body (at most ``max_drain_bytes``, until the read deadline) and only then completes the
    response, which closes the connection (``Connection: close``) without a reset."""

    def __init__(self, app, server: InferenceApp):
        self.app = app
        self.server = server

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        cfg = self.server.cfg
        loop = asyncio.get_running_loop()
        scope["deadline"] = loop.time() + cfg.read_timeout_s
        body_done = scope["method"] in ("GET", "HEAD") and not _declares_body(scope)

        async def tracked_receive():
            nonlocal body_done
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                body_done = True
            return message

        async def draining_send(message):
            if message["type"] == "http.response.start" and not body_done:
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            elif message["type"] == "http.response.body" and not message.get("more_body", False) and not body_done:
                await send({**message, "more_body": True})  # the whole answer leaves now
                await self._drain(tracked_receive, scope["deadline"])
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        if self.server.open_requests >= cfg.max_open_requests:
            response = error_response(
                503, f"server busy: {self.server.open_requests} requests open, retry later", {"Retry-After": "1"}
            )
            return await response(scope, tracked_receive, draining_send)
        self.server.open_requests += 1
        try:
            await self.app(scope, tracked_receive, draining_send)
        finally:
            self.server.open_requests -= 1

    async def _drain(self, receive, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        drained = 0
        while drained <= self.server.cfg.max_drain_bytes:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            try:
                message = await asyncio.wait_for(receive(), remaining)
            except asyncio.TimeoutError:
                return
            if message["type"] == "http.disconnect":
                return
            drained += len(message.get("body", b""))
            if not message.get("more_body", False):
                return


def _declares_body(scope) -> bool:
    return any(k in (b"content-length", b"transfer-encoding") for k, _ in scope["headers"])


# --------------------------------------------------------------------------- application
class InferenceApp:
    """The ASGI application: routes, limits and the model worker.

    Args:
      cfg: limits.
      predict_fn: RGB uint8 (H, W, 3) -> JSON-serialisable dict.
      render_fn: RGB uint8 (H, W, 3) -> PNG bytes.
    """

    def __init__(self, cfg: ServerConfig, predict_fn: Callable, render_fn: Callable):
        self.cfg = cfg
        self.predict_fn = predict_fn
        self.render_fn = render_fn
        self.model_pool = concurrent.futures.ThreadPoolExecutor(cfg.max_inflight, thread_name_prefix="model")
        self._count_lock = threading.Lock()
        self.admitted = 0  # requests waiting for or in a model call (event loop only)
        self.in_flight = 0  # model calls running
        self.receiving = 0  # requests whose body is arriving
        self.pending_bytes = 0  # declared bodies being received or waiting
        self.open_requests = 0
        self.page, self.page_headers = web.index_page(cfg.max_body_bytes, cfg.max_pixels)
        self.openapi = json.dumps(
            web.openapi_schema(IMAGE_TYPES, cfg.max_body_bytes, cfg.max_pixels, cfg.min_side)
        ).encode()
        routes = [
            Route("/", self.index, methods=["GET"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/openapi.json", self.openapi_json, methods=["GET"]),
            Route("/v1/predict", _ImageEndpoint(self, "predict"), methods=["POST"]),
            Route("/v1/render", _ImageEndpoint(self, "render"), methods=["POST"]),
        ]
        if cfg.web_dir:  # the in-browser page (serving.browser), static files
            routes.append(Mount("/web", app=browser.static_app(cfg.web_dir)))
        handlers = {HTTPException: self._http_exception, Exception: self._internal_error}
        self.starlette = Starlette(routes=routes, exception_handlers=handlers)  # type: ignore[arg-type]
        self.asgi = _DrainMiddleware(self.starlette, self)

    async def __call__(self, scope, receive, send):
        await self.asgi(scope, receive, send)

    def close(self) -> None:
        self.model_pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ small routes
    async def index(self, request: Request) -> Response:
        return Response(self.page, headers=self.page_headers, media_type="text/html; charset=utf-8")

    async def healthz(self, request: Request) -> Response:
        body = {
            "status": "ok",
            "queue": self.admitted - self.in_flight,
            "in_flight": self.in_flight,
            "receiving": self.receiving,
        }
        return Response(json.dumps(body).encode(), media_type="application/json")

    async def openapi_json(self, request: Request) -> Response:
        return Response(self.openapi, media_type="application/json")

    async def _http_exception(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            message = f"unknown path {request.url.path}; use GET /, POST /v1/predict, POST /v1/render or GET /healthz"
        elif exc.status_code == 405:
            message = (
                f"{request.method} is not allowed on {request.url.path}; use {exc.headers.get('Allow', '')}"
                if exc.headers
                else f"{request.method} is not allowed on {request.url.path}"
            )
        else:
            message = str(exc.detail)
        return error_response(exc.status_code, message, exc.headers)

    async def _internal_error(self, request: Request, exc: Exception) -> Response:
        log.error("request failed", exc_info=exc)
        return error_response(500, f"internal error: {type(exc).__name__}: {exc}")

    # ------------------------------------------------------------------ the image routes
    async def read_image_bytes(self, scope, receive) -> bytes:
        """The image bytes of a request (raw body or the file of a multipart form), read within the
        deadline; :class:`HTTPError` for every bad request. Reserves the declared length in
        ``pending_bytes``: the caller releases it (:meth:`release`)."""
        cfg = self.cfg
        headers = Headers(scope=scope)
        ctype = (headers.get("content-type") or "").split(";")[0].strip().lower()
        if ctype not in IMAGE_TYPES and ctype != FORM_TYPE:
            raise HTTPError(
                415, f"Content-Type {ctype or '(none)'!r} is not supported; use one of {(*IMAGE_TYPES, FORM_TYPE)}"
            )
        length = headers.get("content-length")
        if length is None:
            raise HTTPError(411, "Content-Length is required")
        try:
            n = int(length)
            if n < 0:
                raise ValueError
        except ValueError:
            raise HTTPError(400, f"bad Content-Length {length!r}") from None
        if n > cfg.max_body_bytes:
            raise HTTPError(413, f"body of {n} bytes is over the limit of {cfg.max_body_bytes} bytes")
        if self.pending_bytes + n > cfg.max_pending_bytes:
            raise HTTPError(
                503,
                f"server busy: {self.pending_bytes} bytes of uploads in progress, retry later",
                {"Retry-After": "1"},
            )
        self.pending_bytes += n
        scope["reserved_bytes"] = n
        loop = asyncio.get_running_loop()
        deadline = scope["deadline"]
        body = bytearray()
        self.receiving += 1
        try:
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise HTTPError(408, f"body not received within {cfg.read_timeout_s:g} s")
                try:
                    message = await asyncio.wait_for(receive(), remaining)
                except asyncio.TimeoutError:
                    raise HTTPError(408, f"body not received within {cfg.read_timeout_s:g} s") from None
                if message["type"] == "http.disconnect":
                    raise _ClientGoneError
                body += message.get("body", b"")
                if not message.get("more_body", False):
                    break
        finally:
            self.receiving -= 1
        if ctype == FORM_TYPE:
            return await self._form_file(headers, bytes(body))
        return bytes(body)

    def release(self, scope) -> None:
        self.pending_bytes -= scope.pop("reserved_bytes", 0)

    async def _form_file(self, headers: Headers, body: bytes) -> bytes:
        async def stream():
            yield body

        try:
            form = await MultiPartParser(headers, stream(), max_files=4, max_fields=16).parse()
        except MultiPartException as e:
            raise HTTPError(400, f"bad multipart form: {e}") from None
        try:
            files = [(k, v) for k, v in form.multi_items() if isinstance(v, UploadFile)]
            if not files:
                raise HTTPError(400, "the multipart form has no file: send the image as the file field 'image'")
            upload = next((v for k, v in files if k == "image"), files[0][1])
            part_type = (upload.content_type or "").split(";")[0].strip().lower()
            if part_type and not (part_type.startswith("image/") or part_type == "application/octet-stream"):
                raise HTTPError(415, f"the form's file has Content-Type {part_type!r}; send an image")
            return await upload.read()
        finally:
            await form.close()

    async def run_model(self, kind: str, data: bytes):
        """Queues ``data`` for the model worker (503 when ``max_queue`` requests already wait);
        returns (answer bytes, media type, timings in ms)."""
        cfg = self.cfg
        if self.admitted >= cfg.max_queue + cfg.max_inflight:
            raise HTTPError(503, "server busy: request queue is full, retry later", {"Retry-After": "1"})
        self.admitted += 1
        t0 = time.perf_counter()
        try:
            return await asyncio.get_running_loop().run_in_executor(self.model_pool, self._work, kind, data, t0)
        finally:
            self.admitted -= 1

    def _work(self, kind: str, data: bytes, t_queued: float):
        """In the model worker thread: decode, run the model, encode the answer."""
        t0 = time.perf_counter()
        with self._count_lock:
            self.in_flight += 1
        try:
            image = decode_request_image(data, self.cfg)
            if kind == "predict":
                out, media = json.dumps(self.predict_fn(image)).encode(), "application/json"
            else:
                out, media = self.render_fn(image), "image/png"
        finally:
            with self._count_lock:
                self.in_flight -= 1
        return out, media, {"queue": (t0 - t_queued) * 1000, "model": (time.perf_counter() - t0) * 1000}


class _ImageEndpoint:
    """ASGI endpoint of ``POST /v1/predict`` and ``POST /v1/render``."""

    def __init__(self, server: InferenceApp, kind: str):
        self.server = server
        self.kind = kind

    async def __call__(self, scope, receive, send):
        server = self.server
        try:
            try:
                data = await server.read_image_bytes(scope, receive)
                decode_request_image(data, server.cfg, load=False)  # cheap checks before queueing
                out, media, timing = await server.run_model(self.kind, data)
            finally:
                server.release(scope)
        except _ClientGoneError:
            return
        except HTTPError as e:
            return await error_response(e.status, e.message, e.headers)(scope, receive, send)
        except Exception as e:  # the model failed: report, keep serving
            log.exception("request failed")
            return await error_response(500, f"internal error: {type(e).__name__}: {e}")(scope, receive, send)
        timing_header = ", ".join(f"{k};dur={v:.1f}" for k, v in timing.items())
        await Response(out, media_type=media, headers={"Server-Timing": timing_header})(scope, receive, send)


# --------------------------------------------------------------------------- running it
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
        config = uvicorn.Config(
            self.app,
            http=_protocol_class(cfg.read_timeout_s),
            ws="none",
            lifespan="off",
            interface="asgi3",
            loop="asyncio",
            log_config=None,
            log_level="warning",
            access_log=False,
            server_header=False,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=cfg.shutdown_timeout_s,
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
