"""Evaluating one (configuration, scenario): both sides' view embeddings -> fused matrices -> metrics.

Intention-to-treat: every subject of the scenario stays in the matrix. Failures are scored on the
side of the person being protected:

* a failed defacing is exposure: under the default rule ``exposed`` the subject's probe is its
  undefaced scan (what a user would otherwise have to withhold or share); ``excluded`` drops it from
  the matrix, ``nonmatch`` scores it as +inf (the original study's blind spot), both opt-in; the
  defacing failure rate stands next to every rank-1, and above ``defacer_fail_share`` the
  configuration's status is ``defacer_failed``;
* a face not found on a successfully defaced scan is a non-match (+inf): that is real protection.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from defacebench.run.config import ConfigId
from defacebench.run.evaluation_io import evaluate_cached, plugin_records, write_montage_for
from defacebench.run.records import CONTROL, ConfigOutcome, Detected, Embedded, FailureRow, SubjectRoles
from defacebench.run.scenarios import Scenario, fuse
from defacebench.util.fsutil import atomic_copy


@dataclass
class _Sides:
    """Per-subject view embeddings of each side, and what happened on the way. ``all_ids``: every
    subject of the scenario (scored or not); ``ids``: those in the matrix."""

    ids: list[str] = field(default_factory=list)
    gallery: list[np.ndarray] = field(default_factory=list)
    probe: list[np.ndarray] = field(default_factory=list)
    failures: list[FailureRow] = field(default_factory=list)
    defacing_failed: list[str] = field(default_factory=list)
    first_error: str = ""
    all_ids: list[str] = field(default_factory=list)


def scenario_subjects(run, scenario: Scenario) -> tuple[list[SubjectRoles], list[FailureRow]]:
    """Subjects whose acquisitions this scenario needs all converted (the same set for every
    defacer), and a failure row for each subject left out, saying why."""
    vols = run.volumes()
    incomplete = getattr(getattr(run, "dataset", None), "incomplete_subjects", {}) or {}
    keep, dropped = [], []
    for roles in run.roles:
        if scenario.needs_other_acquisition and roles.other is None:
            lost = "; ".join(f.reason for f in incomplete.get(roles.subject_id, ()))
            dropped.append(FailureRow(roles.subject_id, "roles", "gallery",
                                      f"one acquisition only{f' ({lost})' if lost else ''}: scenario {scenario.name} "
                                      "needs a second one (use --scenarios seed for single-scan datasets)"))
            continue
        needed = [("probe", roles.probe)] + ([("gallery", roles.other)] if scenario.needs_other_acquisition else [])
        bad = [(role, vols[a.acq_id]) for role, a in needed if not vols[a.acq_id].ok]
        if bad:
            dropped.extend(FailureRow(roles.subject_id, "convert", role, v.error) for role, v in bad)
            continue
        keep.append(roles)
    return keep, dropped


def _views(emb, first_only: bool) -> np.ndarray:
    if not isinstance(emb, Embedded):
        return np.empty((0, 1))
    return emb.vectors[:1] if first_only else emb.vectors


def _collect(run, cid: ConfigId, scenario: Scenario, grid) -> _Sides:
    """Both sides' embeddings per subject under the failure rule and the QC filter."""
    rule, first = run.config.failed_defacing, scenario.views == "first"
    attack = (cid.renderer, cid.detector, cid.recognizer)
    subjects, dropped = scenario_subjects(run, scenario)
    sides = _Sides(failures=list(dropped), all_ids=[r.subject_id for r in subjects])
    tested = run.embedded(cid.defacer, *attack, grid)
    probed = run.embedded(scenario.probe_source(cid.defacer), *attack, grid) if scenario.refill else tested
    undefaced = run.embedded(CONTROL, *attack, grid)
    defacings = run.defacings(cid.defacer)
    kept = _qc_kept(run, cid, subjects, sides)
    for roles in kept:
        s, probe_acq = roles.subject_id, roles.probe.acq_id
        gallery_acq = (roles.other if scenario.gallery.acquisition == "other" else roles.probe).acq_id
        # the attacker's own defacing of the gallery (aware) fails like the probe's: a failed defacing
        defaced = [("gallery", gallery_acq)] if scenario.defaced_gallery else []
        failed = [(role, a) for role, a in defaced + [("probe", probe_acq)] if not defacings[a].ok]
        if failed:
            sides.defacing_failed.append(s)
            for role, acq in failed:
                error = getattr(defacings[acq], "error", "")
                sides.first_error = sides.first_error or error
                sides.failures.append(FailureRow(s, "deface", role, error))
            if rule == "excluded":
                continue
        gal = _side(gallery_acq, scenario.defaced_gallery, defacings, tested, undefaced, rule)
        sides.ids.append(s)
        sides.gallery.append(_views(gal, first))
        sides.probe.append(_views(_side(probe_acq, True, defacings, probed, undefaced, rule), first))
    sides.failures += _detection_failures(run, cid, scenario, kept, grid)
    return sides


