"""Identities across video frames: a greedy IoU tracker over boxes, with constant-velocity prediction
and keypoints as a tie-breaker.

Each track predicts where its box is now (last box + its smoothed per-frame motion, so two people
crossing each other keep their ids). Each frame's persons are matched to the tracks seen in the last
``max_age`` frames: pairs are taken by decreasing similarity (IoU with the predicted box, plus a small
bonus for keypoints that stayed close), a pair needs IoU >= ``iou_threshold``; unmatched persons start
new tracks (new ids), and tracks not seen for ``max_age`` frames end. Ids are small integers, never
reused. numpy only.
"""

from __future__ import annotations

import dataclasses
from typing import List, Sequence

import numpy as np


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes a (N, 4) and b (M, 4) (x1, y1, x2, y2) -> (N, M)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=-1)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=-1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def keypoint_similarity(a: np.ndarray, b: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(N, M) in [0, 1]: mean over joints of exp(-d^2 / (2 (0.1 s)^2)), d the distance between a's
    (N, 15, 3) and b's (M, 15, 3) joints, s the diagonal of a's box (N, 4)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d2 = np.sum((a[:, None, :, :2] - b[None, :, :, :2]) ** 2, axis=-1)  # (N, M, 15)
    s = np.hypot(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])[:, None, None]
    return np.mean(np.exp(-d2 / (2 * (0.1 * np.maximum(s, 1.0)) ** 2)), axis=-1)


@dataclasses.dataclass
class Track:
    id: int
    box: np.ndarray
    keypoints: np.ndarray
    last_frame: int
    velocity: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(4))
    hits: int = 1

    def predicted(self, frame: int):
        """(box, keypoints) moved by the track's motion to ``frame``."""
        shift = self.velocity * (frame - self.last_frame)
        centre_shift = np.array([(shift[0] + shift[2]) / 2, (shift[1] + shift[3]) / 2, 0.0])
        return self.box + shift, self.keypoints + centre_shift

    def observe(self, box: np.ndarray, keypoints: np.ndarray, frame: int, smoothing: float = 0.5) -> None:
        step = (box - self.box) / max(frame - self.last_frame, 1)
        self.velocity = step if self.hits == 1 else smoothing * self.velocity + (1 - smoothing) * step
        self.box, self.keypoints, self.last_frame, self.hits = box, keypoints, frame, self.hits + 1


class IouTracker:
    """Assigns ``track_id`` to the persons of consecutive frames (see the module docstring)."""

    def __init__(self, iou_threshold: float = 0.3, max_age: int = 15, keypoint_weight: float = 0.2):
        self.iou_threshold, self.max_age, self.keypoint_weight = iou_threshold, max_age, keypoint_weight
        self.tracks: List[Track] = []
        self.frame = -1
        self.next_id = 1

    def update(self, persons: Sequence) -> List[int]:
        """Sets ``person.track_id`` for this frame's persons (objects with ``box`` (4,) and
        ``keypoints`` (15, 3)); returns the ids in the same order."""
        self.frame += 1
        self.tracks = [t for t in self.tracks if self.frame - t.last_frame <= self.max_age]
        ids = [0] * len(persons)
        if persons and self.tracks:
            boxes = np.asarray([p.box for p in persons], np.float64)
            kps = np.asarray([p.keypoints for p in persons], np.float64)
            predicted = [t.predicted(self.frame) for t in self.tracks]
            t_boxes = np.asarray([b for b, _ in predicted], np.float64)
            t_kps = np.asarray([k for _, k in predicted], np.float64)
            iou = box_iou(boxes, t_boxes)
            score = iou + self.keypoint_weight * keypoint_similarity(kps, t_kps, boxes)
            score[iou < self.iou_threshold] = -1.0
            used_p, used_t = set(), set()
            for flat in np.argsort(-score, axis=None, kind="stable"):
                i, j = divmod(int(flat), score.shape[1])
                if score[i, j] < 0:
                    break
                if i in used_p or j in used_t:
                    continue
                used_p.add(i)
                used_t.add(j)
                ids[i] = self.tracks[j].id
        for i, p in enumerate(persons):
            if not ids[i]:
                ids[i] = self.next_id
                self.next_id += 1
                self.tracks.append(
                    Track(ids[i], np.asarray(p.box, np.float64), np.asarray(p.keypoints, np.float64), self.frame)
                )
            else:
                t = next(t for t in self.tracks if t.id == ids[i])
                t.observe(np.asarray(p.box, np.float64), np.asarray(p.keypoints, np.float64), self.frame)
            p.track_id = ids[i]
        return ids
