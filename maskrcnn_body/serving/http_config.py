"""The HTTP server's limits and settings (:class:`ServerConfig`) and the content types it accepts.

docs/SERVING.md has the table of limits and what each answer means; the modules that enforce them:
:mod:`~maskrcnn_body.serving.http_protocol` (request-head and write deadlines),
:mod:`~maskrcnn_body.serving.http_admission` (Host/Origin, open-request caps, draining, the fair model queue),
:mod:`~maskrcnn_body.serving.http_app` (body size, pending bytes, queue length, decoding).
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

from maskrcnn_body.data import images

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
