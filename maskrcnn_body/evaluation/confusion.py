"""Left/right confusion of limb masks (numpy only).

For every detection matched to a ground-truth person (greedy on box IoU >= 0.5, by decreasing
score) and every limb pair (arm = channels 3/4, leg = 5/6) whose two sides are both annotated and
not both empty in the ground truth: each *non-empty* predicted side-limb mask is one case, and the
case is *confused* when it overlaps (pixel count) the ground-truth limb of the opposite side more
than the same side. The figure is confused / cases (None without cases): about 0 for a model that
knows its sides, about 1 for one that has them swapped. Both the predicted left and the predicted
right limb are cases (the figure is symmetric under a mirror of the whole data set).
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from maskrcnn_body import constants
from maskrcnn_body.evaluation import matching
from maskrcnn_body.evaluation.prepared import PreparedImage

LIMBS = {
    "arm": (constants.CHANNEL_INDEX["left_arm"], constants.CHANNEL_INDEX["right_arm"]),
    "leg": (constants.CHANNEL_INDEX["left_leg"], constants.CHANNEL_INDEX["right_leg"]),
}
MATCH_IOU = 0.5


class LeftRightConfusion:
    """Accumulates :class:`PreparedImage` s; :meth:`result` gives ``{"arm", "leg"}``."""

    def __init__(self):
        self.cases = dict.fromkeys(LIMBS, 0)
        self.confused = dict.fromkeys(LIMBS, 0)

    def add(self, img: PreparedImage) -> None:
        match = matching.greedy_match(img.box_iou, img.scores, MATCH_IOU)
        for r in np.flatnonzero(match >= 0):
            g = match[r]
            for name, limb_pair in LIMBS.items():
                pair = list(limb_pair)
                if not img.gt_valid[g, pair].all() or not img.gt_area[g, pair].any():
                    continue
                for k in pair:
                    if img.pred_area[r, k] > 0:
                        self.cases[name] += 1
                        self.confused[name] += int(img.inter_flip[r, g, k] > img.inter[r, g, k])

    def result(self) -> Dict[str, Optional[float]]:
        return {n: (self.confused[n] / self.cases[n] if self.cases[n] else None) for n in LIMBS}
