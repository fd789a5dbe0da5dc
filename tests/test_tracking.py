"""People keep their identity across video frames: the IoU tracker on moving, crossing boxes, and
``maskrcnn-body predict`` on a synthetic clip (annotated video + JSON Lines with track ids)."""

import json
import types

import numpy as np
import pytest

from maskrcnn_body.inference.api import Model
from maskrcnn_body.inference.tracking import IouTracker, box_iou


def _person(box):
    x1, y1, x2, y2 = box
    kps = np.zeros((15, 3), np.float32)
    kps[:, 0] = (x1 + x2) / 2
    kps[:, 1] = np.linspace(y1, y2, 15)
    return types.SimpleNamespace(box=np.asarray(box, np.float32), keypoints=kps, track_id=None)


def _walkers(t):
    """Two people walking towards each other and crossing (frames 6-10), a third arriving at frame 5,
    the first leaving after frame 14."""
    people = {}
    if t <= 14:
        people["a"] = [10 + 6 * t, 20, 50 + 6 * t, 120]
    people["b"] = [170 - 6 * t, 25, 210 - 6 * t, 125]
    if t >= 5:
        people["c"] = [60, 130, 90, 190]
    return people


def test_ids_stay_with_their_person_through_crossings_and_arrivals():
    tracker = IouTracker()
    seen = {}
    for t in range(20):
        truth = _walkers(t)
        names = sorted(truth)
        order = np.random.default_rng(t).permutation(len(names))  # detections come in any order
        persons = [_person(truth[names[i]]) for i in order]
        tracker.update(persons)
        for i, p in zip(order, persons):
            seen.setdefault(names[i], set()).add(p.track_id)
    assert all(len(ids) == 1 for ids in seen.values()), seen
    assert len(set.union(*seen.values())) == 3


def test_a_person_lost_for_longer_than_max_age_gets_a_new_id():
    tracker = IouTracker(max_age=2)
    first = [_person([0, 0, 10, 10])]
    tracker.update(first)
    for _ in range(3):
        tracker.update([])
    again = [_person([0, 0, 10, 10])]
    tracker.update(again)
    assert again[0].track_id != first[0].track_id
    assert box_iou(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10]]))[0, 0] == pytest.approx(50 / 150)


def _colour_boxes(frame):
    """The stand-in model: one detection per coloured rectangle (red, green) on a black frame."""
    out = {"boxes": [], "scores": [], "masks": [], "keypoints": []}
    for ch in (0, 1):
        ys, xs = np.nonzero((frame[..., ch] > 128) & (frame[..., 1 - ch] < 64))
        if len(ys) < 20:
            continue
        box = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        out["boxes"].append(box)
        out["scores"].append(0.9)
        out["masks"].append(np.ones((8, 8, 7), np.float32))
        out["keypoints"].append(_person(box).keypoints)
    return {
        k: np.asarray(v, np.float32).reshape((len(out["boxes"]),) + s)
        for (k, v), s in zip(out.items(), [(4,), (), (8, 8, 7), (15, 3)])
    }


def test_predict_on_a_video_writes_an_annotated_video_and_tracked_rows(tmp_path):
    cv2 = pytest.importorskip("cv2")
    path = str(tmp_path / "walk.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 10, (224, 160))
    for t in range(12):
        frame = np.zeros((160, 224, 3), np.uint8)
        x = 10 + 12 * t
        frame[30:130, x : x + 40, 2] = 255  # red (BGR), walking right
        frame[60:150, 170 - 12 * t : 210 - 12 * t, 1] = 255  # green, walking left, crossing it
        writer.write(frame)
    writer.release()
    from maskrcnn_body.serving.infer import run

    model = Model(lambda images: [_colour_boxes(im) for im in images], name="colours", backend="stand-in")
    summary = run(model, [path], str(tmp_path / "out"), batch_size=4, progress=False)
    (video,) = summary["videos"]
    assert video["frames"] == 12 and video["tracks"] == 2
    rows = [json.loads(line) for line in open(video["jsonl"])]
    assert [r["frame"] for r in rows] == list(range(12))
    ids = {"red": set(), "green": set()}
    for r in rows:
        assert len(r["persons"]) == 2
        for p in r["persons"]:
            ids["red" if p["box"][1] < 45 else "green"].add(p["track_id"])  # red at y 30, green at y 60
    assert len(ids["red"]) == 1 and len(ids["green"]) == 1 and ids["red"] != ids["green"], ids
    cap = cv2.VideoCapture(video["video"])
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    cap.release()
