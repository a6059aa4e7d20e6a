"""The seed study's protocol (FIELD.md 1.7-1.8), reproduced exactly for comparison.

* Grid: 100 thresholds ``linspace(0, 1, 100)`` for cosine, ``linspace(0, 1.41, 100)`` for
  euclidean_l2. Raw euclidean distances have no fixed upper bound, so for ``euclidean`` the grid is
  ``linspace(0, max finite distance of the fitting pairs, 100)`` (the study never used it).
* A pair matches when distance <= threshold (+inf never matches).
* On the fitting subjects: precision (:= 0 where nothing is predicted positive), recall, F1 and
  Youden's J at every grid point; the threshold is the grid point of maximal F1 (first maximum,
  i.e. the smallest such threshold, as ``numpy.argmax`` returns), Youden's likewise.
* AUPRC = trapezoid over the grid points (recall on x, precision on y, ``sklearn.metrics.auc``).
* ROC AUC = 1 - roc_auc_score(identity, distances) (+inf replaced by a finite stand-in).
* TP / FP / FN (and TN) at the chosen threshold on the reporting subjects.

The split is by id order (the study's): the first 70 % of ids in file order fit, the last 30 %
report; ``calibration=1.0`` fits and reports on all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from defacebench.metrics.distance import DistanceMatrix
from defacebench.metrics.pairs import genuine_mask, make_pairs

SEED_GRID_POINTS = 100


@dataclass(frozen=True, eq=False)
class GridCurves:
    """Counts and rates at every grid threshold of one set of pairs."""

    grid: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    tn: np.ndarray

    @property
    def precision(self) -> np.ndarray:
        """TP / (TP + FP), 0 where nothing is predicted positive (the study's convention)."""
        pos = self.tp + self.fp
        return np.divide(self.tp, pos, out=np.zeros(self.grid.size), where=pos > 0)

    @property
    def recall(self) -> np.ndarray:
        """TP / (TP + FN) = TPR."""
        return self.tp / np.maximum(self.tp + self.fn, 1)

    @property
    def fpr(self) -> np.ndarray:
        """FP / (FP + TN)."""
        return self.fp / np.maximum(self.fp + self.tn, 1)

    @property
    def f1(self) -> np.ndarray:
        """2PR / (P + R), 0 where P + R = 0."""
        p, r = self.precision, self.recall
        return np.divide(2 * p * r, p + r, out=np.zeros(self.grid.size), where=(p + r) > 0)


@dataclass(frozen=True)
class SeedResult:
    """The seed protocol's numbers for one matrix and split."""

    threshold: float
    youden_threshold: float
    auprc_grid: float
    roc_auc: float
    grid_max: float


def seed_grid(metric: str, matrix: DistanceMatrix) -> np.ndarray:
    """The study's 100-point grid for ``metric`` (see the module docstring for euclidean)."""
    if metric in ("cosine", "svm"):
        top = 1.0
    elif metric == "euclidean_l2":
        top = 1.41
    else:
        finite = matrix.values[np.isfinite(matrix.values)]
        top = float(finite.max()) if finite.size else 1.0
    return np.linspace(0.0, top, SEED_GRID_POINTS)


def grid_curves(matrix: DistanceMatrix, grid: np.ndarray) -> GridCurves:
    """TP/FP/FN/TN of 'distance <= t' at every grid point t (vectorised via sorted distances)."""
    gen = genuine_mask(matrix)
    gd = np.sort(matrix.values[gen])
    idist = np.sort(matrix.values[~gen])
    tp = np.searchsorted(gd, grid, side="right")
    fp = np.searchsorted(idist, grid, side="right")
    return GridCurves(grid=grid, tp=tp, fp=fp, fn=gd.size - tp, tn=idist.size - fp)


def seed_fit(fit: DistanceMatrix) -> SeedResult:
    """Grid F1-max and Youden thresholds, grid AUPRC and the study's ROC AUC on the fitting pairs."""
    from sklearn.metrics import auc, roc_auc_score

    grid = seed_grid(fit.metric, fit)
    curves = grid_curves(fit, grid)
    pairs = make_pairs(fit)
    return SeedResult(
        threshold=float(grid[np.argmax(curves.f1)]),
        youden_threshold=float(grid[np.argmax(curves.recall - curves.fpr)]),
        auprc_grid=float(auc(curves.recall, curves.precision)),
        roc_auc=float(1.0 - roc_auc_score(pairs.genuine, pairs.distance)),
        grid_max=float(grid[-1]),
    )
