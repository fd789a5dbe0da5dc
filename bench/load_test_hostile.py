"""The hostile mix: normal clients of the inference server measured while others attack it (loopback only).

    python -m bench.load_test_hostile --server http://127.0.0.1:8080 --pid SERVER_PID --duration 40 --json out.json

For ``--duration`` seconds, at the same time:

* ``--clients`` normal clients post a 256x256 JPEG to ``/v1/predict`` one after the other (their latency
  and errors are the figures that matter);
* a prober times ``GET /healthz`` every 0.2 s;
* ``--stalled`` connections send a POST head and 10 bytes of a 100 KB body and stall (reopened when closed);
* ``--slow_readers`` clients ask ``/v1/render`` for a 1024x768 picture and never read the answer;
* one client after another posts parser-heavy images (:func:`hostile_images`: a PNG padded with empty
  chunks, a GIF with a million one-byte comment sub-blocks, a JPEG with junk after its start marker, an EPS
  file) and one body framed with both ``Content-Length`` and ``Transfer-Encoding: chunked``;
* a burst of large photos (``--large``, 3000x4000 JPEGs) runs in the middle.

The server's RSS (``/proc/PID/status``, with ``--pid``) is sampled every 0.1 s: before, peak, and ``--settle``
seconds after everything stopped. The crafted images are also what ``tests/test_http_server.py`` sends.
"""

from __future__ import annotations

import argparse
import io
import json
import socket
import struct
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from typing import Dict, List, Optional

import numpy as np


