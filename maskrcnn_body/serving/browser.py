"""``maskrcnn-body serve --web DIR``: the exported in-browser page (:mod:`maskrcnn_body.workflows.web_page`)
mounted at ``/web/`` with the cross-origin isolation headers (several WebAssembly threads) and ``nosniff``.
"""

from __future__ import annotations

import os
from typing import Optional

from maskrcnn_body.errors import UserError
from maskrcnn_body.workflows.web_page import ISOLATION_HEADERS


def find_web_dir(path: Optional[str]) -> Optional[str]:
    """``path`` if it holds an exported page (``index.html`` + ``config.json``), else a UserError."""
    if not path:
        return None
    if not (os.path.isfile(os.path.join(path, "index.html")) and os.path.isfile(os.path.join(path, "config.json"))):
        raise UserError(f"--web {path}: no index.html and config.json: not an export --web folder")
    return path


def static_app(directory: str):
    """An ASGI app serving the exported folder ``directory`` (``index.html`` for ``/``) with the cross-origin
    isolation headers (multi-threaded WebAssembly) and ``nosniff``: what ``maskrcnn-body serve --web DIR``
    mounts at ``/web/``."""
    import mimetypes

    from starlette.staticfiles import StaticFiles

    mimetypes.add_type("text/javascript", ".mjs")
    mimetypes.add_type("application/wasm", ".wasm")
    files = StaticFiles(directory=directory, html=True)
    headers = {**ISOLATION_HEADERS, "X-Content-Type-Options": "nosniff"}
    extra = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def app(scope, receive, send):
        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        await files(scope, receive, send_with_headers)

    return app
