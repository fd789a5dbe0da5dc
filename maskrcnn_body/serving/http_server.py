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
  408 and is closed (:class:`_Protocol`). A client that does not read its answer is disconnected after
  ``write_timeout_s`` without progress (counted in ``/healthz`` as ``slow_readers_closed``).
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
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import ctypes
import ctypes.util
import dataclasses
import ipaddress
import json
import logging
import socket
import threading
import time
import urllib.parse
import uuid
from typing import Callable, Optional, Tuple

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

from maskrcnn_body.data import images
from maskrcnn_body.serving import browser, web

log = logging.getLogger(__name__)

IMAGE_TYPES = (*images.MIME_TYPES, "application/octet-stream")
FORM_TYPE = "multipart/form-data"


@dataclasses.dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 20 * 1024 * 1024  # 413 above this
    max_pixels: int = 40_000_000  # 400 above this (decompression-bomb guard)
    min_side: int = 16  # 400 below this
    max_aspect_ratio: float = 20.0  # 400 above this (long side / short side; 0 = any)
    read_timeout_s: float = 10.0  # 408 when the request head or body does not arrive in time
    num_workers: int = 4  # unused since the server is asynchronous; kept for old callers
    max_queue: int = 16  # requests waiting for the model; 503 beyond
    max_inflight: int = 1  # concurrent model calls (threads of the model worker)
    max_pending_bytes: int = 256 * 1024 * 1024  # bodies being received or waiting for the model; 503 beyond
    max_open_requests: int = 512  # uploads (POST requests) in progress; 503 beyond (GET is never refused)
    max_open_per_client: int = 64  # uploads in progress from one client address; 503 beyond (0 = no cap)
    write_timeout_s: float = 15.0  # a client that reads none of its answer for this long is disconnected
    decode_timeout_s: float = 5.0  # the image header check (in the decode pool); 400 after
    allowed_hosts: Tuple[str, ...] = ()  # Host names accepted besides loopback names and IP addresses ("*": any)
    allowed_origins: Tuple[str, ...] = ()  # Origins of cross-origin POSTs accepted ("*": any)
    trim_after_bytes: int = 1024 * 1024  # hand freed memory back to the system after bodies this large (0: never)
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


def image_limits(cfg: ServerConfig) -> images.Limits:
    return images.Limits(max_pixels=cfg.max_pixels, min_side=cfg.min_side, max_aspect_ratio=cfg.max_aspect_ratio)


def decode_request_image(body: bytes, cfg: ServerConfig, load: bool = True) -> Optional[np.ndarray]:
    """Image bytes -> RGB uint8 (H, W, 3) in the upright frame (:func:`maskrcnn_body.data.images.decode_image`),
    or :class:`HTTPError` (415: a format other than JPEG, PNG, WebP, BMP; 400: anything else wrong).

    With ``load=False`` only the header is read (format, structure walk, size limits; cheap) and None returned."""
    if not body:
        raise HTTPError(400, "empty body: send the image bytes (JPEG or PNG) as the request body")
    try:
        if not load:
            images.check_image(body, image_limits(cfg), name="the body")
            return None
        return images.decode_image(body, image_limits(cfg), name="the body")
    except images.UnsupportedImageFormat as e:
        raise HTTPError(415 if images.sniff_format(body) else 400, str(e)) from None
    except images.ImageDecodeError as e:
        raise HTTPError(400, str(e)) from None


def internal_error_response(exc: BaseException) -> Response:
    """A 500 whose body names no internals, only an id that the log line (with the traceback) carries."""
    error_id = uuid.uuid4().hex[:12]
    log.error("request failed (error id %s)", error_id, exc_info=exc)
    return error_response(500, f"internal error (id {error_id}); the server log has the details")


_libc = None


def release_memory() -> None:
    """Hands freed heap memory back to the system (glibc ``malloc_trim``; nothing elsewhere): after a large
    image the server's RSS returns near its baseline instead of staying at its peak."""
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _libc.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _libc = False
    if _libc:
        _libc.malloc_trim(0)


def _error_body(status: int, message: str) -> bytes:
    return json.dumps({"error": message, "status": status}).encode()


def error_response(status: int, message: str, headers: Optional[dict] = None) -> Response:
    return Response(_error_body(status, message), status, headers=headers, media_type="application/json")


