"""A synthetic multi-person clip with known identities, and a simulated detector, to measure trackers.

:func:`render_clip` draws the people of :mod:`maskrcnn_body.data.synthetic` (same shapes, colours and
background) walking across a fixed scene: people enter and leave at the borders, walk both ways at
different depths so they cross and hide each other, and a pillar in the foreground hides them
completely for a while. Each person keeps their pose and clothes (the figure glides); identities,
visible boxes and visible fractions are exact.

:func:`simulate_detections` turns the ground truth into what a detector gives, deterministically
from a seed: boxes jittered by a few percent of their size, scores that drop with occlusion (a
person half hidden scores ~0.55, a quarter visible ~0.4: ByteTrack's second pass territory), missed
detections (more when occluded), and a few false positives. A tracker's quality (IDF1, ID switches,
:mod:`maskrcnn_body.evaluation.mot`) can then be measured without a trained model
(``bench/tracking.py``, docs/TRACKING.md). numpy + PIL only.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional

import numpy as np

from maskrcnn_body import constants
from maskrcnn_body.data import synthetic

MIN_VISIBLE_PIXELS = 30
"""A person with fewer visible pixels in a frame is not in that frame's ground truth."""


@dataclasses.dataclass
class Clip:
    """Frames and per-frame ground truth; list index = frame.

    Attributes:
      frames: uint8 (T, H, W, 3) RGB, or None when rendered with ``frames=False``.
      ids: per frame, int64 (N,) identities (1, 2, ...) of the people visible in it.
      boxes: per frame, float32 (N, 4) x1, y1, x2, y2 tight on each person's visible pixels.
      visible: per frame, float32 (N,) fraction of each person's pixels inside the image that is not
        hidden (by a person in front or the pillar).
      keypoints: per frame, float32 (N, 15, 3) x, y, v (2 visible, 1 hidden).
      fps: frames per second.  height, width: frame size.
    """

    frames: Optional[np.ndarray]
    ids: List[np.ndarray]
    boxes: List[np.ndarray]
    visible: List[np.ndarray]
    keypoints: List[np.ndarray]
    fps: float
    height: int
    width: int

    def __len__(self) -> int:
        return len(self.ids)


def render_clip(
    seed: int = 0,
    num_frames: int = 150,
    height: int = 240,
    width: int = 320,
    num_people: int = 6,
    fps: float = 25.0,
    pillar: bool = True,
    frames: bool = True,
) -> Clip:
    """A clip of ``num_people`` people walking across (module docstring); a pure function of its
    arguments. People start spread over the first half of the clip, cross the image in 60-140% of
    ``num_frames`` (so some leave early, some are still walking at the end), each in their own lane
    depth (the nearer ones larger and lower in the image) and hide each other where they cross."""
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(7,)))
    background = np.asarray(synthetic._background(rng, height, width))
    people: List[Dict[str, Any]] = []
    for index in range(num_people):
        depth = rng.uniform(0, 1)  # 0 far .. 1 near
        h = (0.35 + 0.4 * depth) * height
        direction = 1 if rng.random() < 0.5 else -1
        duration = rng.uniform(0.6, 1.4) * num_frames
        start = rng.uniform(0, 0.5) * num_frames
        span = width + 0.6 * h
        people.append(
            dict(
                id=index + 1,
                depth=depth,
                h=h,
                y=0.55 * height + 0.35 * depth * height - 0.1 * h + rng.uniform(-0.04, 0.04) * height,
                x0=-0.3 * h if direction > 0 else width + 0.3 * h,
                vx=direction * span / duration,
                start=start,
                front=bool(rng.random() < 0.5),
                seed=int(rng.integers(2**31)),
            )
        )
    order = sorted(people, key=lambda p: p["depth"])  # far first: the near ones hide them
    px0 = int(rng.uniform(0.35, 0.6) * width)
    pillar_box = (px0, 0, px0 + int(0.07 * width) + 4, height) if pillar else None
    pillar_colour = synthetic._rand_colour(rng, (0.1, 0.6), (0.2, 0.7))

    clip = Clip(
        np.zeros((num_frames, height, width, 3), np.uint8) if frames else None, [], [], [], [], fps, height, width
    )
    for t in range(num_frames):
        img = background.copy()
        owner = np.full((height, width), -1, np.int32)
        drawn = []
        for p in order:
            if t < p["start"]:
                continue
            pelvis = np.array([p["x0"] + p["vx"] * (t - p["start"]), p["y"]])
            canvas, kps = synthetic._draw_person(np.random.default_rng(p["seed"]), p["h"], pelvis, p["front"])
            lab = np.asarray(canvas.label)
            ox, oy = int(canvas.origin[0]), int(canvas.origin[1])
            x0, y0 = max(ox, 0), max(oy, 0)
            x1, y1 = min(ox + lab.shape[1], width), min(oy + lab.shape[0], height)
            if x1 <= x0 or y1 <= y0:
                continue
            mask = lab[y0 - oy : y1 - oy, x0 - ox : x1 - ox] > 0
            total = int(np.count_nonzero(mask))  # in the image: a person cut by the border is not "hidden"
            if total == 0:
                continue
            reg = (slice(y0, y1), slice(x0, x1))
            img[reg][mask] = np.asarray(canvas.colour)[y0 - oy : y1 - oy, x0 - ox : x1 - ox][mask]
            owner[reg][mask] = p["id"]
            drawn.append((p["id"], total, kps))
        if pillar_box is not None:
            a, b, c, d = pillar_box
            img[b:d, a:c] = np.clip(pillar_colour, 0, 255).astype(np.uint8)
            img[b:d, a : a + 2] = img[b:d, c - 2 : c] = (np.clip(pillar_colour, 0, 255) * 0.55).astype(np.uint8)
            owner[b:d, a:c] = -1
        ids, boxes, vis, kp = [], [], [], []
        for pid, total, kps in sorted(drawn):
            ys, xs = np.nonzero(owner == pid)
            if len(ys) < MIN_VISIBLE_PIXELS:
                continue
            k = kps.copy()
            inside = (k[:, 0] >= 0) & (k[:, 0] < width) & (k[:, 1] >= 0) & (k[:, 1] < height)
            cx = np.clip(k[:, 0].astype(int), 0, width - 1)
            cy = np.clip(k[:, 1].astype(int), 0, height - 1)
            k[:, 2] = np.where(owner[cy, cx] == pid, constants.KP_VISIBLE, constants.KP_OCCLUDED)
            k[~inside] = 0
            ids.append(pid)
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            vis.append(len(ys) / total)
            kp.append(k)
        clip.ids.append(np.asarray(ids, np.int64))
        clip.boxes.append(np.asarray(boxes, np.float32).reshape(-1, 4))
        clip.visible.append(np.asarray(vis, np.float32))
        clip.keypoints.append(np.asarray(kp, np.float32).reshape(-1, constants.NUM_KEYPOINTS, 3))
        if clip.frames is not None:
            clip.frames[t] = img
    return clip


