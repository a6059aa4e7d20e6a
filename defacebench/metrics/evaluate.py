"""One call from a distance matrix to every number of a configuration: :func:`evaluate_matrix`.

Protocol ``default`` (DESIGN.md section 6): a seeded random subject-level split; the threshold
(policy ``f1``, ``youden`` or ``far=<x>``, fitted exactly on the calibration subjects) is applied
to the held-out subjects for TP/FP/FN/TN, precision, recall and F1. Threshold-free metrics (rank-k,
CMC, ROC AUC, average precision, EER, TAR@FAR) and their subject-bootstrap CIs use every subject:
they fit nothing, so nothing leaks.

Protocol ``seed`` (FIELD.md 1.7-1.8, see :mod:`.seed`): split by id order; the 100-point grid,
F1-max / Youden thresholds, grid AUPRC and every threshold-free metric are computed on the fitting
subjects (as the study did), the counts on the reporting subjects.

``calibration=1.0`` fits and reports on all subjects under either protocol. ``n`` is always the
number of subjects in the matrix; ``threshold_free_on`` and ``n_calibration`` say which subjects
the threshold-free metrics used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from defacebench.errors import EvaluationError
from defacebench.metrics.bootstrap import BootstrapParams, bootstrap_cis
from defacebench.metrics.distance import DistanceMatrix
from defacebench.metrics.identification import (Identification, chance_levels, cmc, rank1_tie_shared, rank_k,
                                                rank_table)
from defacebench.metrics.pairs import make_pairs
from defacebench.metrics.protocols import PROTOCOLS, EvalProtocol, get_protocol
from defacebench.metrics.seed import seed_fit
from defacebench.metrics.split import Split, file_order_split, make_split
from defacebench.metrics.thresholds import Counts, Threshold, apply_threshold, fit_threshold, parse_policy
from defacebench.metrics.verification import verification_metrics

@dataclass(frozen=True, eq=False)
class Evaluation:
    """Every metric of one distance matrix, with the split and threshold provenance."""

    n: int
    n_gallery: int
    n_probe: int
    metric: str
    protocol: str
    roc_auc: float
    average_precision: float
    eer: float
    rank1: float
    rank5: float
    rank1_tie_shared: float
    tar_at_far: Mapping[str, float]
    threshold: Threshold
    counts: Counts
    youden_threshold: float
    cmc: tuple[float, ...]
    chance: Mapping[str, float]
    ci: Mapping[str, tuple[float, float]]
    detection_rate: float
    detection: Mapping[str, float]
    split: Split
    threshold_free_on: str
    n_bootstrap: int
    bootstrap_seed: int
    identified_ids: tuple[str, ...] = ()
    auprc_grid: float | None = None
    grid_max: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    identification: Identification | None = None

    @property
    def policy(self) -> str:
        """The threshold policy (f1, youden, far=<x>)."""
        return self.threshold.policy

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict with the keys of issue 5 item 6 (same keys in every metrics.json)."""
        c = self.counts
        out: dict[str, Any] = {
            "n": self.n, "n_gallery": self.n_gallery, "n_probe": self.n_probe,
            "metric": self.metric, "protocol": self.protocol,
            "roc_auc": self.roc_auc, "average_precision": self.average_precision, "eer": self.eer,
            "rank1": self.rank1, "rank5": self.rank5, "rank1_tie_shared": self.rank1_tie_shared,
            "tar_at_far": dict(self.tar_at_far),
            "threshold": self.threshold.to_dict()["value"], "policy": self.policy,
            "tp": c.tp, "fp": c.fp, "fn": c.fn, "tn": c.tn,
            "precision": c.precision, "recall": c.recall, "f1": c.f1,
            "youden_threshold": self.youden_threshold,
        }
        if self.auprc_grid is not None:
            out["auprc_grid"] = self.auprc_grid
            out["grid_max"] = self.grid_max
        out.update({
            "ci": {k: list(v) for k, v in self.ci.items()},
            "cmc": list(self.cmc), "chance": dict(self.chance),
            "identified_at_rank1": list(self.identified_ids),
            "identification": self.identification.to_dict() if self.identification is not None else None,
            "detection_rate": self.detection_rate, "detection": dict(self.detection),
            "threshold_detail": self.threshold.to_dict(),
            "split": self.split.to_dict(), "threshold_free_on": self.threshold_free_on,
            "n_calibration": len(self.split.calibration_ids), "n_heldout": len(self.split.heldout_ids),
            "n_bootstrap": self.n_bootstrap, "bootstrap_seed": self.bootstrap_seed,
        })
        return _json_safe(out)


