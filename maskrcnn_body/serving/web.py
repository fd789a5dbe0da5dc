"""The browser page (``GET /``) and the OpenAPI description (``GET /openapi.json``) of the server.

The page is one file, ``static/index.html`` (inline CSS and JavaScript, no external resources, about
20 KB): it posts the picture (a file, a dropped file, or webcam frames one at a time) to
``v1/predict`` and draws the answer itself on a canvas: it decodes the COCO RLE masks, labels each
pixel with the rules of :mod:`maskrcnn_body.ops.paste` (the same as the PNG drawing), and
paints parts, body outlines, boxes and the skeleton, each part behind its own toggle.

Colours, channel and keypoint names come from :mod:`maskrcnn_body.constants` and
:mod:`maskrcnn_body.drawing.people`, written into the page as a JSON block when the server starts, so
the page and the PNG drawing cannot drift apart. The page is sent with a Content-Security-Policy
that allows only its own inline script and style (by hash) and requests to its own origin.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from importlib import resources
from typing import Dict, Tuple

from maskrcnn_body import constants
from maskrcnn_body.drawing import palette
from maskrcnn_body.version import __version__


def page_config(max_body_bytes: int, max_pixels: int) -> dict:
    """What the page needs to draw like :func:`maskrcnn_body.drawing.people.draw_people`
    (:func:`maskrcnn_body.drawing.palette.page_constants`) and the server's upload limits."""
    return {**palette.page_constants(), "max_body_bytes": int(max_body_bytes), "max_pixels": int(max_pixels)}


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def index_page(max_body_bytes: int, max_pixels: int) -> Tuple[bytes, Dict[str, str]]:
    """(HTML bytes, response headers) of ``GET /``."""
    html = resources.files("maskrcnn_body.serving").joinpath("static/index.html").read_text("utf-8")
    config = json.dumps(page_config(max_body_bytes, max_pixels)).replace("</", "<\\/")
    html = html.replace("{{CONFIG}}", config)
    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    styles = re.findall(r"<style>(.*?)</style>", html, re.S)
    csp = (
        "default-src 'none'; "
        f"script-src {' '.join(_sha256(s) for s in scripts)}; "
        f"style-src {' '.join(_sha256(s) for s in styles)}; "
        "img-src 'self' data: blob:; media-src 'self' blob: mediastream:; connect-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )
    headers = {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",  # no referrer leaves the origin; the page's own POSTs carry its Origin
        "Cache-Control": "no-cache",
    }
    return html.encode("utf-8"), headers


def _error(description: str) -> dict:
    schema = {"$ref": "#/components/schemas/Error"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def openapi_schema(
    image_types, max_body_bytes: int, max_pixels: int, min_side: int, max_aspect_ratio: float = 0.0
) -> dict:
    """OpenAPI 3.1 description of the endpoints (served at ``/openapi.json``)."""
    raw = {t: {"schema": {"type": "string", "format": "binary"}} for t in image_types}
    form = {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["image"],
                "properties": {
                    "image": {
                        "type": "string",
                        "format": "binary",
                        "description": "the picture (the first file field is used when none is called 'image')",
                    }
                },
            }
        }
    }
    body = {
        "required": True,
        "content": {**raw, **form},
        "description": f"An image (JPEG, PNG, WebP or BMP; no other format is decoded; at most {max_body_bytes} "
        f"bytes, {max_pixels} pixels, sides of at least {min_side}"
        + (f", an aspect ratio of at most {max_aspect_ratio:g}:1" if max_aspect_ratio else "")
        + ") as the raw body (Content-Length or chunked) or as the file of a multipart form. EXIF orientation "
        "is applied: boxes, masks and keypoints are in the upright frame that image viewers show.",
    }
    errors = {
        "400": _error(
            "not an image, empty, truncated, too small, too many pixels, too elongated, bad multipart form, "
            "a Host that is not served, both Content-Length and Transfer-Encoding"
        ),
        "403": _error("a POST from another origin (Origin header) that the server does not accept"),
        "408": _error("the client did not send its request in time"),
        "411": _error("no Content-Length"),
        "413": _error("body over the limit"),
        "415": _error("unsupported Content-Type, or an image format other than JPEG, PNG, WebP, BMP"),
        "503": _error("queue full or too many uploads at once: retry later (Retry-After)"),
        "500": _error("the model failed (the body has an error id the server log carries); the server keeps serving"),
    }
    person = {
        "type": "object",
        "properties": {
            "box": {
                "type": "array",
                "items": {"type": "number"},
                "minItems": 4,
                "maxItems": 4,
                "description": "x1, y1, x2, y2 in pixels (x2/y2 exclusive)",
            },
            "score": {"type": "number"},
            "keypoints": {
                "type": "array",
                "items": {"type": "array", "items": {"type": "number"}},
                "description": "15 x [x, y, score] in the order " + ", ".join(constants.KEYPOINTS),
            },
            "masks": {
                "type": "object",
                "description": "COCO compressed RLE per channel: " + ", ".join(constants.CHANNELS),
                "additionalProperties": {"$ref": "#/components/schemas/RLE"},
            },
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "maskrcnn_body inference server",
            "version": __version__,
            "description": "People with 7 body-part masks and 15 keypoints. Errors are JSON "
            '{"error": message, "status": code}.',
        },
        "paths": {
            "/v1/predict": {
                "post": {
                    "summary": "Find the people in an image (the JSON of train/infer.py)",
                    "requestBody": body,
                    "responses": {
                        "200": {
                            "description": "the people found",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Result"}}},
                        },
                        **errors,
                    },
                }
            },
            "/v1/render": {
                "post": {
                    "summary": "Draw the people found in an image",
                    "requestBody": body,
                    "responses": {
                        "200": {
                            "description": "the drawing",
                            "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
                        },
                        **errors,
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness and queue length",
                    "responses": {
                        "200": {"description": "ok", "content": {"application/json": {"schema": {"type": "object"}}}}
                    },
                }
            },
            "/": {
                "get": {
                    "summary": "The browser demo page",
                    "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}},
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This description",
                    "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}},
                }
            },
        },
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "status"],
                    "properties": {"error": {"type": "string"}, "status": {"type": "integer"}},
                },
                "RLE": {
                    "type": "object",
                    "properties": {
                        "size": {"type": "array", "items": {"type": "integer"}, "description": "[height, width]"},
                        "counts": {"type": "string"},
                    },
                },
                "Result": {
                    "type": "object",
                    "properties": {
                        "width": {"type": "integer"},
                        "height": {"type": "integer"},
                        "source": {"type": "string"},
                        "persons": {"type": "array", "items": person},
                    },
                },
            }
        },
    }
