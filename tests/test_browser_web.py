"""The in-browser page (``maskrcnn-body export --web DIR``, :mod:`maskrcnn_body.serving.browser`) in headless
Chromium driven by Playwright, served by a plain static file server (Python's ``http.server``).

A random-weight ``cpu_small`` model at 256 px (score threshold 0, so every picture has people) is exported
with the command line; the tests check that

* the page's people (boxes within 1 px, scores within 1e-3) and per-pixel part labels (>= 99% of pixels)
  equal ``mb.load(DIR/model.onnx)`` on the same pixels, for an uploaded and a dropped picture, with
  several WebAssembly threads (cross-origin isolated) and with one (no isolation headers); that PNG pixels
  reach the model as PIL decodes them; the part toggles; the server page's look, labelled controls and
  contrast; the README screenshot;
* the page loads nothing from any other origin (its Content-Security-Policy blocks a script and a fetch
  to another live origin, which receives nothing) and keeps working offline once loaded, reload included
  (its service worker's copy);
* the webcam path on Chromium's fake camera equals ``mb.load`` on the frame the page ran;
* ``maskrcnn-body serve --web DIR`` serves the folder at ``/web/`` with the isolation headers;
* paste.js (the page's port of ops/paste.py) equals paste.py under Node.js, and the runtime fetch
  refuses a tarball whose sha512 is not the pinned one.

Needs the runtime (``make web`` = ``python web/fetch_runtime.py``: ONNX Runtime Web from npm), Chromium and
Playwright as tests/test_browser_demo.py. Without the runtime or Node.js the tests that need them skip
with the reason, except under CI=true, where they fail. ``MASKRCNN_BODY_WEB_SCREENSHOT=docs/images/browser.png``
also writes the README screenshot there; ``MASKRCNN_BODY_DEMO_MODEL=DIR`` exports that training directory
(score threshold 0.5) instead of the random model.
"""

import base64
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import urllib.request

import numpy as np
import pytest
from PIL import Image
from test_browser_demo import CONTRAST, Watch, _launch, chromium_path

from helpers.models import write_random_train_dir
from helpers.servers import start_static_server
from maskrcnn_body.data.synthetic import render_image
from maskrcnn_body.errors import UserError
from maskrcnn_body.ops import paste
from maskrcnn_body.serving import browser
from maskrcnn_body.workflows import web_page

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = {
    "input.min_size": 256,
    "input.max_size": 256,
    "model.postprocess.max_detections": 5,
    "model.postprocess.score_threshold": 0.0,
}
IN_CI = os.environ.get("CI", "").lower() == "true"


def missing(what: str):
    """Skip with the reason locally; fail under CI=true (CI must have everything)."""
    if IN_CI:
        pytest.fail(f"{what} (CI=true: not skipped)")
    pytest.skip(what)


def need_runtime():
    try:
        web_page.runtime_files()
    except UserError as e:
        missing(str(e))


