"""The per-configuration figure: ROC and precision-recall curves with the chosen operating points.

Curves are drawn from the same pairs the threshold-free metrics use; the markers show where the
fitted threshold (and Youden's) sit on those curves. Matplotlib runs headless (Agg), imported on
first use.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from defacebench.metrics.distance import DistanceMatrix
from defacebench.metrics.evaluate import Evaluation
from defacebench.metrics.pairs import make_pairs
from defacebench.util.fsutil import atomic_write_bytes


def _operating_point(genuine: np.ndarray, distance: np.ndarray, value: float) -> tuple[float, float, float]:
    """(FPR, TPR, precision) of 'finite distance <= value' on the pairs."""
    match = np.isfinite(distance) & (distance <= value)
    tp = float((match & genuine).sum())
    fp = float((match & ~genuine).sum())
    tpr = tp / max(genuine.sum(), 1)
    fpr = fp / max((~genuine).sum(), 1)
    precision = tp / (tp + fp) if tp + fp else 0.0
    return fpr, tpr, precision


def plot_roc_prc(path: Path, matrix: DistanceMatrix, evaluation: Evaluation, *, title: str = "") -> Path:
    """Write ``roc_prc.png``: ROC (left) and precision-recall (right) with operating points."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve, roc_curve

    curve_matrix = matrix.subset(evaluation.split.calibration_ids) if evaluation.threshold_free_on != "all" else matrix
    pairs = make_pairs(curve_matrix)
    raw = curve_matrix.values.ravel()
    fpr, tpr, _ = roc_curve(pairs.genuine, -pairs.distance)
    prec, rec, _ = precision_recall_curve(pairs.genuine, -pairs.distance)
    fig, (ax_roc, ax_pr) = plt.subplots(1, 2, figsize=(9, 4), dpi=100)
    ax_roc.plot(fpr, tpr, color="C0", label=f"ROC (AUC {evaluation.roc_auc:.3f})")
    ax_roc.plot([0, 1], [0, 1], color="0.7", ls="--", lw=1, label="chance")
    ax_pr.plot(rec, prec, color="C0", label=f"PR (AP {evaluation.average_precision:.3f})")
    ax_pr.axhline(pairs.genuine.mean(), color="0.7", ls="--", lw=1, label="chance")
    points = [(evaluation.threshold.value, f"{evaluation.policy} threshold", "C3", "o")]
    if np.isfinite(evaluation.youden_threshold):
        points.append((evaluation.youden_threshold, "Youden threshold", "C2", "s"))
    for value, label, color, marker in points:
        if not np.isfinite(value):
            continue
        x, y, p = _operating_point(pairs.genuine, raw, value)
        ax_roc.plot([x], [y], marker=marker, color=color, ls="", label=f"{label} {value:.3g}")
        ax_pr.plot([y], [p], marker=marker, color=color, ls="", label=f"{label} {value:.3g}")
    ax_roc.set(xlabel="false accept rate", ylabel="true accept rate", xlim=(0, 1), ylim=(0, 1.02))
    ax_pr.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
    for ax in (ax_roc, ax_pr):
        ax.legend(loc="lower right", fontsize=7)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return atomic_write_bytes(Path(path), buf.getvalue())  # a full disk leaves no truncated png
