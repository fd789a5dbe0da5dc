"""JHMDB (Jhuang et al. 2013) -> schema v1, one record per annotated frame.

Layout under ``root``::

    Rename_Images/<action>/<video>/00001.png ...               # frames, 1-based, 5 digits
    joint_positions/<action>/<video>/joint_positions.mat       # pos_img (2, 15, T)
    puppet_mask/<action>/<video>/puppet_mask.mat               # part_mask (H, W, T) binary body
    puppet_flow_com/<action>/<video>/puppet_flow.mat           # optional: part_mask (H, W, T) labels 0..10
    splits/<action>_test_split<N>.txt                          # "<video>.avi 1|2" (1 train, 2 test)

One item is one video (listed from ``joint_positions``); frame ``t`` (0-based) is
``{t + 1:05d}.png`` with body ``puppet_mask[:, :, t]`` and joints ``pos_img[:, :, t]``.
``source_id`` is ``"<video>/<frame:05d>"``.

Keypoint coordinates. ``pos_img`` is in MATLAB's 1-based pixel frame, where pixel ``i``
(1-based) has its centre at ``i``; the schema frame has pixel ``i`` (0-based) covering
``[i, i + 1)`` with centre ``i + 0.5``. The centre of the same pixel is MATLAB ``i + 1``
and schema ``i + 0.5``, so::

    x_schema = x_matlab - 1 + 0.5 = x_matlab - 0.5     (same for y)

(e.g. a MATLAB joint at 286.5, on the border of 1-based pixels 286 and 287, becomes 286.0,
the border of 0-based pixels 285 and 286). The 15 joints are already in schema order
(``constants.KEYPOINTS``), subject-centric. JHMDB has no visibility flags: a joint inside
the image gets v = 2; a joint outside the image (or NaN) gets v = 0 with x = y = 0, because
the schema reserves v > 0 for points in the image frame and the keypoint head cannot
learn a target outside the image.

Channels: 0 = puppet mask. With ``puppet_flow.mat`` (searched in ``puppet_flow_com`` then
``puppet_flow_ann``) its labels fill channels 1-6 per :data:`FLOW_LABEL_CHANNELS` and all 7
channels are valid; without it only channel 0 is valid. Frames with an empty mask are
skipped (reason "empty person mask").
"""

from __future__ import annotations

import os
import re
from typing import Dict, Iterator, Optional

import numpy as np

from maskrcnn_body import constants
from maskrcnn_body.data import conversion
from maskrcnn_body.errors import InvalidArgument, optional_import

FLOW_LABEL_CHANNELS: Dict[int, int] = {
    2: constants.CHANNEL_INDEX["head"],
    1: constants.CHANNEL_INDEX["torso"],
    4: constants.CHANNEL_INDEX["left_arm"],
    8: constants.CHANNEL_INDEX["left_arm"],
    3: constants.CHANNEL_INDEX["right_arm"],
    7: constants.CHANNEL_INDEX["right_arm"],
    6: constants.CHANNEL_INDEX["left_leg"],
    10: constants.CHANNEL_INDEX["left_leg"],
    5: constants.CHANNEL_INDEX["right_leg"],
    9: constants.CHANNEL_INDEX["right_leg"],
}
"""puppet_flow label -> channel (1 torso, 2 head, 3/7 right upper/lower arm, 4/8 left arm,
5/9 right upper/lower leg, 6/10 left leg; datasets.md section 2)."""

FLOW_DIRS = ("puppet_flow_com", "puppet_flow_ann")
SPLIT_RE = re.compile(r"^(train|test)([123])$")
MATLAB_TO_SCHEMA = -0.5  # x_schema = x_matlab - 1 + 0.5


def matlab_to_keypoints(pos: np.ndarray, height: int, width: int) -> np.ndarray:
    """(2, 15) MATLAB 1-based joint positions -> float32 (15, 3) schema keypoints.

    x, y = pos + MATLAB_TO_SCHEMA; v = 2 inside [0, W) x [0, H), else v = 0 and x = y = 0.
    """
    pos = np.asarray(pos, np.float64)
    if pos.shape != (2, constants.NUM_KEYPOINTS):
        raise conversion.SkipItem(f"bad joints: pos_img frame has shape {pos.shape}, expected (2, 15)")
    xy = pos.T + MATLAB_TO_SCHEMA
    inside = np.isfinite(xy).all(1) & (xy[:, 0] >= 0) & (xy[:, 0] < width) & (xy[:, 1] >= 0) & (xy[:, 1] < height)
    kp = np.zeros((constants.NUM_KEYPOINTS, 3), np.float32)
    kp[inside, :2] = xy[inside]
    kp[inside, 2] = constants.KP_VISIBLE
    return kp


