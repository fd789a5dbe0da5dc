"""People keep their identity across video frames: the tracker (optimal assignment, low-score second
pass, confirmation, lost buffer) on moving, crossing boxes and on the synthetic clip with simulated
detections, the tracking metrics (IDF1, ID switches) on hand-counted cases, and ``maskrcnn-body
predict`` on a video (H.264 video at the source's size and rate, JSON Lines and COCO results with
track ids)."""

import fractions
import json
import types

import numpy as np
import pytest

from maskrcnn_body.data.synthetic_video import render_clip, simulate_detections
from maskrcnn_body.evaluation.mot import mot_metrics
from maskrcnn_body.inference.api import Model
from maskrcnn_body.inference.tracking import Tracker, TrackerConfig, assign, box_iou


def _person(box, score=0.9):
    x1, y1, x2, y2 = box
    kps = np.zeros((15, 3), np.float32)
    kps[:, 0] = (x1 + x2) / 2
    kps[:, 1] = np.linspace(y1, y2, 15)
    return types.SimpleNamespace(box=np.asarray(box, np.float32), keypoints=kps, score=score, track_id=None)


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


@pytest.mark.parametrize("assignment", ["optimal", "greedy"])
def test_ids_stay_with_their_person_through_crossings_and_arrivals(assignment):
    tracker = Tracker(assignment=assignment)
    seen = {}
    for t in range(20):
        truth = _walkers(t)
        names = sorted(truth)
        order = np.random.default_rng(t).permutation(len(names))  # detections come in any order
        persons = [_person(truth[names[i]]) for i in order]
        tracker.update(persons)
        for i, p in zip(order, persons):
            seen.setdefault(names[i], []).append(p.track_id)
    # c arrives at frame 5: tentative there (no id), confirmed from its second frame on
    assert seen["c"][0] is None
    seen["c"] = seen["c"][1:]
    assert all(len(set(ids)) == 1 and None not in ids for ids in seen.values()), seen
    assert sorted({ids[0] for ids in seen.values()}) == [1, 2, 3]


def test_a_person_lost_for_longer_than_max_lost_gets_a_new_id_and_within_it_keeps_it():
    for gap, same in ((2, True), (3, False)):
        tracker = Tracker(max_lost=2)
        first = [_person([0, 0, 10, 10])]
        tracker.update(first)
        for _ in range(gap):
            tracker.update([])
        again = [_person([0, 0, 10, 10])]
        for _ in range(2):  # a new track needs two frames to be confirmed
            tracker.update(again)
        assert (again[0].track_id == first[0].track_id) == same, gap
    assert box_iou(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10]]))[0, 0] == pytest.approx(50 / 150)


def test_low_score_detections_extend_tracks_but_never_start_them():
    tracker = Tracker()
    a = [_person([0, 0, 20, 40], 0.9)]
    tracker.update(a)
    faded = [_person([1, 0, 21, 40], 0.3), _person([60, 0, 80, 40], 0.3)]  # a, half hidden; a low stranger
    tracker.update(faded)
    assert faded[0].track_id == a[0].track_id and faded[1].track_id is None
    tracker.update([_person([2, 0, 22, 40], 0.9), _person([60, 0, 80, 40], 0.3)])
    assert [t.id for t in tracker.tracks] == [1]  # the stranger never became a track
    # without the second pass the half-hidden person loses the track for that frame
    plain = Tracker(low_score=0.5)
    plain.update([_person([0, 0, 20, 40], 0.9)])
    faded = [_person([1, 0, 21, 40], 0.3)]
    plain.update(faded)
    assert faded[0].track_id is None


def test_a_one_frame_false_detection_uses_no_id():
    tracker = Tracker()
    tracker.update([_person([0, 0, 20, 40])])
    flicker = [_person([0, 0, 20, 40]), _person([100, 0, 120, 40])]
    tracker.update(flicker)
    assert flicker[1].track_id is None
    later = [_person([0, 0, 20, 40]), _person([200, 0, 220, 40])]
    tracker.update(later)
    tracker.update(later)
    assert later[1].track_id == 2  # the next real newcomer gets the next id


def test_optimal_assignment_maximises_total_similarity_where_greedy_does_not():
    sim = np.array([[0.9, 0.8], [0.85, 0.1]])
    valid = np.ones_like(sim, bool)
    assert sorted(assign(sim, valid, "greedy")) == [(0, 0), (1, 1)]  # 1.0
    assert sorted(assign(sim, valid, "optimal")) == [(0, 1), (1, 0)]  # 1.65
    # an invalid pair is not taken to make more pairs: one strong pair beats two with an invalid one
    valid = np.array([[True, True], [True, False]])
    sim = np.array([[0.9, 0.05], [0.05, 0.0]])
    assert assign(sim, valid, "optimal") == [(0, 0)]


