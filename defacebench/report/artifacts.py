"""Per-configuration artifacts: ``distances.csv``, ``metrics.json`` and ``roc_prc.png``.

A scenario that evaluates several fusions (multiview: ``min`` and ``mean``) also writes each one's
matrix as ``distances-<fusion>.csv``; ``distances.csv`` is the kept (strongest) one.
``metrics.json`` is ``Evaluation.to_dict()`` plus an ``extra`` object the pipeline fills with what
the metrics cannot know (defacer / renderer / detector / recognizer names, QC label counts under
``qc``, ``failure_rate``, ``status``, versions...). ``defacebench report`` rebuilds the
leaderboard from these files alone. With ``images=False`` no picture is written (the renders and
montages show faces; the numbers stay).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from defacebench.util.fsutil import atomic_write_text, storage_errors
from defacebench.metrics.distance import DistanceMatrix
from defacebench.metrics.evaluate import Evaluation, _json_safe

DISTANCES = "distances.csv"
METRICS = "metrics.json"
PLOT = "roc_prc.png"
MONTAGE = "montage.png"


@dataclass(frozen=True)
class ConfigArtifacts:
    """Paths written for one configuration (``plot`` is None when images are off) and ``data``, the
    metrics.json content exactly as written (strict JSON types)."""

    distances: Path
    metrics: Path
    plot: Path | None
    data: dict | None = None


def write_json(path: Path, data: Any) -> None:
    """Write strict JSON (NaN/inf -> null) atomically."""
    atomic_write_text(path, json.dumps(_json_safe(data), indent=2, allow_nan=False) + "\n")


def write_config_artifacts(
    outdir: Path,
    *,
    matrix: DistanceMatrix,
    evaluation: Evaluation,
    extra: dict | None = None,
    images: bool = True,
) -> ConfigArtifacts:
    """Write distances.csv (our layout), metrics.json and, unless ``images=False``, roc_prc.png."""
    outdir = Path(outdir)
    with storage_errors(outdir, "the configuration's results"):
        outdir.mkdir(parents=True, exist_ok=True)
    distances = outdir / DISTANCES
    matrix.to_csv(distances, layout="ours")
    metrics = outdir / METRICS
    data = json.loads(json.dumps(_json_safe({**evaluation.to_dict(), "extra": dict(extra or {})}), allow_nan=False))
    write_json(metrics, data)
    plot = None
    if images:
        from defacebench.report.plots import plot_roc_prc

        plot = plot_roc_prc(outdir / PLOT, matrix, evaluation, title=outdir.name)
    return ConfigArtifacts(distances=distances, metrics=metrics, plot=plot, data=data)


def fusion_distances(fusion: str) -> str:
    """File name of one fusion's matrix when a scenario evaluated several (``distances-min.csv``)."""
    return f"distances-{fusion}.csv"


def write_fusion_matrices(outdir: Path, matrices: dict[str, DistanceMatrix]) -> list[Path]:
    """Write every fusion's matrix next to ``distances.csv`` (which holds the kept one): the verdict's
    max-T test counts each fusion a scenario picks from, and an independent check needs them all."""
    out = []
    for fusion, matrix in matrices.items():
        path = Path(outdir) / fusion_distances(fusion)
        matrix.to_csv(path, layout="ours")
        out.append(path)
    return out
