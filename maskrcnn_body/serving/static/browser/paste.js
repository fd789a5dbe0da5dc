// Pasting box-frame masks into the image and labelling pixels: a port of maskrcnn_body/ops/paste.py
// (paste_crops, person_part_labels, crops_label_map), rule for rule. Frames: continuous pixel-edge image
// coordinates, pixel column i covers [i, i + 1) with centre i + 0.5; boxes x1, y1, x2, y2 with x2/y2 exclusive.
// Mask cell j of an M x M box-frame mask covers [j, j + 1) in units of (x2 - x1) / M pixels.
"use strict";

const f32 = Math.fround;

// Pixel indices i in [0, size) whose centre i + 0.5 lies in [lo, hi): [start, stop).
function pixelRange(lo, hi, size) {
  const start = Math.max(Math.ceil(lo - 0.5), 0);
  const stop = Math.min(Math.ceil(hi - 0.5), size);
  return [start, Math.max(stop, start)];
}

// For pixels start..stop-1 and m cells spanning [lo, hi): the two cells each pixel interpolates and
// their float32 weights (paste._interp_matrix: positions in float64, clamped to [0, m - 1], weights float32).
function interp(start, stop, lo, hi, m) {
  const n = stop - start, i0 = new Int32Array(n), i1 = new Int32Array(n), w0 = new Float32Array(n), w1 = new Float32Array(n);
  for (let k = 0; k < n; k++) {
    const s = Math.min(Math.max((start + k + 0.5 - lo) * (m / (hi - lo)) - 0.5, 0), m - 1);
    const a = Math.floor(s), frac = s - a, b = Math.min(a + 1, m - 1);
    i0[k] = a; i1[k] = b;
    if (a === b) { w0[k] = f32(1 - frac + frac); w1[k] = 0; } else { w0[k] = f32(1 - frac); w1[k] = f32(frac); }
  }
  return {i0, i1, w0, w1};
}

/**
 * One detection's box-frame probabilities pasted into the image, thresholded, parts clipped to the body.
 * @param {Float32Array} masks all detections' masks, (D, M, M, C) row-major (the ONNX output)
 * @param {number} r detection index; @param {number} m M; @param {number} c C (7)
 * @param {number[]} box x1, y1, x2, y2 in image pixels; @param {number} height @param {number} width
 * @param {number} threshold prob >= threshold is foreground (0.5)
 * @returns {{y0: number, x0: number, h: number, w: number, values: Uint8Array}} values (h, w, C) 0/1 over the box
 */
export function pasteCrop(masks, r, m, c, box, height, width, threshold = 0.5) {
  const [x1, y1, x2, y2] = box;
  const [ys, ye] = pixelRange(y1, y2, height), [xs, xe] = pixelRange(x1, x2, width);
  if (ye <= ys || xe <= xs || x2 <= x1 || y2 <= y1) return {y0: ys, x0: xs, h: 0, w: 0, values: new Uint8Array(0)};
  const h = ye - ys, w = xe - xs, wy = interp(ys, ye, y1, y2, m), wx = interp(xs, xe, x1, x2, m);
  const base = r * m * m * c;
  // x first (cols: (M, w, C)), then y, as paste._paste_probabilities; float32 products and sums
  const cols = new Float32Array(m * w * c);
  for (let my = 0; my < m; my++) {
    for (let x = 0; x < w; x++) {
      const a = base + (my * m + wx.i0[x]) * c, b = base + (my * m + wx.i1[x]) * c, wa = wx.w0[x], wb = wx.w1[x];
      const o = (my * w + x) * c;
      for (let k = 0; k < c; k++) cols[o + k] = f32(f32(masks[a + k] * wa) + f32(masks[b + k] * wb));
    }
  }
  const values = new Uint8Array(h * w * c);
  for (let y = 0; y < h; y++) {
    const a = wy.i0[y] * w * c, b = wy.i1[y] * w * c, wa = wy.w0[y], wb = wy.w1[y];
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * c, p = x * c;
      const body = f32(f32(cols[a + p] * wa) + f32(cols[b + p] * wb)) >= threshold;
      values[o] = body ? 1 : 0;
      if (!body) continue;
      for (let k = 1; k < c; k++) values[o + k] = f32(f32(cols[a + p + k] * wa) + f32(cols[b + p + k] * wb)) >= threshold ? 1 : 0;
    }
  }
  return {y0: ys, x0: xs, h, w, values};
}

/**
 * Image-wide part labels of people given as crops (paste.crops_label_map): a pixel belongs to the
 * highest-scoring person whose body covers it (ties: the earlier person); within that person the first
 * part of partPriority wins, else bodyOnly.
 * @returns {Uint8Array} (height * width) labels 0 background, 1..6 parts, bodyOnly (7) body without part
 */
export function labelMap(crops, scores, height, width, partPriority, bodyOnly, c = 7) {
  const labels = new Uint8Array(height * width);
  const order = crops.map((_, i) => i).sort((a, b) => (scores[b] - scores[a]) || (a - b));
  for (const r of order) {
    const p = crops[r];
    for (let y = 0; y < p.h; y++) {
      for (let x = 0; x < p.w; x++) {
        const j = (p.y0 + y) * width + p.x0 + x, o = (y * p.w + x) * c;
        if (labels[j] || !p.values[o]) continue;
        let lab = bodyOnly;
        for (const k of partPriority) if (p.values[o + k]) { lab = k; break; }
        labels[j] = lab;
      }
    }
  }
  return labels;
}

/** Pixels per channel of one crop (the people table's parts found). */
export function areas(crop, c = 7) {
  const out = new Array(c).fill(0);
  for (let o = 0; o < crop.values.length; o += c) for (let k = 0; k < c; k++) out[k] += crop.values[o + k];
  return out;
}

/** 1 on the image pixels at the border of any person's body (the drawing's outline). */
export function outline(crops, height, width, c = 7) {
  const out = new Uint8Array(height * width);
  for (const p of crops) {
    const at = (y, x) => (y >= 0 && x >= 0 && y < p.h && x < p.w ? p.values[(y * p.w + x) * c] : 0);
    for (let y = 0; y < p.h; y++) {
      for (let x = 0; x < p.w; x++) {
        if (!at(y, x)) continue;
        const iy = p.y0 + y, ix = p.x0 + x;
        if (iy === 0 || ix === 0 || iy === height - 1 || ix === width - 1 ||
            !at(y, x - 1) || !at(y, x + 1) || !at(y - 1, x) || !at(y + 1, x)) out[iy * width + ix] = 1;
      }
    }
  }
  return out;
}