def test_tracker_settings_are_checked():
    with pytest.raises(ValueError, match="low_score <= high_score"):
        TrackerConfig(low_score=0.6, high_score=0.5)
    with pytest.raises(ValueError, match="assignment must be one of"):
        TrackerConfig(assignment="hungry")


def _boxes(*xs):
    return np.array([[x, 0, x + 10, 10] for x in xs], np.float32).reshape(-1, 4)


def test_mot_metrics_count_identity_switches_and_idf1_by_hand():
    # two people at x=0 and x=50 for 4 frames; the tracker swaps their ids at frame 2 (2 switches),
    # and misses person 2 in frame 3
    gt = [(np.array([1, 2]), _boxes(0, 50))] * 4
    hyp = [
        (np.array([7, 8]), _boxes(0, 50)),
        (np.array([7, 8]), _boxes(0, 50)),
        (np.array([8, 7]), _boxes(0, 50)),
        (np.array([8]), _boxes(0)),
    ]
    m = mot_metrics(gt, hyp)
    assert m["id_switches"] == 2 and m["fn"] == 1 and m["fp"] == 0
    # best one-to-one: 1<->7 (frames 0,1) and 2<->8 (frames 0,1) -> IDTP 4 (or the swapped pairing: 3)
    assert m["idtp"] == 4 and m["idfn"] == 8 - 4 and m["idfp"] == 7 - 4
    assert m["idf1"] == pytest.approx(2 * 4 / (8 + 7))
    assert m["mota"] == pytest.approx(1 - (1 + 0 + 2) / 8)
    # a match needs IoU >= 0.5: a box 6 px off (IoU 4/16) is a miss and a false positive
    m = mot_metrics([(np.array([1]), _boxes(0))], [(np.array([1]), _boxes(6))])
    assert (m["matches"], m["fp"], m["fn"], m["idf1"]) == (0, 1, 1, 0.0)
    # perfect tracking, with an id reappearing after a gap, has no switches
    gt = [(np.array([1]), _boxes(0)), (np.array([], int), _boxes()), (np.array([1]), _boxes(2))]
    m = mot_metrics(gt, gt)
    assert (m["idf1"], m["id_switches"], m["mota"]) == (1.0, 0, 1.0)


def test_the_synthetic_clip_is_deterministic_with_crossings_and_occlusions():
    a = render_clip(seed=3, num_frames=40, height=120, width=160, num_people=4)
    b = render_clip(seed=3, num_frames=40, height=120, width=160, num_people=4)
    np.testing.assert_array_equal(a.frames, b.frames)
    assert a.frames.shape == (40, 120, 160, 3)
    vis = np.concatenate(a.visible)
    assert (vis < 0.6).any() and (vis > 0.95).any()  # people hide each other (or behind the pillar)
    dets = simulate_detections(a, seed=1)
    assert [len(d) for d in dets] == [len(d) for d in simulate_detections(a, seed=1)]
    hidden = [d.score for f, v in zip(dets, a.visible) for d in f if d.truth and v.size]
    assert min(hidden) < 0.5 < max(hidden)


def _track_clip(make, seeds):
    totals = {"idtp": 0, "num_gt": 0, "num_hyp": 0, "id_switches": 0}
    for seed in seeds:
        clip = render_clip(seed, num_frames=120, height=160, width=220, frames=False)
        tracker, hyp = make(), []
        for dets in simulate_detections(clip, seed):
            tracker.update(dets)
            kept = [d for d in dets if d.track_id is not None]
            hyp.append((np.array([d.track_id for d in kept]), np.array([d.box for d in kept]).reshape(-1, 4)))
        m = mot_metrics(list(zip(clip.ids, clip.boxes)), hyp)
        for k in totals:
            totals[k] += m[k]
    idf1 = 2 * totals["idtp"] / (totals["num_gt"] + totals["num_hyp"])
    return idf1, totals["id_switches"]


def test_bytetrack_keeps_identities_better_than_greedy_iou_on_the_synthetic_clip():
    """The defaults against the settings of the tracker before ByteTrack (greedy, no second pass, no
    confirmation, 15-frame buffer, any detection >= 0.5 starts a track, keypoint weight 0.2)."""
    before = dict(
        assignment="greedy",
        low_score=0.5,
        new_track_score=0.5,
        min_hits=1,
        match_iou=0.3,
        max_lost=15,
        keypoint_weight=0.2,
    )
    old_idf1, old_switches = _track_clip(lambda: Tracker(**before), range(3))
    new_idf1, new_switches = _track_clip(Tracker, range(3))
    assert new_idf1 > old_idf1 and new_switches <= 0.8 * old_switches, (old_idf1, old_switches, new_idf1, new_switches)


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