# --------------------------------------------------------------------------- crafted images
def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode(array: np.ndarray, fmt: str, **kw) -> bytes:
    """``array`` (H, W[, C]) encoded by Pillow as ``fmt`` (``PNG``, ``JPEG``, ``GIF``, ...)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, fmt, **kw)
    return buf.getvalue()


def scene(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth random RGB uint8 (h, w, 3) picture (compresses like a photo, not like noise)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (max(h // 32, 2), max(w // 32, 2), 3), np.uint8)
    from PIL import Image

    return np.asarray(Image.fromarray(small).resize((w, h), Image.BILINEAR))


def padded_png(pad_bytes: int, side: int = 32) -> bytes:
    """A valid ``side`` x ``side`` PNG with ``pad_bytes`` of empty ancillary chunks (12 bytes each) after IHDR."""
    png = encode(np.full((side, side, 3), 90, np.uint8), "PNG")
    ihdr_end = 8 + 12 + 13
    return png[:ihdr_end] + _png_chunk(b"zzZz", b"") * (pad_bytes // 12) + png[ihdr_end:]


def many_subblock_gif(n: int = 1_000_000, side: int = 32) -> bytes:
    """A valid GIF with one comment extension of ``n`` one-byte sub-blocks before its image."""
    gif = encode(np.full((side, side), 7, np.uint8), "GIF")
    flags = gif[10]
    start = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
    return gif[:start] + b"\x21\xfe" + b"\x01x" * n + b"\x00" + gif[start:]


def junk_jpeg(junk_bytes: int, side: int = 32) -> bytes:
    """A valid JPEG with ``junk_bytes`` zero bytes between its first segment (APP0) and the next marker."""
    jpg = encode(scene(side, side), "JPEG")
    end = 4 + struct.unpack(">H", jpg[4:6])[0]
    return jpg[:end] + b"\0" * junk_bytes + jpg[end:]


EPS = (
    b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\n%%EndComments\n"
    b"newpath 0 0 moveto 64 64 lineto stroke showpage\n%%EOF\n"
)


def hostile_images(pad_mb: float = 19.0) -> Dict[str, bytes]:
    """The parser-heavy bodies of issue 25 (each under a 20 MB body limit)."""
    pad = int(pad_mb * 1024 * 1024)
    return {
        "padded_png": padded_png(pad),
        "subblock_gif": many_subblock_gif(min(pad // 2, 10_000_000)),
        "junk_jpeg": junk_jpeg(pad),
        "eps": EPS,
    }


# --------------------------------------------------------------------------- raw clients
def _loopback(server: str):
    u = urllib.parse.urlparse(server)
    if u.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"the load test targets loopback only, got host {u.hostname!r}")
    return u.hostname, u.port or 80


# The attackers connect from other loopback addresses than the normal clients (127.0.0.1), as separate
# machines would: the server's per-client cap is about addresses.
STALLED_FROM, SLOW_READERS_FROM, PARSERS_FROM = "127.0.0.2", "127.0.0.3", "127.0.0.4"


def connect(host: str, port: int, source: str = "", timeout: float = 30.0) -> socket.socket:
    """A TCP connection to ``host:port``, from the loopback address ``source`` when given (IPv4 only)."""
    if source and host in ("127.0.0.1", "localhost"):
        return socket.create_connection((host, port), timeout=timeout, source_address=(source, 0))
    return socket.create_connection((host, port), timeout=timeout)


def raw_request(
    server: str,
    path: str,
    body: bytes,
    ctype: str,
    extra: str = "",
    timeout: float = 60.0,
    read: bool = True,
    source: str = "",
):
    """One POST on a fresh socket (from loopback address ``source``); returns ``(status or None, seconds)``
    (``read=False``: the socket, unread)."""
    host, port = _loopback(server)
    t0 = time.monotonic()
    s = connect(host, port, source, timeout)
    head = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {ctype}\r\n{extra}"
    if "transfer-encoding" not in extra.lower():
        head += f"Content-Length: {len(body)}\r\n"
    try:
        s.sendall((head + "\r\n").encode() + body)
        if not read:
            return s, time.monotonic() - t0
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else None
        return status, time.monotonic() - t0
    except OSError:
        return None, time.monotonic() - t0
    finally:
        if read:
            s.close()


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _percentiles(values: List[float]) -> dict:
    a = np.asarray(values) if values else np.zeros(1)
    return {
        "n": len(values),
        "p50_ms": float(np.percentile(a, 50) * 1000),
        "p95_ms": float(np.percentile(a, 95) * 1000),
        "max_ms": float(a.max() * 1000),
    }


def hostile_mix(
    server: str,
    pid: Optional[int] = None,
    duration: float = 40.0,
    clients: int = 2,
    stalled: int = 50,
    slow_readers: int = 20,
    large: int = 6,
    settle: float = 5.0,
    attack: bool = True,
) -> dict:
    """Runs the mix of the module docstring (``attack=False``: only the normal clients and the /healthz
    prober, the quiet baseline); returns the figures (latencies in ms, RSS in MB)."""
    from maskrcnn_body.serving import client

    host, port = _loopback(server)
    normal_image = encode(scene(256, 256), "JPEG", quality=90)
    render_image = encode(scene(768, 1024, 1), "JPEG", quality=95)
    large_image = encode(scene(3000, 4000, 2), "JPEG", quality=95)
    hostile = hostile_images()
    stop = threading.Event()
    out: dict = {"normal": [], "normal_errors": {}, "healthz": [], "healthz_errors": {}, "hostile": {}, "rss": []}
    lock = threading.Lock()

    def count(key, what):
        with lock:
            out[key][what] = out[key].get(what, 0) + 1

    def normal():
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                client.post_image(server, "/v1/predict", normal_image, "image/jpeg", timeout=60)
                out["normal"].append(time.monotonic() - t0)
            except client.ServerError as e:
                count("normal_errors", str(e.status))
            except Exception as e:
                count("normal_errors", type(e).__name__)

    def healthz():
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                with urllib.request.urlopen(server.rstrip("/") + "/healthz", timeout=30) as r:
                    r.read()
                out["healthz"].append(time.monotonic() - t0)
            except urllib.error.HTTPError as e:
                count("healthz_errors", str(e.code))
            except Exception as e:
                count("healthz_errors", type(e).__name__)
            stop.wait(0.2)

    def stall():
        head = (
            (
                f"POST /v1/predict HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: image/jpeg\r\n"
                "Content-Length: 100000\r\n\r\n"
            ).encode()
            + b"\xff\xd8"
            + b"\0" * 8
        )
        socks: List[socket.socket] = []
        while not stop.is_set():
            socks = [s for s in socks if s.fileno() >= 0]
            while len(socks) < stalled and not stop.is_set():
                try:
                    s = connect(host, port, STALLED_FROM, 5)
                    s.sendall(head)
                    s.setblocking(False)
                    socks.append(s)
                except OSError:
                    break
            for s in socks:  # reopen the ones the server closed
                try:
                    if s.recv(1) == b"":
                        s.close()
                except BlockingIOError:
                    pass
                except OSError:
                    s.close()
            stop.wait(0.5)
        for s in socks:
            s.close()

    def slow_read():
        socks = []
        for _ in range(slow_readers):
            if stop.is_set():
                break
            try:
                s = connect(host, port, SLOW_READERS_FROM, 5)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                head = (
                    f"POST /v1/render HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: image/jpeg\r\n"
                    f"Content-Length: {len(render_image)}\r\n\r\n"
                ).encode()
                s.sendall(head + render_image)
                socks.append(s)
            except OSError:
                pass
        stop.wait(duration)
        for s in socks:
            s.close()

    def parser_heavy():
        while not stop.is_set():
            for name, body in hostile.items():
                if stop.is_set():
                    break
                status, seconds = raw_request(server, "/v1/predict", body, "image/png", timeout=60, source=PARSERS_FROM)
                out["hostile"].setdefault(name, []).append([status, round(seconds, 3)])
            # both framings: a small JPEG and 60 MB more of chunked body behind a declared Content-Length of 100
            blob = b"%x\r\n%s\r\n" % (1 << 20, b"\0" * (1 << 20))
            first = b"%x\r\n%s\r\n" % (len(normal_image), normal_image)
            t0 = time.monotonic()
            try:
                s = connect(host, port, PARSERS_FROM, 30)
                s.sendall(
                    f"POST /v1/predict HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: image/jpeg\r\n"
                    "Content-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
                )
                s.sendall(first)
                for _ in range(60):
                    s.sendall(blob)
                s.sendall(b"0\r\n\r\n")
                status = int(s.recv(4096).split(b" ", 2)[1])
                s.close()
            except (OSError, ValueError, IndexError):
                status = None
            out["hostile"].setdefault("both_framings_60mb", []).append([status, round(time.monotonic() - t0, 3)])

    def burst():
        stop.wait(duration / 3)
        for _ in range(large):
            if stop.is_set():
                break
            status, seconds = raw_request(
                server, "/v1/predict", large_image, "image/jpeg", timeout=120, source=PARSERS_FROM
            )
            out["hostile"].setdefault("large_3000x4000", []).append([status, round(seconds, 3)])

    sampling = threading.Event()

    def sample_rss():
        while not sampling.is_set():
            out["rss"].append(rss_mb(pid))
            sampling.wait(0.1)

    def idle() -> bool:
        try:
            with urllib.request.urlopen(server.rstrip("/") + "/healthz", timeout=10) as r:
                h = json.loads(r.read())
            return h["queue"] == h["in_flight"] == h["receiving"] == 0
        except Exception:
            return False

    rss_before = rss_mb(pid) if pid else 0.0
    threads = [threading.Thread(target=normal) for _ in range(clients)]
    threads += [
        threading.Thread(target=f) for f in ((healthz, stall, slow_read, parser_heavy, burst) if attack else (healthz,))
    ]
    if pid:
        threads.append(threading.Thread(target=sample_rss, name="rss"))
    for t in threads:
        t.daemon = True
        t.start()
    time.sleep(duration)
    stop.set()
    for t in threads:
        if t.name != "rss":
            t.join(120)
    t_stop = time.monotonic()
    while not idle() and time.monotonic() - t_stop < 180:  # the queue drains: then the server is at rest
        time.sleep(0.5)
    drained_s = time.monotonic() - t_stop
    time.sleep(settle)
    sampling.set()
    rss_after = rss_mb(pid) if pid else 0.0
    return {
        "duration_s": duration,
        "normal": {**_percentiles(out["normal"]), "errors": out["normal_errors"]},
        "healthz": {**_percentiles(out["healthz"]), "errors": out["healthz_errors"]},
        "hostile": out["hostile"],
        "rss_mb": {"before": rss_before, "peak": max(out["rss"] or [0.0]), "after": rss_after},
        "drained_s": drained_s,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", default="http://127.0.0.1:8080")
    ap.add_argument("--pid", type=int, default=0, help="the server's process id (RSS figures)")
    ap.add_argument("--duration", type=float, default=40.0)
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--stalled", type=int, default=50)
    ap.add_argument("--slow_readers", type=int, default=20)
    ap.add_argument("--large", type=int, default=6)
    ap.add_argument("--settle", type=float, default=5.0)
    ap.add_argument("--baseline", type=float, default=0.0, help="first run the normal clients alone this long")
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    baseline = None
    if args.baseline:
        baseline = hostile_mix(args.server, args.pid or None, args.baseline, args.clients, settle=0.0, attack=False)
        n, h = baseline["normal"], baseline["healthz"]
        print(
            f"baseline (no attack): normal p50 {n['p50_ms']:.0f} ms, p95 {n['p95_ms']:.0f} ms; /healthz p50 "
            f"{h['p50_ms']:.0f} ms, p95 {h['p95_ms']:.0f} ms"
        )
    res = hostile_mix(
        args.server,
        args.pid or None,
        args.duration,
        args.clients,
        args.stalled,
        args.slow_readers,
        args.large,
        args.settle,
    )
    res["baseline"] = baseline
    n, h, r = res["normal"], res["healthz"], res["rss_mb"]
    print(
        f"normal: {n['n']} ok, p50 {n['p50_ms']:.0f} ms, p95 {n['p95_ms']:.0f} ms, errors {n['errors']}\n"
        f"/healthz: {h['n']} ok, p50 {h['p50_ms']:.0f} ms, p95 {h['p95_ms']:.0f} ms, max {h['max_ms']:.0f} ms, "
        f"errors {h['errors']}\nRSS MB: before {r['before']:.0f}, peak {r['peak']:.0f}, after {r['after']:.0f} "
        f"({res['drained_s']:.0f} s to drain the queue, then {args.settle:g} s)\n"
        f"hostile: {json.dumps(res['hostile'])}"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
