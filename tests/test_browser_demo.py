"""The demo page (``GET /``) in a real browser: headless Chromium driven by Playwright.

``maskrcnn-body serve`` runs a random-weight ``cpu_small`` model (128 px, score threshold 0, so every
picture has people) on a free loopback port. The tests

* upload a synthetic picture through the file input (a multipart form) and by drag and drop, wait
  for the drawing, and check that the people listed (score, box, parts found, pixels per part) and
  the page's per-pixel part labels equal what ``/v1/predict`` answers for the same bytes (decoded
  with pycocotools and labelled with ``ops.paste``); toggle parts; take the README screenshot;
* run the webcam path on Chromium's fake camera: frames go one at a time, and the last frame's
  answer on the page equals ``/v1/predict``'s for that frame;
* check the basics of accessibility: every control has a label, the Tab order, text contrast;
* check that the page loads nothing from anywhere but the server and logs no errors (its
  Content-Security-Policy would block anything else).

Needs Chromium (Debian: ``apt-get install chromium``; ``.ci/run`` installs it) and the ``playwright``
Python package (the ``test`` extra); Playwright's own browser download is not used. The browser is
found at ``$CHROMIUM`` or as ``chromium``/``chromium-browser``/``google-chrome`` on PATH. Without one
these tests fail (they are part of CI); set ``MASKRCNN_BODY_SKIP_BROWSER=1`` to skip them knowingly.
``MASKRCNN_BODY_SCREENSHOT=docs/images/demo.png`` also writes the screenshot there, and
``MASKRCNN_BODY_DEMO_MODEL=DIR`` serves that training directory instead of random weights.
"""

import base64
import io
import json
import os
import shutil
import sys
import time
import types
import urllib.request

import numpy as np
import pytest
from PIL import Image

from helpers.models import write_random_train_dir
from helpers.servers import start_server, stop_server
from maskrcnn_body import constants
from maskrcnn_body.data.synthetic import render_image
from maskrcnn_body.inference.result_json import json_to_masks
from maskrcnn_body.ops import paste

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = {"input.min_size": 128, "input.max_size": 128, "model.postprocess.max_detections": 5}
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FAKE_CAMERA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
PART_NAMES = [constants.CHANNELS[k] for k in constants.PART_CHANNELS]