# --------------------------------------------------------------------------- connection level
class _Protocol(H11Protocol):
    """uvicorn's h11 protocol plus a request-head deadline: a connection that has not sent a complete
    request head within ``head_timeout_s`` (of opening, or of the first byte after a keep-alive
    answer) gets a JSON 408 and is closed (uvicorn itself waits for a head forever); requests h11
    cannot parse get a JSON 400. And a write deadline: a connection whose answer stays stuck in the
    send buffer (the client reads nothing) for ``write_timeout_s`` is aborted and counted in
    ``stats["slow_readers_closed"]`` (uvicorn itself waits for such a reader forever)."""

    head_timeout_s = 10.0
    write_timeout_s = 15.0
    stats: dict = {}

    def connection_made(self, transport):  # type: ignore[override]
        self._head_timer: Optional[asyncio.TimerHandle] = None
        self._write_timer: Optional[asyncio.TimerHandle] = None
        super().connection_made(transport)
        self._arm_head_timer()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_timer is None and self.write_timeout_s > 0:
            self._write_timer = self.loop.call_later(self.write_timeout_s, self._write_timeout)

    def resume_writing(self) -> None:
        super().resume_writing()
        self._cancel_write_timer()

    def _cancel_write_timer(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def _write_timeout(self) -> None:
        self._write_timer = None
        self.stats["slow_readers_closed"] = self.stats.get("slow_readers_closed", 0) + 1
        log.warning(
            "closed a connection from %s: it read none of its answer for %g s",
            (self.client or ("?",))[0],
            self.write_timeout_s,
        )
        self.transport.abort()

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
        self._cancel_write_timer()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        """A request h11 cannot parse: the same JSON error as every other (uvicorn answers text/plain)."""
        body = _error_body(400, f"{msg} (not an HTTP/1.1 request this server can read)")
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-content-type-options", b"nosniff"),
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
            b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nx-content-type-options: nosniff\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
        )
        self.transport.close()


def _protocol_class(cfg: ServerConfig, stats: dict) -> type:
    attrs = {"head_timeout_s": float(cfg.read_timeout_s), "write_timeout_s": float(cfg.write_timeout_s), "stats": stats}
    return type("InferenceHTTPProtocol", (_Protocol,), attrs)


LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


def host_allowed(host_header: str, allowed: Tuple[str, ...]) -> bool:
    """Whether a ``Host`` header names this server safely: a loopback name, an IP address (DNS rebinding
    needs a name the attacker controls), or one of ``allowed`` (``"*"``: any; ``".example.com"``: that
    domain and its subdomains); the port is ignored."""
    if "*" in allowed:
        return True
    name = urllib.parse.urlsplit("//" + host_header).hostname or ""
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    return any(name == a.lower() or (a.startswith(".") and name.endswith(a.lower())) for a in allowed)


def origin_allowed(origin: str, host_header: str, allowed: Tuple[str, ...], fetch_site: str = "") -> bool:
    """Whether a POST with this ``Origin`` may spend the server: the page's own origin (its host:port is the
    ``Host`` header), or one of ``allowed`` (full origins such as ``https://app.example``; ``"*"``: any).
    ``Origin: null`` (what a browser sends for a form posted under ``Referrer-Policy: no-referrer``) is the
    page's own when the browser's ``Sec-Fetch-Site`` (which no script can set) says ``same-origin``."""
    if "*" in allowed or origin.rstrip("/") in {a.rstrip("/") for a in allowed}:
        return True
    if origin == "null":
        return fetch_site == "same-origin"
    parts = urllib.parse.urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host_header.lower()