def _loadmat_var(path: str, var: str, ndim: int) -> np.ndarray:
    scipy_io = optional_import("scipy.io", "convert", "reading the dataset's .mat annotations")

    if not os.path.isfile(path):
        raise conversion.SkipItem(f"missing annotation: {path} does not exist")
    try:
        value = scipy_io.loadmat(path, variable_names=[var])[var]
    except Exception as e:
        raise conversion.SkipItem(f"corrupt annotation: {path} ({type(e).__name__}: {e})") from None
    if value.ndim != ndim:
        raise conversion.SkipItem(
            f"corrupt annotation: {path} variable {var!r} has shape {value.shape}, expected {ndim} dimensions"
        )
    return value


class JhmdbConverter(conversion.Converter):
    dataset = "jhmdb"

    def __init__(self, root: str, split: str = "all"):
        if split != "all" and not SPLIT_RE.match(split):
            raise InvalidArgument(f"--split {split!r}: JHMDB splits are train1..3, test1..3 or all")
        self.root, self.split = root, split

    def items(self):
        jdir = os.path.join(self.root, "joint_positions")
        if not os.path.isdir(jdir):
            raise FileNotFoundError(
                f"{jdir} not found: --root must contain Rename_Images/, joint_positions/ and puppet_mask/ (JHMDB)"
            )
        for action in sorted(os.listdir(jdir)):
            if not os.path.isdir(os.path.join(jdir, action)):
                continue
            videos = sorted(
                v for v in os.listdir(os.path.join(jdir, action)) if os.path.isdir(os.path.join(jdir, action, v))
            )
            membership = self._split_membership(action)
            if isinstance(membership, conversion.Skipped):
                yield membership
                continue
            for video in videos:
                if membership is None or membership.get(video) == self._split_id():
                    yield conversion.Item(f"{action}/{video}", (action, video))

    def _split_id(self) -> int:
        return 1 if self.split.startswith("train") else 2

    def _split_membership(self, action: str):
        """{video: 1|2} from the action's split file, None for --split all."""
        if self.split == "all":
            return None
        found = SPLIT_RE.match(self.split)
        assert found is not None  # checked in __init__
        n = found.group(2)
        path = os.path.join(self.root, "splits", f"{action}_test_split{n}.txt")
        if not os.path.isfile(path):
            return conversion.Skipped(action, f"missing split file: {path} does not exist")
        out = {}
        with open(path) as f:
            for line in f:
                fields = line.split()
                if not fields:
                    continue
                if len(fields) != 2 or fields[1] not in ("1", "2"):
                    return conversion.Skipped(
                        action, f"corrupt split file: {path} line {line.strip()!r} is not '<video>.avi 1|2'"
                    )
                out[os.path.splitext(fields[0])[0]] = int(fields[1])
        return out

    def _flow_path(self, action: str, video: str) -> Optional[str]:
        for d in FLOW_DIRS:
            p = os.path.join(self.root, d, action, video, "puppet_flow.mat")
            if os.path.isfile(p):
                return p
        return None

    def convert(self, item: conversion.Item) -> Iterator:
        action, video = item.data
        pos = _loadmat_var(
            os.path.join(self.root, "joint_positions", action, video, "joint_positions.mat"), "pos_img", 3
        )
        body = _loadmat_var(os.path.join(self.root, "puppet_mask", action, video, "puppet_mask.mat"), "part_mask", 3)
        flow_path = self._flow_path(action, video)
        flow = _loadmat_var(flow_path, "part_mask", 3) if flow_path else None
        if pos.shape[:2] != (2, constants.NUM_KEYPOINTS):
            raise conversion.SkipItem(f"corrupt annotation: {video} pos_img has shape {pos.shape}, expected (2, 15, T)")
        t_frames = body.shape[2]
        if pos.shape[2] != t_frames or (flow is not None and flow.shape != body.shape):
            raise conversion.SkipItem(
                f"frame count mismatch: {video} puppet_mask {body.shape}, pos_img {pos.shape}"
                + (f", puppet_flow {flow.shape}" if flow is not None else "")
            )
        if flow is not None and (flow.min() < 0 or flow.max() > max(FLOW_LABEL_CHANNELS)):
            raise conversion.SkipItem(f"corrupt annotation: {flow_path} has labels outside 0..10")
        valid = conversion.ALL_VALID if flow is not None else conversion.BODY_ONLY
        frames_dir = os.path.join(self.root, "Rename_Images", action, video)
        for t in range(t_frames):
            key = f"{video}/{t + 1:05d}"
            try:
                image = conversion.load_image(os.path.join(frames_dir, f"{t + 1:05d}.png"))
                conversion.check_mask_shape(body[:, :, t], image, f"{key} puppet_mask")
                parts: Optional[Dict[int, np.ndarray]] = None
                if flow is not None:
                    labels = flow[:, :, t]
                    parts = {}
                    for label, ch in FLOW_LABEL_CHANNELS.items():
                        parts[ch] = parts.get(ch, False) | (labels == label)
                kp = matlab_to_keypoints(pos[:, :, t], image.height, image.width)
                person = conversion.build_person(body[:, :, t] != 0, parts, valid, kp)
            except conversion.SkipItem as e:
                yield conversion.Skipped(key, str(e))
                continue
            yield image.record(key, self.dataset, [person])
