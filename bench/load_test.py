"""Bounded loopback load test of the inference server.

    python -m bench.load_test --server http://127.0.0.1:8080 --requests 200 --concurrency 8 --time_limit 600
    python -m bench.load_test --server http://127.0.0.1:8080 --stalled 50

Sends a fixed number of requests from a fixed number of concurrent clients to a server on loopback only,
stops by itself at the time limit, and reports errors, p50/p95 latency and throughput (also as JSON).

``--stalled N`` measures something else: N clients each send the head of a POST declaring a 100 KB body,
10 bytes of it, and stall; meanwhile it times ``GET /healthz`` and one normal request (a server that
keeps a thread per stalled client makes both wait for its read timeout).

The hostile mix (stalled uploads, slow readers, parser-heavy images, both framings, large photos at once, with
the server's RSS) is ``bench/load_test_hostile.py``.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import numpy as np


def run_load(
    server: str,
    image_bytes: bytes,
    requests: int = 200,
    concurrency: int = 8,
    time_limit: float = 600.0,
    path: str = "/v1/predict",
) -> dict:
    host = urllib.parse.urlparse(server).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"the load test targets loopback only, got host {host!r}")
    from maskrcnn_body.serving import client

    deadline = time.monotonic() + time_limit
    latencies, errors = [], []

    def one(_):
        if time.monotonic() > deadline:
            return None
        t0 = time.monotonic()
        try:
            client.post_image(server, path, image_bytes, "image/jpeg", timeout=max(1.0, deadline - t0))
            return time.monotonic() - t0
        except Exception as e:
            errors.append(repr(e)[:200])
            return None

    t_start = time.monotonic()
    with cf.ThreadPoolExecutor(concurrency) as pool:
        for lat in pool.map(one, range(requests)):
            if lat is not None:
                latencies.append(lat)
    wall = time.monotonic() - t_start
    lat = np.array(latencies) if latencies else np.zeros(1)
    return {
        "requests": requests,
        "concurrency": concurrency,
        "ok": len(latencies),
        "errors": len(errors),
        "not_sent": requests - len(latencies) - len(errors),
        "error_examples": errors[:5],
        "p50_s": float(np.percentile(lat, 50)),
        "p95_s": float(np.percentile(lat, 95)),
        "throughput_rps": len(latencies) / wall if wall > 0 else 0.0,
        "wall_s": wall,
    }


def stalled_clients(
    server: str, image_bytes: bytes, n: int = 50, declared: int = 100_000, path: str = "/v1/predict"
) -> dict:
    """Opens ``n`` connections that send 10 bytes of a ``declared``-byte body and stall, then times
    ``GET /healthz`` and one normal request while they stall; closes them and returns the timings."""
    u = urllib.parse.urlparse(server)
    if u.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"the load test targets loopback only, got host {u.hostname!r}")
    from maskrcnn_body.serving import client

    head = (
        (
            f"POST {path} HTTP/1.1\r\nHost: {u.hostname}\r\nContent-Type: image/jpeg\r\n"
            f"Content-Length: {declared}\r\n\r\n"
        ).encode()
        + b"\xff\xd8"
        + b"\0" * 8
    )
    socks = []
    try:
        for _ in range(n):
            s = socket.create_connection((u.hostname, u.port), timeout=30)
            s.sendall(head)
            socks.append(s)
        time.sleep(0.5)  # let the server pick them up
        t0 = time.monotonic()
        try:
            with urllib.request.urlopen(server.rstrip("/") + "/healthz", timeout=60) as r:
                r.read()
                healthz_status = r.status
        except urllib.error.HTTPError as e:
            healthz_status = e.code
        healthz = time.monotonic() - t0
        t0 = time.monotonic()
        try:
            client.post_image(server, path, image_bytes, "image/jpeg", timeout=120)
            request_status = 200
        except client.ServerError as e:
            request_status = e.status
        request = time.monotonic() - t0
    finally:
        for s in socks:
            s.close()
    return {
        "stalled": n,
        "healthz_s": healthz,
        "healthz_status": healthz_status,
        "request_s": request,
        "request_status": request_status,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", default="http://127.0.0.1:8080")
    ap.add_argument("--image", default="", help="JPEG/PNG to send (default: a generated 256x256 scene)")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--time_limit", type=float, default=600.0)
    ap.add_argument("--path", default="/v1/predict")
    ap.add_argument("--json", default="")
    ap.add_argument("--stalled", type=int, default=0, help="measure /healthz and one request while N clients stall")
    args = ap.parse_args(argv)
    if args.image:
        data = open(args.image, "rb").read()
    else:
        from maskrcnn_body.serving.client import encode_jpeg

        rng = np.random.default_rng(0)
        data = encode_jpeg(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8))
    if args.stalled:
        res = stalled_clients(args.server, data, args.stalled, path=args.path)
        print(
            f"{args.stalled} stalled clients: /healthz {res['healthz_status']} in {res['healthz_s'] * 1000:.0f} ms, "
            f"one request {res['request_status']} in {res['request_s'] * 1000:.0f} ms"
        )
        if args.json:
            with open(args.json, "w") as f:
                json.dump(res, f, indent=2)
        return 0 if res["healthz_status"] == res["request_status"] == 200 else 1
    res = run_load(args.server, data, args.requests, args.concurrency, args.time_limit, args.path)
    print(
        f"{res['ok']}/{res['requests']} ok, {res['errors']} errors, p50 {res['p50_s'] * 1000:.0f} ms, "
        f"p95 {res['p95_s'] * 1000:.0f} ms, {res['throughput_rps']:.2f} req/s"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return 1 if res["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
