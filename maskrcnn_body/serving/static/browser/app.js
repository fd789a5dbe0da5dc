// The in-browser demo: ONNX Runtime Web runs the exported model (model.onnx) on the picture's pixels, then
// this page pastes the box-frame masks (paste.js, the port of ops/paste.py) and draws parts, body
// outlines, boxes and skeletons like the server's demo page (serving/static/index.html) and draw/draw.py.
//
// The model's input is the picture itself: RGB uint8 (H, W, 3) of any size. The resize, padding and
// normalisation of inference/transforms.py are inside the exported graph, so they are the Python path's
// by construction; outputs are in the picture's pixels (boxes (D, 4), scores (D,), num_detections,
// masks (D, M, M, 7) box-frame probabilities, keypoints (D, 15, 3)).
//
// URL parameters: ?threads=N (WebAssembly threads, default config.json's or ONNX Runtime Web's
// min(4, ceil(cores / 2)); more than 1 needs cross-origin isolation, i.e. the server sends COOP/COEP headers), ?threshold=S (score threshold; default: config.json's), ?nosw (no service
// worker, i.e. no offline copy).
"use strict";
import * as ort from "./runtime/ort.wasm.min.mjs";
import {areas, labelMap, outline, pasteCrop} from "./paste.js";

const $ = (id) => document.getElementById(id);
const view = $("view"), ctx = view.getContext("2d", {willReadFrequently: true});
const video = $("video"), camButton = $("cam"), fileInput = $("file");
const params = new URLSearchParams(location.search);
// What the page holds; window.demo lets tests and the console look at it.
const state = {ready: false, loadMs: null, threads: 1, picture: null, input: null, result: null, labels: null,
               outline: null, areas: null, latency: null, show: {}, cam: null, frames: 0, busy: false, scale: 1,
               runs: 0, error: null, offline: false};
window.demo = state;
let CFG = null, session = null, N = 7, PARTS = [];

function say(text) { $("status").textContent = text; }
function fail(text) { const e = $("error"); e.textContent = text; e.hidden = !text; state.error = text || null; }

// ------------------------------------------------------------------ the model
async function loadModel() {
  const t0 = performance.now();
  CFG = await (await fetch("config.json")).json();
  N = CFG.channels.length;
  PARTS = CFG.part_priority.slice().sort((a, b) => a - b);
  // threads need SharedArrayBuffer (cross-origin isolation); unset, ONNX Runtime Web picks
  // min(4, ceil(cores / 2)): on a busy 2-core machine 2 threads ran slower than 1 (docs/BENCHMARKS.md)
  const want = Number(params.get("threads") || CFG.threads || 0);
  if (want > 0) ort.env.wasm.numThreads = self.crossOriginIsolated ? want : 1;
  state.threshold = params.has("threshold") ? Number(params.get("threshold")) : CFG.score_threshold;
  ort.env.wasm.wasmPaths = new URL("runtime/", location.href).href;
  ort.env.logLevel = "error";
  const resp = await fetch(CFG.model);
  if (!resp.ok) throw new Error(`cannot load ${CFG.model}: the server answered ${resp.status}`);
  const bytes = new Uint8Array(await resp.arrayBuffer());
  session = await ort.InferenceSession.create(bytes, {executionProviders: ["wasm"], graphOptimizationLevel: "all"});
  state.loadMs = performance.now() - t0;
  state.threads = ort.env.wasm.numThreads;  // what the runtime uses
  $("runtime").textContent = `ONNX Runtime Web ${CFG.runtime.version}, WebAssembly, ${state.threads} thread${state.threads === 1 ? "" : "s"}`;
}

/** RGB uint8 pixels (h * w * 3) -> detections in the picture's pixels (rows past num_detections dropped). */
async function detect(rgb, h, w) {
  const t0 = performance.now();
  const out = await session.run({[CFG.input]: new ort.Tensor("uint8", rgb, [h, w, 3])});
  const model = performance.now() - t0;
  const n = Number(out.num_detections.data[0]), m = out.masks.dims[1], c = out.masks.dims[3];
  const det = {n, m, c, boxes: out.boxes.data, scores: out.scores.data, masks: out.masks.data, keypoints: out.keypoints.data};
  for (const t of Object.values(out)) if (t.dispose) t.dispose();
  state.runs += 1;
  return {det, model};
}

