"""Evaluating one configuration: gallery x probe embeddings -> distance matrix -> metrics -> artifacts.

Intention-to-treat: every subject of the run stays in the matrix. A probe whose defacing failed,
whose render failed or whose render shows no detected face has no embedding, so its column is +inf
(a non-match at every threshold); the detection rates and the failure rows say why. The QC filter
(``--qc-filter ok``) is the one opt-in exception, reproducing the seed study's hand-sanitised subset.
"""

from __future__ import annotations

import functools
from collections import Counter
from pathlib import Path

import numpy as np

from defacebench.run.config import ConfigId
from defacebench.run.records import CONTROL, ConfigOutcome, Failure
from defacebench.util.fsutil import atomic_copy


def _embedding_matrix(ids: list[str], vectors: dict[str, np.ndarray], dim: int) -> np.ndarray:
    """(len(ids), dim) with NaN rows for subjects without an embedding (no face, failed defacing)."""
    out = np.full((len(ids), dim), np.nan)
    for i, s in enumerate(ids):
        if s in vectors:
            out[i] = vectors[s]
    return out


def _failures(run, cid: ConfigId, ids: list[str]) -> list[Failure]:
    rows = []
    for role, defacer in (("gallery", CONTROL), ("probe", cid.defacer)):
        defaced = run.defaced(defacer, role)
        detected = run.detected(defacer, role, cid.renderer, cid.detector)
        for s in ids:
            d = defaced[s]
            if d.get("status") != "ok":
                rows.append(Failure(s, "deface", role, d.get("error", "unknown")))
            elif "error" in detected[s]:
                rows.append(Failure(s, "render/detect", role, detected[s]["error"]))
            elif detected[s].get("best") is None:
                rows.append(Failure(s, "detect", role, "no face detected"))
    return rows


def _qc_summary(defaced: dict[str, dict], ids: list[str]) -> dict:
    labels = [(defaced[s].get("qc") or {}).get("label", "failed") for s in ids]
    dice = [defaced[s]["qc"].get("brain_dice") for s in ids if defaced[s].get("qc")]
    dice = [d for d in dice if d is not None and np.isfinite(d)]
    removed = [defaced[s]["qc"].get("face_removed_fraction") for s in ids if defaced[s].get("qc")]
    removed = [r for r in removed if r is not None and np.isfinite(r)]
    return {
        "labels": dict(Counter(labels)),
        "per_subject": {s: labels[i] for i, s in enumerate(ids)},
        "failure_rate": float(np.mean([defaced[s].get("status") != "ok" for s in ids])) if ids else 0.0,
        "brain_dice_median": float(np.median(dice)) if dice else None,
        "face_removed_fraction_median": float(np.median(removed)) if removed else None,
    }


def _subject_ids(run, cid: ConfigId) -> list[str]:
    ids = [r.subject_id for r in run.subjects]
    if run.config.qc_filter:
        probe = run.defaced(cid.defacer, "probe")
        ids = [s for s in ids if (probe[s].get("qc") or {}).get("label") == run.config.qc_filter]
    return ids


def evaluate_config(run, cid: ConfigId) -> ConfigOutcome:
    """Run every stage this configuration needs (shared ones come from the memo) and evaluate it."""
    from defacebench.metrics import DistanceMatrix
    from defacebench.report import LeaderboardRow, write_config_artifacts

    ids = _subject_ids(run, cid)
    recognizer = run.plugin("recognizers", cid.recognizer)
    gal = run.embedded(CONTROL, "gallery", cid.renderer, cid.detector, cid.recognizer)
    probe = run.embedded(cid.defacer, "probe", cid.renderer, cid.detector, cid.recognizer)
    dim = next((v.shape[-1] for v in [*gal.values(), *probe.values()]), 1)
    matrix = DistanceMatrix.from_embeddings(tuple(ids), _embedding_matrix(ids, gal, dim), tuple(ids),
                                            _embedding_matrix(ids, probe, dim), metric=recognizer.metric)
    detection = {"gallery": _rate(gal, ids), "probe": _rate(probe, ids)}
    split = run.split if not run.config.qc_filter else None
    evaluation, cached_plot = _evaluate_cached(run, cid, matrix, split, detection)
    failures = _failures(run, cid, ids)
    qc = _qc_summary(run.defaced(cid.defacer, "probe"), ids)
    outdir = run.run_dir / str(cid)
    embeddings = {"gallery": len(gal), "probe": len(probe), "recognizer_passes_expected": 2 * len(ids)}
    extra = {
        "config_id": str(cid),
        "scenario": run.config.scenario,
        "plugins": _plugin_records(run, cid),
        "qc": qc,
        "failures": [f.__dict__ for f in failures],
        "embeddings": embeddings,
        "qc_filter": run.config.qc_filter,
    }
    write_config_artifacts(outdir, matrix=matrix, evaluation=evaluation, extra=extra, images=False)
    plot = outdir / "roc_prc.png"
    if cached_plot is not None:
        atomic_copy(cached_plot, plot)  # a full disk leaves no truncated png
    montage = _montage(run, cid, ids, outdir) if run.config.images else None
    row = LeaderboardRow.from_evaluation(str(cid), evaluation, qc=qc["labels"], montage=montage,
                                         plot=plot if plot.exists() else None, failure_rate=qc["failure_rate"],
                                         brain_dice=qc["brain_dice_median"])
    return ConfigOutcome(cid, row, outdir, evaluation, failures, embeddings)