def evaluate_matrix(
    matrix: DistanceMatrix,
    *,
    protocol: str = "default",
    split: Split | None = None,
    calibration: float = 0.7,
    seed: int = 0,
    policy: str = "f1",
    n_bootstrap: int = 1000,
    detection: dict[str, float] | None = None,
) -> Evaluation:
    """Evaluate ``matrix`` under ``protocol``; see the module docstring for what is computed where.

    ``split`` overrides ``calibration``/``seed`` (pass the run's split so every configuration uses
    the same ids). ``detection`` maps names (e.g. ``gallery``, ``probe``) to detection rates
    measured upstream; ``detection_rate`` is its ``probe`` entry, else the fraction of probe
    columns holding at least one finite distance.
    """
    proto = get_protocol(protocol)
    parse_policy(policy)
    proto.check_policy(policy)
    if split is None:
        split = _make_split(proto, matrix.subject_ids(), calibration, seed)
    _check_split(matrix, split)
    curve_matrix = matrix.subset(split.calibration_ids) if proto.curves_on == "calibration" else matrix
    pairs, table = make_pairs(curve_matrix), rank_table(curve_matrix)
    ver = verification_metrics(pairs)
    ci = bootstrap_cis(curve_matrix, pairs, table, BootstrapParams(n_resamples=n_bootstrap, seed=seed))
    ci = {**ci, **_exact_cis(table)}
    fitted = _fit(matrix, curve_matrix, split, proto, policy)
    threshold, youden = fitted.threshold, fitted.youden
    roc_auc, auprc, grid_max = ver.roc_auc, None, None
    if fitted.roc_auc is not None:  # the seed protocol's own formula and grid numbers
        roc_auc, auprc, grid_max = fitted.roc_auc, fitted.auprc_grid, fitted.grid_max
    detection = dict(detection or {})
    return Evaluation(
        n=len(matrix.subject_ids()), n_gallery=matrix.shape[0], n_probe=matrix.shape[1],
        metric=matrix.metric, protocol=protocol,
        roc_auc=roc_auc, average_precision=ver.average_precision, eer=ver.eer,
        rank1=rank_k(table, 1), rank5=rank_k(table, 5), rank1_tie_shared=rank1_tie_shared(table),
        tar_at_far=ver.tar_at_far, threshold=threshold,
        counts=apply_threshold(matrix, threshold, split.heldout_ids), youden_threshold=youden,
        cmc=tuple(float(x) for x in cmc(table)), chance=chance_levels(curve_matrix.shape[0]), ci=ci,
        detection_rate=float(detection.get("probe", _probe_detection_rate(matrix))), detection=detection,
        split=split, threshold_free_on="calibration" if curve_matrix is not matrix and not split.fit_on_all else "all",
        n_bootstrap=n_bootstrap, bootstrap_seed=seed, auprc_grid=auprc, grid_max=grid_max,
        identified_ids=tuple(sorted(p for p, r in zip(curve_matrix.probe_ids, table.ranks) if r == 1)),
        identification=Identification.from_matrix(curve_matrix),
    )


def _exact_cis(table) -> dict[str, tuple[float, float]]:
    """95 % Clopper-Pearson intervals of rank-1 and rank-5 as binomial proportions over the probes.

    Why next to the bootstrap: when every probe agrees (16/16 identified, or none) the percentile
    bootstrap collapses to a point, which overstates certainty at small N; the exact interval never
    does (0/16 gives [0, 0.206], 16/16 gives [0.794, 1])."""
    from defacebench.metrics.binomial import exact_interval

    n = int(table.has_mate.sum())
    return {f"rank{k}_exact": exact_interval(int(round(rank_k(table, k) * n)), n) if n else (float("nan"),) * 2
            for k in (1, 5)}


@dataclass(frozen=True)
class _Fitted:
    """Thresholds of one protocol; the seed protocol also brings its own AUC and grid AUPRC."""

    threshold: Threshold
    youden: float
    roc_auc: float | None = None
    auprc_grid: float | None = None
    grid_max: float | None = None


def _make_split(proto: EvalProtocol, ids, calibration: float, seed: int) -> Split:
    """The protocol's split of ``ids`` when the caller gave none."""
    if proto.split == "file_order":
        return file_order_split(ids, calibration=calibration)
    return make_split(ids, calibration=calibration, seed=seed)


def _fit(matrix: DistanceMatrix, curve_matrix: DistanceMatrix, split: Split, proto: EvalProtocol,
         policy: str) -> _Fitted:
    """Fit the thresholds on the calibration ids: the study's grid or exact from the sorted scores."""
    if proto.grid_fit:
        r = seed_fit(curve_matrix)
        threshold = Threshold(r.threshold, "f1", matrix.metric, tuple(sorted(split.calibration_ids)))
        return _Fitted(threshold, r.youden_threshold, r.roc_auc, r.auprc_grid, r.grid_max)
    threshold = fit_threshold(matrix, split.calibration_ids, policy=policy)
    return _Fitted(threshold, fit_threshold(matrix, split.calibration_ids, policy="youden").value)


def _check_split(matrix: DistanceMatrix, split: Split) -> None:
    """Every split id must be a subject of the matrix, and each side must be non-empty."""
    known = set(matrix.subject_ids())
    missing = (set(split.calibration_ids) | set(split.heldout_ids)) - known
    if missing:
        raise EvaluationError(
            f"split names {len(missing)} subject(s) absent from the matrix (e.g. {sorted(missing)[0]!r}): "
            "build the split from this matrix's subject ids"
        )
    if not split.calibration_ids or not split.heldout_ids:
        raise EvaluationError(
            f"split has an empty side ({len(split.calibration_ids)} calibration, {len(split.heldout_ids)} held-out "
            f"of {len(known)} subjects): use calibration in (0, 1] with enough subjects, or 1.0 to use all")


def _probe_detection_rate(matrix: DistanceMatrix) -> float:
    """Fraction of probe columns with at least one finite distance (a face was found and embedded)."""
    return float(np.isfinite(matrix.values).any(axis=0).mean())


def _json_safe(value: Any) -> Any:
    """Replace NaN / inf floats by None and numpy scalars by Python ones, recursively."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if np.isfinite(v) else None
    return value
