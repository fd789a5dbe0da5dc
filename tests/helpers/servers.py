"""Starting the HTTP server as a user does (a subprocess on port 0) and reading the URL it prints."""

from __future__ import annotations

import queue
import subprocess
import threading
import time
from typing import Dict, List, Optional, Tuple

import pytest


def start_server(cmd: List[str], cwd: str, timeout: float = 180) -> Tuple[subprocess.Popen, str]:
    """Runs ``cmd`` (a server started with ``--port 0``) and waits for its ``serving on URL`` line;
    returns the process and the URL. Fails the test with the server's output if it never says so."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    url, log, deadline = None, [], time.monotonic() + timeout
    while url is None and time.monotonic() < deadline and proc.poll() is None:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        log.append(line)
        if line.startswith("serving on "):
            url = line.split()[2]
    if url is None:
        proc.kill()
        pytest.fail("server did not start:\n" + "".join(log)[-3000:])
    return proc, url


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(30)


def start_static_server(directory: str, headers: Optional[Dict[str, str]] = None):
    """A plain static file server (Python's ``http.server``) for ``directory`` on a free loopback port,
    in a thread, adding ``headers`` to every answer; returns ``(server, url)`` (``server.shutdown()``
    stops it). The in-browser page's "any static file server"."""
    import functools
    import http.server

    class Handler(http.server.SimpleHTTPRequestHandler):
        extensions_map = {
            **http.server.SimpleHTTPRequestHandler.extensions_map,
            ".mjs": "text/javascript",
            ".js": "text/javascript",
            ".wasm": "application/wasm",
        }

        def end_headers(self):
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            super().end_headers()

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=directory))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}"