def chromium_path() -> str:
    for candidate in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    if os.environ.get("MASKRCNN_BODY_SKIP_BROWSER") == "1":
        pytest.skip("no Chromium and MASKRCNN_BODY_SKIP_BROWSER=1")
    pytest.fail(
        "the browser tests need Chromium: apt-get install chromium (what .ci/run does), or set CHROMIUM "
        "to its path (MASKRCNN_BODY_SKIP_BROWSER=1 skips them)"
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``maskrcnn-body serve`` on port 0; yields an object with ``url``."""
    d = tmp_path_factory.mktemp("browser")
    train_dir = os.environ.get("MASKRCNN_BODY_DEMO_MODEL")
    threshold = "0.5" if train_dir else "0"
    if not train_dir:
        train_dir = str(d / "run")
        write_random_train_dir(train_dir, "cpu_small", seed=0, **SMALL)
    exe = shutil.which("maskrcnn-body", path=os.path.dirname(sys.executable))
    cmd = [exe] if exe else [sys.executable, "-c", "import sys; from maskrcnn_body.cli import main; sys.exit(main())"]
    proc, url = start_server(
        cmd + ["serve", "--train_dir", train_dir, "--port", "0", "--score_threshold", threshold],
        cwd=ROOT,
    )
    yield types.SimpleNamespace(url=url, root=d)
    stop_server(proc)


@pytest.fixture(scope="module")
def playwright():
    chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


def _launch(playwright, fake_camera=False):
    return playwright.chromium.launch(
        executable_path=chromium_path(),
        headless=True,
        chromium_sandbox=False,
        args=CHROMIUM_FLAGS + (FAKE_CAMERA if fake_camera else []),
    )


class Watch:
    """Everything the page requested and every error it logged."""

    def __init__(self, page, origin):
        self.origin, self.requests, self.errors = origin, [], []
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def check(self, expected=()):
        """No errors but the ``expected`` ones (substrings), no request to anywhere but the server."""
        errors = [e for e in self.errors if not any(x in e for x in expected)]
        assert not errors, errors
        foreign = [u for u in self.requests if not u.startswith((self.origin, "data:", "blob:"))]
        assert not foreign, foreign


def _open(browser, server, **context):
    ctx = browser.new_context(viewport={"width": 1200, "height": 860}, **context)
    page = ctx.new_page()
    watch = Watch(page, server.url)
    page.goto(server.url + "/")
    return page, watch


def _predict(server, data: bytes, ctype: str) -> dict:
    req = urllib.request.Request(server.url + "/v1/predict", data=data, headers={"Content-Type": ctype})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())


def _listed(page):
    return page.eval_on_selector_all("#people tbody tr", "rows => rows.map(r => ({...r.dataset}))")


def _check_page_equals(page, res):
    """The people listed and the page's part labels equal ``res`` (an answer of /v1/predict)."""
    assert json.loads(page.evaluate("JSON.stringify(window.demo.result)")) == res
    rows = _listed(page)
    assert len(rows) == len(res["persons"]) > 0
    masks = json_to_masks(res)
    for row, p, m in zip(rows, res["persons"], masks):
        assert float(row["score"]) == p["score"] and json.loads(row["box"]) == p["box"]
        areas = {name: int(m[..., k].sum()) for k, name in enumerate(constants.CHANNELS)}
        assert json.loads(row["areas"]) == areas
        assert json.loads(row["parts"]) == [n for n in PART_NAMES if areas[n] > 0]
    labels = np.array(page.evaluate("Array.from(window.demo.labels)"), np.int32).reshape(res["height"], res["width"])
    want = paste.part_label_map(masks, [p["score"] for p in res["persons"]])
    assert (labels == want).all(), f"{(labels != want).sum()} pixels differ"


def _synthetic_png(path, index=3, height=192, width=256):
    rec = render_image(seed=7, split="val", index=index, height=height, width=width)
    Image.fromarray(rec.decode_image()).save(path)
    with open(path, "rb") as f:
        return f.read()


def test_upload_draws_the_people_of_v1_predict(server, playwright, tmp_path):
    browser = _launch(playwright)
    try:
        page, watch = _open(browser, server)
        image = tmp_path / "scene.png"
        data = _synthetic_png(image)
        page.set_input_files("#file", str(image))  # the change event posts a multipart form
        page.wait_for_function("() => window.demo.result !== null && !window.demo.busy", timeout=120_000)
        res = _predict(server, data, "image/png")  # the same bytes as a raw body
        _check_page_equals(page, res)
        assert page.get_attribute("#view", "aria-label").startswith(f"Picture {res['width']}×{res['height']}")
        scale = page.evaluate("window.demo.scale")
        assert scale >= 1 and page.evaluate(
            "[document.getElementById('view').width, document.getElementById('view').height]"
        ) == [res["width"] * scale, res["height"] * scale]
        assert "Round trip" in page.inner_text("#latency") and "model" in page.inner_text("#latency")
        assert page.is_hidden("#error")

        shot = tmp_path / "demo.png"
        page.screenshot(path=str(shot), full_page=True)
        assert Image.open(shot).size[0] >= 1000
        if os.environ.get("MASKRCNN_BODY_SCREENSHOT"):
            shutil.copy(shot, os.environ["MASKRCNN_BODY_SCREENSHOT"])

        # a part toggle repaints exactly that part's pixels; toggled back, the drawing is as before
        k = next(constants.CHANNEL_INDEX[n] for n in json.loads(_listed(page)[0]["parts"]))
        pixels = f"""() => {{ const view = document.getElementById('view'), s = window.demo.scale;
                     const d = view.getContext('2d').getImageData(0, 0, view.width, view.height).data;
                     const l = window.demo.labels, w = window.demo.result.width; let on = 0, off = 0;
                     for (let y = 0, o = 0; y < view.height; y++) for (let x = 0; x < view.width; x++, o += 4) {{
                       const v = d[o] + 7 * d[o + 1] + 31 * d[o + 2];
                       if (l[Math.floor(y / s) * w + Math.floor(x / s)] === {k}) on += v; else off += v; }}
                     return [on, off]; }}"""
        before = page.evaluate(pixels)
        page.focus(f"#show-{k}")
        page.keyboard.press("Space")  # keyboard works on the toggles
        assert page.evaluate(f"window.demo.show['{k}']") is False
        toggled = page.evaluate(pixels)
        assert toggled[0] != before[0] and toggled[1] == before[1]
        page.click(f"#show-{k}")
        assert page.evaluate(pixels) == before

        # drag and drop of another picture
        data2 = _synthetic_png(tmp_path / "scene2.png", index=5, height=100, width=90)
        page.evaluate(
            """(b64) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], "dropped.png", {type: "image/png"}));
            window.demo.result = null;
            document.getElementById("drop").dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true}));
        }""",
            base64.b64encode(data2).decode(),
        )
        page.wait_for_function("() => window.demo.result !== null && !window.demo.busy", timeout=120_000)
        _check_page_equals(page, _predict(server, data2, "image/png"))

        # a file that is not an image: the server's message on the page, drawing unchanged
        bad = tmp_path / "notes.png"
        bad.write_bytes(b"not an image at all")
        page.set_input_files("#file", str(bad))
        page.wait_for_selector("#error:not([hidden])", timeout=60_000)
        assert "not an image" in page.inner_text("#error")
        watch.check(expected=["status of 400"])  # Chromium logs the failed fetch
    finally:
        browser.close()


def test_webcam_sends_frames_one_at_a_time(server, playwright):
    browser = _launch(playwright, fake_camera=True)
    try:
        page, watch = _open(browser, server)
        page.click("#cam")
        page.wait_for_selector('#cam[aria-pressed="true"], #error:not([hidden])', timeout=30_000)
        assert page.is_hidden("#error"), page.inner_text("#error")
        page.wait_for_function("() => window.demo.frames >= 3", timeout=180_000)
        assert "frames/s" in page.inner_text("#latency")
        page.click("#cam")  # stop: the last answer stays on the page
        assert page.get_attribute("#cam", "aria-pressed") == "false"
        page.wait_for_function("() => window.demo.cam === null && !window.demo.busy")
        time.sleep(0.5)  # a frame in flight when stopping is dropped
        frame = page.evaluate("""async () => {
            const b = new Uint8Array(await window.demo.lastUpload.arrayBuffer());
            let s = ""; for (const c of b) s += String.fromCharCode(c); return btoa(s); }""")
        data = base64.b64decode(frame)
        assert data[:2] == b"\xff\xd8"  # frames travel as JPEG
        res = _predict(server, data, "image/jpeg")
        _check_page_equals(page, res)
        assert (res["width"], res["height"]) == Image.open(io.BytesIO(data)).size
        watch.check()
    finally:
        browser.close()


CONTRAST = """() => {
  const lum = (c) => {
    const v = c.map((x) => { x /= 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; };
  const parse = (s) => s.match(/[\\d.]+/g).map(Number);
  const bg = (el) => { for (; el; el = el.parentElement) { const c = parse(getComputedStyle(el).backgroundColor);
                        if (c.length < 4 || c[3] > 0) return c.slice(0, 3); } return [255, 255, 255]; };
  const out = [];
  for (const el of document.querySelectorAll("h1, h2, p, label, legend, button, th, td, caption, a, span")) {
    if (!el.offsetParent || !el.textContent.trim()) continue;
    const fg = lum(parse(getComputedStyle(el).color)), b = lum(bg(el));
    out.push([el.id || el.tagName, (Math.max(fg, b) + 0.05) / (Math.min(fg, b) + 0.05)]);
  }
  return out;
}"""


def test_page_basics_of_accessibility(server, playwright, tmp_path):
    browser = _launch(playwright)
    try:
        page, watch = _open(browser, server)
        assert page.get_attribute("html", "lang") == "en"
        unlabelled = page.evaluate("""() => [...document.querySelectorAll("input, button, select, textarea")]
            .filter((e) => !e.hidden && !(e.labels && e.labels.length) && !e.getAttribute("aria-label")
                           && !e.textContent.trim()).map((e) => e.id || e.outerHTML)""")
        assert unlabelled == []
        assert page.get_attribute("#status", "role") == "status" and page.get_attribute("#error", "role") == "alert"
        assert page.get_attribute("#view", "role") == "img"
        # focus order follows the page: file, webcam, the toggles in order, then the link
        order = []
        for _ in range(3 + len(PART_NAMES) + 3):
            page.keyboard.press("Tab")
            order.append(page.evaluate("document.activeElement.id || document.activeElement.tagName"))
        toggles = [f"show-{k}" for k in constants.PART_CHANNELS] + ["show-body", "show-skeleton", "show-boxes"]
        assert order == ["file", "cam", *toggles, "A"], order
        low = [(what, round(r, 2)) for what, r in page.evaluate(CONTRAST) if r < 4.5]
        assert not low, f"text below WCAG AA contrast 4.5: {low}"
        watch.check()
    finally:
        browser.close()


def test_without_javascript_the_form_posts_to_render(server, playwright, tmp_path):
    browser = _launch(playwright)
    try:
        page = browser.new_context(java_script_enabled=False).new_page()
        page.goto(server.url + "/")
        image = tmp_path / "scene.png"
        _synthetic_png(image)
        page.set_input_files("#file", str(image))
        with page.expect_navigation() as nav:
            page.click("form button[type=submit]")  # the <noscript> button
        response = nav.value
        assert response.status == 200 and response.headers["content-type"] == "image/png"
        assert response.url == server.url + "/v1/render"
    finally:
        browser.close()
