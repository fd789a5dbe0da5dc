"""Drawing people: part overlays with a legend, body outlines, boxes with scores, skeletons.

numpy + PIL only (no TensorFlow). Colours come from ``constants.PART_COLOURS``; a skeleton
segment takes the colour of the limb it belongs to (left arm segments in the left-arm colour,
etc.; face-neck-belly in white), so a skeleton or a mask drawn on the wrong side shows up as a
colour mismatch. Coordinates follow ``constants`` (pixel-edge frame; a joint at ``(x, y)`` is
drawn at ``(x, y) * scale`` of the upscaled picture).
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from maskrcnn_body import constants
from maskrcnn_body.data.schema import unpack_channels
from maskrcnn_body.evaluation import paste

PART_ALPHA = 0.6
BODY_TINT = (255, 255, 255)  # body pixels outside every part: light tint
BODY_ALPHA = 0.2
OUTLINE = (255, 255, 255)
BOX = (255, 255, 0)
CENTRE = (255, 255, 255)  # skeleton segments on the body's mid-line
LEGEND_BG = (32, 32, 32)
ARM_JOINTS = ("shoulder", "elbow", "wrist")


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


def overlay_parts(image: np.ndarray, pasted: np.ndarray, scores: Optional[Sequence[float]] = None) -> np.ndarray:
    """uint8 (H, W, 3): ``image`` with parts coloured (``paste.part_label_map`` resolves overlaps),
    body pixels outside parts lightly tinted and every person's body outlined.

    Args:
      image: uint8 (H, W, 3) RGB.  pasted: bool (N, H, W, 7).  scores: (N,) or None.
    """
    out = image.astype(np.float32)
    labels = paste.part_label_map(pasted, scores)
    for k, colour in constants.PART_COLOURS.items():
        m = labels == k
        out[m] = (1 - PART_ALPHA) * out[m] + PART_ALPHA * np.asarray(colour, np.float32)
    m = labels == paste.BODY_ONLY
    out[m] = (1 - BODY_ALPHA) * out[m] + BODY_ALPHA * np.asarray(BODY_TINT, np.float32)
    for body in pasted[..., constants.BODY]:
        out[_outline(body)] = OUTLINE
    return np.clip(out, 0, 255).astype(np.uint8)


def draw_people(
    image: np.ndarray,
    pasted: np.ndarray,
    boxes: Optional[np.ndarray] = None,
    scores: Optional[Sequence[float]] = None,
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
    pic = Image.fromarray(overlay_parts(image, pasted, scores)).resize((w * scale, h * scale), Image.NEAREST)
    d = ImageDraw.Draw(pic)
    f = font(max(10, 4 * scale))
    line = max(1, scale)
    n = pasted.shape[0]
    for i in range(n if boxes is not None else 0):
        x1, y1, x2, y2 = (float(v) * scale for v in boxes[i])
        d.rectangle([x1, y1, max(x1, x2 - 1), max(y1, y2 - 1)], outline=BOX, width=line)  # boxes under 1 px too
        if scores is not None:
            text = f"{float(scores[i]):.2f}"
            tb = d.textbbox((x1, y1), text, font=f)
            ty = y1 - (tb[3] - tb[1]) - 2 if y1 - (tb[3] - tb[1]) - 2 >= 0 else y1
            tb = d.textbbox((x1, ty), text, font=f)
            d.rectangle(tb, fill=(0, 0, 0))
            d.text((x1, ty), text, fill=BOX, font=f)
    if keypoints is not None:
        kp = np.asarray(keypoints, np.float64)[..., :2] * scale
        vis = np.ones(kp.shape[:2], bool) if keypoint_visible is None else np.asarray(keypoint_visible, bool)
        r = max(2, 1.5 * scale)
        for p in range(kp.shape[0]):
            for a, b in constants.SKELETON_INDEX:
                if vis[p, a] and vis[p, b]:
                    seg = [tuple(kp[p, a]), tuple(kp[p, b])]
                    d.line(seg, fill=(0, 0, 0), width=line + 2)
                    d.line(seg, fill=segment_colour(a, b), width=line)
            for j in np.flatnonzero(vis[p]):
                x, y = kp[p, j]
                d.ellipse([x - r, y - r, x + r, y + r], fill=joint_colour(constants.KEYPOINTS[j]), outline=(0, 0, 0))
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
    rows, row, used = [], [], 0
    for it in items:
        if row and used + it[2] > pic.width - 8:
            rows.append(row)
            row, used = [], 0
        row.append(it)
        used += it[2]
    rows.append(row)
    row_h = sw + 8
    out = Image.new("RGB", (pic.width, pic.height + row_h * len(rows) + 4), LEGEND_BG)
    out.paste(pic, (0, 0))
    d = ImageDraw.Draw(out)
    for ri, row in enumerate(rows):
        x, y = 6, pic.height + 4 + ri * row_h
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
    channels are not drawn), ``gt_boxes`` (G, 4), ``gt_keypoints`` (G, 15, 3) (drawn where v > 0)."""
    pasted = unpack_channels(gt_parts) & (np.asarray(gt_valid) != 0)[:, None, None, :]
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
