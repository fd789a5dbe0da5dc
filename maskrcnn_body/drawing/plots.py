"""Matplotlib figures of the metrics: PR curves per channel and a per-part AP bar chart.

Uses ``matplotlib.figure.Figure`` with the Agg canvas directly (no pyplot, no global backend
switch, no display needed). No TensorFlow.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Dict, List, Optional

import numpy as np

from maskrcnn_body import constants
from maskrcnn_body.errors import optional_import

if TYPE_CHECKING:
    import matplotlib.figure

_PURPOSE = "plotting the metrics (PR curves, AP bars)"
FigureCanvasAgg = optional_import("matplotlib.backends.backend_agg", "eval", _PURPOSE).FigureCanvasAgg
Figure = optional_import("matplotlib.figure", "eval", _PURPOSE).Figure

BODY_COLOUR = (0.0, 0.0, 0.0)
BOX_COLOUR = (0.5, 0.5, 0.5)


def channel_colour(name: str):
    """Matplotlib RGB of a channel (part colours from ``constants``; body black; box grey)."""
    if name == "box":
        return BOX_COLOUR
    k = constants.CHANNEL_INDEX[name]
    return BODY_COLOUR if k == constants.BODY else tuple(v / 255.0 for v in constants.PART_COLOURS[k])


def _percent(values) -> List[float]:
    """AP values in [0, 1] or None -> percent, None drawn as 0 (and labelled n/a)."""
    return [0.0 if v is None else 100.0 * v for v in values]


def _save(fig: matplotlib.figure.Figure, path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path


def plot_pr_curves(pr_curves: Dict, path: str, summary: Optional[Dict] = None) -> str:
    """One figure, one panel per channel (person boxes + the 7 mask channels): COCO
    precision-recall curves at each IoU of ``EvaluationResult.pr_curves`` (solid 0.5, dashed 0.75).
    A panel without ground truth says so. ``summary`` adds the AP to each panel title."""
    names = ("box",) + constants.CHANNELS
    fig = Figure(figsize=(13, 6.5))
    for i, name in enumerate(names):
        ax = fig.add_subplot(2, 4, i + 1)
        label = "person box" if name == "box" else name.replace("_", " ")
        ap = None if summary is None else (summary["box"] if name == "box" else summary["mask"][name])["AP"]
        ax.set_title(label + ("" if ap is None else f"  (AP {100 * ap:.1f})"), fontsize=10)
        for iou, style in zip(sorted(pr_curves.get(name, {})), ("-", "--", ":")):
            recall, precision = (np.asarray(a) for a in pr_curves[name][iou])
            if (precision < 0).all():
                ax.text(0.5, 0.5, "no ground truth", ha="center", va="center", transform=ax.transAxes)
                break
            ax.plot(
                recall,
                np.clip(precision, 0, None),
                style,
                color=channel_colour(name),
                linewidth=1.8,
                label=f"IoU {iou:.2f}",
            )
        ax.set(xlim=(0, 1), ylim=(0, 1.03))
        ax.grid(True, alpha=0.3)
        if i % 4 == 0:
            ax.set_ylabel("precision")
        if i >= 4:
            ax.set_xlabel("recall")
        if ax.lines:
            ax.legend(loc="lower left", fontsize=7)
    fig.suptitle("Precision-recall (COCO, 101 recall points, area all, 100 detections per image)")
    fig.tight_layout()
    return _save(fig, path)


def plot_part_ap(summary: Dict, path: str) -> str:
    """Bar chart of COCO mask AP and AP50 per channel (``summary["mask"]``), in percent."""
    names = list(constants.CHANNELS) + ["complete"]
    ap = [summary["mask"][n]["AP"] for n in names]
    ap50 = [summary["mask"][n]["AP50"] for n in names]
    x = np.arange(len(names))
    colours = [channel_colour(n) if n != "complete" else (0.3, 0.3, 0.8) for n in names]
    fig = Figure(figsize=(8, 4))
    ax = fig.add_subplot(1, 1, 1)
    ax.bar(x - 0.2, _percent(ap), 0.4, color=colours, edgecolor="black", label="AP")
    ax.bar(x + 0.2, _percent(ap50), 0.4, color=colours, edgecolor="black", hatch="//", alpha=0.6, label="AP50")
    for xi, v, h in zip(x, ap, _percent(ap)):
        ax.text(xi - 0.2, h + 1, "n/a" if v is None else f"{h:.0f}", ha="center", fontsize=7)
    ax.set_xticks(x, [n.replace("_", "\n") for n in names], fontsize=8)
    ax.set(ylim=(0, 110), ylabel="mask AP (%)", title="COCO mask AP per channel")
    ax.legend(fontsize=8)
    return _save(fig, path)


def save_plots(result, out_dir: str) -> List[str]:
    """Writes ``pr_curves.png`` and ``part_ap.png`` of an ``evaluation.EvaluationResult``."""
    return [
        plot_pr_curves(result.pr_curves, os.path.join(out_dir, "pr_curves.png"), result.summary),
        plot_part_ap(result.summary, os.path.join(out_dir, "part_ap.png")),
    ]
