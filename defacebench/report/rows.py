"""Leaderboard rows: one :class:`LeaderboardRow` per configuration and its Markdown/CSV cells.

Rows are :class:`LeaderboardRow` records built from a ``metrics.json`` dict: the pipeline builds a
row from exactly the dict it writes, and ``defacebench report`` from the file, so both give the
same row. :func:`write_leaderboard` fills the privacy gain
of every row from the control row (defacer ``none``) with the same renderer, detector and
recognizer (control rank-1 minus this rank-1), puts the control rows first, and writes
``leaderboard.md`` (tabulate), ``leaderboard.csv`` and a self-contained ``leaderboard.html``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from defacebench.metrics.evaluate import Evaluation
from defacebench.metrics.identification import Identification

CONTROL = "none"
PARTS = ("defacer", "renderer", "detector", "recognizer")


@dataclass(frozen=True)
class LeaderboardRow:
    """One configuration's headline numbers; metrics are None when the configuration failed.

    ``montage`` and ``plot`` are image paths, absolute or relative to the run folder (the HTML
    embeds downscaled copies). ``privacy_gain`` is filled by :func:`write_leaderboard`.
    ``identified_ids`` lists the subjects re-identified at rank 1 (shown, escaped, in the HTML).
    ``rank1_ci`` / ``rank5_ci`` are exact binomial (Clopper-Pearson) intervals when the metrics hold
    them (older files: the bootstrap's); ``rank1_chance`` / ``rank5_chance`` what a random guess gets.
    ``identification`` maps each fusion the scenario evaluated to its per-probe nearest gallery ids
    (what the verdict's permutation and paired tests need).
    """

    config_id: str
    defacer: str
    renderer: str
    detector: str
    recognizer: str
    n: int
    rank1: float | None
    rank1_ci: tuple[float, float] | None
    rank5: float | None
    roc_auc: float | None
    roc_auc_ci: tuple[float, float] | None
    eer: float | None
    detection_rate: float | None
    privacy_gain: float | None = None
    qc: Mapping[str, int] = field(default_factory=dict)
    failure_rate: float | None = None
    brain_dice: float | None = None
    status: str = "ok"
    montage: Path | None = None
    plot: Path | None = None
    identified_ids: tuple[str, ...] = ()
    scenario: str = "rescan"
    fusion: str = "single"
    tar_far_1e2: float | None = None
    defacing_failure_rate: float | None = None
    seconds_per_subject: float | None = None
    rank5_ci: tuple[float, float] | None = None
    rank1_chance: float | None = None
    rank5_chance: float | None = None
    identification: Mapping[str, Identification] = field(default_factory=dict)

    @property
    def hits(self) -> dict[str, bool]:
        """Probe id -> identified at rank 1 under the kept fusion (empty when not stored)."""
        found = self.identification.get(self.fusion)
        return found.hits if found is not None else {}

    @property
    def attacker(self) -> tuple[str, str, str, str]:
        """(renderer, detector, recognizer, scenario): the attack this row measures."""
        return (self.renderer, self.detector, self.recognizer, self.scenario)

    @property
    def key(self) -> str:
        """The row's test id: the configuration id, plus the scenario unless it is rescan."""
        return self.config_id if self.scenario == "rescan" else f"{self.config_id}-{self.scenario}"

    @property
    def is_control(self) -> bool:
        """True for the undefaced baseline row."""
        return self.defacer == CONTROL

    @classmethod
    def from_evaluation(
        cls,
        config_id: str,
        evaluation: Evaluation,
        *,
        qc: Mapping[str, int] | None = None,
        montage: Path | None = None,
        plot: Path | None = None,
        **parts: Any,
    ) -> "LeaderboardRow":
        """Row of an evaluated configuration; see :meth:`from_metrics` for ``parts``."""
        return cls.from_metrics(config_id, evaluation.to_dict(), qc=qc, montage=montage, plot=plot, **parts)

    @classmethod
    def from_metrics(
        cls,
        config_id: str,
        metrics: Mapping[str, Any],
        *,
        qc: Mapping[str, int] | None = None,
        montage: Path | None = None,
        plot: Path | None = None,
        **parts: Any,
    ) -> "LeaderboardRow":
        """Row from a metrics dict (``Evaluation.to_dict()`` or a metrics.json).

        ``parts`` may give ``defacer``, ``renderer``, ``detector``, ``recognizer``, ``failure_rate``
        and ``status``; missing names come from ``metrics["extra"]``, then from the configuration
        id ``defacer-renderer-detector-recognizer``. QC counts come from ``qc``, else
        ``extra["qc"]`` (either ``{label: count}`` or ``{"labels": {...}, "failure_rate": x}``).
        The failure rate defaults to the share of QC label ``failed``.
        """
        extra = dict(metrics.get("extra") or {})
        stored_qc = extra.get("qc") or {}
        if isinstance(stored_qc, Mapping) and isinstance(stored_qc.get("labels"), Mapping):
            # the pipeline's summary: {"labels": {label: count}, "failure_rate": x}
            extra.setdefault("failure_rate", stored_qc.get("failure_rate"))
            stored_qc = stored_qc["labels"]
        qc = {str(k): int(v) for k, v in dict(qc if qc is not None else stored_qc).items()
              if isinstance(v, (int, float))}
        names = _parts(config_id, {**extra, **parts})
        ci = metrics.get("ci") or {}
        chance = metrics.get("chance") or {}
        fusion = str(parts.get("fusion", extra.get("fusion", "single")))
        failure_rate = parts.get("failure_rate", extra.get("failure_rate"))
        brain_dice = parts.get("brain_dice", (extra.get("qc") or {}).get("brain_dice_median"))
        if failure_rate is None and qc:
            failure_rate = qc.get("failed", 0) / max(sum(qc.values()), 1)
        return cls(
            config_id=config_id, **names, n=int(metrics.get("n") or 0),
            rank1=metrics.get("rank1"), rank1_ci=_pair(ci.get("rank1_exact")) or _pair(ci.get("rank1")),
            rank5=metrics.get("rank5"), rank5_ci=_pair(ci.get("rank5_exact")) or _pair(ci.get("rank5")),
            rank1_chance=chance.get("rank1"), rank5_chance=chance.get("rank5"),
            identification=_identifications(metrics, extra, fusion),
            roc_auc=metrics.get("roc_auc"), roc_auc_ci=_pair(ci.get("roc_auc")), eer=metrics.get("eer"),
            detection_rate=metrics.get("detection_rate"), qc=qc, failure_rate=failure_rate, brain_dice=brain_dice,
            status=str(parts.get("status", extra.get("status", "ok"))),
            montage=Path(montage) if montage else None, plot=Path(plot) if plot else None,
            identified_ids=tuple(str(i) for i in metrics.get("identified_at_rank1") or ()),
            scenario=str(parts.get("scenario", extra.get("scenario", "rescan"))),
            fusion=fusion, tar_far_1e2=(metrics.get("tar_at_far") or {}).get("0.01"),
            defacing_failure_rate=parts.get("defacing_failure_rate", extra.get("defacing_failure_rate")),
            seconds_per_subject=parts.get("seconds_per_subject", extra.get("seconds_per_subject")),
        )

    @classmethod
    def from_failure(cls, config_id: str, status: str, *, qc: Mapping[str, int] | None = None, **parts: Any) -> "LeaderboardRow":
        """Row of a configuration that produced no matrix (``status`` says why); metrics are None."""
        names = _parts(config_id, parts)
        return cls(config_id, **names, n=0, rank1=None, rank1_ci=None, rank5=None, roc_auc=None,
                   roc_auc_ci=None, eer=None, detection_rate=None, qc=dict(qc or {}), status=status)


def _identifications(metrics: Mapping[str, Any], extra: Mapping[str, Any], fusion: str) -> dict[str, Identification]:
    """Every evaluated fusion's identification facts (the kept one at least, when stored)."""
    out = {}
    for name, stored in (extra.get("fusions") or {}).items():
        if isinstance(stored, Mapping) and isinstance(stored.get("identification"), Mapping):
            out[str(name)] = Identification.from_dict(stored["identification"])
    if fusion not in out and isinstance(metrics.get("identification"), Mapping):
        out[fusion] = Identification.from_dict(metrics["identification"])
    return out


def _parts(config_id: str, given: Mapping[str, Any]) -> dict[str, str]:
    """Defacer / renderer / detector / recognizer from ``given``, else split from the config id."""
    split = config_id.split("-")
    fallback = split if len(split) == len(PARTS) else [""] * len(PARTS)
    return {name: str(given.get(name) or fallback[i]) for i, name in enumerate(PARTS)}


def _pair(value: Any) -> tuple[float, float] | None:
    """A (lo, hi) tuple from a 2-list, or None when absent or undefined."""
    if not value or len(value) != 2 or value[0] is None or value[1] is None:
        return None
    return (float(value[0]), float(value[1]))


def row_order(row: LeaderboardRow) -> tuple:
    """The leaderboard's order, whatever order rows arrive in (a run's and ``report``'s tables must
    be byte-identical): control rows first, then rescan, then the other scenarios by name, then id."""
    return (not row.is_control, row.scenario != "rescan", row.scenario, row.config_id, row.fusion)


def with_privacy_gain(rows: list[LeaderboardRow]) -> list[LeaderboardRow]:
    """Fill privacy gain from the matching control row; rows in :func:`row_order`."""
    controls = {r.attacker: r for r in rows if r.is_control}
    out = []
    for row in rows:
        control = controls.get(row.attacker)
        gain = None
        if control is not None and control.rank1 is not None and row.rank1 is not None:
            gain = control.rank1 - row.rank1
        out.append(replace(row, privacy_gain=gain))
    return sorted(out, key=row_order)


def _fmt(value: float | None, ci: tuple[float, float] | None = None) -> str:
    """'0.800 [0.700, 0.880]' or '-' for missing."""
    if value is None:
        return "-"
    text = f"{value:.3f}"
    return f"{text} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else text


def qc_text(qc: Mapping[str, int]) -> str:
    """QC label counts as 'ok:10 face_intact:2'."""
    return " ".join(f"{k}:{v}" for k, v in qc.items()) or "-"


MD_HEADERS = ["config", "n", "rank-1 [95% CI]", "rank-5 [95% CI]", "chance rank-1 / rank-5", "ROC AUC [95% CI]",
              "EER", "detection", "privacy gain", "QC", "brain Dice", "failure rate", "status"]


def _chance(row: LeaderboardRow) -> str:
    if row.rank1_chance is None:
        return "-"
    return f"{row.rank1_chance:.3f} / {row.rank5_chance:.3f}" if row.rank5_chance is not None else f"{row.rank1_chance:.3f}"


def markdown_cells(row: LeaderboardRow) -> list[str]:
    """The Markdown/HTML display cells of a row (same order as :data:`MD_HEADERS`)."""
    return [row.key, str(row.n), _fmt(row.rank1, row.rank1_ci), _fmt(row.rank5, row.rank5_ci), _chance(row),
            _fmt(row.roc_auc, row.roc_auc_ci), _fmt(row.eer), _fmt(row.detection_rate),
            _fmt(row.privacy_gain), qc_text(row.qc), _fmt(row.brain_dice), _fmt(row.failure_rate), row.status]


def sort_keys(row: LeaderboardRow) -> list[str]:
    """Machine-sortable value of every display cell of :func:`markdown_cells` ('' when missing)."""
    def num(v: float | int | None) -> str:
        return "" if v is None else repr(float(v))

    return [row.key, num(row.n), num(row.rank1), num(row.rank5), num(row.rank1_chance), num(row.roc_auc),
            num(row.eer), num(row.detection_rate), num(row.privacy_gain), qc_text(row.qc), num(row.brain_dice),
            num(row.failure_rate), row.status]


def csv_text(rows: list[LeaderboardRow]) -> str:
    """The leaderboard as CSV: one column per number, CI bounds and QC labels in their own columns."""
    labels = sorted({k for r in rows for k in r.qc})
    header = ["config_id", *PARTS, "scenario", "fusion", "n", "rank1", "rank1_lo", "rank1_hi", "rank1_chance",
              "rank5", "rank5_lo", "rank5_hi", "rank5_chance", "roc_auc",
              "roc_auc_lo", "roc_auc_hi", "eer", "tar_far_1e2", "detection_rate", "privacy_gain",
              *(f"qc_{k}" for k in labels), "brain_dice", "failure_rate", "defacing_failure_rate",
              "seconds_per_subject", "status", "montage", "plot"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for r in rows:
        r1, r5, auc = r.rank1_ci or (None, None), r.rank5_ci or (None, None), r.roc_auc_ci or (None, None)
        values = [r.config_id, r.defacer, r.renderer, r.detector, r.recognizer, r.scenario, r.fusion, r.n, r.rank1,
                  *r1, r.rank1_chance, r.rank5, *r5, r.rank5_chance, r.roc_auc, *auc, r.eer, r.tar_far_1e2, r.detection_rate, r.privacy_gain,
                  *(r.qc.get(k, 0) for k in labels), r.brain_dice, r.failure_rate, r.defacing_failure_rate,
                  r.seconds_per_subject, r.status, r.montage or "", r.plot or ""]
        writer.writerow(["" if v is None else v for v in values])
    return buf.getvalue()
