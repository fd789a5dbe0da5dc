"""Admission: which requests get in, how many at a time, and in which order they reach the model.

* :class:`AdmissionMiddleware` (pure ASGI, in front of every route): the ``Host`` rule (DNS rebinding), the
  ``Origin`` rule for POSTs, ambiguous framing, the caps on open uploads (``max_open_requests``, and
  ``max_open_per_client`` per address; ``GET`` is never refused), ``nosniff`` on every answer, and the draining
  of refused bodies (so clients that send their whole body before reading read the error, not a reset).
* :class:`FairSlots`: ``max_inflight`` model calls at a time, waiting requests served least-recently-served
  client address first.

The counters these read and change (``open_requests``, ``open_per_client``) live on the application
(:class:`~maskrcnn_body.serving.http_app.InferenceApp`), which ``/healthz`` and the tests read.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import urllib.parse
from typing import TYPE_CHECKING, Optional, Tuple

from starlette.datastructures import Headers

from maskrcnn_body.serving.http_errors import error_response

if TYPE_CHECKING:  # the application imports this module
    from maskrcnn_body.serving.http_app import InferenceApp

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


class AdmissionMiddleware:
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


class FairSlots:
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
