"""The run's leaderboard files: ``leaderboard.md`` (tabulate), ``leaderboard.csv`` and ``leaderboard.html``.

:func:`write_leaderboard` fills the privacy gain of every row from its control row, puts the control
rows first and writes the three files atomically.
"""

from __future__ import annotations

from pathlib import Path

from tabulate import tabulate

from defacebench.report.html import leaderboard_html
from defacebench.report.rows import MD_HEADERS, LeaderboardRow, csv_text, markdown_cells, with_privacy_gain
from defacebench.util.fsutil import atomic_write_text

__all__ = ["LeaderboardRow", "write_leaderboard"]


def write_leaderboard(run_dir: Path, rows: list[LeaderboardRow], *, images: bool = True) -> None:
    """Write leaderboard.md, leaderboard.csv and leaderboard.html into ``run_dir``."""
    run_dir = Path(run_dir)
    rows = with_privacy_gain(list(rows))
    md = tabulate([markdown_cells(r) for r in rows], headers=MD_HEADERS, tablefmt="github", disable_numparse=True)
    atomic_write_text(run_dir / "leaderboard.md", f"# Leaderboard\n\n{md}\n")
    atomic_write_text(run_dir / "leaderboard.csv", csv_text(rows))
    atomic_write_text(run_dir / "leaderboard.html", leaderboard_html(rows, run_dir, images=images))
