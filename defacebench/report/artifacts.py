"""Per-configuration artifacts: ``distances.csv``, ``metrics.json`` and ``roc_prc.png``.

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
    """Paths written for one configuration (``plot`` is None when images are off)."""

    distances: Path
    metrics: Path
    plot: Path | None


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
    write_json(metrics, {**evaluation.to_dict(), "extra": dict(extra or {})})
    plot = None
    if images:
        from defacebench.report.plots import plot_roc_prc

        plot = plot_roc_prc(outdir / PLOT, matrix, evaluation, title=outdir.name)
    return ConfigArtifacts(distances=distances, metrics=metrics, plot=plot)
