"""Reports: per-configuration artifacts, the run's leaderboard (md/csv/html) and the regression gate.

Public API (called from the pipeline)::

    from defacebench.report import (LeaderboardRow, write_config_artifacts, write_leaderboard,
                                    save_baseline, compare_baseline, parse_tolerances, Regression)
"""

from __future__ import annotations

from defacebench.report.artifacts import ConfigArtifacts, write_config_artifacts
from defacebench.report.baseline import parse_tolerances, save_baseline
from defacebench.report.compare import (Figure, Regression, compare_baseline, compare_figures, format_comparison,
                                        format_regressions, gate_failed)
from defacebench.report.leaderboard import LeaderboardRow, write_leaderboard
from defacebench.report.rebuild import rows_from_run

__all__ = [
    "ConfigArtifacts", "Figure", "LeaderboardRow", "Regression", "compare_baseline", "compare_figures",
    "format_comparison", "format_regressions", "gate_failed", "parse_tolerances", "rows_from_run", "save_baseline",
    "write_config_artifacts", "write_leaderboard",
]
