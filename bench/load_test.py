"""Bounded loopback load test of the inference server.

    python -m bench.load_test --server http://127.0.0.1:8080 --requests 200 --concurrency 8 --time_limit 600

Sends a fixed number of requests from a fixed number of concurrent clients to a server on loopback only,
stops by itself at the time limit, and reports errors, p50/p95 latency and throughput (also as JSON).
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import sys
import time
import urllib.parse

import numpy as np


def run_load(server: str, image_bytes: bytes, requests: int = 200, concurrency: int = 8,
             time_limit: float = 600.0, path: str = "/v1/predict") -> dict:
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
    return {"requests": requests, "concurrency": concurrency, "ok": len(latencies), "errors": len(errors),
            "not_sent": requests - len(latencies) - len(errors), "error_examples": errors[:5],
            "p50_s": float(np.percentile(lat, 50)), "p95_s": float(np.percentile(lat, 95)),
            "throughput_rps": len(latencies) / wall if wall > 0 else 0.0, "wall_s": wall}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", default="http://127.0.0.1:8080")
    ap.add_argument("--image", default="", help="JPEG/PNG to send (default: a generated 256x256 scene)")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--time_limit", type=float, default=600.0)
    ap.add_argument("--path", default="/v1/predict")
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    if args.image:
        data = open(args.image, "rb").read()
    else:
        from maskrcnn_body.serving.client import encode_jpeg
        rng = np.random.default_rng(0)
        data = encode_jpeg(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8))
    res = run_load(args.server, data, args.requests, args.concurrency, args.time_limit, args.path)
    print(f"{res['ok']}/{res['requests']} ok, {res['errors']} errors, p50 {res['p50_s'] * 1000:.0f} ms, "
          f"p95 {res['p95_s'] * 1000:.0f} ms, {res['throughput_rps']:.2f} req/s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return 1 if res["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
