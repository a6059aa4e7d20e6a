"""The regression gate: compare a run's figures with a baseline, marking each one as asv does.

Every (result id, gated metric) both sides hold is a *figure*, marked

* ``~`` within noise: the move is not significant, or not beyond the tolerance;
* ``+`` worse: beyond the tolerance and significant, in the direction that weakens the product's
  claim (a defacer's rank-1 or AUC up: less protection; the control's down: a weaker attacker);
* ``-`` better: beyond the tolerance and significant the other way;
* ``x`` incomparable: a side has no value (a result that failed now but had a value fails the gate).

Significance (rule ``noise``, the default): for rank-1, an exact McNemar test on the per-probe hits
of the same probes when both sides stored them and the baseline's hits agree with its own rank-1;
otherwise (and for AUC) whether either side's 95 % interval excludes the other side's value. Rule
``delta`` is the older plain rule: outside the baseline interval by more than the tolerance.

On a pinned dataset, split and plugin versions a figure should not move, so the gate fails on
``+`` and ``-`` alike (a defacer whose rank-1 rises fails as surely as one whose rank-1 falls),
unless that metric's tolerance is ``off``; it also fails when nothing at all was comparable.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from defacebench.metrics.binomial import mcnemar_exact
from defacebench.report.baseline import DEFAULT_TOLERANCES, GATED, Baseline, load_baseline
from defacebench.report.rows import LeaderboardRow
from defacebench.util.fsutil import atomic_write_text

RULES = ("noise", "delta")
_EPS = 1e-12


@dataclass(frozen=True)
class Figure:
    """One compared figure: old and new value (None: absent), its mark and whether it fails."""

    config_id: str
    metric: str
    old: float | None
    new: float | None
    mark: str
    fails: bool
    test: str
    ci: tuple[float, float] | None = None
    tolerance: float | None = None
    p: float | None = None

    def __str__(self) -> str:
        old = "missing" if self.old is None else f"{self.old:.4f}"
        new = "missing" if self.new is None else f"{self.new:.4f}"
        tol = "off" if self.tolerance is None else f"{self.tolerance}"
        return f"{self.mark} {self.config_id}: {self.metric} {old} -> {new} ({self.test}; tolerance {tol})"


Regression = Figure  # the name the public API used for a failing figure


def compare_figures(rows: list[LeaderboardRow], baseline: Baseline | Path, *,
                    tolerances: Mapping[str, float | None] = DEFAULT_TOLERANCES, rule: str = "noise",
                    alpha: float = 0.05) -> list[Figure]:
    """Every figure of ``rows`` that the baseline also holds (ids absent on either side are not
    compared: adding a plugin never fails the gate)."""
    if rule not in RULES:
        raise ValueError(f"compare rule {rule!r} is unknown: use one of {', '.join(RULES)}")
    stored = (baseline if isinstance(baseline, Baseline) else load_baseline(Path(baseline))).configs
    out = []
    for row in sorted(rows, key=lambda r: r.key):
        entry = stored.get(row.key)
        if entry is None:
            continue
        for metric in GATED:
            tol = tolerances[metric] if metric in tolerances else DEFAULT_TOLERANCES[metric]
            out.append(_figure(row, entry, metric, tol, rule, alpha))
    return out


def _figure(row: LeaderboardRow, entry: Mapping, metric: str, tol: float | None, rule: str, alpha: float) -> Figure:
    old, new = entry.get(metric), getattr(row, metric)
    new = None if new is None or (isinstance(new, float) and math.isnan(new)) else float(new)
    ci = tuple(entry[f"{metric}_ci"]) if entry.get(f"{metric}_ci") else None
    base = dict(config_id=row.key, metric=metric, old=old, new=new, ci=ci, tolerance=tol)
    if old is None:
        return Figure(**base, mark="x", fails=False, test="the baseline has no value")
    if new is None:
        return Figure(**base, mark="x", fails=tol is not None, test="no value now (the result failed)")
    delta = new - float(old)
    if rule == "delta":
        lo, hi = ci or (old, old)
        changed = tol is not None and (new < lo - tol - _EPS or new > hi + tol + _EPS)
        significant, test, p = changed, _interval_text(new, ci), None
    else:
        significant, test, p = _significant(row, entry, metric, new, ci, alpha)
        changed = significant and (tol is None or abs(delta) > tol + _EPS)
    if not changed:
        return Figure(**base, mark="~", fails=False, test=test, p=p)
    worse = delta < 0 if row.is_control else delta > 0
    return Figure(**base, mark="+" if worse else "-", fails=tol is not None, test=test, p=p)


def _significant(row: LeaderboardRow, entry: Mapping, metric: str, new: float, ci, alpha: float):
    """(significant, description, p) of the move from the baseline to ``new``."""
    if metric == "rank1":
        paired = _paired_hits(row, entry)
        if paired is not None:
            p = mcnemar_exact(*paired)
            return p < alpha, f"McNemar p {p:.3g} on {len(paired[0])} paired probes", p
    new_ci = getattr(row, f"{metric}_ci")
    old = float(entry[metric])
    if ci is None and new_ci is None:
        return True, "no interval on either side: tolerance only", None
    # each side's 95 % interval judges the other side's value: a move counts when either excludes it
    outside_old = ci is not None and not ci[0] - _EPS <= new <= ci[1] + _EPS
    outside_new = new_ci is not None and not new_ci[0] - _EPS <= old <= new_ci[1] + _EPS
    return outside_old or outside_new, _interval_text(new, ci, old, new_ci), None


def _paired_hits(row: LeaderboardRow, entry: Mapping) -> tuple[np.ndarray, np.ndarray] | None:
    """Baseline and new per-probe hits on the same probes, or None when either side lacks them or
    the baseline's hits disagree with its own rank-1 (an edited file: trust its numbers)."""
    probes, identified, now = entry.get("probes"), entry.get("identified"), row.hits
    if not probes or identified is None or not now or set(probes) != set(now):
        return None
    if entry.get("rank1") is None or abs(len(identified) / len(probes) - float(entry["rank1"])) > 1e-9:
        return None
    ids = sorted(probes)
    before = set(identified)
    return np.array([p in before for p in ids]), np.array([now[p] for p in ids])


