"""The connection level: request-head and write deadlines, and a JSON 400 for what h11 cannot parse.

uvicorn offers no public hook for these, so :class:`DeadlineProtocol` subclasses uvicorn's h11 protocol
(``uvicorn.protocols.http.h11_impl.H11Protocol``, a *private* class: its attributes ``conn``, ``cycle``,
``transport``, ``loop``, ``client`` and its method ``send_400_response`` are used). Without it a client could
hold a connection forever by never finishing its request head (uvicorn waits for a head forever) or by never
reading its answer; ``tests/test_server_limits.py`` checks both limits (408, ``slow_readers_closed``).
Everything that depends on uvicorn's internals is in this module, and :func:`check_uvicorn` refuses, with a
clear message, a uvicorn outside the versions it was written for (:data:`UVICORN_VERSIONS`, as in
pyproject.toml) instead of failing on a request.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Optional, Tuple

import h11
import uvicorn

from maskrcnn_body.errors import UserError
from maskrcnn_body.serving.http_config import ServerConfig
from maskrcnn_body.serving.http_errors import error_body

log = logging.getLogger(__name__)

UVICORN_VERSIONS: Tuple[Tuple[int, int], Tuple[int, int]] = ((0, 30), (1, 0))
"""[lowest, highest) uvicorn (major, minor) whose private ``H11Protocol`` this module is written for."""


def check_uvicorn(version: str = uvicorn.__version__) -> None:
    """Raises :class:`~maskrcnn_body.errors.UserError` naming the installed and the supported uvicorn versions
    when ``version`` is outside :data:`UVICORN_VERSIONS`."""
    (lo, hi), found = UVICORN_VERSIONS, tuple(int(x) for x in re.findall(r"\d+", version)[:2])
    if not lo <= found < hi:
        raise UserError(
            f"uvicorn {version} is not supported: the server's connection deadlines subclass uvicorn's private "
            f"H11Protocol (maskrcnn_body/serving/http_protocol.py), written for uvicorn >= {lo[0]}.{lo[1]}, "
            f"< {hi[0]}.{hi[1]}; install one: pip install 'uvicorn>={lo[0]}.{lo[1]},<{hi[0]}.{hi[1]}'"
        )


check_uvicorn()

from uvicorn.protocols.http.h11_impl import H11Protocol  # noqa: E402  (after the version check)


class DeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol plus a request-head deadline: a connection that has not sent a complete
    request head within ``head_timeout_s`` (of opening, or of the first byte after a keep-alive
    answer) gets a JSON 408 and is closed (uvicorn itself waits for a head forever); requests h11
    cannot parse get a JSON 400. And a write deadline: a connection whose answer stays stuck in the
    send buffer (the client reads nothing) for ``write_timeout_s`` is aborted and counted in
    ``stats["slow_readers_closed"]`` (uvicorn itself waits for such a reader forever)."""

    head_timeout_s = 10.0
    write_timeout_s = 15.0
    stats: dict = {}

    def connection_made(self, transport):
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
        body = error_body(400, f"{msg} (not an HTTP/1.1 request this server can read)")
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
        body = error_body(408, f"request not received within {self.head_timeout_s:g} s")
        self.transport.write(
            b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nx-content-type-options: nosniff\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
        )
        self.transport.close()


def protocol_class(cfg: ServerConfig, stats: dict) -> type:
    attrs = {"head_timeout_s": float(cfg.read_timeout_s), "write_timeout_s": float(cfg.write_timeout_s), "stats": stats}
    return type("InferenceHTTPProtocol", (DeadlineProtocol,), attrs)
