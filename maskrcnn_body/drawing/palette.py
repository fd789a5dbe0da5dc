"""The drawing constants as JSON: what the two web pages need to draw exactly like
:func:`maskrcnn_body.drawing.people.draw_people` (colours, names, priorities, skeleton, thresholds).
Used by the server's page (:mod:`maskrcnn_body.serving.web`) and the in-browser page
(:mod:`maskrcnn_body.workflows.web_page`)."""

from __future__ import annotations

from maskrcnn_body import constants
from maskrcnn_body.drawing import people as draw
from maskrcnn_body.ops import paste


def page_constants() -> dict:
    """Channel names and part priority of the pasting rule, part colours and alphas, body tint, outline and
    box colours, keypoint names and colours, the skeleton with its segment colours, the keypoint threshold."""
    return {
        "channels": list(constants.CHANNELS),
        "part_priority": list(paste.PART_PRIORITY),
        "body_only": paste.BODY_ONLY,
        "part_colours": {str(k): list(v) for k, v in constants.PART_COLOURS.items()},
        "part_alpha": draw.PART_ALPHA,
        "body_tint": list(draw.BODY_TINT),
        "body_alpha": draw.BODY_ALPHA,
        "outline": list(draw.OUTLINE),
        "box": list(draw.BOX),
        "keypoints": list(constants.KEYPOINTS),
        "joint_colours": [list(draw.joint_colour(name)) for name in constants.KEYPOINTS],
        "skeleton": [[a, b, list(draw.segment_colour(a, b))] for a, b in constants.SKELETON_INDEX],
        "kpt_thr": draw.KEYPOINT_THRESHOLD,
    }
