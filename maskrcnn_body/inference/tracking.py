"""Identities across video frames: a ByteTrack-style tracker over boxes, with optimal assignment,
a second pass for low-score detections, confirmation of new tracks and a lost-track buffer.

Each track predicts where its box is now (last box + its smoothed per-frame motion, so two people
crossing each other keep their ids, and a person hidden for a while is looked for where they
walked to). Each frame (:meth:`Tracker.update`), with ``cfg`` a :class:`TrackerConfig`:

1. detections scoring >= ``high_score`` are matched to the confirmed tracks (those seen in the
   previous frame and the lost ones) by optimal assignment (``scipy.optimize.linear_sum_assignment``)
   of the similarity IoU(predicted box, box) + ``keypoint_weight`` x keypoint similarity; a pair
   needs IoU >= ``match_iou``;
2. the confirmed tracks seen in the previous frame that found no match take the detections scoring
   in [``low_score``, ``high_score``) (a person fading behind someone scores low: ByteTrack's
   second pass), with IoU >= ``low_match_iou``;
3. tentative tracks (new, not yet confirmed) take the remaining high-score detections; a tentative
   track that misses a frame is dropped, one matched in ``min_hits`` consecutive frames is
   confirmed and gets its id (ids are 1, 2, ... in order of confirmation, never reused, so a false
   detection that flickers for one frame uses no id);
4. remaining detections scoring >= ``new_track_score`` start tentative tracks (confirmed at once
   when ``min_hits <= 1`` and in the first frame, as ByteTrack);
5. a confirmed track without a match is lost; it is kept ``max_lost`` frames (the buffer) and
   can be matched again in step 1, then forgotten.

Detections get ``track_id`` = their confirmed track's id, else None (tentative, or a low-score
detection that extended no track). ``assignment="greedy"`` takes pairs by decreasing similarity
instead of the optimal assignment (the tracker before ByteTrack: docs/TRACKING.md compares them).
numpy + scipy.
"""

from __future__ import annotations

import dataclasses
from typing import List, Optional, Sequence, Tuple

import numpy as np

from maskrcnn_body import constants
from maskrcnn_body.errors import InvalidArgument
from maskrcnn_body.evaluation.matching import box_iou  # the one numpy box IoU

ASSIGNMENTS = ("optimal", "greedy")