@functools.lru_cache(maxsize=1)
def _evaluation_code() -> str:
    """Digest of the metrics and plotting source: a change to how metrics are computed must not
    be answered from evaluations cached by the old code."""
    import hashlib

    root = Path(__file__).resolve().parents[1]
    files = sorted((root / "metrics").glob("*.py")) + [root / "report" / "plots.py"]
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()


def _evaluate_cached(run, cid: ConfigId, matrix, split, detection: dict):
    """Evaluation (bootstrap CIs included) and its ROC/PR plot, cached by the matrix's content and
    every evaluation setting, so a warm rerun does not redo 1000 resamples per configuration."""
    import hashlib
    import pickle

    from defacebench.metrics import evaluate_matrix
    from defacebench.report.plots import plot_roc_prc
    from defacebench.run.stages import STAGE_VERSION

    cfg = run.config
    digest = hashlib.sha256(np.ascontiguousarray(matrix.values, dtype=np.float64).tobytes()).hexdigest()
    key = run.cache.key("evaluate", STAGE_VERSION, _evaluation_code(), str(cid), digest, list(matrix.gallery_ids), list(matrix.probe_ids),
                        matrix.metric, cfg.protocol, None if split is None else [list(split.calibration_ids),
                        list(split.heldout_ids), split.seed], cfg.calibration, cfg.seed, cfg.policy,
                        cfg.n_bootstrap, detection, cfg.images)

    def build(tmp: Path) -> None:
        evaluation = evaluate_matrix(matrix, protocol=cfg.protocol, split=split, calibration=cfg.calibration,
                                     seed=cfg.seed, policy=cfg.policy, n_bootstrap=cfg.n_bootstrap,
                                     detection=detection)
        (tmp / "evaluation.pkl").write_bytes(pickle.dumps(evaluation))
        if cfg.images:
            plot_roc_prc(tmp / "roc_prc.png", matrix, evaluation, title=str(cid))

    folder = run.cache.get_or_build("evaluate", key, build)
    plot = folder / "roc_prc.png"
    return pickle.loads((folder / "evaluation.pkl").read_bytes()), plot if plot.exists() else None


def _rate(vectors: dict, ids: list[str]) -> float:
    return float(np.mean([s in vectors for s in ids])) if ids else 0.0


def _plugin_records(run, cid: ConfigId) -> dict:
    out = {}
    for kind, name in zip(("defacers", "renderers", "detectors", "recognizers"), cid.parts):
        plugin = run.plugin(kind, name)
        out[kind[:-1]] = {"name": name, "version": str(plugin.version), "params": _params(plugin.params)}
    return out


def _params(params) -> dict:
    import dataclasses

    return dataclasses.asdict(params) if dataclasses.is_dataclass(params) else {"repr": repr(params)}


def _montage(run, cid: ConfigId, ids: list[str], outdir: Path) -> Path | None:
    from defacebench.data.images import read_image
    from defacebench.report.montage import MontageRow, shrink, write_montage
    from defacebench.run.stages import STAGE_VERSION, face_from_dict

    def load(role: str, defacer: str, s: str):
        view = run.rendered(defacer, role, cid.renderer)[s]
        det = run.detected(defacer, role, cid.renderer, cid.detector)[s]
        if "path" not in view:
            return None, None
        best = det.get("best")
        return shrink(read_image(Path(view["path"])), None if best is None else face_from_dict(best))

    def identity(role: str, defacer: str, s: str):
        view = run.rendered(defacer, role, cid.renderer)[s]
        return view.get("hash"), run.detected(defacer, role, cid.renderer, cid.detector)[s].get("best")

    key = run.cache.key("montage", STAGE_VERSION, [(s, identity("gallery", CONTROL, s),
                                                    identity("probe", cid.defacer, s)) for s in ids])

    def build(tmp: Path) -> None:
        rows = []
        for s in ids:
            original, original_face = load("gallery", CONTROL, s)
            defaced, defaced_face = load("probe", cid.defacer, s)
            if original is not None:
                rows.append(MontageRow(s, original, original_face, defaced, defaced_face))
        if rows:
            write_montage(tmp / "montage.png", rows)

    cached = run.cache.get_or_build("montage", key, build) / "montage.png"
    if not cached.exists():
        return None
    path = outdir / "montage.png"
    atomic_copy(cached, path)
    return path
