"""The ASGI application: the Starlette routes, reading uploads within their deadline, and the model worker.

Routes: ``GET /`` (the page), ``GET /healthz``, ``GET /openapi.json``, ``POST /v1/predict``, ``POST /v1/render``
and, with ``web_dir``, ``GET /web/`` (:mod:`~maskrcnn_body.serving.browser`). In front of them
:class:`~maskrcnn_body.serving.http_admission.AdmissionMiddleware`. An image request: body read by the event
loop (413/411/408/503 on its size, pending bytes and deadline; a multipart form's file taken out), header
checked in the :class:`~maskrcnn_body.serving.http_decode.DecodePool`, queued for the model (503 when
``max_queue`` wait; served in :class:`~maskrcnn_body.serving.http_admission.FairSlots` order), decoded and run
in the model worker thread, answered with ``Server-Timing``.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import json
import threading
import time
from typing import Callable, List

from starlette.applications import Starlette
from starlette.datastructures import Headers, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from maskrcnn_body.serving import browser, web
from maskrcnn_body.serving.http_admission import AdmissionMiddleware, FairSlots
from maskrcnn_body.serving.http_config import FORM_TYPE, IMAGE_TYPES, ServerConfig
from maskrcnn_body.serving.http_decode import DecodePool, decode_request_image
from maskrcnn_body.serving.http_errors import ClientGoneError, HTTPError, error_response, internal_error_response


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
        self.decode_pool = DecodePool(cfg)
        self.stats: dict = {"slow_readers_closed": 0}  # shared with the connection protocol
        self.open_per_client: collections.Counter = collections.Counter()
        self.model_slots = FairSlots(cfg.max_inflight)
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
        routes: List[BaseRoute] = [
            Route("/", self.index, methods=["GET"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/openapi.json", self.openapi_json, methods=["GET"]),
            Route("/v1/predict", ImageEndpoint(self, "predict"), methods=["POST"]),
            Route("/v1/render", ImageEndpoint(self, "render"), methods=["POST"]),
        ]
        if cfg.web_dir:  # the in-browser page (serving.browser), static files
            routes.append(Mount("/web", app=browser.static_app(cfg.web_dir)))
        handlers = {HTTPException: self._http_exception, Exception: self._internal_error}
        self.starlette = Starlette(routes=routes, exception_handlers=handlers)
        self.asgi = AdmissionMiddleware(self.starlette, self)

    async def __call__(self, scope, receive, send):
        await self.asgi(scope, receive, send)

    def close(self) -> None:
        self.model_pool.shutdown(wait=False, cancel_futures=True)
        self.decode_pool.close()

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
                    raise ClientGoneError
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

    async def run_model(self, kind: str, data: bytes, client: str = ""):
        """Queues ``data`` for the model worker (503 when ``max_queue`` requests already wait; the waiting
        requests are served least-recently-served client address first, :class:`FairSlots`);
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


class ImageEndpoint:
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
                await server.decode_pool.check_image(data)  # cheap checks before queueing
                out, media, timing = await server.run_model(self.kind, data, (scope.get("client") or ("?",))[0])
            finally:
                data = b""
                server.release(scope)
        except ClientGoneError:
            return
        except HTTPError as e:
            return await error_response(e.status, e.message, e.headers)(scope, receive, send)
        except Exception as e:  # the model failed: report, keep serving
            return await internal_error_response(e)(scope, receive, send)
        finally:
            if large:  # off the event loop: trimming a large heap takes milliseconds
                server.decode_pool.release_memory_soon()
        timing_header = ", ".join(f"{k};dur={v:.1f}" for k, v in timing.items())
        await Response(out, media_type=media, headers={"Server-Timing": timing_header})(scope, receive, send)
