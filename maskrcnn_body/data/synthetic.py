"""Built-in synthetic multi-person dataset: articulated people on cluttered backgrounds.

Every image holds 0-6 people drawn from simple shapes (head, neck, torso, upper/lower arms,
hands, upper/lower legs, feet) with random joint angles, torso lean, scale (from
``min_person_height`` to image-filling), position (people may be cut by the image border) and
depth order (people in front hide the people behind). Labels follow from the drawing:

* **channels**: a per-part label canvas is drawn together with the colour canvas, so
  head = head, torso = torso + neck, left arm = left upper/lower arm + left hand, left leg =
  left upper/lower leg + left foot, body = union of all the person's visible pixels. Pixels
  hidden by a person in front are removed from every channel of the person behind.
  ``parts_valid`` is all ones.
* **keypoints** (``constants.KEYPOINTS`` order) are the joints of the drawing: shoulders,
  elbows, wrists, hips, knees, ankles are the limb joint centres, neck = top of the torso,
  belly = torso axis three quarters of the way from neck to pelvis, face = head centre.
  Visibility: ``v = 2`` when the pixel under the joint shows this person's part that the
  joint belongs to (e.g. a wrist on its own arm); ``v = 1`` when it is hidden, either by a
  person in front or by the person's own body (an arm crossing the belly); joints outside the
  image are stored as ``(0, 0, 0)`` (COCO convention: unlabelled).
* **sides** are the subject's own: people face the camera or away at random. Facing the
  camera shows a face (eyes, mouth, hair on top) and the subject's LEFT side is on the
  image's RIGHT; facing away shows hair over the whole head and the left side is on the
  image's left. Clothing colours are random per person and shared by the two sides (shirt:
  torso + both arms; trousers: both legs; skin: head, neck, hands), so sides can only be
  told from the facing and the geometry, as in real photos. Facing the camera the arms are
  drawn in front of the torso, facing away behind it.

Backgrounds are gradients + low-frequency colour noise + random shapes and stripes +
unannotated limb-like distractor capsules in skin / clothing colours.

Determinism: image ``i`` of split ``s`` is rendered from
``np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(SPLIT_KEYS[s], i)))``, so a
record depends only on ``(seed, split, index, size)`` (not on the number of workers or
shards), and train and val never share an image seed.

Records: :func:`render_image` is image ``index`` of a split as a schema-v1 record (PNG image,
``image/dataset = "synthetic"``, ``image/source_id = "synthetic_<split>_<index:06d>"``). The record
files (splits, shards, summaries) are written by :mod:`maskrcnn_body.convert.synthetic`.

Only numpy and PIL are used; no TensorFlow.
"""

from __future__ import annotations

import math
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
from PIL import Image, ImageDraw

from maskrcnn_body import constants
from maskrcnn_body.data import schema

DATASET = "synthetic"
SPLIT_KEYS = {"train": 0, "val": 1, "calib": 2}
"""Second-level spawn key of each split's per-image SeedSequence (disjoint seeds per split; calib: the held-out
split the mask decoding is chosen on, workflows/calibrate.py)."""
PERSON_COUNT_PROBS = (0.05, 0.2, 0.2, 0.2, 0.15, 0.1, 0.1)
"""Probability of 0, 1, ..., 6 people in an image (before placements that fail are dropped)."""
MAX_PERSONS = len(PERSON_COUNT_PROBS) - 1

# channel indices of the parts (label canvas values)
_HEAD, _TORSO = constants.CHANNEL_INDEX["head"], constants.CHANNEL_INDEX["torso"]
_ARM = {"left": constants.CHANNEL_INDEX["left_arm"], "right": constants.CHANNEL_INDEX["right_arm"]}
_LEG = {"left": constants.CHANNEL_INDEX["left_leg"], "right": constants.CHANNEL_INDEX["right_leg"]}

