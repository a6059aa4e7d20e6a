"""Per-configuration artifacts: ``distances.csv``, ``metrics.json`` and ``roc_prc.png``.

``metrics.json`` is ``Evaluation.to_dict()`` plus an ``extra`` object the pipeline fills with what
the metrics cannot know (defacer / renderer / detector / recognizer names, QC label counts under
``qc``, ``failure_rate``, ``status``, versions...). ``defacebench report`` rebuilds the
leaderboard from these files alone. With ``images=False`` no picture is written (the renders and
montages show faces; the numbers stay).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..metrics.distance import DistanceMatrix
from ..metrics.evaluate import Evaluation, _json_safe

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
    _atomic_text(path, json.dumps(_json_safe(data), indent=2, allow_nan=False) + "\n")


def _atomic_text(path: Path, text: str) -> None:
    """Write text to a temp file in the same folder, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    outdir.mkdir(parents=True, exist_ok=True)
    distances = outdir / DISTANCES
    matrix.to_csv(distances, layout="ours")
    metrics = outdir / METRICS
    write_json(metrics, {**evaluation.to_dict(), "extra": dict(extra or {})})
    plot = None
    if images:
        from .plots import plot_roc_prc

        plot = plot_roc_prc(outdir / PLOT, matrix, evaluation, title=outdir.name)
    return ConfigArtifacts(distances=distances, metrics=metrics, plot=plot)