def _side(acq: str, defaced: bool, defacings, tested, undefaced, rule: str):
    """One side's embedding: the tested defacer's output when that side is defaced and the defacing
    worked; after a failed defacing what the rule says: the undefaced scan (``exposed``) or nothing,
    a non-match (``nonmatch``)."""
    if not defaced:
        return undefaced[acq]
    if defacings[acq].ok:
        return tested[acq]
    return undefaced[acq] if rule == "exposed" else None


def _qc_kept(run, cid: ConfigId, subjects: list[SubjectRoles], sides: _Sides) -> list[SubjectRoles]:
    """The subjects ``--qc-filter`` keeps for a tested defacer (all of them for the control, which has
    no QC label); each one left out is a recorded ``qc_filter`` row with its label."""
    wanted = run.config.qc_filter
    if not wanted or cid.defacer == CONTROL:
        return subjects
    labels = _qc_summary(run, cid, [r.subject_id for r in subjects])["per_subject"]
    for r in subjects:
        if labels[r.subject_id] != wanted:
            sides.failures.append(FailureRow(r.subject_id, "qc_filter", "probe",
                                             f"QC label {labels[r.subject_id]} (--qc-filter {wanted})"))
    return [r for r in subjects if labels[r.subject_id] == wanted]


def _detection_failures(run, cid: ConfigId, scenario: Scenario, subjects, grid) -> list[FailureRow]:
    """A row per subject and side whose render failed or whose (first) view has no kept face."""
    rows = []
    sides = [("probe", scenario.probe_source(cid.defacer), lambda r: r.probe)]
    gallery_defacer = cid.defacer if scenario.defaced_gallery else CONTROL
    sides.append(("gallery", gallery_defacer, lambda r: r.other if scenario.gallery.acquisition == "other" else r.probe))
    for role, defacer, pick in sides:
        found = run.detected(defacer, cid.renderer, cid.detector, grid)
        for roles in subjects:
            got = found.get(pick(roles).acq_id)
            if got is None or (not isinstance(got, tuple) and getattr(got, "stage", "") == "deface"):
                continue  # a failed defacing is its own row
            if not isinstance(got, tuple):
                rows.append(FailureRow(roles.subject_id, got.stage, role, got.error))
            elif not any(isinstance(d, Detected) and d.best for d in got):
                rows.append(FailureRow(roles.subject_id, "detect", role, "no face detected"))
    return rows


def evaluate_config(run, cid: ConfigId, scenario: Scenario, outdir: Path, *, grid=None) -> ConfigOutcome:
    """Run every stage this (configuration, scenario) needs (shared ones come from the memo) and
    evaluate every fusion of the scenario; the strongest fusion (highest rank-1) is the row."""
    start = time.monotonic()
    sides = _collect(run, cid, scenario, grid)
    _check_filtered(run, cid, sides)
    metric = run.plugin("recognizers", cid.recognizer).metric
    results = []
    for fusion in scenario.fusions:
        matrix = fuse(fusion, sides.ids, sides.gallery, sides.ids, sides.probe, metric=metric)
        detection = {"gallery": _rate(sides.gallery), "probe": _rate(sides.probe)}
        evaluation, plot = evaluate_cached(run, f"{cid}:{scenario.name}:{fusion}", matrix, detection)
        results.append((fusion, matrix, evaluation, plot))
    fusion, matrix, evaluation, plot = max(results, key=lambda r: (_num(r[2].rank1), _num(r[2].roc_auc)))
    n_all = len(sides.all_ids)
    fail_rate = len(sides.defacing_failed) / n_all if n_all else 0.0
    render_failed = {f.subject_id for f in sides.failures if f.role == "probe" and f.stage == "render"}
    status = "defacer_failed" if fail_rate > run.config.defacer_fail_share else "ok"
    if status == "ok" and n_all and len(render_failed) / n_all > run.config.defacer_fail_share:
        # a renderer that breaks on the defaced scans is a harness failure, never protection
        status = "render_failed"
        sides.first_error = next(f.error for f in sides.failures if f.stage == "render" and f.role == "probe")
    qc = _qc_summary(run, cid, sides.all_ids)
    seconds = _defacer_seconds(run, cid.defacer, sides.all_ids)
    extra = {
        "config_id": str(cid), "scenario": scenario.name, "fusion": fusion, "status": status,
        "failed_defacing_rule": run.config.failed_defacing, "defacing_failure_rate": fail_rate,
        "failure_rate": _failure_share(sides),
        "defacer_first_error": sides.first_error, "seconds_per_subject": seconds,
        # every fusion the scenario picked from, with the per-probe facts the verdict's max-T needs
        "fusions": {f: {"rank1": e.rank1, "roc_auc": e.roc_auc,
                        "identification": e.identification.to_dict() if e.identification else None}
                    for f, _, e, _ in results},
        "plugins": plugin_records(run, cid), "qc": qc, "failures": [f.__dict__ for f in sides.failures],
        "failure_counts": dict(Counter(f.stage for f in sides.failures)), "qc_filter": run.config.qc_filter,
    }
    if scenario.refill:
        from defacebench.run.refill_stage import refill_params

        extra["refill"] = refill_params(scenario.refill)
    from defacebench.report import LeaderboardRow, write_config_artifacts
    from defacebench.report.artifacts import write_fusion_matrices

    written = write_config_artifacts(outdir, matrix=matrix, evaluation=evaluation, extra=extra, images=False)
    if len(results) > 1:
        write_fusion_matrices(outdir, {f: m for f, m, _, _ in results})
    plot_path = _copy(plot, outdir / "roc_prc.png")
    montage = write_montage_for(run, cid, scenario, sides.ids, outdir, grid) if run.config.images else None
    # the row comes from exactly what metrics.json holds, so `defacebench report` rebuilds the same row
    row = LeaderboardRow.from_metrics(str(cid), written.data, montage=montage, plot=plot_path)
    embeddings = {"gallery": int(sum(_has(v) for v in sides.gallery)), "probe": int(sum(_has(v) for v in sides.probe)),
                  "subjects": len(sides.ids)}
    return ConfigOutcome(cid, scenario.name, row, outdir, evaluation, status, sides.failures, embeddings,
                         sides.first_error, time.monotonic() - start)