# the part channels in which each keypoint counts as visible (v = 2)
_KEYPOINT_CHANNELS = {
    "neck": (_TORSO, _HEAD),
    "belly": (_TORSO,),
    "face": (_HEAD,),
    **{f"{s}_{j}": (_ARM[s],) for s in ("left", "right") for j in ("elbow", "wrist")},
    **{f"{s}_shoulder": (_ARM[s], _TORSO) for s in ("left", "right")},
    **{f"{s}_hip": (_LEG[s], _TORSO) for s in ("left", "right")},
    **{f"{s}_{j}": (_LEG[s],) for s in ("left", "right") for j in ("knee", "ankle")},
}
_KP_CHANNEL_LUT = np.zeros((constants.NUM_KEYPOINTS, 8), bool)
"""``_KP_CHANNEL_LUT[k, label]``: keypoint k is visible on a pixel of this label."""
for _name, _chs in _KEYPOINT_CHANNELS.items():
    _KP_CHANNEL_LUT[constants.KEYPOINT_INDEX[_name], list(_chs)] = True

# colour palettes (RGB)
_SKIN = np.array(
    [(255, 224, 196), (241, 194, 160), (224, 172, 125), (198, 134, 90), (161, 102, 62), (120, 74, 45), (85, 52, 33)],
    np.float64,
)
_HAIR = np.array(
    [(20, 17, 15), (60, 40, 28), (110, 75, 40), (180, 140, 80), (225, 200, 140), (150, 150, 150), (150, 60, 30)],
    np.float64,
)


# --------------------------------------------------------------------------- small helpers
def _rand_colour(rng: np.random.Generator, sat=(0.0, 1.0), val=(0.1, 1.0)) -> np.ndarray:
    """A random RGB colour (float64 (3,), 0..255) from HSV ranges."""
    h, s, v = rng.uniform(0, 1), rng.uniform(*sat), rng.uniform(*val)
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return np.array(rgb) * 255.0


def _skin_colour(rng: np.random.Generator) -> np.ndarray:
    """A skin tone interpolated between two neighbouring palette entries."""
    i = rng.integers(0, len(_SKIN) - 1)
    return _SKIN[i] + rng.uniform(0, 1) * (_SKIN[i + 1] - _SKIN[i])


def _rgb(c) -> Tuple[int, int, int]:
    """(3,) float colour -> PIL's int triple, rounded and clipped to 0..255."""
    r, g, b = (min(255, max(0, int(round(float(v))))) for v in c)
    return r, g, b


def _ellipse_pts(centre, rx, ry, axis_x, axis_y, n=None) -> np.ndarray:
    """(n, 2) polygon of an ellipse with semi-axes rx along unit ``axis_x``, ry along ``axis_y``."""
    if n is None:
        n = int(np.clip(2 * max(rx, ry), 10, 40))
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return centre + np.outer(rx * np.cos(t), axis_x) + np.outer(ry * np.sin(t), axis_y)


def _capsule_pts(p, q, r1, r2) -> np.ndarray:
    """(n, 2) convex polygon of a (tapered) capsule from p (radius r1) to q (radius r2)."""
    v = q - p
    theta = math.atan2(v[1], v[0])
    n = int(np.clip(max(r1, r2), 5, 16))
    a_q = theta + np.linspace(-np.pi / 2, np.pi / 2, n)
    a_p = theta + np.linspace(np.pi / 2, 3 * np.pi / 2, n)
    return np.concatenate(
        [q + r2 * np.stack([np.cos(a_q), np.sin(a_q)], 1), p + r1 * np.stack([np.cos(a_p), np.sin(a_p)], 1)]
    )


