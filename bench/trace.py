"""Where a TensorFlow step spends its time, from a ``tf.profiler`` trace (TensorBoard's format).

:func:`profile` runs a callable under ``tf.profiler.experimental`` and writes the trace to a log
directory (open it with TensorBoard's profile plugin); :func:`summarize` reads the ``*.xplane.pb``
it wrote and sums the op events' durations by model part (backbone, FPN, RPN head, box/mask/
keypoint heads, "other" = everything between: proposals, NMS, targets, RoIAlign, losses,
optimizer) and by direction (forward, backward = ops under ``gradient_tape/``).

Durations are the ops' own wall times on the executor threads (ops inside ``tf.function`` call
ops; the call ops themselves are left out so nothing is counted twice). With intra-op threads > 1
one op's event spans its parallel work, so the sums add up to about the step's wall time.
"""

from __future__ import annotations

import collections
import glob
import os
from typing import Dict, List, Tuple

# scope names of our sub-models (keras.Model names in maskrcnn_body.model), first match wins
PARTS = (
    ("backbone", "backbone"),
    ("fpn", "FPN"),
    ("rpn_head", "RPN head"),
    ("box_head", "box head"),
    ("mask_head", "mask head"),
    ("keypoint_head", "keypoint head"),
    ("point_head", "point head"),
)
CALL_OPS = {
    "PartitionedCall",
    "StatefulPartitionedCall",
    "While",
    "StatelessWhile",
    "If",
    "StatelessIf",
    "Case",
    "StatelessCase",
    "__inference",
    "RemoteCall",
}


def profile(fn, logdir: str, steps: int = 1) -> str:
    """Calls ``fn()`` ``steps`` times under the TF profiler (host tracer, level 2); returns the
    newest ``.xplane.pb`` written under ``logdir``."""
    import tensorflow as tf

    opts = tf.profiler.experimental.ProfilerOptions(host_tracer_level=2, python_tracer_level=0, device_tracer_level=1)
    tf.profiler.experimental.start(logdir, options=opts)
    try:
        for _ in range(steps):
            fn()
    finally:
        tf.profiler.experimental.stop()
    files = sorted(glob.glob(os.path.join(logdir, "plugins", "profile", "*", "*.xplane.pb")), key=os.path.getmtime)
    if not files:
        raise RuntimeError(f"the profiler wrote no .xplane.pb under {logdir}")
    return files[-1]


def _op_events(path: str) -> List[Tuple[str, str, float]]:
    """(op name, op type, seconds) of every TF op event in the trace's host plane."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    out = []
    for plane in space.planes:
        if not plane.name.startswith("/host:"):
            continue
        meta = plane.event_metadata
        for line in plane.lines:
            for ev in line.events:
                name = meta[ev.metadata_id].name
                if ":" not in name or "::" in name:  # executor/eager bookkeeping, not ops
                    continue
                op, _, kind = name.rpartition(":")
                if not op or " " in kind or kind in CALL_OPS or kind.startswith("__inference"):
                    continue
                out.append((op, kind, ev.duration_ps * 1e-12))
    return out


def part_of(op_name: str) -> Tuple[str, str]:
    """(part, direction) of a TF op name, e.g. ``gradient_tape/maskrcnn_body/backbone/...`` ->
    ("backbone", "backward")."""
    direction = "backward" if "gradient_tape/" in op_name else "forward"
    scopes = op_name.split("/")
    for key, part in PARTS:
        if any(s == key or s.startswith(key + "_") for s in scopes):
            return part, direction
    return "other", direction


def summarize(path: str, steps: int = 1, top: int = 12) -> Dict[str, object]:
    """Per-step seconds by part and direction, and the ``top`` op types of the "other" part.

    Returns ``{"parts": [[part, forward_s, backward_s], ...], "total_s", "other_top":
    [[op type, seconds], ...], "ops": number of op events}`` (seconds per step)."""
    events = _op_events(path)
    by = collections.defaultdict(float)
    other = collections.defaultdict(float)
    for op, kind, sec in events:
        part, direction = part_of(op)
        by[(part, direction)] += sec / steps
        if part == "other":
            other[f"{kind} ({direction})"] += sec / steps
    names = [p for _, p in PARTS] + ["other"]
    parts = [
        [p, round(by[(p, "forward")], 4), round(by[(p, "backward")], 4)]
        for p in names
        if by[(p, "forward")] or by[(p, "backward")]
    ]
    return {
        "parts": parts,
        "total_s": round(sum(by.values()), 4),
        "ops": len(events),
        "other_top": [[k, round(v, 4)] for k, v in sorted(other.items(), key=lambda kv: -kv[1])[:top]],
    }


def format_table(summary: Dict[str, object]) -> str:
    """Markdown table of :func:`summarize`'s parts."""
    rows = ["| part | forward s | backward s | total s |", "|---|---:|---:|---:|"]
    for part, fwd, bwd in summary["parts"]:
        rows.append(f"| {part} | {fwd:.3f} | {bwd:.3f} | {fwd + bwd:.3f} |")
    rows.append(f"| **all ops** | | | {summary['total_s']:.3f} |")
    return "\n".join(rows)
