"""One pass over the dumps computing every metric (numpy + pycocotools; no TensorFlow)."""

from __future__ import annotations

import dataclasses
from typing import Dict, Iterable, Tuple

import numpy as np

from maskrcnn_body.errors import InvalidArgument
from maskrcnn_body.evaluation import dumps as dumps_lib
from maskrcnn_body.evaluation.confusion import LeftRightConfusion
from maskrcnn_body.evaluation.keypoints import KeypointMetrics
from maskrcnn_body.evaluation.legacy import LegacyMetric
from maskrcnn_body.evaluation.metrics import BoxMaskAP
from maskrcnn_body.evaluation.parsing import ParsingMetrics
from maskrcnn_body.evaluation.prepared import prepare


@dataclasses.dataclass
class EvaluationResult:
    """``summary``: the metrics JSON (see ``report``); ``pr_curves``: ``{"box" | channel: {iou:
    (recall (101,), precision (101,))}}`` at IoU 0.5 and 0.75 (precision -1 = undefined);
    ``num_images``: how many dumps were read."""

    summary: Dict
    pr_curves: Dict[str, Dict[float, Tuple[np.ndarray, np.ndarray]]]
    num_images: int


def evaluate(dumps: Iterable[Dict]) -> EvaluationResult:
    """Evaluates dump dicts (``dumps.read_dump`` format); raises ValueError when there are none."""
    box_mask, parsing, kps, lr, legacy = (
        BoxMaskAP(),
        ParsingMetrics(),
        KeypointMetrics(),
        LeftRightConfusion(),
        LegacyMetric(),
    )
    n = 0
    for d in dumps:
        img = prepare(d)
        for acc in (box_mask, parsing, kps, lr, legacy):
            acc.add(img)
        n += 1
    if n == 0:
        raise InvalidArgument("evaluate: no dumps to evaluate")
    summary, curves = box_mask.result()
    summary.update(
        {
            "parsing": parsing.result(),
            "keypoints": kps.result(),
            "left_right_confusion": lr.result(),
            "legacy": legacy.result(),
        }
    )
    return EvaluationResult(summary=summary, pr_curves=curves, num_images=n)


def evaluate_dir(dump_dir: str) -> EvaluationResult:
    """:func:`evaluate` over every ``*.npz`` in ``dump_dir`` (FileNotFoundError when none)."""
    return evaluate(dumps_lib.iter_dumps(dump_dir))


def run_metrics(dump_dir: str) -> Dict:
    """The metrics JSON dict of every dump in ``dump_dir``."""
    return evaluate_dir(dump_dir).summary
