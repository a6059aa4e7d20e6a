"""Rebuild leaderboard rows from a run folder's ``<config_id>/metrics.json`` files."""

from __future__ import annotations

import json
from pathlib import Path

from defacebench.errors import EvaluationError
from defacebench.report.artifacts import METRICS, MONTAGE, PLOT
from defacebench.report.rows import LeaderboardRow


def rows_from_run(run_dir: Path) -> list[LeaderboardRow]:
    """One row per sub-folder holding a metrics.json (sorted by config id); paths relative to run_dir.

    A ``metrics.json`` with ``"status"`` other than ok in ``extra`` and no numbers still gives a row.
    Raises EvaluationError when a metrics.json is not JSON or the folder has none.
    """
    run_dir = Path(run_dir)
    files = sorted(run_dir.glob(f"*/{METRICS}"))
    if not files:
        raise EvaluationError(
            f"{run_dir}: no <config_id>/{METRICS} found: pass the folder of one run (results/runs/<run_id>)"
        )
    rows = []
    for path in files:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise EvaluationError(f"{path}: unreadable metrics file ({exc}); rerun that configuration") from exc
        folder = path.parent
        montage = folder / MONTAGE
        plot = folder / PLOT
        rows.append(LeaderboardRow.from_metrics(
            folder.name, data,
            montage=montage.relative_to(run_dir) if montage.exists() else None,
            plot=plot.relative_to(run_dir) if plot.exists() else None,
        ))
    return rows