class _DrainMiddleware:
    """Pure ASGI, in front of every route:

    * refuses a ``Host`` not allowed (400), a POST from a foreign ``Origin`` (403), and a request framed by
      both ``Content-Length`` and ``Transfer-Encoding`` (400, connection closed at once: RFC 9112 6.1);
    * counts open uploads (every method but GET/HEAD; JSON 503 beyond ``max_open_requests``, or beyond
      ``max_open_per_client`` from one address);
    * adds ``X-Content-Type-Options: nosniff`` to every answer;
    * when an answer is complete before the request body has been read, sends the answer, reads and
      discards the rest of the body (at most ``max_drain_bytes``, until the read deadline) and only then
      completes the response, which closes the connection (``Connection: close``) without a reset."""

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
        close_now = False

        async def tracked_receive():
            nonlocal body_done
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                body_done = True
            return message

        async def draining_send(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(k.lower() == b"x-content-type-options" for k, _ in headers):
                    headers.append((b"x-content-type-options", b"nosniff"))
                if not body_done or close_now:
                    headers.append((b"connection", b"close"))
                message = {**message, "headers": headers}
            elif (
                message["type"] == "http.response.body"
                and not message.get("more_body", False)
                and not body_done
                and not close_now
            ):
                await send({**message, "more_body": True})  # the whole answer leaves now
                await self._drain(tracked_receive, scope["deadline"])
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        refusal = self._refusal(scope)
        if refusal is not None:
            status, message, close_now = refusal
            return await error_response(status, message)(scope, tracked_receive, draining_send)
        if scope["method"] in ("GET", "HEAD"):  # the page, /healthz, /openapi.json: never capped
            return await self.app(scope, tracked_receive, draining_send)
        server = self.server
        client = (scope.get("client") or ("?", 0))[0]
        busy = None
        if server.open_requests >= cfg.max_open_requests:
            busy = f"server busy: {server.open_requests} requests open, retry later"
        elif cfg.max_open_per_client and server.open_per_client[client] >= cfg.max_open_per_client:
            busy = f"too many requests open from your address ({cfg.max_open_per_client}); retry later"
        if busy:
            return await error_response(503, busy, {"Retry-After": "1"})(scope, tracked_receive, draining_send)
        server.open_requests += 1
        server.open_per_client[client] += 1
        try:
            await self.app(scope, tracked_receive, draining_send)
        finally:
            server.open_requests -= 1
            server.open_per_client[client] -= 1
            if not server.open_per_client[client]:
                del server.open_per_client[client]

    def _refusal(self, scope) -> Optional[Tuple[int, str, bool]]:
        """(status, message, close without draining) for a request refused from its head alone, else None."""
        cfg = self.server.cfg
        headers = Headers(scope=scope)
        if "content-length" in headers and "transfer-encoding" in headers:
            return 400, "a request with both Content-Length and Transfer-Encoding is ambiguous; send one", True
        host = headers.get("host")
        if host is not None and not host_allowed(host, cfg.allowed_hosts):
            return (
                400,
                f"Host {host!r} is not served here; start the server with --allowed-host "
                f"{urllib.parse.urlsplit('//' + host).hostname or host} to serve under that name",
                False,
            )
        origin = headers.get("origin")
        posting = scope["method"] not in ("GET", "HEAD")
        fetch_site = headers.get("sec-fetch-site", "")
        if posting and origin is not None and not origin_allowed(origin, host or "", cfg.allowed_origins, fetch_site):
            return (
                403,
                f"cross-origin request from {origin!r} refused; start the server with --allowed-origin "
                f"{origin} to accept it",
                False,
            )
        return None

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
class _FairSlots:
    """``slots`` model calls at a time; waiting requests are let in least-recently-served client first (event
    loop only), so one address with many queued requests (or slow, large ones) delays another client by at
    most one of its calls per turn instead of all of them (a FIFO queue made normal clients wait behind every
    queued render of one client)."""

    def __init__(self, slots: int):
        self.free = slots
        self.waiting: dict = {}  # client -> deque of futures, in arrival order
        self.last_served: dict = {}  # client -> tick of its last grant
        self.tick = 0

    def _grant(self, client: str) -> None:
        self.tick += 1
        self.last_served[client] = self.tick
        if len(self.last_served) > 4096:  # forget long-gone clients (those not waiting)
            self.last_served = {c: t for c, t in self.last_served.items() if c in self.waiting or c == client}

    async def acquire(self, client: str) -> None:
        if self.free > 0 and not self.waiting:
            self.free -= 1
            self._grant(client)
            return
        future = asyncio.get_running_loop().create_future()
        self.waiting.setdefault(client, collections.deque()).append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # granted just as it was cancelled: pass the slot on
            else:
                queue = self.waiting.get(client)
                if queue and future in queue:
                    queue.remove(future)
                    if not queue:
                        del self.waiting[client]
            raise

    def release(self) -> None:
        while self.waiting:
            client = min(self.waiting, key=lambda c: self.last_served.get(c, 0))
            queue = self.waiting[client]
            future = queue.popleft()
            if not queue:
                del self.waiting[client]
            if not future.done():
                self._grant(client)
                future.set_result(None)
                return
        self.free += 1


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
        self.decode_pool = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="decode")
        self.stats: dict = {"slow_readers_closed": 0}  # shared with the connection protocol
        self.open_per_client: collections.Counter = collections.Counter()
        self.model_slots = _FairSlots(cfg.max_inflight)
        self._count_lock = threading.Lock()
        self.admitted = 0  # requests waiting for or in a model call (event loop only)
        self.in_flight = 0  # model calls running
        self.receiving = 0  # requests whose body is arriving
        self.pending_bytes = 0  # declared bodies being received or waiting
        self.open_requests = 0
        self.page, self.page_headers = web.index_page(cfg.max_body_bytes, cfg.max_pixels)
        self.openapi = json.dumps(
            web.openapi_schema(IMAGE_TYPES, cfg.max_body_bytes, cfg.max_pixels, cfg.min_side, cfg.max_aspect_ratio)
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
        self.decode_pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ small routes
    async def index(self, request: Request) -> Response:
        return Response(self.page, headers=self.page_headers, media_type="text/html; charset=utf-8")

    async def healthz(self, request: Request) -> Response:
        body = {
            "status": "ok",
            "queue": self.admitted - self.in_flight,
            "in_flight": self.in_flight,
            "receiving": self.receiving,
            "slow_readers_closed": self.stats["slow_readers_closed"],
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
        return internal_error_response(exc)

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
        if length is None and headers.get("transfer-encoding", "").lower() == "chunked":
            n = cfg.max_body_bytes  # unknown length: reserve the most it may take (counted as it arrives)
        elif length is None:
            raise HTTPError(411, "Content-Length is required")
        else:
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
                if len(body) > cfg.max_body_bytes:  # the bytes received count, whatever the head declared
                    raise HTTPError(413, f"body is over the limit of {cfg.max_body_bytes} bytes")
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

    async def check_image(self, data: bytes) -> None:
        """The cheap header checks of :func:`decode_request_image`, in the decode pool (never on the event
        loop), bounded by ``decode_timeout_s`` (400 after)."""
        future = asyncio.get_running_loop().run_in_executor(
            self.decode_pool, decode_request_image, data, self.cfg, False
        )
        try:
            await asyncio.wait_for(future, self.cfg.decode_timeout_s)
        except asyncio.TimeoutError:
            raise HTTPError(
                400, f"image header not parsed within {self.cfg.decode_timeout_s:g} s; re-encode it"
            ) from None

    async def run_model(self, kind: str, data: bytes, client: str = ""):
        """Queues ``data`` for the model worker (503 when ``max_queue`` requests already wait; the waiting
        requests are served least-recently-served client address first, :class:`_FairSlots`);
        returns (answer bytes, media type, timings in ms)."""
        cfg = self.cfg
        if self.admitted >= cfg.max_queue + cfg.max_inflight:
            raise HTTPError(503, "server busy: request queue is full, retry later", {"Retry-After": "1"})
        self.admitted += 1
        t0 = time.perf_counter()
        try:
            await self.model_slots.acquire(client)
            try:
                return await asyncio.get_running_loop().run_in_executor(self.model_pool, self._work, kind, data, t0)
            finally:
                self.model_slots.release()
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
        large = False
        try:
            try:
                data = await server.read_image_bytes(scope, receive)
                large = bool(server.cfg.trim_after_bytes) and len(data) >= server.cfg.trim_after_bytes
                await server.check_image(data)  # cheap checks before queueing
                out, media, timing = await server.run_model(self.kind, data, (scope.get("client") or ("?",))[0])
            finally:
                data = b""
                server.release(scope)
        except _ClientGoneError:
            return
        except HTTPError as e:
            return await error_response(e.status, e.message, e.headers)(scope, receive, send)
        except Exception as e:  # the model failed: report, keep serving
            return await internal_error_response(e)(scope, receive, send)
        finally:
            if large:  # off the event loop: trimming a large heap takes milliseconds
                asyncio.get_running_loop().run_in_executor(server.decode_pool, release_memory)
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
            http=_protocol_class(cfg, self.app.stats),
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
