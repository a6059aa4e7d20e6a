"""Threshold-free verification metrics: ROC AUC, average precision, EER, TAR at fixed FAR.

All of them delegate the curve to scikit-learn (``roc_curve`` with every threshold kept,
``roc_auc_score``, ``average_precision_score``) on the score ``-distance`` (smaller distance = more
similar = higher score). +inf cells get a finite stand-in beyond every finite distance (see
:mod:`.pairs`), so they are the last to be accepted and never help a curve except at FAR = 1.

EER is read off the ROC polyline: the point where the false-reject rate (1 - TPR) equals the
false-accept rate, linearly interpolated on the segment where 1 - TPR - FPR changes sign.
TAR at FAR x is the highest TPR among ROC points with FPR <= x whose threshold is a finite distance
(a conservative step read, never interpolated), so it is monotone in x.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from defacebench.metrics.pairs import Pairs

FARS: tuple[float, ...] = (1e-1, 1e-2, 1e-3)


def far_key(far: float) -> str:
    """The JSON key of a FAR: 0.1 -> "0.1", 1e-3 -> "0.001"."""
    return format(far, "f").rstrip("0").rstrip(".") if far < 1 else str(far)


@dataclass(frozen=True)
class Verification:
    """Threshold-free verification results of one matrix."""

    roc_auc: float
    average_precision: float
    eer: float
    tar_at_far: Mapping[str, float]


def roc_points(pairs: Pairs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, distance threshold) at every distinct distance, via sklearn's roc_curve."""
    from sklearn.metrics import roc_curve

    fpr, tpr, thr = roc_curve(pairs.genuine, -pairs.distance, drop_intermediate=False)
    return fpr, tpr, -thr


def eer_from_curve(fpr: np.ndarray, tpr: np.ndarray) -> np.ndarray | float:
    """Equal error rate of ROC polylines; works on one curve (P,) or a batch (B, P)."""
    fpr2, tpr2 = np.atleast_2d(fpr), np.atleast_2d(tpr)
    diff = (1.0 - tpr2) - fpr2  # decreasing along the curve: starts at 1, ends at -1
    after = np.argmax(diff <= 0, axis=1)
    before = np.maximum(after - 1, 0)
    rows = np.arange(diff.shape[0])
    d0, d1 = diff[rows, before], diff[rows, after]
    span = d0 - d1
    alpha = np.divide(d0, span, out=np.zeros_like(d0), where=span > 0)
    f0, f1 = fpr2[rows, before], fpr2[rows, after]
    eer = f0 + alpha * (f1 - f0)
    return float(eer[0]) if np.ndim(fpr) == 1 else eer


def tar_at_far(fpr: np.ndarray, tpr: np.ndarray, thr: np.ndarray, far: float, standin: float) -> float:
    """Highest TPR with FPR <= far among thresholds that are finite distances (not the stand-in)."""
    ok = (fpr <= far) & (thr < standin)
    return float(tpr[ok].max()) if ok.any() else 0.0


def verification_metrics(pairs: Pairs, fars: tuple[float, ...] = FARS) -> Verification:
    """ROC AUC, average precision, EER and TAR@FAR of the pairs."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    score = -pairs.distance
    fpr, tpr, thr = roc_points(pairs)
    return Verification(
        roc_auc=float(roc_auc_score(pairs.genuine, score)),
        average_precision=float(average_precision_score(pairs.genuine, score)),
        eer=float(eer_from_curve(fpr, tpr)),
        tar_at_far={far_key(f): tar_at_far(fpr, tpr, thr, f, pairs.standin) for f in fars},
    )
