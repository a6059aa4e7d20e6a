"""Attacker validity and one verdict per defacer: how exposed it is over every valid attack.

An attacker is (renderer, detector, recognizer, scenario). It is *valid* on a dataset when its
control (no defacing) reaches rank-1 >= the floor: an attacker that cannot identify undefaced faces
says nothing about a defacer, so its rows are ``attacker_invalid`` and enter no verdict, and privacy
gain is computed only against a valid control.

A defacer's verdict (:mod:`defacebench.report.exposure` computes the statistics): its cross-fitted
worst-case rank-1 as the headline with the in-sample maximum beside it (labelled selected, with the
attack that reached it), the chance level, the max-T ``p_exposed`` and the class it gives, the
smallest exposure this dataset can detect, and a rank shared with the defacers a paired test cannot
separate from it. Next to it: what it cost (defacing failure rate, QC labels, brain Dice, seconds
per subject). A defacer that failed (``defacer_failed``) or destroyed the anatomy
(``anatomy_destroyed``: QC ``head_removed`` or ``brain_damaged`` on more than the allowed share of
subjects) is not ranked as usable: it is listed below the usable ones with the reason. The control
``none`` is listed as the reference, unranked.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from defacebench.report.exposure import Exposure, exposure_of, rank_defacers
from defacebench.report.rows import CONTROL, LeaderboardRow

DESTROYING = ("head_removed", "brain_damaged")


@dataclass(frozen=True)
class VerdictParams:
    """How the verdict judges; each is a RunConfig field of the same name (recorded in the manifest).

    ``anatomy_fail_share`` None means the run's ``defacer_fail_share``."""

    attacker_floor: float = 0.5
    alpha: float = 0.05
    permutations: int = 2000
    permutation_seed: int = 0
    cross_fit_repeats: int = 200
    anatomy_fail_share: float = 0.2

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> "VerdictParams":
        """From ``RunConfig.to_dict()`` or a manifest's ``run`` object (missing keys: defaults)."""
        given = {k: settings[k] for k in cls.__dataclass_fields__ if settings.get(k) is not None}
        if "anatomy_fail_share" not in given and settings.get("defacer_fail_share") is not None:
            given["anatomy_fail_share"] = settings["defacer_fail_share"]
        return cls(**given)

    def describe(self) -> str:
        return (f"max-T over {self.permutations:,} permutations (seed {self.permutation_seed}), alpha {self.alpha}; "
                f"worst case cross-fitted over {self.cross_fit_repeats} random halves of the probes")


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
    """One defacer's exposure over the valid attackers, its standing, and what the defacing cost.

    ``worst_rank1`` is the cross-fitted worst case (headline), ``worst_rank1_selected`` the in-sample
    maximum reached by ``worst_attacker`` in ``worst_scenario``. ``rank`` is None for the control
    and for defacers that are not usable (``status`` other than ok; ``reason`` says why)."""

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
    reason: str = ""
    worst_rank1_selected: float | None = None
    worst_rank1_selected_ci: tuple[float, float] | None = None
    chance_rank1: float | None = None
    p_exposed: float | None = None
    exposure: str = "untestable"
    detectable_rank1: float | None = None
    rank: int | None = None
    tied_with: tuple[str, ...] = ()
    hits: Mapping[str, bool] = field(default_factory=dict)
    details: Exposure | None = None

    @property
    def usable(self) -> bool:
        return self.defacer != CONTROL and self.status == "ok"