def _walk_video(path, cv2, size=(224, 160), fps=10, frames=12):
    w, h = size
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for t in range(frames):
        frame = np.zeros((h, w, 3), np.uint8)
        x = 10 + 12 * t
        frame[30:130, x : x + 40, 2] = 255  # red (BGR), walking right
        frame[60:150, 170 - 12 * t : 210 - 12 * t, 1] = 255  # green, walking left, crossing it
        writer.write(frame[:h, :w])
    writer.release()


def _colour_model():
    return Model(lambda images: [_colour_boxes(im) for im in images], name="colours", backend="stand-in")


def test_predict_on_a_video_writes_an_h264_video_tracked_rows_and_coco_results(tmp_path):
    cv2 = pytest.importorskip("cv2")
    av = pytest.importorskip("av")
    path = str(tmp_path / "walk.avi")
    _walk_video(path, cv2)
    from maskrcnn_body.workflows.predict import predict as run

    summary = run(_colour_model(), [path], str(tmp_path / "out"), batch_size=4, progress=False)
    (video,) = summary["videos"]
    assert video["frames"] == 12 and video["tracks"] == 2 and video["codec"] == "h264"
    rows = [json.loads(line) for line in open(video["jsonl"])]
    assert [r["frame"] for r in rows] == list(range(12))
    ids = {"red": set(), "green": set()}
    for r in rows:
        assert len(r["persons"]) == 2
        for p in r["persons"]:
            ids["red" if p["box"][1] < 45 else "green"].add(p["track_id"])  # red at y 30, green at y 60
    assert len(ids["red"]) == 1 and len(ids["green"]) == 1 and ids["red"] != ids["green"], ids
    # browser-playable: H.264 4:2:0 in an MP4 whose index comes first, the source's size and frame rate
    with av.open(video["video"]) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert (stream.width, stream.height, stream.average_rate) == (224, 160, 10)
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == 12
    data = open(video["video"], "rb").read()
    assert 0 <= data.find(b"moov") < data.find(b"mdat")
    # the track ids are drawn: the box label's colour of track 1 is in the frame
    from maskrcnn_body.drawing.people import track_colour

    near = np.abs(decoded[6].astype(int) - np.array(track_colour(1))).sum(-1) < 60
    assert near.sum() > 50
    # COCO results beside the JSON Lines: one entry per person and frame, with its track id
    coco = json.load(open(video["coco"]))
    assert len(coco) == 24 and {e["image_id"] for e in coco} == set(range(12))
    first = rows[0]["persons"][0]
    entry = next(e for e in coco if e["image_id"] == 0 and e["track_id"] == first["track_id"])
    x1, y1, x2, y2 = first["box"]
    assert entry["bbox"] == pytest.approx([x1, y1, x2 - x1, y2 - y1]) and entry["category_id"] == 1
    assert entry["segmentation"] == first["masks"]["body"] and len(entry["keypoints"]) == 45
    from pycocotools import mask as mask_utils

    assert mask_utils.area({**entry["segmentation"], "counts": entry["segmentation"]["counts"].encode()}) > 0


def test_inputs_sharing_a_name_get_distinct_outputs(tmp_path):
    cv2 = pytest.importorskip("cv2")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _walk_video(str(tmp_path / "a" / "walk.avi"), cv2, size=(74, 50), frames=3)
    _walk_video(str(tmp_path / "b" / "walk.avi"), cv2, size=(74, 50), frames=3)
    from PIL import Image

    for d in ("a", "b"):
        Image.fromarray(np.zeros((40, 30, 3), np.uint8)).save(tmp_path / d / "photo.png")
    from maskrcnn_body.workflows.predict import predict as run

    out = tmp_path / "out"
    inputs = [str(tmp_path / d / f) for d in ("a", "b") for f in ("walk.avi", "photo.png")]
    run(_colour_model(), inputs, str(out), progress=False)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"walk{s}.{e}" for s in ("", "_2") for e in ("mp4", "jsonl", "coco.json")]
        + [f"photo{s}.{e}" for s in ("", "_2") for e in ("png", "json")]
    )
    assert json.load(open(out / "photo_2.json"))["source"] == str(tmp_path / "b" / "photo.png")
    assert Image.open(out / "photo.png").size == (30, 40)  # drawings are the input's size