@dataclasses.dataclass(frozen=True)
class TrackerConfig:
    """Settings of :class:`Tracker` (module docstring; the defaults are ByteTrack's, the buffer in
    frames of the video as given).

    Attributes:
      high_score: detections at or above it take part in the first pass and may start tracks.
      low_score: detections in [low_score, high_score) only extend tracks (second pass); below: ignored.
      new_track_score: an unmatched detection starts a track at or above this score.
      match_iou: least IoU (with the predicted box) of a first-pass or tentative pair.
      low_match_iou: least IoU of a second-pass (low-score) pair.
      min_hits: frames in a row a new track must be matched before it is confirmed and gets an id.
      max_lost: frames a confirmed track is kept after it was last matched (the lost-track buffer).
      keypoint_weight: weight of the keypoint similarity added to the IoU.
      assignment: ``optimal`` (Hungarian) or ``greedy`` (by decreasing similarity).
    """

    high_score: float = 0.5
    low_score: float = 0.1
    new_track_score: float = 0.6
    match_iou: float = 0.2
    low_match_iou: float = 0.5
    min_hits: int = 2
    max_lost: int = 30
    keypoint_weight: float = 1.0
    assignment: str = "optimal"

    def __post_init__(self):
        if not 0.0 <= self.low_score <= self.high_score <= 1.0:
            raise InvalidArgument(
                f"tracker: need 0 <= low_score <= high_score <= 1, got low_score={self.low_score}, "
                f"high_score={self.high_score}"
            )
        for name in ("match_iou", "low_match_iou"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise InvalidArgument(f"tracker: {name} must be in (0, 1], got {getattr(self, name)}")
        if self.min_hits < 1 or self.max_lost < 0:
            raise InvalidArgument(
                f"tracker: need min_hits >= 1 and max_lost >= 0, got {self.min_hits}, {self.max_lost}"
            )
        if self.assignment not in ASSIGNMENTS:
            raise InvalidArgument(f"tracker: assignment must be one of {ASSIGNMENTS}, got {self.assignment!r}")


def keypoint_similarity(a: np.ndarray, b: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(N, M) in [0, 1]: mean over joints of exp(-d^2 / (2 (0.1 s)^2)), d the distance between a's
    (N, 15, 3) and b's (M, 15, 3) joints, s the diagonal of a's box (N, 4)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d2 = np.sum((a[:, None, :, :2] - b[None, :, :, :2]) ** 2, axis=-1)  # (N, M, 15)
    s = np.hypot(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])[:, None, None]
    return np.mean(np.exp(-d2 / (2 * (0.1 * np.maximum(s, 1.0)) ** 2)), axis=-1)


def assign(similarity: np.ndarray, valid: np.ndarray, method: str = "optimal") -> List[Tuple[int, int]]:
    """Pairs (row, column) maximising the total ``similarity`` (N, M) over the ``valid`` (N, M) pairs
    (``optimal``: ``scipy.optimize.linear_sum_assignment``), or taken by decreasing similarity
    (``greedy``); each row and column at most once."""
    if similarity.size == 0 or not valid.any():
        return []
    if method == "greedy":
        pairs, used_r, used_c = [], set(), set()
        masked = np.where(valid, similarity, -np.inf)
        for flat in np.argsort(-masked, axis=None, kind="stable"):
            i, j = divmod(int(flat), masked.shape[1])
            if not np.isfinite(masked[i, j]):
                break
            if i not in used_r and j not in used_c:
                used_r.add(i)
                used_c.add(j)
                pairs.append((i, j))
        return pairs
    from maskrcnn_body.errors import optional_import

    linear_sum_assignment = optional_import(
        "scipy.optimize", "video", "the tracker's optimal assignment (or TrackerConfig(assignment='greedy'))"
    ).linear_sum_assignment
    # an invalid pair costs 0, as leaving both unmatched does (valid similarities are > 0): the
    # assignment maximises the total similarity, not the number of pairs
    rows, cols = linear_sum_assignment(np.where(valid, -np.maximum(similarity, 1e-9), 0.0))
    return [(int(i), int(j)) for i, j in zip(rows, cols) if valid[i, j]]


@dataclasses.dataclass
class Track:
    """One identity: its last matched box (4,) and keypoints (15, 3), motion, and state.

    ``id`` is 0 while tentative (the id is given on confirmation). The motion (a smoothed per-frame
    step of the box edges) learns only from high-score matches: a low score means a partly hidden
    person, whose visible box shrinks and shifts without the person moving."""

    box: np.ndarray
    keypoints: np.ndarray
    last_frame: int
    id: int = 0
    velocity: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(4))
    hits: int = 1
    anchor: Optional[Tuple[np.ndarray, int]] = None  # (box, frame) of the last high-score match

    def __post_init__(self):
        if self.anchor is None:
            self.anchor = (self.box, self.last_frame)

    @property
    def confirmed(self) -> bool:
        return self.id > 0

    def predicted(self, frame: int):
        """(box, keypoints) moved by the track's motion to ``frame``."""
        shift = self.velocity * (frame - self.last_frame)
        centre_shift = np.array([(shift[0] + shift[2]) / 2, (shift[1] + shift[3]) / 2, 0.0])
        return self.box + shift, self.keypoints + centre_shift

    def observe(self, box: np.ndarray, keypoints: np.ndarray, frame: int, high: bool, smoothing: float = 0.5) -> None:
        """A match in ``frame``; ``high``: a high-score detection (updates the motion)."""
        if high:
            assert self.anchor is not None  # set in __post_init__
            anchor_box, anchor_frame = self.anchor
            step = (box - anchor_box) / max(frame - anchor_frame, 1)
            first = not self.velocity.any() and self.hits == 1
            self.velocity = step if first else smoothing * self.velocity + (1 - smoothing) * step
            self.anchor = (box, frame)
        self.box, self.keypoints, self.last_frame, self.hits = box, keypoints, frame, self.hits + 1


