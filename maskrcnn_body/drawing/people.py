"""Drawing people: part overlays with a legend, body outlines, boxes with scores, skeletons.

:func:`render_detections` is the drawing of a model's answer (``Result.plot``, ``maskrcnn-body
predict``, the server's ``POST /v1/render``, annotated videos): the input's size, every option a
keyword. :func:`render_dump` / :func:`render_record` draw evaluation dumps and records (upscaled for
legibility, with the legend).

numpy + PIL only (no TensorFlow). Colours come from ``constants.PART_COLOURS``; a skeleton
segment takes the colour of the limb it belongs to (left arm segments in the left-arm colour,
etc.; face-neck-belly in white), so a skeleton or a mask drawn on the wrong side shows up as a
colour mismatch. Coordinates follow ``constants`` (pixel-edge frame; a joint at ``(x, y)`` is
drawn at ``(x, y) * scale`` of the upscaled picture).
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from maskrcnn_body import constants
from maskrcnn_body.data.schema import unpack_channels
from maskrcnn_body.ops import paste

PART_ALPHA = 0.6
BODY_TINT = (255, 255, 255)  # body pixels outside every part: light tint
BODY_ALPHA = 0.2
OUTLINE = (255, 255, 255)
BOX = (255, 255, 0)
CENTRE = (255, 255, 255)  # skeleton segments on the body's mid-line
LEGEND_BG = (32, 32, 32)
ARM_JOINTS = ("shoulder", "elbow", "wrist")
KEYPOINT_THRESHOLD = 0.05
"""Default ``kpt_thr`` of :func:`render_detections`: joints scoring below it are not drawn, nor the
skeleton segments touching them. A joint's score is the softmax probability of its heatmap's
arg-max cell (``model.postprocess.decode_keypoint_heatmaps``; a flat heatmap over K x K cells gives
1/K^2, 0.0003 at K = 56) or, for the regression head, the person's score; 0.05 is Detectron2's
default for its keypoint drawing (MMPose's demos use 0.3: pass ``kpt_thr=0.3`` for fewer, surer joints)."""
TRACK_COLOURS = (
    (255, 255, 0),
    (0, 255, 255),
    (255, 0, 255),
    (255, 160, 0),
    (0, 255, 120),
    (160, 120, 255),
    (255, 90, 120),
    (120, 220, 255),
    (200, 255, 80),
    (255, 200, 160),
)
"""Box colours of tracked people (by ``track_id``, cycling); untracked people get :data:`BOX`."""


def joint_colour(name: str):
    """RGB of a joint: the colour of its side's arm/leg part, white for neck/belly/face."""
    for side in ("left", "right"):
        if name.startswith(side + "_"):
            limb = "arm" if name.split("_", 1)[1] in ARM_JOINTS else "leg"
            return constants.PART_COLOURS[constants.CHANNEL_INDEX[f"{side}_{limb}"]]
    return CENTRE


def segment_colour(a: int, b: int):
    """RGB of skeleton segment (a, b) (keypoint indices): the colour of its sided joint, if any."""
    sided = [constants.KEYPOINTS[i] for i in (a, b) if constants.KEYPOINTS[i].startswith(("left_", "right_"))]
    return joint_colour(sided[-1]) if sided else CENTRE


def font(size: int = 12):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType sizing
        return ImageFont.load_default()


def _outline(mask: np.ndarray) -> np.ndarray:
    """bool (H, W): pixels of ``mask`` with a 4-neighbour outside it."""
    p = np.pad(mask, 1)
    inner = p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    return mask & ~inner


def track_colour(track_id: Optional[int]) -> Tuple[int, int, int]:
    """RGB of a tracked person's box and label: :data:`TRACK_COLOURS` by id; :data:`BOX` when None."""
    return BOX if track_id is None else TRACK_COLOURS[(int(track_id) - 1) % len(TRACK_COLOURS)]


def part_channels(parts: Union[bool, str, Iterable[str]]) -> Tuple[int, ...]:
    """The channel indices that ``parts`` selects: True = all 7 (0 = body: its light tint and the
    outline), False = none, a name or names from ``constants.CHANNELS`` = those. Unknown names raise
    ``ValueError`` naming the choices."""
    if parts is True:
        return tuple(range(constants.NUM_CHANNELS))
    if parts is False or parts is None:
        return ()
    names = [parts] if isinstance(parts, str) else list(parts)
    unknown = [n for n in names if n not in constants.CHANNEL_INDEX]
    if unknown:
        raise ValueError(
            f"parts: unknown channel(s) {unknown}; use True, False or names from {list(constants.CHANNELS)}"
        )
    return tuple(sorted({constants.CHANNEL_INDEX[n] for n in names}))


def overlay_crops(
    image: np.ndarray,
    crops: Sequence[paste.PastedCrop],
    scores: Optional[paste.Scores] = None,
    channels: Sequence[int] = tuple(range(constants.NUM_CHANNELS)),
    alpha: float = PART_ALPHA,
) -> np.ndarray:
    """uint8 (H, W, 3): ``image`` with the people's parts coloured at opacity ``alpha``
    (``paste.crops_label_map`` resolves overlaps), body pixels outside parts lightly tinted (at
    ``alpha * BODY_ALPHA / PART_ALPHA``) and every body outlined; only ``channels`` are drawn (0 = the
    tint and the outline).

    Args:
      image: uint8 (H, W, 3) RGB.  crops: bool :class:`~maskrcnn_body.ops.paste.PastedCrop` s
      (h, w, 7).  scores: (N,) or None (the person with the higher score wins overlaps).
    """
    if not channels or not len(crops):
        return np.array(image, np.uint8, copy=True)
    h, w = image.shape[:2]
    out = image.astype(np.float32)
    labels = paste.crops_label_map(crops, scores, h, w)
    for k, colour in constants.PART_COLOURS.items():
        if k in channels:
            m = labels == k
            out[m] = (1 - alpha) * out[m] + alpha * np.asarray(colour, np.float32)
    if constants.BODY in channels:
        body_alpha = BODY_ALPHA * alpha / PART_ALPHA
        m = labels == paste.BODY_ONLY
        out[m] = (1 - body_alpha) * out[m] + body_alpha * np.asarray(BODY_TINT, np.float32)
        for c in crops:
            ch, cw = c.values.shape[:2]
            region = out[c.y0 : c.y0 + ch, c.x0 : c.x0 + cw]  # a view: painted in place
            region[_outline(c.values[..., constants.BODY])] = OUTLINE
    return np.clip(out, 0, 255).astype(np.uint8)


def overlay_parts(image: np.ndarray, pasted: np.ndarray, scores: Optional[paste.Scores] = None) -> np.ndarray:
    """uint8 (H, W, 3): :func:`overlay_crops` of full-image masks.

    Args:
      image: uint8 (H, W, 3) RGB.  pasted: bool (N, H, W, 7).  scores: (N,) or None.
    """
    return overlay_crops(image, [paste.PastedCrop(0, 0, m) for m in np.asarray(pasted, bool)], scores)


def draw_boxes(
    d: ImageDraw.ImageDraw,
    boxes: np.ndarray,
    texts: Sequence[Optional[str]],
    colours: Sequence[Tuple[int, int, int]],
    line: int,
    f,
) -> None:
    """Boxes (N, 4) x1, y1, x2, y2 (in ``d``'s pixels) in ``colours``, each with its text (None: no
    label) on black, above the box (inside it at the top edge)."""
    for box, text, colour in zip(np.asarray(boxes, np.float64).reshape(-1, 4), texts, colours):
        x1, y1, x2, y2 = (float(v) for v in box)
        d.rectangle([x1, y1, max(x1, x2 - 1), max(y1, y2 - 1)], outline=colour, width=line)
        if text:
            tb = d.textbbox((x1, y1), text, font=f)
            ty = y1 - (tb[3] - tb[1]) - 2 if y1 - (tb[3] - tb[1]) - 2 >= 0 else y1
            tb = d.textbbox((x1, ty), text, font=f)
            d.rectangle(tb, fill=(0, 0, 0))
            d.text((x1, ty), text, fill=colour, font=f)


def draw_skeletons(d: ImageDraw.ImageDraw, keypoints: np.ndarray, visible: np.ndarray, line: int) -> None:
    """Skeleton segments (both joints visible) and joints of (N, 15, >=2) keypoints in ``d``'s
    pixels; ``visible`` bool (N, 15)."""
    kp = np.asarray(keypoints, np.float64)[..., :2]
    r = max(2.0, 1.5 * line)
    for p in range(kp.shape[0]):
        for a, b in constants.SKELETON_INDEX:
            if visible[p, a] and visible[p, b]:
                seg = [tuple(kp[p, a]), tuple(kp[p, b])]
                d.line(seg, fill=(0, 0, 0), width=line + 2)
                d.line(seg, fill=segment_colour(a, b), width=line)
        for j in np.flatnonzero(visible[p]):
            x, y = kp[p, j]
            d.ellipse([x - r, y - r, x + r, y + r], fill=joint_colour(constants.KEYPOINTS[j]), outline=(0, 0, 0))


def default_line_width(height: int, width: int) -> int:
    """Line width in pixels for an image of this size: 1 up to ~330 x 330, 2 at 640 x 480, 4 at
    1920 x 1080 (0.15% of height + width)."""
    return max(1, int(round(0.0015 * (height + width))))


def render_detections(
    image: np.ndarray,
    det: Dict[str, np.ndarray],
    track_ids: Optional[Sequence[Optional[int]]] = None,
    *,
    parts: Union[bool, str, Iterable[str]] = True,
    boxes: bool = True,
    keypoints: bool = True,
    kpt_thr: float = KEYPOINT_THRESHOLD,
    legend: bool = False,
    line_width: Optional[int] = None,
    alpha: float = PART_ALPHA,
) -> Image.Image:
    """The drawing of a model's detections, the size of ``image`` (plus the legend strip below when
    ``legend``).

    Args:
      image: uint8 (H, W, 3) RGB.
      det: ``boxes`` (R, 4) x1, y1, x2, y2, ``scores`` (R,), ``masks`` (R, M, M, 7) box-frame
        probabilities, ``keypoints`` (R, 15, 3) x, y, score, in ``image``'s pixels.
      track_ids: (R,) ints or None per person: drawn as ``#id`` before the score, the box in the
        track's colour (:func:`track_colour`).
      parts: which mask channels to draw (:func:`part_channels`: True, False, or names).
      boxes: boxes with their labels (score, track id).  keypoints: skeletons and joints.
      kpt_thr: joints scoring below this are left out (:data:`KEYPOINT_THRESHOLD`).
      legend: append the strip naming the part colours (the picture gets taller).
      line_width: pixels (default :func:`default_line_width`).  alpha: opacity of the part colours.
    """
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if line_width is not None and int(line_width) < 1:
        raise ValueError(f"line_width must be >= 1 pixel, got {line_width}")
    image = np.asarray(image, np.uint8)
    h, w = image.shape[:2]
    channels = part_channels(parts)
    box_arr = np.asarray(det["boxes"], np.float32).reshape(-1, 4)
    scores = np.asarray(det["scores"], np.float32).reshape(-1)
    n = len(box_arr)
    crops: List[paste.PastedCrop] = []
    if channels and n:
        crops = paste.paste_crops(np.asarray(det["masks"], np.float32), box_arr, h, w)
    pic = Image.fromarray(overlay_crops(image, crops, scores, channels, float(alpha)))
    d = ImageDraw.Draw(pic)
    line = int(line_width) if line_width is not None else default_line_width(h, w)
    ids = list(track_ids) if track_ids is not None else [None] * n
    if boxes and n:
        texts = [f"{scores[i]:.2f}" if ids[i] is None else f"#{ids[i]} {scores[i]:.2f}" for i in range(n)]
        f = font(max(10, int(round(0.02 * min(h, w))), 4 * line))
        draw_boxes(d, box_arr, texts, [track_colour(t) for t in ids], line, f)
    if keypoints and n:
        kp = np.asarray(det["keypoints"], np.float32).reshape(n, constants.NUM_KEYPOINTS, 3)
        draw_skeletons(d, kp, kp[..., 2] >= kpt_thr, line)
    return add_legend(pic) if legend else pic


def draw_people(
    image: np.ndarray,
    pasted: np.ndarray,
    boxes: Optional[np.ndarray] = None,
    scores: Optional[paste.Scores] = None,
    keypoints: Optional[np.ndarray] = None,
    keypoint_visible: Optional[np.ndarray] = None,
    title: Optional[str] = None,
    scale: int = 1,
) -> Image.Image:
    """One panel: parts + outlines (:func:`overlay_parts`), boxes (with scores when given),
    skeleton lines and joints, optional title; upscaled by the integer ``scale`` (nearest).

    Args:
      image: uint8 (H, W, 3).  pasted: bool (N, H, W, 7).  boxes: (N, 4) x1, y1, x2, y2.
      scores: (N,) or None.  keypoints: (N, 15, >=2) x, y.  keypoint_visible: bool (N, 15)
      (default: all joints).  scale: integer magnification for legibility of small images.
    """
    h, w = image.shape[:2]
    pic = Image.fromarray(overlay_parts(image, pasted, scores)).resize((w * scale, h * scale), Image.Resampling.NEAREST)
    d = ImageDraw.Draw(pic)
    f = font(max(10, 4 * scale))
    line = max(1, scale)
    n = pasted.shape[0]
    if boxes is not None:
        texts = [None if scores is None else f"{float(scores[i]):.2f}" for i in range(n)]
        draw_boxes(d, np.asarray(boxes, np.float64)[:n] * scale, texts, [BOX] * n, line, f)
    if keypoints is not None:
        kp = np.asarray(keypoints, np.float64)[..., :2] * scale
        vis = np.ones(kp.shape[:2], bool) if keypoint_visible is None else np.asarray(keypoint_visible, bool)
        draw_skeletons(d, kp, vis, line)
    if title:
        tb = d.textbbox((2, 2), title, font=f)
        d.rectangle(tb, fill=(0, 0, 0))
        d.text((2, 2), title, fill=(255, 255, 255), font=f)
    return pic


def add_legend(pic: Image.Image, font_size: int = 12) -> Image.Image:
    """``pic`` with a strip below naming the six part colours (wrapped to the picture width)."""
    f = font(font_size)
    probe = ImageDraw.Draw(pic)
    sw = font_size  # swatch size
    items = []
    for k, colour in constants.PART_COLOURS.items():
        name = constants.CHANNELS[k].replace("_", " ")
        tw = probe.textbbox((0, 0), name, font=f)[2]
        items.append((name, colour, sw + 4 + tw + 12))
    rows: List[List[Tuple[str, Tuple[int, int, int], float]]] = []
    row: List[Tuple[str, Tuple[int, int, int], float]] = []
    used = 0.0
    for it in items:
        if row and used + it[2] > pic.width - 8:
            rows.append(row)
            row, used = [], 0.0
        row.append(it)
        used += it[2]
    rows.append(row)
    row_h = sw + 8
    out = Image.new("RGB", (pic.width, pic.height + row_h * len(rows) + 4), LEGEND_BG)
    out.paste(pic, (0, 0))
    d = ImageDraw.Draw(out)
    for ri, row in enumerate(rows):
        x, y = 6.0, pic.height + 4 + ri * row_h
        for name, colour, width in row:
            d.rectangle([x, y, x + sw, y + sw], fill=colour, outline=(255, 255, 255))
            d.text((x + sw + 4, y), name, fill=(255, 255, 255), font=f)
            x += width
    return out


def auto_scale(height: int, width: int, min_size: int = 256) -> int:
    """Integer magnification so the shorter image side reaches ``min_size`` (at least 1)."""
    return max(1, int(np.ceil(min_size / max(1, min(height, width)))))


def ground_truth_panel(
    image: np.ndarray,
    gt_parts: np.ndarray,
    gt_valid: np.ndarray,
    gt_boxes: np.ndarray,
    gt_keypoints: np.ndarray,
    scale: int,
    title: Optional[str] = "ground truth",
) -> Image.Image:
    """Ground-truth panel: ``gt_parts`` uint8 (G, H, W) bit fields, ``gt_valid`` (G, 7) (unannotated
    parts are not drawn; an unannotated body's bit, the union of the person's parts, still places them),
    ``gt_boxes`` (G, 4), ``gt_keypoints`` (G, 15, 3) (drawn where v > 0)."""
    shown = np.asarray(gt_valid) != 0
    shown[..., constants.BODY] = True
    pasted = unpack_channels(gt_parts) & shown[:, None, None, :]
    kp = np.asarray(gt_keypoints)
    return draw_people(
        image, pasted, boxes=gt_boxes, keypoints=kp, keypoint_visible=kp[..., 2] > 0, title=title, scale=scale
    )


def prediction_panel(
    dump: Dict, score_threshold: float, scale: int, title: Optional[str] = "prediction"
) -> Image.Image:
    """Prediction panel of a dump: detections with score >= ``score_threshold``, pasted with the
    ``paste`` rules, with their scores and all their joints."""
    h, w = dump["image"].shape[:2]
    keep = np.flatnonzero(np.asarray(dump["scores"]) >= score_threshold)
    pasted = paste.paste_masks(dump["masks"][keep], dump["boxes"][keep], h, w)
    return draw_people(
        dump["image"],
        pasted,
        boxes=dump["boxes"][keep],
        scores=dump["scores"][keep],
        keypoints=dump["keypoints"][keep],
        title=title,
        scale=scale,
    )


def render_dump(
    dump: Dict, side_by_side: bool = False, score_threshold: float = 0.5, min_size: int = 256
) -> Image.Image:
    """The picture of one dump (``evaluation.dumps`` format): the prediction, or ground truth |
    prediction when ``side_by_side``, with the part legend below."""
    h, w = dump["image"].shape[:2]
    s = auto_scale(h, w, min_size)
    pred = prediction_panel(dump, score_threshold, s, title="prediction" if side_by_side else None)
    if not side_by_side:
        return add_legend(pred)
    gt = ground_truth_panel(
        dump["image"], dump["gt_parts"], dump["gt_valid"], dump["gt_boxes"], dump["gt_keypoints"], s
    )
    gap = 4
    both = Image.new("RGB", (gt.width + gap + pred.width, gt.height), LEGEND_BG)
    both.paste(gt, (0, 0))
    both.paste(pred, (gt.width + gap, 0))
    return add_legend(both)


def render_record(record, min_size: int = 256) -> Image.Image:
    """Ground truth of a ``data.schema.ImageRecord`` (parts, boxes, skeleton) with the legend."""
    image = record.decode_image()
    h, w = image.shape[:2]

    def stack(attr, shape):
        return np.asarray([getattr(p, attr) for p in record.persons]).reshape((len(record.persons),) + shape)

    panel = ground_truth_panel(
        image,
        stack("parts", (h, w)).astype(np.uint8),
        stack("parts_valid", (constants.NUM_CHANNELS,)),
        stack("bbox", (4,)),
        stack("keypoints", (constants.NUM_KEYPOINTS, 3)),
        auto_scale(h, w, min_size),
        title=f"{record.dataset}: {record.source_id}",
    )
    return add_legend(panel)