def test_an_odd_sized_video_is_padded_by_one_pixel_for_h264(tmp_path):
    av = pytest.importorskip("av")
    from maskrcnn_body.inference.api import Result
    from maskrcnn_body.workflows.video_writer import VideoOutput

    out = VideoOutput(str(tmp_path), "odd", 30000 / 1001)
    for i in range(3):
        out.write(i, Result(np.zeros((51, 75, 3), np.uint8), []), np.full((51, 75, 3), 40 * i, np.uint8))
    out.close()
    with av.open(out.video_path) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height, stream.average_rate) == (76, 52, fractions.Fraction(30000, 1001))
        assert len(list(container.decode(video=0))) == 3
    assert json.load(open(out.coco_path)) == [] and len(open(out.jsonl_path).readlines()) == 3


def _answering(dets):
    """A stand-in model runner that answers the i-th image it sees with ``dets[i]``."""
    calls = iter(range(len(dets)))

    def runner(images):
        out = []
        for _ in images:
            d = dets[next(calls)]
            n = len(d)
            out.append(
                {
                    "boxes": np.array([x.box for x in d], np.float32).reshape(n, 4),
                    "scores": np.array([x.score for x in d], np.float32),
                    "masks": np.ones((n, 4, 4, 7), np.float32),
                    "keypoints": np.array([x.keypoints for x in d], np.float32).reshape(n, 15, 3),
                }
            )
        return out

    return runner


def test_model_track_gives_each_frames_result_with_the_trackers_ids():
    clip = render_clip(7, num_frames=25, height=120, width=160, num_people=4)
    dets = simulate_detections(clip, 7)
    results = list(Model(_answering(dets), 0.5).track(iter(clip.frames), batch_size=4))
    assert len(results) == 25 and all(r.image.shape == (120, 160, 3) for r in results)
    tracker = Tracker()  # the same detections through the tracker directly
    for r, frame_dets in zip(results, simulate_detections(clip, 7)):
        tracker.update(frame_dets)
        want = sorted(
            (round(float(d.score), 4), d.track_id) for d in frame_dets if d.score >= 0.5 or d.track_id is not None
        )
        assert sorted((round(p.score, 4), p.track_id) for p in r.persons) == want
    assert any(p.track_id is not None and p.score < 0.5 for r in results for p in r.persons)  # second pass


def test_predict_on_the_synthetic_clip_tracks_as_the_tracker_does(tmp_path):
    """The whole video path on the measurement clip: bench/tracking.py writes it as H.264, ``predict``
    runs a stand-in model that answers each frame with the simulated detections, and the JSON Lines'
    tracks score exactly as the tracker run directly on those detections."""
    pytest.importorskip("cv2")
    pytest.importorskip("av")
    from bench import tracking as bench_tracking
    from maskrcnn_body.workflows.predict import predict as run

    seed, frames = 101, 30
    bench_tracking.write_clip(seed, str(tmp_path / "clip.mp4"), frames)
    clip = render_clip(seed, frames, frames=False)
    dets = simulate_detections(clip, seed)
    summary = run(Model(_answering(dets), 0.5), [str(tmp_path / "clip.mp4")], str(tmp_path / "out"), progress=False)
    (video,) = summary["videos"]
    assert video["frames"] == frames and video["fps"] == clip.fps
    got = bench_tracking.score_jsonl(seed, video["jsonl"], frames)
    direct = bench_tracking.run(Tracker, [(clip, simulate_detections(clip, seed))])
    assert got["num_hyp"] > 0 and got["idf1"] > 0.5
    for key in ("num_hyp", "idtp", "id_switches", "fp", "fn"):
        assert got[key] == direct[key], key


def test_without_pyav_the_video_is_mp4v_with_a_warning_that_says_how_to_get_h264(tmp_path, monkeypatch, capsys):
    cv2 = pytest.importorskip("cv2")
    from maskrcnn_body.inference.api import Result
    from maskrcnn_body.workflows.video_writer import VideoOutput

    monkeypatch.setitem(__import__("sys").modules, "av", None)  # import av -> ImportError
    out = VideoOutput(str(tmp_path), "plain", 10)
    for i in range(2):
        out.write(i, Result(np.zeros((48, 64, 3), np.uint8), []), np.zeros((48, 64, 3), np.uint8))
    out.close()
    assert out.codec == "mp4v" and "maskrcnn_body[video]" in capsys.readouterr().err
    cap = cv2.VideoCapture(out.video_path)
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 2
    cap.release()