def _interval_text(new: float, ci, old: float | None = None, new_ci=None) -> str:
    parts = []
    if ci is not None:
        inside = ci[0] - _EPS <= new <= ci[1] + _EPS
        parts.append(f"new value {'inside' if inside else 'outside'} the baseline's 95% interval "
                     f"[{ci[0]:.4f}, {ci[1]:.4f}]")
    if new_ci is not None and old is not None:
        inside = new_ci[0] - _EPS <= old <= new_ci[1] + _EPS
        parts.append(f"baseline value {'inside' if inside else 'outside'} the new 95% interval "
                     f"[{new_ci[0]:.4f}, {new_ci[1]:.4f}]")
    return "; ".join(parts) or "no baseline interval"


def compare_baseline(rows: list[LeaderboardRow], baseline_path: Path, *,
                     tolerances: Mapping[str, float | None] = DEFAULT_TOLERANCES, rule: str = "noise",
                     alpha: float = 0.05) -> list[Figure]:
    """The failing figures only (see :func:`compare_figures`)."""
    return [f for f in compare_figures(rows, baseline_path, tolerances=tolerances, rule=rule, alpha=alpha) if f.fails]


def gate_failed(figures: list[Figure]) -> bool:
    """True when a figure fails, or when the baseline shared results but no figure was comparable."""
    return any(f.fails for f in figures) or (bool(figures) and all(f.mark == "x" for f in figures))


def format_comparison(figures: list[Figure]) -> str:
    """A summary line (counts per mark), then one line per figure that is not ``~``."""
    if not figures:
        return "no figure in common with the baseline"
    counts = {m: sum(f.mark == m for f in figures) for m in "~+-x"}
    summary = ", ".join(f"{n} {m}" for m, n in counts.items() if n)
    failing = [f for f in figures if f.fails]
    head = (f"{len(failing)} regression(s) against the baseline" if failing else
            "nothing comparable with the baseline" if gate_failed(figures) else "no regression against the baseline")
    lines = [f"{head} ({len(figures)} figures: {summary}; ~ within noise, + worse, - better, x incomparable)"]
    lines += [f"  {f}" + ("" if f.fails else " [not gated]") for f in figures if f.mark != "~"]
    return "\n".join(lines)


def format_regressions(figures: list[Figure]) -> str:
    """Older name of :func:`format_comparison`."""
    return format_comparison(figures)


def gate_csv(figures: list[Figure]) -> str:
    """Every compared figure as CSV (``gate.csv`` in the run folder)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["id", "metric", "old", "new", "mark", "fails", "test", "p", "ci_lo", "ci_hi", "tolerance"])
    for f in figures:
        lo, hi = f.ci or (None, None)
        writer.writerow(["" if v is None else v for v in
                         (f.config_id, f.metric, f.old, f.new, f.mark, f.fails, f.test, f.p, lo, hi, f.tolerance)])
    return buf.getvalue()


def write_gate_csv(path: Path, figures: list[Figure]) -> Path:
    atomic_write_text(Path(path), gate_csv(figures))
    return Path(path)