def need_node() -> str:
    node = shutil.which("node")
    if node is None:
        missing("Node.js (node) is not installed: Debian apt-get install nodejs npm")
    return node


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """``export --web`` of a random cpu_small model at 256 px; yields (folder, mb.load of its model.onnx)."""
    need_runtime()
    import maskrcnn_body as mb

    d = tmp_path_factory.mktemp("web")
    train_dir, threshold = os.environ.get("MASKRCNN_BODY_DEMO_MODEL"), "0.5"  # a trained model, for the screenshot
    if not train_dir:
        train_dir, threshold = str(d / "run"), "0"
        write_random_train_dir(train_dir, "cpu_small", seed=0, **SIZE)
    cmd = [sys.executable, "-c", "import sys; from maskrcnn_body.cli import main; sys.exit(main())", "export"]
    args = ["--train_dir", train_dir, "--saved_model", str(d / "sm"), "--web", str(d / "site")]
    proc = subprocess.run(cmd + args + ["--score_threshold", threshold], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "in-browser demo ->" in proc.stdout
    folder = str(d / "site")
    return folder, mb.load(os.path.join(folder, "model.onnx"), score_threshold=float(threshold))


@pytest.fixture(scope="module")
def isolated(site):
    """The folder behind a static server that sends the cross-origin isolation headers (threads)."""
    srv, url = start_static_server(site[0], web_page.ISOLATION_HEADERS)
    yield url
    srv.shutdown()


@pytest.fixture(scope="module")
def plain(site):
    """The folder behind a static server with no extra headers (one WebAssembly thread)."""
    srv, url = start_static_server(site[0])
    yield url
    srv.shutdown()


@pytest.fixture(scope="module")
def playwright():
    chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


# ------------------------------------------------------------------ helpers
def _open(browser_, url, query="", **context):
    ctx = browser_.new_context(viewport={"width": 1200, "height": 900}, **context)
    page = ctx.new_page()
    watch = Watch(page, url)
    page.goto(url + "/" + query)
    page.wait_for_function("() => window.demo.ready || window.demo.error !== null", timeout=180_000)
    assert page.evaluate("window.demo.error") is None
    return page, watch


B64 = """(a) => { let s = ""; for (let i = 0; i < a.length; i += 32768) s += String.fromCharCode.apply(null,
          a.subarray(i, i + 32768)); return btoa(s); }"""


def _u8(page, expr):
    return np.frombuffer(base64.b64decode(page.evaluate(f"({B64})({expr})")), np.uint8)


def _page_state(page):
    """(the RGB pixels the page ran (H, W, 3), its people, its part labels (H, W))."""
    inp = page.evaluate("({w: window.demo.input.width, h: window.demo.input.height})")
    rgb = _u8(page, "window.demo.input.rgb").reshape(inp["h"], inp["w"], 3)
    labels = _u8(page, "window.demo.labels").reshape(inp["h"], inp["w"])
    persons = page.evaluate("window.demo.result.persons")
    return rgb, persons, labels


def _check_parity(page, model):
    """The page's last picture: people and labels equal ``model`` (mb.load of the same export) on its pixels."""
    rgb, persons, labels = _page_state(page)
    ref = model(rgb)[0]
    assert len(persons) == len(ref.persons) > 0
    left, joints = list(range(len(persons))), []
    for p in ref.persons:  # scores can tie within 1e-3: match by box
        j = min(left, key=lambda j: np.abs(np.asarray(persons[j]["box"]) - p.box).max())
        left.remove(j)
        assert np.abs(np.asarray(persons[j]["box"]) - p.box).max() <= 1.0, (persons[j]["box"], p.box)
        assert abs(persons[j]["score"] - p.score) <= 1e-3
        joints.append(np.abs(np.asarray(persons[j]["keypoints"])[:, :2] - p.keypoints[:, :2]).max(-1))
    # keypoints: a heatmap argmax; the random model's heatmaps are nearly flat, so rounding can flip a tie
    assert (np.concatenate(joints) <= 1.0).mean() >= 0.9, np.concatenate(joints)
    d = ref.detections
    h, w = rgb.shape[:2]
    want = paste.crops_label_map(paste.paste_crops(d["masks"], d["boxes"], h, w), d["scores"], h, w)
    agree = float((labels == want).mean())
    assert agree >= 0.99, f"part labels agree on {agree:.4%} of pixels"
    return rgb, agree


def _synthetic_png(path, index=3, height=192, width=256):
    rec = render_image(seed=7, split="val", index=index, height=height, width=width)
    Image.fromarray(rec.decode_image()).save(path)
    return path


def _drop(page, path):
    with open(path, "rb") as f:
        data = base64.b64encode(f.read()).decode()
    page.evaluate(
        """(b64) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], "dropped.png", {type: "image/png"}));
        window.demo.runs = 0;
        document.getElementById("drop").dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true}));
    }""",
        data,
    )
    page.wait_for_function("() => window.demo.runs > 0 && !window.demo.busy", timeout=120_000)


def _upload(page, path):
    page.evaluate("window.demo.runs = 0")
    page.set_input_files("#file", str(path))
    page.wait_for_function("() => window.demo.runs > 0 && !window.demo.busy", timeout=120_000)
    assert page.evaluate("window.demo.error") is None


# ------------------------------------------------------------------ tests
def test_page_equals_mb_load_on_the_same_export(site, isolated, playwright, tmp_path):
    model = site[1]
    b = _launch(playwright)
    try:
        page, watch = _open(b, isolated, "?threads=2")
        assert page.evaluate("self.crossOriginIsolated") and page.evaluate("window.demo.threads") == 2
        scene = _synthetic_png(tmp_path / "scene.png")
        _upload(page, scene)
        rgb, _ = _check_parity(page, model)
        assert (rgb == np.asarray(Image.open(scene).convert("RGB"))).all()  # PNG pixels as PIL decodes them
        rows = page.eval_on_selector_all("#people tbody tr", "rows => rows.map(r => ({...r.dataset}))")
        assert [float(r["score"]) for r in rows] == [p["score"] for p in page.evaluate("window.demo.result.persons")]
        assert "model" in page.inner_text("#latency") and page.is_hidden("#error")

        shot = tmp_path / "browser.png"
        page.screenshot(path=str(shot), full_page=True)
        assert Image.open(shot).size[0] >= 1000
        if os.environ.get("MASKRCNN_BODY_WEB_SCREENSHOT"):
            shutil.copy(shot, os.environ["MASKRCNN_BODY_WEB_SCREENSHOT"])

        # a part toggle changes the drawing; toggled back, the drawing is as before
        digest = """() => { const v = document.getElementById('view'), d = v.getContext('2d')
            .getImageData(0, 0, v.width, v.height).data; let s = 0;
            for (let i = 0; i < d.length; i += 7) s += d[i] * (i % 13); return s; }"""
        k = page.evaluate("Array.from(window.demo.labels).find((v) => v >= 1 && v <= 6)")
        before = page.evaluate(digest)
        page.click(f"#show-{k}")
        assert page.evaluate(f"window.demo.show['{k}']") is False and page.evaluate(digest) != before
        page.click(f"#show-{k}")
        assert page.evaluate(digest) == before

        _drop(page, _synthetic_png(tmp_path / "small.png", index=5, height=100, width=90))  # any size
        _check_parity(page, model)
        watch.check()
    finally:
        b.close()


def test_one_thread_from_a_plain_static_server(site, plain, playwright, tmp_path):
    b = _launch(playwright)
    try:
        page, watch = _open(b, plain, "?threads=2")  # asks for 2: without isolation the page runs 1
        assert not page.evaluate("self.crossOriginIsolated") and page.evaluate("window.demo.threads") == 1
        _upload(page, _synthetic_png(tmp_path / "scene.png", index=8))
        _check_parity(page, site[1])
        assert "1 thread" in page.inner_text("#latency")
        # the server page's look and basics of accessibility: labelled controls, AA contrast
        assert page.evaluate("getComputedStyle(document.querySelector('section')).borderRadius") == "8px"
        unlabelled = page.evaluate("""() => [...document.querySelectorAll("input, button")]
            .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute("aria-label") && !e.textContent.trim())
            .map((e) => e.id || e.outerHTML)""")
        assert unlabelled == []
        low = [(what, round(r, 2)) for what, r in page.evaluate(CONTRAST) if r < 4.5]
        assert not low, f"text below WCAG AA contrast 4.5: {low}"
        watch.check()
    finally:
        b.close()


def test_nothing_from_other_origins_and_works_offline(site, isolated, playwright, tmp_path):
    hits = []
    srv, other = start_static_server(str(tmp_path))  # another live origin: must receive nothing
    srv.RequestHandlerClass.log_message = lambda self, *a: hits.append(self.path)
    (tmp_path / "x.js").write_text("window.foreign = true;")
    b = _launch(playwright)
    try:
        page, watch = _open(b, isolated)
        csp = page.get_attribute('meta[http-equiv="Content-Security-Policy"]', "content")
        assert "default-src 'none'" in csp and "connect-src 'self'" in csp and "script-src 'self'" in csp
        watch.check()  # loading the page and the model: requests to its own origin only
        blocked = page.evaluate(
            """async (other) => {
            const seen = [];
            document.addEventListener("securitypolicyviolation", (e) => seen.push(e.violatedDirective));
            let fetched = true;
            try { await fetch(other + "/x.js"); } catch (e) { fetched = false; }
            const s = document.createElement("script"); s.src = other + "/x.js";
            await new Promise((r) => { s.onerror = r; s.onload = r; document.head.append(s); });
            await new Promise((r) => setTimeout(r, 200));
            return {fetched, foreign: window.foreign === true, seen};
        }""",
            other,
        )
        assert blocked["fetched"] is False and blocked["foreign"] is False, blocked
        assert any(v.startswith("connect-src") for v in blocked["seen"]) and any(
            v.startswith("script-src") for v in blocked["seen"]
        ), blocked
        assert hits == []  # the other origin saw nothing: blocked before leaving the browser

        page.wait_for_function("() => window.demo.offline", timeout=120_000)  # the service worker's copy
        page.context.set_offline(True)
        _upload(page, _synthetic_png(tmp_path / "offline.png", index=11))  # loaded: runs with no network
        _check_parity(page, site[1])
        page.reload()  # and opens with no network
        page.wait_for_function("() => window.demo.ready || window.demo.error !== null", timeout=180_000)
        assert page.evaluate("window.demo.error") is None and page.evaluate("self.crossOriginIsolated")
        _upload(page, _synthetic_png(tmp_path / "offline2.png", index=12))
        _check_parity(page, site[1])
    finally:
        b.close()
        srv.shutdown()


def test_webcam_on_the_fake_camera(site, isolated, playwright):
    b = _launch(playwright, fake_camera=True)
    try:
        page, watch = _open(b, isolated)
        page.click("#cam")
        page.wait_for_selector('#cam[aria-pressed="true"], #error:not([hidden])', timeout=30_000)
        assert page.is_hidden("#error"), page.inner_text("#error")
        page.wait_for_function("() => window.demo.frames >= 3", timeout=180_000)
        assert "frames/s" in page.inner_text("#latency")
        page.click("#cam")
        page.wait_for_function("() => window.demo.cam === null && !window.demo.busy")
        rgb, _ = _check_parity(page, site[1])
        assert rgb.shape == (480, 640, 3) and rgb.std() > 1  # Chromium's fake camera: a moving test pattern
        watch.check()
    finally:
        b.close()


def test_serve_mounts_the_folder_at_web(site, playwright):
    from maskrcnn_body.serving.http_server import InferenceServer, ServerConfig

    srv = InferenceServer(ServerConfig(port=0, web_dir=site[0]), lambda im: {}, lambda im: b"")
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        with urllib.request.urlopen(srv.url + "/web/", timeout=30) as r:
            assert r.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
            assert r.headers["Cross-Origin-Opener-Policy"] == "same-origin"
            assert b"Content-Security-Policy" in r.read()
        with urllib.request.urlopen(srv.url + "/web/runtime/ort-wasm-simd-threaded.wasm", timeout=30) as r:
            assert r.headers["Content-Type"] == "application/wasm"
        with urllib.request.urlopen(srv.url + "/web/runtime/ort.wasm.min.mjs", timeout=30) as r:
            assert r.headers["Content-Type"].startswith("text/javascript")
        b = _launch(playwright)
        try:
            page, watch = _open(b, srv.url + "/web", "?threads=2")
            assert page.evaluate("window.demo.threads") == 2
            watch.check()
        finally:
            b.close()
    finally:
        srv.shutdown()
        srv.server_close()


def test_export_web_refuses_a_runtime_changed_after_the_fetch(tmp_path, monkeypatch):
    need_runtime()
    copy = tmp_path / "runtime"
    shutil.copytree(web_page.runtime_dir(), copy)
    monkeypatch.setattr(web_page, "runtime_dir", lambda: str(copy))
    assert set(web_page.runtime_files()) == {os.path.basename(f) for f in web_page.runtime_spec()["files"]}
    with open(copy / "ort.wasm.min.mjs", "a") as f:
        f.write("\n// edited\n")
    with pytest.raises(UserError, match="ort.wasm.min.mjs changed since the fetch"):
        web_page.runtime_files()


def test_export_web_without_the_runtime_says_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setattr(web_page, "runtime_dir", lambda: str(tmp_path / "nothing"))
    with pytest.raises(UserError, match="make web"):
        web_page.export_web(str(tmp_path / "model.onnx"), str(tmp_path / "site"))
    assert not (tmp_path / "site").exists()
    with pytest.raises(UserError, match="not an export --web folder"):
        browser.find_web_dir(str(tmp_path))  # serve --web DIR with the wrong folder


NODE_PASTE = """
import {pasteCrop, labelMap} from %s;
import {readFileSync} from "node:fs";
const a = JSON.parse(readFileSync(process.argv[2], "utf8"));
const masks = Float32Array.from(a.masks), crops = a.boxes.map((b, r) => pasteCrop(masks, r, a.m, 7, b, a.h, a.w));
const labels = labelMap(crops, a.scores, a.h, a.w, a.priority, a.body_only);
console.log(JSON.stringify({crops: crops.map((c) => [c.y0, c.x0, c.h, c.w, Array.from(c.values)]),
                            labels: Array.from(labels)}));
"""


def test_paste_js_equals_paste_py(tmp_path):
    node = need_node()
    rng = np.random.default_rng(0)
    h, w, m = 61, 83, 14
    boxes = np.array(
        [
            [10.3, 5.7, 40.9, 50.2],  # fractional
            [-8.0, -3.5, 20.0, 30.0],  # off the top-left
            [70.2, 40.0, 95.0, 70.0],  # off the bottom-right
            [20.0, 20.0, 34.0, 34.0],  # exactly M pixels: the identity
            [30.0, 10.0, 30.4, 12.0],  # thinner than a pixel centre: empty
            [5.5, 30.25, 60.75, 59.5],
        ],
        np.float32,
    )
    masks = rng.uniform(0, 1, (len(boxes), m, m, 7)).astype(np.float32)
    masks[3] = np.round(masks[3])
    scores = np.array([0.9, 0.8, 0.8, 0.7, 0.95, 0.6], np.float32)
    args = {
        "masks": masks.ravel().tolist(),
        "boxes": boxes.tolist(),
        "scores": scores.tolist(),
        "m": m,
        "h": h,
        "w": w,
        "priority": list(paste.PART_PRIORITY),
        "body_only": paste.BODY_ONLY,
    }
    (tmp_path / "a.json").write_text(json.dumps(args))
    src = json.dumps("file://" + os.path.join(web_page.static_dir(), "paste.js"))
    (tmp_path / "run.mjs").write_text(NODE_PASTE % src)
    proc = subprocess.run([node, str(tmp_path / "run.mjs"), str(tmp_path / "a.json")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    want = paste.paste_crops(masks, boxes, h, w)
    for (y0, x0, ch, cw, values), p in zip(out["crops"], want):
        assert (y0, x0, ch, cw) == (p.y0, p.x0, *p.values.shape[:2])
        assert (np.asarray(values, bool).reshape(p.values.shape) == p.values).all()
    labels = np.asarray(out["labels"]).reshape(h, w)
    assert (labels == paste.crops_label_map(want, scores, h, w)).all()


def _fetch_module():
    spec = importlib.util.spec_from_file_location("fetch_runtime", os.path.join(ROOT, "web", "fetch_runtime.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_runtime_fetch_checks_the_pinned_sha512(tmp_path):
    fetch = _fetch_module()
    (tmp_path / "package" / "dist").mkdir(parents=True)
    (tmp_path / "package" / "dist" / "a.mjs").write_text("export const a = 1;")
    tarball = str(tmp_path / "pkg.tgz")
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(tmp_path / "package", arcname="package")
    spec = {"package": "x", "version": "1", "files": ["dist/a.mjs"], "integrity": "sha512-" + "A" * 86 + "=="}
    out = str(tmp_path / "runtime")
    with pytest.raises(RuntimeError, match="not the pinned"):
        fetch.extract(spec, tarball, out)
    assert not os.path.exists(out)
    spec["integrity"] = fetch.integrity(tarball)
    fetch.extract(spec, tarball, out)
    assert open(os.path.join(out, "a.mjs")).read() == "export const a = 1;"
    assert fetch.up_to_date(spec, out)
    with open(os.path.join(out, "a.mjs"), "a") as f:
        f.write("// edited")
    assert not fetch.up_to_date(spec, out)  # make web fetches it again
    assert (
        json.load(open(os.path.join(out, "runtime.json")))["sha256"]["a.mjs"]
        == hashlib.sha256(b"export const a = 1;").hexdigest()
    )
    pinned = web_page.runtime_spec()
    assert pinned["integrity"].startswith("sha512-") and pinned["version"].count(".") == 2
