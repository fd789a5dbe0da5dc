"""The in-browser page (``maskrcnn-body export --web``) measured in headless Chromium: model load time,
per-frame latency with one and with several WebAssembly threads, memory (docs/BENCHMARKS.md, Analysis,
"Issue 31").

    python bench/bench_browser.py                      # random-weight cpu_small at 256 px, 20 frames
    python bench/bench_browser.py --train_dir output/mask_rcnn --frames 50

The folder is served by Python's ``http.server`` with the cross-origin isolation headers (COOP/COEP), so
the page may use threads; ``?threads=N`` sets them. Per thread count: a fresh browser, the page opened
(load = config + model fetch + ``InferenceSession.create``; wall = navigation to ready), one 256x192
synthetic picture uploaded (the first frame, with ONNX Runtime's warm-up), then ``--frames`` timed frames
(``window.demo.rerun()``: model, pasting, labels, drawing) whose median is reported. Memory: the page's
``performance.measureUserAgentSpecificMemory()`` (JavaScript + WebAssembly heaps) and the resident set of
Chromium's renderer process(es). Prints a markdown table and a ``BENCH_RESULT`` JSON line.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

from bench import common  # noqa: E402


def renderer_rss_mb(user_data_dir: str) -> float:
    """Resident MB of the Chromium renderer processes of the browser using ``user_data_dir``."""
    pids = [p for p in os.listdir("/proc") if p.isdigit()]

    def cmdline(pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                return f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return ""

    def parent(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[1]
        except OSError:
            return ""

    roots = {p for p in pids if user_data_dir in cmdline(p) and "--type=" not in cmdline(p)}
    family, grew = set(roots), True
    while grew:
        new = {p for p in pids if parent(p) in family} - family
        family |= new
        grew = bool(new)
    total = 0
    for p in family:
        if "--type=renderer" in cmdline(p):
            with open(f"/proc/{p}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return total / 1024


def measure(url: str, threads: int, frames: int, image: str, chromium: str) -> dict:
    from playwright.sync_api import sync_playwright
    from test_browser_demo import CHROMIUM_FLAGS

    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        ctx = p.chromium.launch_persistent_context(
            profile, executable_path=chromium, headless=True, chromium_sandbox=False, args=CHROMIUM_FLAGS
        )
        try:
            page = ctx.new_page()
            t0 = time.perf_counter()
            page.goto(f"{url}/?threads={threads}&nosw")  # no service worker copying files meanwhile
            page.wait_for_function("() => window.demo.ready || window.demo.error !== null", timeout=300_000)
            wall = time.perf_counter() - t0
            assert page.evaluate("window.demo.error") is None, page.evaluate("window.demo.error")
            got = page.evaluate("window.demo.threads")
            load_ms = page.evaluate("window.demo.loadMs")
            rss_loaded = renderer_rss_mb(profile)
            page.set_input_files("#file", image)
            page.wait_for_function("() => window.demo.runs > 0 && !window.demo.busy", timeout=300_000)
            first = page.evaluate("window.demo.latency")
            runs = [page.evaluate("window.demo.rerun()") for _ in range(frames)]
            heap = page.evaluate(
                "async () => self.crossOriginIsolated && performance.measureUserAgentSpecificMemory ? "
                "(await performance.measureUserAgentSpecificMemory()).bytes : null"
            )
            return {
                "threads": got,
                "load_ms": load_ms,
                "ready_wall_ms": 1000 * wall,
                "first_frame_ms": first["ms"],
                "frame_ms": statistics.median(r["ms"] for r in runs),
                "model_ms": statistics.median(r["model"] for r in runs),
                "draw_ms": statistics.median(r["draw"] for r in runs),
                "heap_mb": heap / 2**20 if heap else None,
                "renderer_rss_loaded_mb": rss_loaded,
                "renderer_rss_mb": renderer_rss_mb(profile),
            }
        finally:
            ctx.close()


def native_ms(model_path: str, image: str, threads: int, frames: int) -> float:
    """Median ms of ``mb.load(model.onnx)`` (native ONNX Runtime, ``threads`` threads) on ``image``: the
    model call, pasting and labels (the Python path's share of what the page does per frame)."""
    import numpy as np
    from PIL import Image

    import maskrcnn_body as mb

    model = mb.load(model_path, num_threads=threads)
    rgb = np.asarray(Image.open(image).convert("RGB"))
    _ = model(rgb)[0].part_map  # warm-up
    times = []
    for _ in range(frames):
        t0 = time.perf_counter()
        _ = model(rgb)[0].part_map
        times.append(1000 * (time.perf_counter() - t0))
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train_dir", default="", help="a training directory (default: random cpu_small at 256 px)")
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--threads", default="1,2", help="WebAssembly thread counts to measure")
    args = ap.parse_args()
    from PIL import Image
    from test_browser_demo import chromium_path

    from helpers.models import write_random_train_dir
    from helpers.servers import start_static_server
    from maskrcnn_body.data.synthetic import render_image
    from maskrcnn_body.workflows import web_page

    with tempfile.TemporaryDirectory() as d:
        train_dir = args.train_dir
        if not train_dir:
            train_dir = os.path.join(d, "run")
            write_random_train_dir(
                train_dir,
                "cpu_small",
                seed=0,
                **{"input.min_size": 256, "input.max_size": 256, "model.postprocess.score_threshold": 0.5},
            )
        site = os.path.join(d, "site")
        cli = [sys.executable, "-c", "import sys; from maskrcnn_body.cli import main; sys.exit(main())"]
        subprocess.run(
            cli + ["export", "--train_dir", train_dir, "--saved_model", os.path.join(d, "sm"), "--web", site],
            check=True,
            capture_output=True,
        )
        image = os.path.join(d, "scene.png")
        Image.fromarray(render_image(seed=7, split="val", index=3, height=192, width=256).decode_image()).save(image)
        srv, url = start_static_server(site, web_page.ISOLATION_HEADERS)
        try:
            rows = [measure(url, int(t), args.frames, image, chromium_path()) for t in args.threads.split(",")]
        finally:
            srv.shutdown()
        for r in rows:  # the same model.onnx on the same picture in native ONNX Runtime (mb.load), same run
            r["native_ms"] = native_ms(os.path.join(site, "model.onnx"), image, r["threads"], args.frames)
        sizes = {
            "model.onnx": os.path.getsize(os.path.join(site, "model.onnx")),
            "runtime": web_page.folder_size(os.path.join(site, "runtime")),
            "total": web_page.folder_size(site),
        }
    cpu = common.cpu_model()
    print(f"In-browser page, headless Chromium, {cpu}, {os.cpu_count()} cores; median of {args.frames} frames:\n")
    print(
        "| WebAssembly threads | model load (ms) | first frame (ms) | frame (ms) | model (ms) | masks + drawing (ms) |"
        " native ONNX Runtime, same threads (ms) | JS+Wasm heap (MB) | renderer RSS (MB) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        heap = f"{r['heap_mb']:.0f}" if r["heap_mb"] else "n/a"
        print(
            f"| {r['threads']} | {r['load_ms']:.0f} | {r['first_frame_ms']:.0f} | {r['frame_ms']:.1f} | "
            f"{r['model_ms']:.1f} | {r['draw_ms']:.1f} | {r['native_ms']:.1f} | {heap} | {r['renderer_rss_mb']:.0f} |"
        )
    print(
        f"\nFolder: {sizes['total'] / 1e6:.1f} MB (model.onnx {sizes['model.onnx'] / 1e6:.1f} MB, "
        f"runtime {sizes['runtime'] / 1e6:.1f} MB)"
    )
    common.emit({"rows": rows, "sizes": sizes, "cpu": cpu})
    return 0


if __name__ == "__main__":
    sys.exit(main())
