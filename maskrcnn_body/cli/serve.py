"""Serve a trained model over HTTP with a browser demo page (default 127.0.0.1:8080).

    maskrcnn-body serve --model output/mask_rcnn --port 8080
    open http://127.0.0.1:8080/     (the demo page: a picture or the webcam, drawn in the browser)
    maskrcnn-body serve --model output/export/model.onnx --backend onnxruntime
    curl -s --data-binary @photo.jpg -H 'Content-Type: image/jpeg' http://127.0.0.1:8080/v1/predict
    curl -s -F image=@photo.jpg http://127.0.0.1:8080/v1/predict          (a multipart form works too)
    curl -s --data-binary @photo.jpg -H 'Content-Type: image/jpeg' http://127.0.0.1:8080/v1/render > out.png
    curl -s http://127.0.0.1:8080/healthz
    maskrcnn-body serve --model output/mask_rcnn --web output/web     (also /web/: the model in the browser)

Starlette on uvicorn (maskrcnn_body.serving.http_server): uploads are read asynchronously (slow clients
hold no thread), the model runs one call at a time behind a bounded queue. Errors are JSON
{"error", "status"} with 400/403/404/405/408/411/413/415/503 (docs/SERVING.md: the limits, Host/Origin rules,
serving behind a reverse proxy).
"""

from __future__ import annotations

import argparse

from maskrcnn_body.cli.args import add_backend_arguments, add_model_argument

WORKERS_REMOVED = (
    "--workers was removed (it was accepted and ignored): one server reads uploads asynchronously and runs "
    "the model one call at a time behind a bounded queue; drop the flag (--max_queue sets how many requests "
    "may wait), or run several servers on different --port values behind a reverse proxy (docs/SERVING.md)"
)


class _RemovedWorkers(argparse.Action):
    """``--workers N`` of old command lines: a clear error before any model is loaded (exit 2)."""

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(WORKERS_REMOVED)


def add_arguments(p) -> None:
    add_model_argument(p)
    add_backend_arguments(p)
    p.add_argument("--checkpoint", default=None, help="A specific checkpoint prefix (default: the newest).")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="Address to listen on (0.0.0.0 exposes the server to your network) (default: %(default)s).",
    )
    p.add_argument("--port", type=int, default=8080, help="Port (0 = any free port; the URL is printed).")
    p.add_argument("--score_threshold", type=float, default=0.5, help="Keep detections with at least this score.")
    p.add_argument("--max_body_mb", type=float, default=20.0, help="Largest accepted request body in MB (413 above).")
    p.add_argument("--max_pixels", type=int, default=40_000_000, help="Largest accepted image in pixels (400 above).")
    p.add_argument("--workers", action=_RemovedWorkers, nargs="?", help=argparse.SUPPRESS)
    p.add_argument(
        "--web",
        default="",
        help="Also serve this `maskrcnn-body export --web` folder (the page that runs the model in the browser) "
        "at /web/, with the headers that allow multi-threaded WebAssembly.",
    )
    p.add_argument("--max_queue", type=int, default=16, help="Requests waiting for the model before 503.")
    p.add_argument(
        "--read_timeout",
        type=float,
        default=10.0,
        help="Seconds a client has to send its request head and body (408 after).",
    )
    p.add_argument(
        "--write_timeout",
        type=float,
        default=15.0,
        help="Seconds a client may leave its answer unread before it is disconnected (default: %(default)s).",
    )
    p.add_argument(
        "--max_aspect_ratio",
        type=float,
        default=20.0,
        help="Refuse (400) images whose long side is more than this many times the short one (0 = any; "
        "default: %(default)s).",
    )
    p.add_argument(
        "--max_open_per_client",
        type=int,
        default=64,
        help="Uploads in progress from one client address before 503 (0 = no cap; behind a reverse proxy every "
        "client has the proxy's address) (default: %(default)s).",
    )
    p.add_argument(
        "--allowed-host",
        "--allowed_host",
        dest="allowed_hosts",
        action="append",
        default=[],
        metavar="NAME",
        help="A Host name the server answers to besides loopback names and IP addresses (repeatable; "
        "'.example.com' = the domain and its subdomains; '*' = any). Needed behind a reverse proxy or a DNS name.",
    )
    p.add_argument(
        "--allowed-origin",
        "--allowed_origin",
        dest="allowed_origins",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="An origin (https://app.example) whose pages may POST images here (repeatable; '*' = any). "
        "The server's own page is always allowed.",
    )


def run(args) -> int:
    import logging

    logging.basicConfig(level=logging.WARNING)
    from maskrcnn_body.serving.browser import find_web_dir
    from maskrcnn_body.serving.http_server import ServerConfig, serve_model

    cfg = ServerConfig(
        host=args.host,
        port=args.port,
        max_body_bytes=int(args.max_body_mb * 1024 * 1024),
        max_pixels=args.max_pixels,
        max_queue=args.max_queue,
        read_timeout_s=args.read_timeout,
        write_timeout_s=args.write_timeout,
        max_aspect_ratio=args.max_aspect_ratio,
        max_open_per_client=args.max_open_per_client,
        allowed_hosts=tuple(args.allowed_hosts),
        allowed_origins=tuple(args.allowed_origins),
        web_dir=find_web_dir(args.web),
    )
    serve_model(
        args.model,
        cfg,
        args.score_threshold,
        log=lambda msg: print(msg, flush=True),
        checkpoint=args.checkpoint,
        backend=args.backend,
        num_threads=args.threads,
        precision=args.precision,
        device=args.device,
    )
    return 0
