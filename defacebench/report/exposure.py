"""How exposed one defacer is, judged honestly from its valid attacks, and how defacers tie.

Per defacer (:func:`exposure_of`), over every valid attack (renderer x detector x recognizer x
scenario, and each fusion a scenario picked from):

* ``selected``: the in-sample maximum rank-1 and the attack that reached it (biased upward by
  selection: with many attacks on few subjects some attack gets lucky);
* ``p_exposed``: the max-T permutation p-value of that maximum (:mod:`defacebench.metrics.maxt`);
* ``worst``: the cross-fitted worst case (:mod:`defacebench.metrics.crossfit`), the headline;
* ``exposure``: ``exposed`` (p_exposed < alpha), ``not_shown_exposed`` (no attack beats chance
  after correction at this N), ``untestable`` (no valid attack with per-probe results);
* ``detectable``: the smallest worst-case rank-1 the test would call exposed at this N and number
  of attacks.

:func:`rank_defacers` compares defacers pairwise on the same probes with an exact McNemar test of
the per-probe hits under each one's selected attack: a defacer's rank is 1 + the number of
defacers significantly better than it, so defacers a paired test cannot separate share a rank.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from defacebench.metrics.binomial import exact_interval, mcnemar_exact
from defacebench.metrics.crossfit import cross_fit_worst
from defacebench.metrics.identification import Identification, hit_matrix
from defacebench.metrics.maxt import max_t_test
from defacebench.report.rows import LeaderboardRow

EXPOSED, NOT_SHOWN, UNTESTABLE = "exposed", "not_shown_exposed", "untestable"


@dataclass(frozen=True)
class AttackResult:
    """One attack of a defacer: label, rank-1 with its exact interval, uncorrected permutation p."""

    label: str
    rank1: float
    interval: tuple[float, float]
    p: float


@dataclass(frozen=True)
class Exposure:
    """The statistics of one defacer's valid attacks (see the module docstring)."""

    exposure: str
    n_attacks: int
    selected: float | None = None
    selected_ci: tuple[float, float] | None = None
    selected_row: LeaderboardRow | None = None
    worst: float | None = None
    worst_ci: tuple[float, float] | None = None
    chance: float | None = None
    p_exposed: float | None = None
    detectable: float | None = None
    hits: Mapping[str, bool] = field(default_factory=dict)
    attacks: tuple[AttackResult, ...] = ()


def _label(row: LeaderboardRow, fusion: str) -> str:
    return f"{row.renderer}-{row.detector}-{row.recognizer}, {row.scenario}" + (
        "" if fusion == "single" else f" ({fusion})")


def exposure_of(rows: Sequence[LeaderboardRow], *, alpha: float, permutations: int, seed: int,
                repeats: int) -> Exposure:
    """The exposure of one defacer from its valid rows (rows with a rank-1 under a valid attacker)."""
    rows = [r for r in rows if r.rank1 is not None]
    if not rows:
        return Exposure(UNTESTABLE, 0)
    selected = max(rows, key=lambda r: (r.rank1, r.tar_far_1e2 if r.tar_far_1e2 is not None else -1.0, r.key))
    base = dict(n_attacks=len(rows), selected=selected.rank1, selected_ci=selected.rank1_ci, selected_row=selected,
                chance=selected.rank1_chance, hits=selected.hits)
    attacks: list[tuple[str, Identification]] = sorted(
        ((_label(r, f), ident) for r in rows for f, ident in r.identification.items() if ident.nearest),
        key=lambda pair: pair[0])
    if not attacks:  # results written without per-probe facts: the selected maximum, untested
        return Exposure(UNTESTABLE, **base, worst=selected.rank1, worst_ci=selected.rank1_ci)
    test = max_t_test([a for _, a in attacks], n_permutations=permutations, seed=seed)
    _, table = hit_matrix([a for _, a in attacks])
    cross = cross_fit_worst(table, repeats=repeats, seed=seed) if table.shape[1] >= 2 else None
    results = tuple(AttackResult(label, float(test.observed[i]),
                                 exact_interval(int(round(test.observed[i] * len(a.nearest))), len(a.nearest)),
                                 float(test.p_attack[i])) for i, (label, a) in enumerate(attacks))
    return Exposure(
        EXPOSED if test.p_exposed < alpha else NOT_SHOWN, **base,
        worst=cross.rank1 if cross is not None else float(test.observed.max()),
        worst_ci=cross.interval if cross is not None else selected.rank1_ci,
        p_exposed=test.p_exposed, detectable=test.detectable(alpha=alpha), attacks=results)


@dataclass(frozen=True)
class Standing:
    """A defacer's rank among the usable defacers and the ones it is tied with."""

    rank: int
    tied_with: tuple[str, ...]


def _better(a: Mapping[str, bool], b: Mapping[str, bool], ci_a, ci_b, alpha: float) -> bool:
    """True when defacer ``a`` protects significantly better than ``b``: fewer hits on their common
    probes with exact McNemar p < alpha; without per-probe hits, disjoint intervals."""
    common = sorted(set(a) & set(b))
    if common:
        ha = np.array([a[p] for p in common])
        hb = np.array([b[p] for p in common])
        return bool(ha.sum() < hb.sum() and mcnemar_exact(ha, hb) < alpha)
    return bool(ci_a and ci_b and ci_a[1] < ci_b[0])


def rank_defacers(candidates: Mapping[str, tuple[Mapping[str, bool], tuple | None]], *,
                  alpha: float) -> dict[str, Standing]:
    """``candidates``: defacer -> (per-probe hits under its selected attack, worst-case interval).
    Rank = 1 + the number of defacers significantly better; tied = not significantly different."""
    out = {}
    for name, (hits, ci) in candidates.items():
        better, ties = 0, []
        for other, (o_hits, o_ci) in candidates.items():
            if other == name:
                continue
            if _better(o_hits, hits, o_ci, ci, alpha):
                better += 1
            elif not _better(hits, o_hits, ci, o_ci, alpha):
                ties.append(other)
        out[name] = Standing(1 + better, tuple(sorted(ties)))
    return out


def format_p(p: float | None) -> str:
    """'0.012', '<0.001' or '-'."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "-"
    return "<0.001" if p < 0.001 else f"{p:.3f}"
