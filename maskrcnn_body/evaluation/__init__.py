"""Offline evaluation of dumps (numpy + pycocotools only; never imports TensorFlow).

``dumps`` (npz format), ``paste`` (pasting rule), ``metrics`` (COCO box/mask AP), ``parsing``
(mIoU, APp, PCP), ``keypoints`` (OKS AP, PCK), ``confusion`` (left/right), ``legacy`` (the
original's metric), ``report`` (table / JSON), ``evaluator`` (one pass computing all of them).
"""

from maskrcnn_body.evaluation.evaluator import EvaluationResult, evaluate, evaluate_dir, run_metrics

__all__ = ["EvaluationResult", "evaluate", "evaluate_dir", "run_metrics"]