def _num(value) -> float:
    return -1.0 if value is None or not np.isfinite(value) else float(value)


def _has(views: np.ndarray) -> bool:
    return bool(len(views)) and bool(np.isfinite(views).all(axis=1).any())


def _rate(side: list[np.ndarray]) -> float:
    return float(np.mean([_has(v) for v in side])) if side else 0.0


def _check_filtered(run, cid: ConfigId, sides: _Sides) -> None:
    """Raise EvaluationError naming ``--qc-filter`` when it leaves too few subjects to evaluate."""
    if not run.config.qc_filter or cid.defacer == CONTROL:
        return
    from defacebench.errors import EvaluationError
    from defacebench.metrics.split import check_split_feasible

    try:
        check_split_feasible(len(sides.ids), run.config.calibration)
    except EvaluationError as exc:
        labels = Counter(_qc_summary(run, cid, sides.all_ids)["per_subject"].values())
        counts = ", ".join(f"{label} {n}" for label, n in sorted(labels.items()))
        raise EvaluationError(f"--qc-filter {run.config.qc_filter} leaves {len(sides.ids)} of {len(sides.all_ids)} "
                              f"subjects for {cid.defacer} (QC labels: {counts}): {exc}") from None


def _failure_share(sides: _Sides) -> float:
    """Share of subjects that failed before the attacker's detector: dropped (conversion, a missing
    acquisition), failed defacing or failed render. A face the detector cannot find is not a failure,
    nor a subject the QC filter left out."""
    failed = {f.subject_id for f in sides.failures if f.stage not in ("detect", "qc_filter")}
    total = set(sides.ids) | failed
    return len(failed) / len(total) if total else 0.0


def _qc_summary(run, cid: ConfigId, ids: list[str]) -> dict:
    defacings = run.defacings(cid.defacer)
    probe = {r.subject_id: defacings.get(r.probe.acq_id) for r in run.roles}
    qcs = {s: getattr(probe.get(s), "qc", None) for s in ids}
    labels = [q.label if q is not None else ("control" if cid.defacer == CONTROL else "failed") for q in qcs.values()]
    dice = [q.brain_dice for q in qcs.values() if q is not None and np.isfinite(q.brain_dice)]
    removed = [q.face_removed_fraction for q in qcs.values() if q is not None and np.isfinite(q.face_removed_fraction)]
    return {
        "labels": dict(Counter(labels)), "per_subject": dict(zip(ids, labels)),
        "brain_dice_median": float(np.median(dice)) if dice else None,
        "face_removed_fraction_median": float(np.median(removed)) if removed else None,
    }


def _defacer_seconds(run, defacer: str, ids: list[str]) -> float | None:
    """Median wall seconds the defacer took per subject (measured when each defacing was computed)."""
    defacings = run.defacings(defacer)
    probe = {r.subject_id: defacings.get(r.probe.acq_id) for r in run.roles}
    seconds = [probe[s].seconds for s in ids if getattr(probe.get(s), "seconds", None) is not None]
    return float(np.median(seconds)) if seconds else None


def _copy(source: Path | None, target: Path) -> Path | None:
    if source is None or not source.exists():
        return None
    return atomic_copy(source, target)  # a full disk leaves no truncated png