def verdict(rows: list[LeaderboardRow], validity: Mapping[tuple, AttackerValidity],
            params: VerdictParams | None = None) -> list[VerdictRow]:
    """One row per defacer (the control ``none`` included, as the reference): the usable defacers
    by rank, then the control, then the unusable ones with their reason."""
    params = params or VerdictParams()
    by_defacer: dict[str, list[LeaderboardRow]] = {}
    for row in rows:
        by_defacer.setdefault(row.defacer, []).append(row)
    out = [_verdict_row(d, rs, validity, params) for d, rs in sorted(by_defacer.items())]
    usable = {v.defacer: (v.hits, v.worst_rank1_ci) for v in out if v.usable and v.worst_rank1 is not None}
    standing = rank_defacers(usable, alpha=params.alpha)
    out = [replace(v, rank=standing[v.defacer].rank, tied_with=standing[v.defacer].tied_with)
           if v.defacer in standing else v for v in out]

    def order(v: VerdictRow) -> tuple:
        group = 0 if v.rank is not None else (1 if v.defacer == CONTROL else 2)
        return (group, v.rank or 0, _num(v.worst_rank1), _num(v.worst_rank1_selected),
                -(v.brain_dice if v.brain_dice is not None else -1.0), v.defacer)

    return sorted(out, key=order)


def _num(value: float | None) -> float:
    return 2.0 if value is None else value


def _verdict_row(defacer: str, rows: list[LeaderboardRow], validity, params: VerdictParams) -> VerdictRow:
    valid = [r for r in rows if validity[r.attacker].valid and r.rank1 is not None]
    anatomy = max(rows, key=lambda r: r.n)  # the defacing is the same under every attacker
    status, reason = _status(defacer, rows, valid, anatomy, params)
    found = exposure_of(valid, alpha=params.alpha, permutations=params.permutations, seed=params.permutation_seed,
                        repeats=params.cross_fit_repeats)
    base = dict(defacer=defacer, n_attacks=found.n_attacks, defacing_failure_rate=anatomy.defacing_failure_rate,
                qc=dict(anatomy.qc), brain_dice=anatomy.brain_dice, seconds_per_subject=anatomy.seconds_per_subject,
                status=status, reason=reason, exposure=found.exposure, details=found)
    worst = found.selected_row
    if worst is None:
        return VerdictRow(worst_rank1=None, worst_rank1_ci=None, worst_attacker="-", worst_scenario="-",
                          worst_tar_far_1e2=None, privacy_gain=None, probe_detection=None, **base)
    tars = [r.tar_far_1e2 for r in valid if r.tar_far_1e2 is not None]
    return VerdictRow(worst_rank1=found.worst, worst_rank1_ci=found.worst_ci,
                      worst_attacker=f"{worst.renderer}-{worst.detector}-{worst.recognizer}",
                      worst_scenario=worst.scenario + ("" if worst.fusion == "single" else f" ({worst.fusion})"),
                      worst_tar_far_1e2=max(tars) if tars else None, privacy_gain=worst.privacy_gain,
                      probe_detection=worst.detection_rate, worst_rank1_selected=found.selected,
                      worst_rank1_selected_ci=found.selected_ci, chance_rank1=found.chance,
                      p_exposed=found.p_exposed, detectable_rank1=found.detectable, hits=dict(found.hits), **base)


def _status(defacer: str, rows, valid, anatomy: LeaderboardRow, params: VerdictParams) -> tuple[str, str]:
    """(status, reason): defacer_failed, anatomy_destroyed, no_valid_attacker or ok."""
    statuses = Counter(r.status for r in rows)
    if statuses.get("defacer_failed"):
        failed = anatomy.defacing_failure_rate
        return "defacer_failed", "the defacing failed" + (f" on {failed:.0%} of subjects" if failed is not None else "")
    total = sum(n for label, n in anatomy.qc.items() if label != "control")
    destroyed = {label: anatomy.qc.get(label, 0) for label in DESTROYING if anatomy.qc.get(label, 0)}
    if defacer != CONTROL and total and sum(destroyed.values()) / total > params.anatomy_fail_share:
        counts = ", ".join(f"{label} on {n} of {total} subjects" for label, n in destroyed.items())
        return "anatomy_destroyed", f"{counts} (more than {params.anatomy_fail_share:.0%} allowed)"
    if not valid:
        return "no_valid_attacker", "no attacker identifies the undefaced control on this dataset"
    return "ok", ""
