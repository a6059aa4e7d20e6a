"""Attacker validity and one verdict per defacer: its worst case over every valid attack.

An attacker is (renderer, detector, recognizer, scenario). It is *valid* on a dataset when its
control (no defacing) reaches rank-1 >= the floor: an attacker that cannot identify undefaced faces
says nothing about a defacer, so its rows are ``attacker_invalid`` and enter no verdict, and privacy
gain is computed only against a valid control.

A defacer's verdict is the attack under which it did worst (the highest rank-1; ties: the higher
TAR at FAR 1e-2): users pick a defacer by its worst case. Next to it: what it cost (defacing failure
rate, QC labels, brain Dice, seconds per subject). Defacers are sorted by worst-case rank-1, ties by
better anatomy (higher median brain Dice) first.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Mapping

from defacebench.report.rows import CONTROL, LeaderboardRow


@dataclass(frozen=True)
class AttackerValidity:
    """An attacker's control rank-1 on this dataset and whether it clears the floor."""

    attacker: tuple[str, str, str, str]
    control_rank1: float | None
    valid: bool

    @property
    def label(self) -> str:
        renderer, detector, recognizer, scenario = self.attacker
        return f"{renderer}-{detector}-{recognizer}" + ("" if scenario == "rescan" else f"-{scenario}")


def attacker_validity(rows: list[LeaderboardRow], floor: float) -> dict[tuple, AttackerValidity]:
    """Every attacker of ``rows`` with its control rank-1 (None when no control row exists: invalid)."""
    controls = {r.attacker: r.rank1 for r in rows if r.is_control}
    out = {}
    for attacker in dict.fromkeys(r.attacker for r in rows):
        rank1 = controls.get(attacker)
        out[attacker] = AttackerValidity(attacker, rank1, rank1 is not None and rank1 >= floor)
    return out


def apply_validity(rows: list[LeaderboardRow], validity: Mapping[tuple, AttackerValidity]) -> list[LeaderboardRow]:
    """Rows with privacy gain against a valid control only, and status ``attacker_invalid`` where the
    attacker is invalid (a failed or defacer_failed status is kept: it says more)."""
    out = []
    for row in rows:
        check = validity[row.attacker]
        gain = None
        if check.valid and row.rank1 is not None:
            gain = check.control_rank1 - row.rank1
        status = row.status if check.valid or row.status not in ("ok",) else "attacker_invalid"
        out.append(replace(row, privacy_gain=gain, status=status))
    return out


@dataclass(frozen=True)
class VerdictRow:
    """One defacer's worst case over the valid attackers, and what the defacing cost."""

    defacer: str
    n_attacks: int
    worst_rank1: float | None
    worst_rank1_ci: tuple[float, float] | None
    worst_attacker: str
    worst_scenario: str
    worst_tar_far_1e2: float | None
    privacy_gain: float | None
    probe_detection: float | None
    defacing_failure_rate: float | None
    qc: Mapping[str, int] = field(default_factory=dict)
    brain_dice: float | None = None
    seconds_per_subject: float | None = None
    status: str = "ok"


def verdict(rows: list[LeaderboardRow], validity: Mapping[tuple, AttackerValidity]) -> list[VerdictRow]:
    """One row per defacer (the control ``none`` included, as the reference), sorted best first."""
    by_defacer: dict[str, list[LeaderboardRow]] = {}
    for row in rows:
        by_defacer.setdefault(row.defacer, []).append(row)
    out = [_verdict_row(d, rs, validity) for d, rs in by_defacer.items()]
    return sorted(out, key=lambda v: (v.defacer != CONTROL and v.worst_rank1 is None,
                                      -1.0 if v.worst_rank1 is None else v.worst_rank1,
                                      -(v.brain_dice if v.brain_dice is not None else -1.0), v.defacer))


def _verdict_row(defacer: str, rows: list[LeaderboardRow], validity) -> VerdictRow:
    valid = [r for r in rows if validity[r.attacker].valid and r.rank1 is not None]
    statuses = Counter(r.status for r in rows)
    status = "defacer_failed" if statuses.get("defacer_failed") else ("no_valid_attacker" if not valid else "ok")
    anatomy = max(rows, key=lambda r: r.n)  # the defacing is the same under every attacker
    base = dict(defacer=defacer, n_attacks=len(valid), defacing_failure_rate=anatomy.defacing_failure_rate,
                qc=dict(anatomy.qc), brain_dice=anatomy.brain_dice, seconds_per_subject=anatomy.seconds_per_subject,
                status=status)
    if not valid:
        return VerdictRow(worst_rank1=None, worst_rank1_ci=None, worst_attacker="-", worst_scenario="-",
                          worst_tar_far_1e2=None, privacy_gain=None, probe_detection=None, **base)
    worst = max(valid, key=lambda r: (r.rank1, r.tar_far_1e2 if r.tar_far_1e2 is not None else -1.0))
    tars = [r.tar_far_1e2 for r in valid if r.tar_far_1e2 is not None]
    return VerdictRow(worst_rank1=worst.rank1, worst_rank1_ci=worst.rank1_ci,
                      worst_attacker=f"{worst.renderer}-{worst.detector}-{worst.recognizer}",
                      worst_scenario=worst.scenario + ("" if worst.fusion == "single" else f" ({worst.fusion})"),
                      worst_tar_far_1e2=max(tars) if tars else None,
                      privacy_gain=worst.privacy_gain, probe_detection=worst.detection_rate, **base)


VERDICT_HEADERS = ["defacer", "worst-case rank-1 [95% CI]", "reached by (attacker, scenario)", "worst TAR@FAR1e-2",
                   "privacy gain", "probe detection", "defacing failures", "QC", "brain Dice", "s/subject",
                   "valid attacks", "status"]


def _f(value: float | None, ci: tuple[float, float] | None = None, digits: int = 3) -> str:
    if value is None:
        return "-"
    text = f"{value:.{digits}f}"
    return f"{text} [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]" if ci else text


def verdict_cells(v: VerdictRow) -> list[str]:
    qc = " ".join(f"{k}:{n}" for k, n in sorted(v.qc.items())) or "-"
    return [v.defacer, _f(v.worst_rank1, v.worst_rank1_ci), f"{v.worst_attacker}, {v.worst_scenario}",
            _f(v.worst_tar_far_1e2), _f(v.privacy_gain), _f(v.probe_detection), _f(v.defacing_failure_rate),
            qc, _f(v.brain_dice), _f(v.seconds_per_subject, digits=1), str(v.n_attacks), v.status]


def verdict_csv(rows: list[VerdictRow]) -> str:
    """defacers.csv: one column per number."""
    labels = sorted({k for v in rows for k in v.qc})
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["defacer", "worst_rank1", "worst_rank1_lo", "worst_rank1_hi", "worst_attacker", "worst_scenario",
                     "worst_tar_far_1e2", "privacy_gain", "probe_detection", "defacing_failure_rate",
                     *(f"qc_{k}" for k in labels), "brain_dice", "seconds_per_subject", "valid_attacks", "status"])
    for v in rows:
        lo, hi = v.worst_rank1_ci or (None, None)
        values = [v.defacer, v.worst_rank1, lo, hi, v.worst_attacker, v.worst_scenario, v.worst_tar_far_1e2,
                  v.privacy_gain, v.probe_detection, v.defacing_failure_rate, *(v.qc.get(k, 0) for k in labels),
                  v.brain_dice, v.seconds_per_subject, v.n_attacks, v.status]
        writer.writerow(["" if x is None else x for x in values])
    return buf.getvalue()