@dataclasses.dataclass
class Detection:
    """What the simulated detector reports: like a ``Result`` person (``box`` (4,), ``score``,
    ``keypoints`` (15, 3)); ``truth`` is the ground-truth id (0 for a false positive), for checks only."""

    box: np.ndarray
    score: float
    keypoints: np.ndarray
    truth: int
    track_id: Optional[int] = None


def simulate_detections(
    clip: Clip,
    seed: int = 0,
    box_jitter: float = 0.04,
    score_noise: float = 0.06,
    miss_rate: float = 0.03,
    false_positives: float = 0.1,
) -> List[List[Detection]]:
    """Per frame, the detections a detector would give on ``clip`` (module docstring), shuffled.

    A person with visible fraction v scores ``0.95 - 0.75 (1 - v)`` plus N(0, ``score_noise``), is
    missed with probability ``miss_rate + 0.6 (1 - v)^2`` (always when v < 0.15), and gets a box
    jittered by N(0, ``box_jitter`` x its width / height) per edge; keypoints move with the box, with
    noise, and stay inside it (as a keypoint head's, so hidden joints are not known).
    ``false_positives``: the mean number per frame of boxes of random size and place scoring
    U(0.1, 0.6)."""
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(8,)))
    height, width = clip.height, clip.width
    out: List[List[Detection]] = []
    for ids, boxes, vis, kps in zip(clip.ids, clip.boxes, clip.visible, clip.keypoints):
        dets = []
        for pid, box, v, kp in zip(ids, boxes, vis, kps):
            hidden = 1.0 - float(v)
            if v < 0.15 or rng.random() < miss_rate + 0.6 * hidden**2:
                continue
            bw, bh = box[2] - box[0], box[3] - box[1]
            noisy = box + rng.normal(0, box_jitter, 4) * np.array([bw, bh, bw, bh])
            shift = np.array([(noisy[0] + noisy[2] - box[0] - box[2]) / 2, (noisy[1] + noisy[3] - box[1] - box[3]) / 2])
            k = kp.copy()
            k[:, :2] += shift + rng.normal(0, 0.02 * max(bw, bh), (constants.NUM_KEYPOINTS, 2))
            k[:, :2] = np.clip(k[:, :2], noisy[:2], noisy[2:])  # a keypoint head predicts inside the box
            k[:, 2] = 0.5
            score = float(np.clip(0.95 - 0.75 * hidden + rng.normal(0, score_noise), 0.01, 0.99))
            dets.append(Detection(noisy.astype(np.float32), score, k.astype(np.float32), int(pid)))
        for _ in range(rng.poisson(false_positives)):
            bw, bh = rng.uniform(0.08, 0.25) * width, rng.uniform(0.2, 0.5) * height
            x, y = rng.uniform(0, width - bw), rng.uniform(0, height - bh)
            box = np.array([x, y, x + bw, y + bh], np.float32)
            k = np.zeros((constants.NUM_KEYPOINTS, 3), np.float32)
            k[:, 0] = rng.uniform(x, x + bw, constants.NUM_KEYPOINTS)
            k[:, 1] = rng.uniform(y, y + bh, constants.NUM_KEYPOINTS)
            dets.append(Detection(box, float(rng.uniform(0.1, 0.6)), k, 0))
        out.append([dets[i] for i in rng.permutation(len(dets))])
    return out
