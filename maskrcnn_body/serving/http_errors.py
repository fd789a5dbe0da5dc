"""The HTTP server's errors: every refusal is JSON ``{"error": message, "status": code}``; a failure inside
the server is a 500 whose body names no internals, only an id that the log line (with the traceback) carries."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Mapping, Optional

from starlette.responses import Response

log = logging.getLogger(__name__)


class HTTPError(Exception):
    def __init__(self, status: int, message: str, headers: Optional[dict] = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class ClientGoneError(Exception):
    """The client closed the connection before its body arrived: nobody to answer."""


def internal_error_response(exc: BaseException) -> Response:
    """A 500 whose body names no internals, only an id that the log line (with the traceback) carries."""
    error_id = uuid.uuid4().hex[:12]
    log.error("request failed (error id %s)", error_id, exc_info=exc)
    return error_response(500, f"internal error (id {error_id}); the server log has the details")


def error_body(status: int, message: str) -> bytes:
    return json.dumps({"error": message, "status": status}).encode()


def error_response(status: int, message: str, headers: Optional[Mapping[str, str]] = None) -> Response:
    return Response(error_body(status, message), status, headers=headers, media_type="application/json")
