"""Subject-level splits into calibration (thresholds are fitted here) and held-out (reported here).

The split depends only on the *set* of subject ids and the seed: ids are sorted before a seeded
permutation, so every configuration of a run (same subjects, intention-to-treat) gets the same split
whatever order its matrix lists them in. ``calibration=1.0`` is the explicit "fit and report on all
subjects" mode (what the seed study did on its file); then both sides hold every id.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from defacebench.errors import EvaluationError


@dataclass(frozen=True)
class Split:
    """Which subject ids calibrate thresholds and which are held out; stored with the results."""

    calibration_ids: tuple[str, ...]
    heldout_ids: tuple[str, ...]
    seed: int | None
    method: str = "random"

    @property
    def fit_on_all(self) -> bool:
        """True when thresholds are fitted and reported on the same (all) subjects."""
        return set(self.calibration_ids) == set(self.heldout_ids)

    def to_dict(self) -> dict:
        """JSON-able form (ids as lists)."""
        d = asdict(self)
        d["calibration_ids"] = list(self.calibration_ids)
        d["heldout_ids"] = list(self.heldout_ids)
        return d


MIN_PER_SIDE = 2
"""Fewest subjects on each side of a random split (a threshold fitted on one subject means nothing)."""


def check_split_feasible(n_subjects: int, calibration: float, where: str = "the dataset") -> None:
    """Raise EvaluationError unless ``n_subjects`` can be split with ``calibration`` (one line, the
    numbers and the fix). Cheap: call it before any computing, with the number of usable subjects.

    ``calibration=1.0`` (fit and report on all) needs one subject; a random split needs
    ``2 * MIN_PER_SIDE`` = 4.
    """
    if not 0.0 < calibration <= 1.0:
        raise EvaluationError(f"calibration fraction {calibration} must be in (0, 1]; e.g. 0.7, or 1.0 to "
                              "fit and report on all subjects")
    if n_subjects == 0:
        raise EvaluationError(f"{where} has no usable subject (every subject failed discovery or conversion; "
                              "see the failures listed); fix those inputs first")
    need = 1 if calibration == 1.0 else 2 * MIN_PER_SIDE
    if n_subjects < need:
        fix = f"use --calibration 1.0 (fit and report on all subjects) or >= {need} subjects"
        raise EvaluationError(f"{where} has {n_subjects} usable subject(s); a calibration split of {calibration:g} "
                              f"needs at least {need}. Fix: {fix}")


def _n_calibration(n: int, calibration: float) -> int:
    """Number of calibration subjects: round(fraction * n), keeping >= 2 on each side."""
    check_split_feasible(n, calibration, "the matrix")
    return min(max(int(round(calibration * n)), MIN_PER_SIDE), n - MIN_PER_SIDE)


def make_split(subject_ids: Sequence[str], *, calibration: float = 0.7, seed: int = 0) -> Split:
    """Seeded random subject-level split; ``calibration=1.0`` puts every id on both sides."""
    ids = sorted(set(map(str, subject_ids)))
    if calibration == 1.0:
        check_split_feasible(len(ids), calibration, "the matrix")
        return Split(tuple(ids), tuple(ids), seed, "all")
    k = _n_calibration(len(ids), calibration)
    order = np.random.default_rng(seed).permutation(len(ids))
    cal = tuple(sorted(ids[i] for i in order[:k]))
    held = tuple(sorted(ids[i] for i in order[k:]))
    return Split(cal, held, seed, "random")


def make_kfold(subject_ids: Sequence[str], *, k: int = 5, seed: int = 0) -> list[Split]:
    """k seeded folds: fold i holds out the i-th part and calibrates on the others."""
    ids = sorted(set(map(str, subject_ids)))
    if not 2 <= k <= len(ids):
        raise EvaluationError(f"k-fold needs 2 <= k <= number of subjects ({len(ids)}), got k={k}")
    order = np.random.default_rng(seed).permutation(len(ids))
    parts = np.array_split(order, k)
    splits = []
    for i, part in enumerate(parts):
        held = tuple(sorted(ids[j] for j in part))
        cal = tuple(sorted(ids[j] for p in parts[:i] + parts[i + 1 :] for j in p))
        splits.append(Split(cal, held, seed, f"kfold{k}:{i}"))
    return splits


def file_order_split(subject_ids: Sequence[str], *, calibration: float = 0.7) -> Split:
    """The seed study's split: the first floor(fraction * n) ids in file order fit, the rest report."""
    ids = [str(i) for i in subject_ids]
    if calibration == 1.0:
        return Split(tuple(ids), tuple(ids), None, "all")
    k = math.floor(calibration * len(ids))
    if k < 1 or k >= len(ids):
        raise EvaluationError(f"a {calibration} file-order split of {len(ids)} subjects leaves a side empty")
    return Split(tuple(ids[:k]), tuple(ids[k:]), None, "file_order")