/** Detections -> {result (people best first, score >= threshold), labels, outline, areas}, as api.make_result. */
function analyse(det, h, w) {
  const keep = [];
  for (let i = 0; i < det.n; i++) if (det.scores[i] >= state.threshold) keep.push(i);
  keep.sort((a, b) => (det.scores[b] - det.scores[a]) || (a - b));
  const persons = keep.map((i) => ({
    box: Array.from(det.boxes.subarray(4 * i, 4 * i + 4)),
    score: det.scores[i],
    keypoints: Array.from({length: CFG.keypoints.length}, (_, j) => Array.from(det.keypoints.subarray((i * CFG.keypoints.length + j) * 3, (i * CFG.keypoints.length + j + 1) * 3))),
  }));
  const crops = keep.map((i, r) => pasteCrop(det.masks, i, det.m, det.c, persons[r].box, h, w, CFG.mask_threshold));
  return {
    result: {width: w, height: h, persons},
    labels: labelMap(crops, persons.map((p) => p.score), h, w, CFG.part_priority, CFG.body_only, det.c),
    outline: outline(crops, h, w, det.c),
    areas: crops.map((p) => areas(p, det.c)),
  };
}

// ------------------------------------------------------------------ drawing (as serving/static/index.html)
// Parts are painted per image pixel on `layer`, shown `scale` times larger (nearest) so small pictures
// stay legible; boxes and the skeleton are then drawn at screen resolution, as draw/draw.py does.
const layer = document.createElement("canvas"), lctx = layer.getContext("2d", {willReadFrequently: true});
const rgb = (c) => `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
function paint() {
  const r = state.result;
  if (!state.picture || !r) return;
  const w = r.width, h = r.height;
  const room = Math.max(view.parentElement.clientWidth - 32, 64);
  const s = state.scale = Math.max(1, Math.min(8, Math.floor(room / w)));
  if (layer.width !== w || layer.height !== h) { layer.width = w; layer.height = h; }
  lctx.drawImage(state.picture, 0, 0, w, h);
  const img = lctx.getImageData(0, 0, w, h), d = img.data, labels = state.labels;
  const fill = [];   // label -> [colour, alpha]
  for (let k = 1; k <= CFG.body_only; k++) {
    if (k < N && state.show[k]) fill[k] = [CFG.part_colours[k], CFG.part_alpha];
    else if (state.show.body) fill[k] = [CFG.body_tint, CFG.body_alpha];  // hidden part: plain body
  }
  for (let j = 0, o = 0; j < labels.length; j++, o += 4) {
    const p = labels[j] && fill[labels[j]];
    if (!p) continue;
    const c = p[0], a = p[1];
    d[o] = (1 - a) * d[o] + a * c[0];
    d[o + 1] = (1 - a) * d[o + 1] + a * c[1];
    d[o + 2] = (1 - a) * d[o + 2] + a * c[2];
  }
  if (state.show.body) {
    const o = state.outline, c = CFG.outline;
    for (let j = 0; j < o.length; j++) if (o[j]) { d[4 * j] = c[0]; d[4 * j + 1] = c[1]; d[4 * j + 2] = c[2]; }
  }
  lctx.putImageData(img, 0, 0);
  if (view.width !== w * s || view.height !== h * s) { view.width = w * s; view.height = h * s; }
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(layer, 0, 0, w * s, h * s);
  const lw = Math.max(1, Math.round(Math.max(w, h) * s / 360)), font = Math.max(11, 4 * lw + 7);
  if (state.show.boxes) {
    ctx.lineWidth = lw;
    ctx.font = `${font}px system-ui, sans-serif`;
    ctx.textBaseline = "top";
    for (const p of r.persons) {
      const [x1, y1, x2, y2] = p.box.map((v) => v * s);
      ctx.strokeStyle = rgb(CFG.box);
      ctx.strokeRect(x1 + lw / 2, y1 + lw / 2, Math.max(0, x2 - x1 - lw), Math.max(0, y2 - y1 - lw));
      const text = p.score.toFixed(2), tw = ctx.measureText(text).width + 4, th = font + 2;
      const ty = y1 - th >= 0 ? y1 - th : y1;
      ctx.fillStyle = "#000";
      ctx.fillRect(x1, ty, tw, th);
      ctx.fillStyle = rgb(CFG.box);
      ctx.fillText(text, x1 + 2, ty + 1);
    }
  }
  if (state.show.skeleton) {
    ctx.lineCap = "round";
    const rad = Math.max(2, 1.5 * lw);
    for (const p of r.persons) {
      const kp = p.keypoints.map((k) => [k[0] * s, k[1] * s]);
      const shown = p.keypoints.map((k) => k[2] >= CFG.kpt_thr);  // as Result.plot: joints above kpt_thr
      for (const [a, b, colour] of CFG.skeleton) {
        if (!shown[a] || !shown[b]) continue;
        for (const [width, style] of [[lw + 2, "#000"], [lw, rgb(colour)]]) {
          ctx.beginPath(); ctx.moveTo(kp[a][0], kp[a][1]); ctx.lineTo(kp[b][0], kp[b][1]);
          ctx.lineWidth = width; ctx.strokeStyle = style; ctx.stroke();
        }
      }
      kp.forEach((k, j) => {
        if (!shown[j]) return;
        ctx.beginPath(); ctx.arc(k[0], k[1], rad, 0, 2 * Math.PI);
        ctx.fillStyle = rgb(CFG.joint_colours[j]); ctx.fill();
        ctx.lineWidth = 1; ctx.strokeStyle = "#000"; ctx.stroke();
      });
    }
  }
}

// ------------------------------------------------------------------ people and latency
const label = (name) => name.replace(/_/g, " ");
function listPeople() {
  const r = state.result, body = $("people").tBodies[0];
  body.replaceChildren();
  r.persons.forEach((p, i) => {
    const tr = document.createElement("tr");
    const parts = PARTS.filter((k) => state.areas[i][k] > 0).map((k) => CFG.channels[k]);
    tr.dataset.score = String(p.score);
    tr.dataset.box = JSON.stringify(p.box);
    tr.dataset.parts = JSON.stringify(parts);
    tr.dataset.areas = JSON.stringify(Object.fromEntries(CFG.channels.map((c, k) => [c, state.areas[i][k]])));
    const cells = [String(i + 1), p.score.toFixed(3),
                   parts.length ? parts.map(label).join(", ") : "none",
                   p.box.map((v) => v.toFixed(0)).join(", ")];
    for (const text of cells) { const td = document.createElement("td"); td.textContent = text; tr.append(td); }
    body.append(tr);
  });
  const n = r.persons.length;
  $("people-caption").textContent = `${n} ${n === 1 ? "person" : "people"} in the ${r.width}×${r.height} picture`;
  view.setAttribute("aria-label", `Picture ${r.width}×${r.height} with ${n} ${n === 1 ? "person" : "people"} drawn`);
}
function showLatency() {
  const l = state.latency;
  let text = `Frame ${l.ms.toFixed(0)} ms (model ${l.model.toFixed(0)} ms, masks and drawing ${l.draw.toFixed(0)} ms; ` +
             `${state.threads} thread${state.threads === 1 ? "" : "s"})`;
  if (state.cam && state.frames > 1) text += `, ${(1000 * (state.frames - 1) / (performance.now() - state.cam.t1)).toFixed(1)} frames/s`;
  $("latency").textContent = text;
}

// ------------------------------------------------------------------ one picture
const grab = document.createElement("canvas"), gctx = grab.getContext("2d", {willReadFrequently: true});
/** Draws `source` (an ImageBitmap or the video) at its own size and returns its RGB uint8 pixels. */
function pixels(source, w, h) {
  grab.width = w; grab.height = h;
  gctx.drawImage(source, 0, 0);
  const rgba = gctx.getImageData(0, 0, w, h, {colorSpace: "srgb"}).data, out = new Uint8Array(w * h * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) { out[j] = rgba[i]; out[j + 1] = rgba[i + 1]; out[j + 2] = rgba[i + 2]; }
  return out;
}
async function run(picture, rgb, w, h) {
  const t0 = performance.now();
  const {det, model} = await detect(rgb, h, w);
  const t1 = performance.now();
  const a = analyse(det, h, w);
  Object.assign(state, {picture, input: {rgb, width: w, height: h}, raw: det}, a);
  paint();
  listPeople();
  state.latency = {ms: performance.now() - t0, model, draw: performance.now() - t1};
  showLatency();
}
/** Runs the last picture again and returns its latency (for benchmarks: bench/bench_browser.py). */
state.rerun = async () => {
  const i = state.input;
  await run(state.picture, i.rgb, i.width, i.height);
  return state.latency;
};
async function bitmap(blob) {
  const opts = {imageOrientation: "none", premultiplyAlpha: "none", colorSpaceConversion: "none"};
  try { return await createImageBitmap(blob, opts); } catch (e) { /* older browsers, or not an image */ }
  try { return await createImageBitmap(blob); } catch (e) { return null; }
}
async function sendFile(file) {
  if (!file || !session) return;
  stopCam();
  fail("");
  if (file.size > CFG.max_body_bytes) { fail(`${file.name} is ${(file.size / 1048576).toFixed(1)} MB; the limit is ${(CFG.max_body_bytes / 1048576).toFixed(0)} MB.`); return; }
  state.busy = true;
  say(`Finding people in ${file.name}…`);
  try {
    const picture = await bitmap(file);
    if (!picture) throw new Error(`${file.name} is not an image this browser can read`);
    const w = picture.width, h = picture.height;
    if (w * h > CFG.max_pixels) throw new Error(`${file.name} has ${w}×${h} pixels; the limit is ${(CFG.max_pixels / 1e6).toFixed(0)} megapixels.`);
    if (Math.min(w, h) < CFG.min_side) throw new Error(`${file.name} is ${w}×${h}; both sides must be at least ${CFG.min_side} pixels.`);
    await run(picture, pixels(picture, w, h), w, h);
    say(`Done: ${file.name}.`);
  } catch (e) {
    fail(e.message || String(e));
    say("No drawing.");
  } finally { state.busy = false; }
}

// ------------------------------------------------------------------ webcam: one frame at a time
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function startCam() {
  fail("");
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({video: {width: {ideal: 640}, height: {ideal: 480}}, audio: false});
  } catch (e) { fail(`Cannot open the webcam: ${e.message || e.name}`); return; }
  const cam = {stream, t1: 0};
  state.cam = cam;
  state.frames = 0;
  camButton.textContent = "Stop webcam";
  camButton.setAttribute("aria-pressed", "true");
  video.srcObject = stream;
  try { await video.play(); } catch (e) { /* autoplay rules: frames still arrive */ }
  say("Webcam on: one frame at a time, in this page.");
  while (state.cam === cam) {
    if (!video.videoWidth) { await sleep(50); continue; }
    const w = video.videoWidth, h = video.videoHeight;
    state.busy = true;
    try {
      const rgb = pixels(video, w, h), picture = await createImageBitmap(grab);
      await run(picture, rgb, w, h);
      state.frames += 1;
      if (state.frames === 1) cam.t1 = performance.now();
      showLatency();
      say(`Webcam on: ${state.frames} frame${state.frames === 1 ? "" : "s"} drawn.`);
    } catch (e) {
      fail(e.message || String(e));
      stopCam();
    } finally { state.busy = false; }
    await sleep(0);  // let the page breathe between frames
  }
}
function stopCam() {
  const cam = state.cam;
  if (!cam) return;
  state.cam = null;
  cam.stream.getTracks().forEach((t) => t.stop());
  video.srcObject = null;
  camButton.textContent = "Start webcam";
  camButton.setAttribute("aria-pressed", "false");
  say(`Webcam off after ${state.frames} frame${state.frames === 1 ? "" : "s"}.`);
}

// ------------------------------------------------------------------ controls
function addToggle(key, text, colour) {
  const lab = document.createElement("label"), box = document.createElement("input");
  box.type = "checkbox"; box.checked = true; box.dataset.key = key; box.id = `show-${key}`;
  state.show[key] = true;
  box.addEventListener("change", () => { state.show[key] = box.checked; paint(); });
  lab.append(box);
  if (colour) { const sw = document.createElement("span"); sw.className = "sw"; sw.style.background = rgb(colour); sw.setAttribute("aria-hidden", "true"); lab.append(sw); }
  lab.append(text);
  $("toggles").append(lab);
}
function controls() {
  PARTS.forEach((k) => addToggle(String(k), label(CFG.channels[k]), CFG.part_colours[k]));
  addToggle("body", "body outline");
  addToggle("skeleton", "skeleton");
  addToggle("boxes", "boxes and scores");
  $("limits").textContent = `Up to ${(CFG.max_body_bytes / 1048576).toFixed(0)} MB and ${(CFG.max_pixels / 1e6).toFixed(0)} megapixels.`;
  fileInput.addEventListener("change", (e) => sendFile(e.target.files[0]));
  const drop = $("drop");
  document.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  document.addEventListener("dragleave", (e) => { if (!e.relatedTarget) drop.classList.remove("over"); });
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const f = e.dataTransfer && e.dataTransfer.files[0];
    if (f) sendFile(f);
  });
  fileInput.disabled = false;
  if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) camButton.disabled = false;
  else {
    camButton.title = "The webcam needs https or http://localhost";
    $("limits").textContent += " Webcam: open this page over https or on localhost.";
  }
  camButton.addEventListener("click", () => (state.cam ? stopCam() : startCam()));
  let resizing = 0;
  window.addEventListener("resize", () => { clearTimeout(resizing); resizing = setTimeout(paint, 100); });
}

// A service worker (sw.js) keeps a copy of the page, runtime and model: the page then opens and runs offline.
// state.offline: true once that copy is complete.
async function keepOffline() {
  if (!("serviceWorker" in navigator) || params.has("nosw")) return;
  try {
    await navigator.serviceWorker.register("sw.js");
    await navigator.serviceWorker.ready;
    state.offline = Boolean(await caches.match(new URL(CFG.model, location.href).href));
  } catch (e) { /* no offline copy (e.g. a private window): the page still works online */ }
}

(async () => {
  try {
    await loadModel();
    controls();
    state.ready = true;
    say(`Model loaded in ${(state.loadMs / 1000).toFixed(1)} s. Pick an image or start the webcam.`);
    keepOffline();
  } catch (e) {
    fail(`The model did not load: ${e.message || e}`);
    say("No model.");
  }
})();