class Tracker:
    """Sets ``track_id`` on the persons of consecutive frames (the module docstring).

    Args:
      config: a :class:`TrackerConfig` (default: its defaults); or give its fields as keywords.
    """

    def __init__(self, config: Optional[TrackerConfig] = None, **settings):
        self.cfg = dataclasses.replace(config or TrackerConfig(), **settings)
        self.tracks: List[Track] = []
        self.frame = -1
        self.next_id = 1

    def _match(
        self, tracks: Sequence[Track], dets: Sequence[int], boxes, kps, min_iou: float
    ) -> List[Tuple[Track, int]]:
        if not tracks or not dets:
            return []
        predicted = [t.predicted(self.frame) for t in tracks]
        t_boxes = np.asarray([b for b, _ in predicted], np.float64)
        t_kps = np.asarray([k for _, k in predicted], np.float64)
        d_boxes, d_kps = boxes[list(dets)], kps[list(dets)]
        iou = box_iou(d_boxes, t_boxes)
        sim = iou + self.cfg.keypoint_weight * keypoint_similarity(d_kps, t_kps, d_boxes)
        return [(tracks[j], dets[i]) for i, j in assign(sim, iou >= min_iou, self.cfg.assignment)]

    def update(self, persons: Sequence) -> List[Optional[int]]:
        """Sets ``person.track_id`` for this frame's persons (objects with ``box`` (4,), ``keypoints``
        (15, 3) and ``score``; a missing ``score`` counts as 1); returns the ids in the same order
        (None: no confirmed track)."""
        cfg = self.cfg
        self.frame += 1
        self.tracks = [t for t in self.tracks if self.frame - t.last_frame <= cfg.max_lost + 1]
        n = len(persons)
        boxes = np.asarray([p.box for p in persons], np.float64).reshape(n, 4)
        kps = np.asarray([p.keypoints for p in persons], np.float64).reshape(n, constants.NUM_KEYPOINTS, 3)
        scores = np.asarray([float(getattr(p, "score", 1.0)) for p in persons], np.float64)
        high = [i for i in range(n) if scores[i] >= cfg.high_score]
        low = [i for i in range(n) if cfg.low_score <= scores[i] < cfg.high_score]
        confirmed = [t for t in self.tracks if t.confirmed]
        tentative = [t for t in self.tracks if not t.confirmed]

        matched: List[Tuple[Track, int]] = self._match(confirmed, high, boxes, kps, cfg.match_iou)
        taken = {i for _, i in matched}
        done = {id(t) for t, _ in matched}
        recent = [t for t in confirmed if id(t) not in done and t.last_frame == self.frame - 1]
        second = self._match(recent, low, boxes, kps, cfg.low_match_iou)
        rest = [i for i in high if i not in taken]
        third = self._match(tentative, rest, boxes, kps, cfg.match_iou)
        matched += second + third
        taken |= {i for _, i in second + third}
        kept_tentative = {id(t) for t, _ in third}
        self.tracks = [t for t in self.tracks if t.confirmed or id(t) in kept_tentative]

        ids: List[Optional[int]] = [None] * n
        for t, i in matched:
            t.observe(boxes[i], kps[i], self.frame, high=scores[i] >= cfg.high_score)
            if not t.confirmed and t.hits >= cfg.min_hits:
                t.id, self.next_id = self.next_id, self.next_id + 1
            ids[i] = t.id or None
        for i in rest:
            if i in taken or scores[i] < cfg.new_track_score:
                continue
            t = Track(boxes[i].copy(), kps[i].copy(), self.frame)
            if cfg.min_hits <= 1 or self.frame == 0:
                t.id, self.next_id = self.next_id, self.next_id + 1
                ids[i] = t.id
            self.tracks.append(t)
        for p, track_id in zip(persons, ids):
            p.track_id = track_id
        return ids
