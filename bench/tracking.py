"""Tracker quality on synthetic clips with known identities: IDF1, ID switches, MOTA (docs/TRACKING.md).

    python bench/tracking.py                         # 20 clips, seeds 100..119 (held out from the tuning)
    python bench/tracking.py --seeds 0:15 --json out.json
    python bench/tracking.py --write_clip 100 clip.mp4  # the clip as a video, for a real model:
    maskrcnn-body predict --model output/mask_rcnn --input clip.mp4 --output out/
    python bench/tracking.py --score_clip 100 out/clip.jsonl   # predict's tracks against the truth

Each clip is :func:`maskrcnn_body.data.synthetic_video.render_clip` (6 people walking both ways at
different depths, crossing, a pillar), its detections :func:`simulate_detections` (jittered boxes,
scores that fall with occlusion, misses, false positives), deterministic per seed, so no trained
model is involved. Rows: the tracker before ByteTrack (``maskrcnn_body/inference/tracking.py`` at
commit ``BEFORE``, read from git; it was fed the detections scoring >= 0.5, as ``predict`` did), the
current defaults, and the defaults with one setting changed. Counts are pooled over the clips
(:func:`maskrcnn_body.evaluation.mot.mot_metrics`, IoU >= 0.5); a track id counts from the frame the
tracker gives it (tentative detections are not output).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import types
from typing import Callable, Dict, List, Optional

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from maskrcnn_body.data.synthetic_video import render_clip, simulate_detections  # noqa: E402
from maskrcnn_body.evaluation.mot import mot_metrics  # noqa: E402
from maskrcnn_body.inference.tracking import Tracker  # noqa: E402

BEFORE = "11ff93f"
"""The last commit with the greedy IoU tracker (before issue 29)."""
VARIANTS = {
    "defaults": {},
    "greedy assignment": {"assignment": "greedy"},
    "no second pass (low_score = 0.5)": {"low_score": 0.5},
    "no confirmation (min_hits = 1)": {"min_hits": 1},
    "lost buffer 15 frames": {"max_lost": 15},
    "keypoint_weight 0.2": {"keypoint_weight": 0.2},
    "all of the above (the old rules)": {
        "assignment": "greedy",
        "low_score": 0.5,
        "new_track_score": 0.5,
        "min_hits": 1,
        "max_lost": 15,
        "match_iou": 0.3,
        "keypoint_weight": 0.2,
    },
}
KEYS = ("idtp", "idfp", "idfn", "id_switches", "matches", "fp", "fn", "num_gt", "num_hyp", "num_hyp_ids", "num_gt_ids")


def before_tracker() -> Optional[Callable]:
    """The old ``IouTracker`` class from git, or None when git or the commit is not available."""
    try:
        src = subprocess.run(
            ["git", "show", f"{BEFORE}:maskrcnn_body/inference/tracking.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    module = types.ModuleType("tracking_before")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(src, f"{BEFORE}:tracking.py", "exec"), module.__dict__)
    return module.IouTracker


def run(make: Callable, clips, min_score: float = 0.0) -> Dict[str, float]:
    """Pooled metrics of ``make()`` trackers over ``clips`` [(clip, detections)]; seconds per frame."""
    totals = dict.fromkeys(KEYS, 0)
    seconds = frames = 0.0
    for clip, detections in clips:
        tracker, hyp = make(), []
        for dets in detections:
            dets = [d for d in dets if d.score >= min_score]
            for d in dets:
                d.track_id = None
            t0 = time.perf_counter()
            tracker.update(dets)
            seconds += time.perf_counter() - t0
            frames += 1
            kept = [d for d in dets if d.track_id is not None]
            hyp.append((np.array([d.track_id for d in kept], np.int64), np.array([d.box for d in kept]).reshape(-1, 4)))
        m = mot_metrics(list(zip(clip.ids, clip.boxes)), hyp)
        for k in KEYS:
            totals[k] += m[k]
    t = totals
    return {
        "idf1": 2 * t["idtp"] / max(2 * t["idtp"] + t["idfp"] + t["idfn"], 1),
        "idp": t["idtp"] / max(t["num_hyp"], 1),
        "idr": t["idtp"] / max(t["num_gt"], 1),
        "mota": 1 - (t["fn"] + t["fp"] + t["id_switches"]) / max(t["num_gt"], 1),
        "ms_per_frame": 1000 * seconds / max(frames, 1),
        **t,
    }


def write_clip(seed: int, path: str, frames: int) -> None:
    """Clip ``seed`` as an H.264 video (PyAV) at its frame rate."""
    from maskrcnn_body.inference.api import Result
    from maskrcnn_body.workflows.video_writer import VideoOutput

    clip = render_clip(seed, frames)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    out = VideoOutput(os.path.dirname(os.path.abspath(path)), os.path.splitext(os.path.basename(path))[0], clip.fps)
    for i, frame in enumerate(clip.frames):
        out.write(i, Result(frame, []), frame)
    out.close()
    for extra in (out.jsonl_path, out.coco_path):  # empty rows: only the video is wanted
        os.remove(extra)
    print(f"{out.video_path}: {len(clip)} frames {clip.width}x{clip.height} at {clip.fps} fps, seed {seed}")


def score_jsonl(seed: int, path: str, frames: int) -> Dict[str, float]:
    """:func:`mot_metrics` of the tracks in ``predict``'s JSON Lines of clip ``seed`` (persons with a
    ``track_id``)."""
    clip = render_clip(seed, frames, frames=False)
    hyp = [(np.zeros(0, np.int64), np.zeros((0, 4)))] * len(clip)
    with open(path) as f:
        for line in f:
            row = json.loads(line)
            tracked = [p for p in row["persons"] if p.get("track_id") is not None]
            hyp[row["frame"]] = (
                np.array([p["track_id"] for p in tracked], np.int64),
                np.array([p["box"] for p in tracked], np.float64).reshape(-1, 4),
            )
    return mot_metrics(list(zip(clip.ids, clip.boxes)), hyp)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="100:120", help="Clip seeds, START:STOP (default: %(default)s).")
    ap.add_argument("--frames", type=int, default=150, help="Frames per clip (default: %(default)s).")
    ap.add_argument("--json", default=None, help="Also write the rows as JSON here.")
    ap.add_argument("--write_clip", nargs=2, metavar=("SEED", "PATH"), help="Write clip SEED as an H.264 video.")
    ap.add_argument(
        "--score_clip", nargs=2, metavar=("SEED", "JSONL"), help="Metrics of predict's JSON Lines on clip SEED."
    )
    args = ap.parse_args(argv)
    if args.write_clip:
        write_clip(int(args.write_clip[0]), args.write_clip[1], args.frames)
        return 0
    if args.score_clip:
        m = score_jsonl(int(args.score_clip[0]), args.score_clip[1], args.frames)
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in m.items()}))
        return 0
    start, stop = (int(v) for v in args.seeds.split(":"))
    t0 = time.time()
    clips = []
    for seed in range(start, stop):
        clip = render_clip(seed, args.frames, frames=False)
        clips.append((clip, simulate_detections(clip, seed)))
    print(
        f"{len(clips)} clips x {args.frames} frames (seeds {args.seeds}), rendered in {time.time() - t0:.1f} s; "
        f"{sum(len(c.ids) and sum(map(len, c.ids)) for c, _ in clips)} ground-truth boxes"
    )
    rows = {}
    old = before_tracker()
    if old is not None:
        rows[f"before ({BEFORE}: greedy IoU, detections >= 0.5)"] = run(old, clips, min_score=0.5)
    else:
        print(f"(git or commit {BEFORE} not available: no 'before' row)")
    for name, settings in VARIANTS.items():
        rows[name] = run(lambda s=settings: Tracker(**s), clips)
    print("| tracker | IDF1 | IDP | IDR | ID switches | MOTA | FP | FN | ids (truth) | ms/frame |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(
            f"| {name} | {100 * r['idf1']:.1f} | {100 * r['idp']:.1f} | {100 * r['idr']:.1f} | {r['id_switches']} | "
            f"{100 * r['mota']:.1f} | {r['fp']} | {r['fn']} | {r['num_hyp_ids']} ({r['num_gt_ids']}) | "
            f"{r['ms_per_frame']:.2f} |"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"seeds": args.seeds, "frames": args.frames, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
