"""Decision thresholds fitted on calibration subjects and applied to held-out subjects.

A pair *matches* when its distance is finite and <= the threshold value. Thresholds are exact: the
candidates are the observed distances of the calibration pairs (from scikit-learn's
``precision_recall_curve`` / ``roc_curve``), never a grid. Policies:

* ``f1``: the threshold of maximal F1 on the precision-recall curve (the seed study's criterion);
* ``youden``: maximal TPR - FPR on the ROC curve;
* ``far=<x>``: the highest TPR whose FPR on calibration is <= x.

Ties between candidates are broken towards the strictest (smallest) distance. A +inf distance is
never a candidate; when nothing qualifies the value is -inf (nothing ever matches).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from defacebench.errors import EvaluationError
from defacebench.metrics.distance import DistanceMatrix
from defacebench.metrics.pairs import genuine_mask, make_pairs


@dataclass(frozen=True)
class Threshold:
    """A fitted decision threshold with its provenance (policy and the ids it was fitted on)."""

    value: float
    policy: str
    metric: str
    fitted_on: tuple[str, ...]

    def matches(self, distances: np.ndarray) -> np.ndarray:
        """Boolean array: finite and <= value."""
        d = np.asarray(distances, dtype=np.float64)
        return np.isfinite(d) & (d <= self.value)

    def to_dict(self) -> dict:
        """JSON-able form; a non-finite value becomes null."""
        return {
            "value": float(self.value) if np.isfinite(self.value) else None,
            "policy": self.policy,
            "metric": self.metric,
            "fitted_on": list(self.fitted_on),
        }


@dataclass(frozen=True)
class Counts:
    """Confusion counts of a threshold on a set of pairs, and the rates derived from them."""

    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float:
        """TP / (TP + FP); 0.0 when nothing matched (the seed study's convention)."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        """TP / (TP + FN); 0.0 without genuine pairs."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall; 0.0 when both are 0."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def parse_policy(policy: str) -> tuple[str, float | None]:
    """Split ``"far=0.01"`` into ``("far", 0.01)``; ``"f1"`` / ``"youden"`` have no parameter."""
    if policy in ("f1", "youden"):
        return policy, None
    if policy.startswith("far="):
        try:
            far = float(policy[4:])
        except ValueError:
            far = -1.0
        if 0.0 <= far <= 1.0:
            return "far", far
    raise EvaluationError(f"threshold policy {policy!r} is unknown: use f1, youden or far=<x> with 0 <= x <= 1")


def fit_threshold(matrix: DistanceMatrix, ids: Sequence[str], *, policy: str = "f1") -> Threshold:
    """Fit ``policy`` on the rows and columns of ``ids`` only (the calibration subjects)."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    kind, far = parse_policy(policy)
    sub = matrix.subset(ids)
    pairs = make_pairs(sub)
    score = -pairs.distance
    if kind == "f1":
        precision, recall, thr = precision_recall_curve(pairs.genuine, score, drop_intermediate=False)
        p, r = precision[:-1], recall[:-1]
        objective = np.divide(2 * p * r, p + r, out=np.zeros_like(p), where=(p + r) > 0)
        order = np.arange(thr.size)[::-1]  # highest score (smallest distance) first
    else:
        fpr, tpr, thr = roc_curve(pairs.genuine, score, drop_intermediate=False)
        objective = tpr - fpr if kind == "youden" else np.where(fpr <= far, tpr, -np.inf)
        order = np.arange(thr.size)  # roc thresholds already run from the highest score
    distance = -thr
    usable = np.isfinite(distance) & (distance < pairs.standin)
    value = -np.inf
    candidates = order[usable[order]]
    if candidates.size and np.isfinite(objective[candidates]).any():
        best = candidates[np.argmax(objective[candidates])]  # argmax = first = strictest
        value = float(distance[best])
    return Threshold(value, policy, matrix.metric, tuple(sorted(sub.subject_ids())))


def apply_threshold(matrix: DistanceMatrix, threshold: Threshold, ids: Sequence[str]) -> Counts:
    """Confusion counts of ``threshold`` on the rows and columns of ``ids`` (held-out subjects)."""
    sub = matrix.subset(ids)
    gen = genuine_mask(sub)
    match = threshold.matches(sub.values)
    return Counts(
        tp=int((match & gen).sum()),
        fp=int((match & ~gen).sum()),
        fn=int((~match & gen).sum()),
        tn=int((~match & ~gen).sum()),
    )