def _rot(v: np.ndarray, angle: float) -> np.ndarray:
    """Rotates a 2-vector (image frame, y down) by ``angle`` radians."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([v[0] * c - v[1] * s, v[0] * s + v[1] * c])


# --------------------------------------------------------------------------- one person
class _Canvas:
    """Paired label ("L", channel index per pixel) and colour ("RGB") canvases of one person.

    Shapes are given in the continuous pixel-edge frame of the image; ``origin`` (x, y) is
    the image coordinate of the canvas' top-left corner (PIL's pixel centres are at
    integer coordinates, hence the extra -0.5).
    """

    def __init__(self, origin: np.ndarray, width: int, height: int, outline: int):
        self.origin = origin
        self.label = Image.new("L", (width, height), 0)
        self.colour = Image.new("RGB", (width, height), (0, 0, 0))
        self._dl = ImageDraw.Draw(self.label)
        self._dc = ImageDraw.Draw(self.colour)
        self.outline = outline

    def _xy(self, pts):
        pts = np.asarray(pts) - self.origin - 0.5
        return [(float(x), float(y)) for x, y in pts]

    def part(self, pts, channel: int, colour) -> None:
        """Fills a polygon with ``channel`` on the labels and ``colour`` (dark outline) on the colours."""
        xy = self._xy(pts)
        self._dl.polygon(xy, fill=channel)
        self._dc.polygon(xy, fill=_rgb(colour), outline=_rgb(colour * 0.55), width=self.outline)

    def mark(self, pts, colour) -> None:
        """Paints a colour-only polygon (face marks, hair): it does not change the labels."""
        self._dc.polygon(self._xy(pts), fill=_rgb(colour))


def _pose(rng: np.random.Generator, h: float, pelvis: np.ndarray, front: bool) -> Dict[str, np.ndarray]:
    """Joint positions (image frame, pixels) of a person of height ``h`` with random pose.

    ``d`` is the torso's down direction (slight lean), ``u`` the image-right lateral
    direction; the subject's left side points along ``+u`` when ``front`` (facing the
    camera) and along ``-u`` otherwise.
    """
    lean = rng.uniform(-0.15, 0.15)
    d = np.array([math.sin(lean), math.cos(lean)])
    u = np.array([math.cos(lean), -math.sin(lean)])
    left = u if front else -u
    torso = 0.30 * h
    neck = pelvis - d * torso
    j = {"d": d, "u": u, "left_dir": left, "neck": neck, "pelvis": pelvis, "belly": neck + d * 0.75 * torso}
    head_dir = _rot(-d, rng.uniform(-0.2, 0.2))
    j["face"] = neck + head_dir * (0.04 * h + 0.075 * h)
    j["head_dir"] = head_dir
    for side, sgn in (("left", 1.0), ("right", -1.0)):
        out = sgn * left
        # arm: shoulder abduction a (0 = hanging, pi/2 = horizontal, > pi/2 raised), elbow flexion b
        shoulder = neck + d * 0.04 * h + out * 0.12 * h
        a = rng.uniform(-0.35, 2.7)
        up = math.cos(a) * d + math.sin(a) * out
        elbow = shoulder + up * 0.17 * h * (rng.uniform(0.65, 1.0) if rng.random() < 0.3 else 1.0)
        lo = _rot(up, rng.choice([-1, 1]) * rng.uniform(0, 2.3))
        wrist = elbow + lo * 0.15 * h * (rng.uniform(0.65, 1.0) if rng.random() < 0.3 else 1.0)
        # leg: hip abduction a, knee flexion b
        hip = pelvis + out * 0.08 * h
        a = rng.uniform(-0.2, 0.6)
        thigh = math.cos(a) * d + math.sin(a) * out
        knee = hip + thigh * 0.24 * h * (rng.uniform(0.7, 1.0) if rng.random() < 0.3 else 1.0)
        shin = _rot(thigh, rng.choice([-1, 1]) * rng.uniform(0, 0.9))
        ankle = knee + shin * 0.23 * h
        j.update(
            {
                f"{side}_shoulder": shoulder,
                f"{side}_elbow": elbow,
                f"{side}_wrist": wrist,
                f"{side}_hip": hip,
                f"{side}_knee": knee,
                f"{side}_ankle": ankle,
                f"{side}_hand_dir": lo,
                f"{side}_shin_dir": shin,
            }
        )
    return j


def _draw_person(rng: np.random.Generator, h: float, pelvis: np.ndarray, front: bool) -> Tuple[_Canvas, np.ndarray]:
    """Draws one person on its own canvas pair; returns it and the (15, 3) keypoints (v = 2)."""
    j = _pose(rng, h, pelvis, front)
    d, u, left = j["d"], j["u"], j["left_dir"]
    rmin = 1.5
    r = {
        k: max(rmin, f * h)
        for k, f in dict(
            arm_u=0.036,
            arm_l=0.030,
            hand=0.033,
            leg_u=0.052,
            leg_l=0.042,
            neck=0.032,
            head_x=0.062,
            head_y=0.078,
            foot_x=0.045,
            foot_y=0.026,
        ).items()
    }
    kps = np.zeros((constants.NUM_KEYPOINTS, 3), np.float32)
    for k, name in enumerate(constants.KEYPOINTS):
        kps[k] = (*j[name], constants.KP_VISIBLE)

    pts = kps[:, :2]
    margin = 0.12 * h + 4
    lo = np.floor(pts.min(0) - margin)
    hi = np.ceil(pts.max(0) + margin)
    canvas = _Canvas(lo, int(hi[0] - lo[0]), int(hi[1] - lo[1]), outline=1 if h < 150 else 2)

    skin = _skin_colour(rng)
    shirt = _rand_colour(rng, (0.15, 0.95), (0.2, 0.95))
    trousers = (
        _rand_colour(rng, (0.1, 0.8), (0.1, 0.8))
        if rng.random() < 0.7
        else np.array([40, 55, 110.0]) * rng.uniform(0.6, 1.4)
    )
    shoes = _rand_colour(rng, (0.0, 0.5), (0.05, 0.45))
    hair = _HAIR[rng.integers(len(_HAIR))] * rng.uniform(0.85, 1.15)

    def arm(side):
        canvas.part(
            _capsule_pts(j[f"{side}_shoulder"], j[f"{side}_elbow"], r["arm_u"], r["arm_u"] * 0.9), _ARM[side], shirt
        )
        canvas.part(
            _capsule_pts(j[f"{side}_elbow"], j[f"{side}_wrist"], r["arm_l"], r["arm_l"] * 0.85),
            _ARM[side],
            shirt if rng.random() < 0.6 else skin,
        )
        hand_c = j[f"{side}_wrist"] + j[f"{side}_hand_dir"] * r["hand"] * 0.9
        canvas.part(
            _ellipse_pts(
                hand_c, r["hand"], r["hand"] * 0.8, j[f"{side}_hand_dir"], _rot(j[f"{side}_hand_dir"], np.pi / 2)
            ),
            _ARM[side],
            skin,
        )

    def leg(side):
        canvas.part(
            _capsule_pts(j[f"{side}_knee"], j[f"{side}_ankle"], r["leg_l"], r["leg_l"] * 0.8), _LEG[side], trousers
        )
        canvas.part(_capsule_pts(j[f"{side}_hip"], j[f"{side}_knee"], r["leg_u"], r["leg_l"]), _LEG[side], trousers)
        foot_c = (
            j[f"{side}_ankle"]
            + d * r["foot_y"] * 1.2
            + u * 0.3 * r["foot_x"] * np.sign(np.dot(j[f"{side}_shin_dir"], u) + 1e-6)
        )
        canvas.part(_ellipse_pts(foot_c, r["foot_x"], r["foot_y"], u, d), _LEG[side], shoes)

    sides = ["left", "right"] if rng.random() < 0.5 else ["right", "left"]
    if not front:  # seen from behind: arms are behind the torso
        for s in sides:
            arm(s)
    for s in sides:
        leg(s)
    # torso (+ neck): shoulders to hips, a bit wider than the joints
    sh_l, sh_r = j["left_shoulder"], j["right_shoulder"]
    hp_l, hp_r = j["left_hip"], j["right_hip"]
    torso = [
        sh_l + left * 0.5 * r["arm_u"] - d * r["arm_u"],
        sh_r - left * 0.5 * r["arm_u"] - d * r["arm_u"],
        hp_r - left * r["leg_u"] + d * 0.05 * h,
        hp_l + left * r["leg_u"] + d * 0.05 * h,
    ]
    canvas.part(np.array(torso), _TORSO, shirt)
    canvas.part(_capsule_pts(j["neck"] + d * 0.02 * h, j["face"], r["neck"], r["neck"]), _TORSO, skin)
    # head, with a face (front) or hair (back)
    hd = j["head_dir"]  # up along the head
    hx = _rot(hd, np.pi / 2)  # across the head
    face = j["face"]
    if front:
        canvas.part(_ellipse_pts(face, r["head_x"], r["head_y"], hx, hd), _HEAD, skin)
        t = np.linspace(0.15 * np.pi, 0.85 * np.pi, 12)
        cap = face + np.outer(r["head_x"] * 1.02 * np.cos(t), hx) + np.outer(r["head_y"] * 1.02 * np.sin(t), hd)
        canvas.mark(np.concatenate([cap, [face + hd * 0.45 * r["head_y"]]]), hair)
        eye_r = max(0.6, 0.16 * r["head_x"])
        for sx in (-1, 1):
            canvas.mark(
                _ellipse_pts(face + hx * sx * 0.4 * r["head_x"] + hd * 0.1 * r["head_y"], eye_r, eye_r, hx, hd, 8),
                (25, 20, 20),
            )
        m0 = face - hd * 0.5 * r["head_y"]
        canvas.mark(
            [
                m0 - hx * 0.35 * r["head_x"],
                m0 + hx * 0.35 * r["head_x"],
                m0 + hx * 0.3 * r["head_x"] - hd * 0.12 * r["head_y"],
                m0 - hx * 0.3 * r["head_x"] - hd * 0.12 * r["head_y"],
            ],
            (140, 40, 45),
        )
    else:
        for sx in (-1, 1):  # ears
            canvas.part(
                _ellipse_pts(face + hx * sx * r["head_x"], 0.25 * r["head_x"], 0.35 * r["head_y"], hx, hd, 8),
                _HEAD,
                skin,
            )
        canvas.part(_ellipse_pts(face, r["head_x"], r["head_y"], hx, hd), _HEAD, hair)
    if front:
        for s in sides:
            arm(s)
    return canvas, kps


# --------------------------------------------------------------------------- background
def _distractor(rng: np.random.Generator, draw: ImageDraw.ImageDraw, h: int, w: int) -> None:
    """An unannotated limb-like capsule in a skin or clothing colour, outlined like a limb."""
    s = min(h, w)
    length = rng.uniform(0.05, 0.3) * s
    radius = max(1.5, rng.uniform(0.012, 0.04) * s)
    p = rng.uniform([0, 0], [w, h])
    q = p + length * _rot(np.array([1.0, 0.0]), rng.uniform(0, 2 * np.pi))
    col = _skin_colour(rng) if rng.random() < 0.5 else _rand_colour(rng, (0.15, 0.95), (0.2, 0.95))
    pts = _capsule_pts(p, q, radius, radius * rng.uniform(0.7, 1.0)) - 0.5
    draw.polygon([tuple(x) for x in pts], fill=_rgb(col), outline=_rgb(col * 0.55))


def _background(rng: np.random.Generator, h: int, w: int) -> Image.Image:
    """A cluttered RGB background: gradient, colour noise, shapes, stripes, distractors."""
    # a linear gradient plus colour noise, built on a coarse grid and upsampled bilinearly
    c0, c1 = _rand_colour(rng), _rand_colour(rng)
    a = rng.uniform(0, 2 * np.pi)
    gh, gw = rng.integers(2, 12, size=2)
    gy, gx = np.mgrid[0:gh, 0:gw]
    t = gx / max(1, gw - 1) * math.cos(a) + gy / max(1, gh - 1) * math.sin(a)
    t = (t - t.min()) / max(1e-6, float(t.max() - t.min()))
    alpha = rng.uniform(0.1, 0.6)
    grid = (1 - alpha) * (c0 + t[..., None] * (c1 - c0)) + alpha * rng.uniform(0, 255, (gh, gw, 3))
    im = Image.fromarray(grid.astype(np.uint8)).resize((w, h), Image.Resampling.BILINEAR)
    for _ in range(rng.integers(0, 4)):  # textured patches (fine colour noise, blocky or smooth)
        pw, ph = (rng.uniform(0.1, 0.6, 2) * (w, h)).astype(int) + 1
        cells = rng.integers(4, 24)
        base = _rand_colour(rng)
        tex = base + rng.uniform(-60, 60, (cells, cells, 3))
        patch = Image.fromarray(np.clip(tex, 0, 255).astype(np.uint8)).resize(
            (pw, ph), Image.Resampling.NEAREST if rng.random() < 0.5 else Image.Resampling.BILINEAR
        )
        im.paste(patch, (int(rng.integers(-pw // 2, w)), int(rng.integers(-ph // 2, h))))
    draw = ImageDraw.Draw(im)
    s = min(h, w)
    if rng.random() < 0.3:  # stripes
        col, period, width = _rand_colour(rng), rng.uniform(0.03, 0.15) * s, rng.integers(1, 6)
        ang = rng.uniform(0, np.pi)
        nrm = np.array([math.cos(ang), math.sin(ang)])
        tan = np.array([-nrm[1], nrm[0]])
        centre = np.array([w / 2, h / 2])
        for k in np.arange(-s, s, period):
            p, q = centre + nrm * k - tan * 2 * s, centre + nrm * k + tan * 2 * s
            draw.line([tuple(p), tuple(q)], fill=_rgb(col), width=int(width))
    for _ in range(rng.integers(3, 25)):
        fill = _rgb(_rand_colour(rng))
        kind = rng.integers(4)
        c = rng.uniform([0, 0], [w, h])
        ext = rng.uniform(0.02, 0.35, size=2) * s
        if kind == 0:
            draw.rectangle([tuple(c - ext), tuple(c + ext)], fill=fill)
        elif kind == 1:
            draw.ellipse([tuple(c - ext), tuple(c + ext)], fill=fill)
        elif kind == 2:
            pts = c + rng.uniform(-1, 1, (rng.integers(3, 7), 2)) * ext
            draw.polygon([tuple(p) for p in pts], fill=fill)
        else:
            draw.line(
                [tuple(c - ext), tuple(c + ext * rng.choice([-1, 1], 2))],
                fill=fill,
                width=int(rng.integers(1, max(2, s // 40))),
            )
    for _ in range(rng.integers(0, 6)):
        _distractor(rng, draw, h, w)
    return im


# --------------------------------------------------------------------------- scenes
def render_scene(
    rng: np.random.Generator,
    height: int,
    width: int,
    source_id: str = "synthetic_000000",
    min_person_height: Optional[float] = None,
) -> schema.ImageRecord:
    """Renders one random scene.

    Args:
      rng: the generator all randomness is drawn from (the result is a pure function of its state).
      height, width: image size in pixels.
      source_id: ``image/source_id`` of the record.
      min_person_height: smallest person height in pixels (default ``max(24, 0.16 * min(H, W))``,
        i.e. ~40 px at 256); the largest is ``1.1 * min(H, W)``.

    Returns:
      An :class:`schema.ImageRecord` with a PNG image and 0..6 persons (``parts`` uint8 (H, W)
      bit fields, ``bbox`` tight on the visible body, ``parts_valid`` all 1, keypoints (15, 3)
      as described in the module docstring), in depth order back to front.
    """
    s = min(height, width)
    hmin = float(min_person_height) if min_person_height else max(24.0, 0.16 * s)
    hmax = max(hmin, 1.1 * s)
    im = _background(rng, height, width)
    img = np.array(im)
    owner = np.full((height, width), -1, np.int16)  # index of the visible person, -1 = background
    label = np.zeros((height, width), np.uint8)  # channel index of the visible part
    placed: List[Tuple[np.ndarray, int]] = []  # (keypoints, in-image area) per person
    n_target = rng.choice(len(PERSON_COUNT_PROBS), p=PERSON_COUNT_PROBS)
    min_pixels = max(60.0, 0.08 * hmin * hmin)
    for _ in range(n_target):
        for _try in range(8):
            h = math.exp(rng.uniform(math.log(hmin), math.log(hmax)))
            pelvis = rng.uniform([-0.1 * width, -0.1 * height + 0.2 * h], [1.1 * width, 1.1 * height - 0.2 * h])
            canvas, kps = _draw_person(rng, h, pelvis, front=bool(rng.random() < 0.5))
            lab = np.asarray(canvas.label)
            ox, oy = int(canvas.origin[0]), int(canvas.origin[1])
            x0, y0 = max(ox, 0), max(oy, 0)
            x1, y1 = min(ox + lab.shape[1], width), min(oy + lab.shape[0], height)
            if x1 <= x0 or y1 <= y0:
                continue
            crop = lab[y0 - oy : y1 - oy, x0 - ox : x1 - ox]
            mask = crop > 0
            area = int(mask.sum())
            if area < max(min_pixels, 0.4 * np.count_nonzero(lab)):
                continue  # mostly outside the image
            under = owner[y0:y1, x0:x1][mask]
            hidden = np.bincount(under[under >= 0], minlength=len(placed))
            visible = np.bincount(owner[owner >= 0], minlength=len(placed))
            if any(visible[i] - hidden[i] < max(min_pixels, 0.45 * placed[i][1]) for i in range(len(placed))):
                continue  # would hide too much of a person behind
            reg = (slice(y0, y1), slice(x0, x1))
            img[reg][mask] = np.asarray(canvas.colour)[y0 - oy : y1 - oy, x0 - ox : x1 - ox][mask]
            owner[reg][mask] = len(placed)
            label[reg][mask] = crop[mask]
            placed.append((kps, area))
            break
    if rng.random() < 0.5:  # sensor noise on half of the images
        noise = rng.standard_normal(img.shape, dtype=np.float32) * np.float32(rng.uniform(1, 5))
        img = np.clip(img + noise, 0, 255).astype(np.uint8)
    persons = [
        schema.make_person(
            _person_parts(owner, label, i), [1] * constants.NUM_CHANNELS, _visibility(kps, owner, label, i)
        )
        for i, (kps, _) in enumerate(placed)
    ]
    return schema.ImageRecord(
        image_bytes=schema.encode_png(img),
        image_format=b"png",
        height=height,
        width=width,
        source_id=source_id,
        dataset=DATASET,
        persons=persons,
    )


def _person_parts(owner: np.ndarray, label: np.ndarray, i: int) -> np.ndarray:
    """uint8 (H, W) parts bit field of person ``i``: body bit + the bit of its visible part."""
    sel = owner == i
    parts = np.zeros(owner.shape, np.uint8)
    parts[sel] = 1 | (np.left_shift(1, label[sel])).astype(np.uint8)
    return parts


def _visibility(kps: np.ndarray, owner: np.ndarray, label: np.ndarray, i: int) -> np.ndarray:
    """Keypoints of person ``i`` with v: 2 on its own matching part, 1 hidden, (0, 0, 0) outside."""
    kps = kps.copy()
    h, w = owner.shape
    for k in range(constants.NUM_KEYPOINTS):
        x, y = kps[k, :2]
        if not (0 <= x < w and 0 <= y < h):
            kps[k] = 0
            continue
        c, r = int(x), int(y)
        seen = owner[r, c] == i and _KP_CHANNEL_LUT[k, label[r, c]]
        kps[k, 2] = constants.KP_VISIBLE if seen else constants.KP_OCCLUDED
    return kps


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of image ``index`` of ``split`` (see the module docstring)."""
    if split not in SPLIT_KEYS:
        raise ValueError(f"split {split!r} is not one of {tuple(SPLIT_KEYS)}")
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(SPLIT_KEYS[split], int(index))))


def source_id(split: str, index: int) -> str:
    return f"{DATASET}_{split}_{index:06d}"


def render_image(seed: int, split: str, index: int, height: int, width: int) -> schema.ImageRecord:
    """Image ``index`` of ``split``: a pure function of its arguments."""
    return render_scene(image_rng(seed, split, index), height, width, source_id(split, index))


def generate(
    num: int, seed: int = 0, height: int = 256, width: int = 256, split: str = "train", start: int = 0
) -> Iterator[schema.ImageRecord]:
    """Yields images ``start .. start + num - 1`` of ``split`` (deterministic, in-process)."""
    for i in range(start, start + num):
        yield render_image(seed, split, i, height, width)
