"""Rebuild a run's leaderboard rows from its ``<result id>/metrics.json`` files.

A result folder is named by its test id: the configuration id for ``rescan``, ``<config id>-<scenario>``
otherwise. The row's configuration, scenario and fusion come from what ``metrics.json`` recorded
(``extra.config_id``, ``extra.scenario``), never from splitting the folder name, so a multi-scenario
run rebuilds to exactly the rows it wrote. :func:`check_complete` compares the folders with the
run's manifest and names every result the manifest says was produced but whose folder is missing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from defacebench.errors import EvaluationError
from defacebench.report.artifacts import METRICS, MONTAGE, PLOT
from defacebench.report.rows import LeaderboardRow

PRODUCED = ("passed", "defacer_failed")  # manifest statuses of items that wrote a result folder


@dataclass(frozen=True)
class RunFolder:
    """What a run folder holds: its rows, its manifest (None when absent) and what is wrong with it."""

    rows: list[LeaderboardRow]
    manifest: dict[str, Any] | None
    warnings: list[str] = field(default_factory=list)


def rows_from_run(run_dir: Path) -> list[LeaderboardRow]:
    """One row per sub-folder holding a metrics.json; image paths relative to run_dir.

    A ``metrics.json`` with ``"status"`` other than ok in ``extra`` and no numbers still gives a row.
    Raises EvaluationError when a metrics.json is not JSON or the folder has none.
    """
    run_dir = Path(run_dir)
    files = sorted(run_dir.glob(f"*/{METRICS}"))
    if not files:
        raise EvaluationError(
            f"{run_dir}: no <config_id>/{METRICS} found: pass the folder of one run (results/runs/<run_id>)"
        )
    return [_row(run_dir, path) for path in files]


def _row(run_dir: Path, path: Path) -> LeaderboardRow:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EvaluationError(f"{path}: unreadable metrics file ({exc}); rerun that configuration") from exc
    folder = path.parent
    extra = data.get("extra") or {}
    config_id = str(extra.get("config_id") or _config_id(folder.name, str(extra.get("scenario") or "rescan")))
    montage, plot = folder / MONTAGE, folder / PLOT
    return LeaderboardRow.from_metrics(
        config_id, data,
        montage=montage.relative_to(run_dir) if montage.exists() else None,
        plot=plot.relative_to(run_dir) if plot.exists() else None,
    )


def _config_id(folder: str, scenario: str) -> str:
    """The configuration id of a result folder named ``<config id>[-<scenario>]`` (older files)."""
    suffix = f"-{scenario}"
    return folder[: -len(suffix)] if scenario != "rescan" and folder.endswith(suffix) else folder


def read_run(run_dir: Path) -> RunFolder:
    """The rows of ``run_dir``, its manifest, and a warning for each thing a rebuild cannot vouch for."""
    run_dir = Path(run_dir)
    rows = rows_from_run(run_dir)
    manifest, warnings = None, []
    path = run_dir / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        warnings.append(f"{path} is missing: cannot check that every result folder is present, and the verdict "
                        "uses the default settings (attacker floor, alpha, permutations)")
    except (OSError, ValueError) as exc:
        warnings.append(f"{path} is unreadable ({exc}): cannot check that every result folder is present, and "
                        "the verdict uses the default settings")
    if manifest is not None:
        warnings += check_complete(run_dir, manifest, rows)
    return RunFolder(rows, manifest, warnings)


def check_complete(run_dir: Path, manifest: dict[str, Any], rows: list[LeaderboardRow]) -> list[str]:
    """Warnings for results the manifest says were produced but whose folder or metrics.json is gone,
    and for folders the run never wrote."""
    expected = {key for key, status in (manifest.get("configurations") or {}).items()
                if (status or {}).get("status") in PRODUCED}
    expected |= set(manifest.get("controls_added") or ())
    found = {r.key for r in rows}
    out = []
    missing = sorted(expected - found)
    if missing:
        out.append(f"{run_dir}: {len(missing)} result folder(s) the run wrote are missing or hold no {METRICS} "
                   f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}): the rebuilt verdict leaves "
                   "them out and differs from the run's")
    extra = sorted(found - expected) if expected else []
    if extra:
        out.append(f"{run_dir}: {len(extra)} result folder(s) the run's manifest does not list "
                   f"({', '.join(extra[:5])}{', ...' if len(extra) > 5 else ''}): they enter the rebuilt verdict")
    return out
