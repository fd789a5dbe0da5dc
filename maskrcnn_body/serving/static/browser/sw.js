// Service worker of the in-browser page: keeps a copy of the page, the runtime and the model so that the page
// opens and runs with no network once it has been loaded. Network first (a new export is picked up as soon as
// the server is reachable), the copy when the network fails. Same-origin GET requests only.
"use strict";
const CACHE = "maskrcnn-body-web";
const FILES = ["./", "index.html", "style.css", "app.js", "paste.js", "config.json", "model.onnx",
               "runtime/ort.wasm.min.mjs", "runtime/ort-wasm-simd-threaded.mjs", "runtime/ort-wasm-simd-threaded.wasm"];

self.addEventListener("install", (e) => {
  e.waitUntil(caches.open(CACHE).then((c) => c.addAll(FILES)).then(() => self.skipWaiting()));
});
self.addEventListener("activate", (e) => e.waitUntil(self.clients.claim()));
self.addEventListener("fetch", (e) => {
  const req = e.request;
  if (req.method !== "GET" || new URL(req.url).origin !== self.location.origin) return;
  e.respondWith((async () => {
    try {
      const resp = await fetch(req);
      if (resp.ok && resp.status === 200) {
        const copy = resp.clone();
        e.waitUntil(caches.open(CACHE).then((c) => c.put(req, copy)));
      }
      return resp;
    } catch (err) {
      const hit = await caches.match(req, {ignoreSearch: true});
      if (hit) return hit;
      throw err;
    }
  })());
});
