"""What a configuration's evaluation reads and writes besides its numbers: the cached evaluation and
ROC/PR plot, the plugins' records, and the original-vs-defaced montage."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import pickle
from pathlib import Path

import numpy as np

from defacebench.run.config import ConfigId
from defacebench.run.records import CONTROL, Detected
from defacebench.run.stage_base import STAGE_VERSION, timed_call
from defacebench.util.fsutil import atomic_copy


@functools.lru_cache(maxsize=1)
def evaluation_code() -> str:
    """Digest of the metrics and plotting source: a change to how metrics are computed must not be
    answered from evaluations cached by the old code."""
    root = Path(__file__).resolve().parents[1]
    files = sorted((root / "metrics").glob("*.py")) + [root / "report" / "plots.py"]
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()


def evaluate_cached(run, label: str, matrix, detection: dict):
    """Evaluation (bootstrap CIs included) and its ROC/PR plot, cached by the matrix's content and
    every evaluation setting, so a warm rerun does not redo 1000 resamples per configuration."""
    from defacebench.metrics import evaluate_matrix, make_split
    from defacebench.report.plots import plot_roc_prc

    cfg = run.config
    split = None
    if not cfg.qc_filter:
        split = make_split(matrix.subject_ids(), calibration=cfg.calibration, seed=cfg.seed)
    digest = hashlib.sha256(np.ascontiguousarray(matrix.values, dtype=np.float64).tobytes()).hexdigest()
    key = run.cache.key("evaluate", STAGE_VERSION, evaluation_code(), label, digest, list(matrix.gallery_ids),
                        list(matrix.probe_ids), matrix.metric, cfg.protocol,
                        None if split is None else split.to_dict(), cfg.calibration, cfg.seed, cfg.policy,
                        cfg.n_bootstrap, detection, cfg.images)

    def build(tmp: Path) -> None:
        evaluation = evaluate_matrix(matrix, protocol=cfg.protocol, split=split, calibration=cfg.calibration,
                                     seed=cfg.seed, policy=cfg.policy, n_bootstrap=cfg.n_bootstrap,
                                     detection=detection)
        (tmp / "evaluation.pkl").write_bytes(pickle.dumps(evaluation))
        if cfg.images:
            plot_roc_prc(tmp / "roc_prc.png", matrix, evaluation, title=label)

    def task(_):
        from defacebench.run.stage_base import get_or_build

        return get_or_build(run.cache, "evaluate", key, build)

    timed = timed_call(task, None)
    run.times.add("evaluate", label.split(":")[0].split("-")[0], computed=timed.computed, cpu_s=timed.cpu_s,
                  wall_s=timed.wall_s, started=timed.started, pid=timed.pid)
    folder = timed.value
    plot = folder / "roc_prc.png"
    return pickle.loads((folder / "evaluation.pkl").read_bytes()), plot if plot.exists() else None


def plugin_records(run, cid: ConfigId) -> dict:
    """name, version and params of the configuration's four plugins (recorded in metrics.json)."""
    out = {}
    for kind, name in zip(("defacers", "renderers", "detectors", "recognizers"), cid.parts):
        plugin = run.plugin(kind, name)
        params = dataclasses.asdict(plugin.params) if dataclasses.is_dataclass(plugin.params) else repr(plugin.params)
        out[kind[:-1]] = {"name": name, "version": str(plugin.version), "params": params}
    return out


def write_montage_for(run, cid: ConfigId, scenario, ids: list[str], outdir: Path, grid) -> Path | None:
    """Original (gallery) vs defaced (probe) first views per subject with the kept faces (cached)."""
    from defacebench.data.images import read_image
    from defacebench.report.montage import MontageRow, shrink, write_montage

    roles = {r.subject_id: r for r in run.roles}
    gal_def = cid.defacer if scenario.defaced_gallery else CONTROL

    def first(defacer: str, acq: str):
        view = run.rendered(defacer, cid.renderer, grid).get(acq)
        found = run.detected(defacer, cid.renderer, cid.detector, grid).get(acq)
        if view is None or not view.ok or not view.views:
            return None, None
        best = found[0].best if isinstance(found, tuple) and isinstance(found[0], Detected) else None
        return view.views[0], best

    # a refill attacker's montage shows the refilled probe as a third image next to the defaced one
    refill = scenario.probe_source(cid.defacer) if getattr(scenario, "refill", "") else None
    pairs = []
    for s in ids:
        g_acq = (roles[s].other if scenario.gallery.acquisition == "other" else roles[s].probe).acq_id
        p_acq = roles[s].probe.acq_id
        pairs.append((s, first(gal_def, g_acq), first(cid.defacer, p_acq),
                      first(refill, p_acq) if refill else (None, None)))
    ident = [(s, *[x for v, f in sides for x in (v.hash if v else None, _face_key(f))]) for s, *sides in pairs]
    key = run.cache.key("montage", STAGE_VERSION, ident, refill is not None)

    def build(tmp: Path) -> None:
        rows = []
        for s, (g_view, g_face), (p_view, p_face), (r_view, r_face) in pairs:
            if g_view is None:
                continue
            original, original_face = shrink(read_image(Path(g_view.path)), g_face)
            defaced, defaced_face = shrink(read_image(Path(p_view.path)), p_face) if p_view else (None, None)
            extra = {}
            if refill:
                image, face = shrink(read_image(Path(r_view.path)), r_face) if r_view else (None, None)
                extra = {"refilled": image, "refilled_face": face, "has_refilled": True}
            rows.append(MontageRow(s, original, original_face, defaced, defaced_face, **extra))
        if rows:
            write_montage(tmp / "montage.png", rows)

    def task(_):
        from defacebench.run.stage_base import get_or_build

        return get_or_build(run.cache, "montage", key, build) / "montage.png"

    timed = timed_call(task, None)
    run.times.add("montage", cid.defacer, computed=timed.computed, cpu_s=timed.cpu_s, wall_s=timed.wall_s,
                  started=timed.started, pid=timed.pid)
    if not timed.value.exists():
        return None
    return atomic_copy(timed.value, outdir / "montage.png")


def _face_key(face):
    return None if face is None else [list(map(float, face.box)), float(face.score)]
