"""The run's leaderboard files: the verdict per defacer first, then one row per (configuration, scenario).

:func:`write_leaderboard` judges every attacker's validity from its control row, fills privacy gain
against valid controls only, builds the verdict, and writes ``leaderboard.md`` (tabulate),
``leaderboard.csv``, ``defacers.csv``, ``heatmap.png`` and a self-contained ``leaderboard.html``,
all atomically. It returns the verdict so the surfaces can print it.
"""

from __future__ import annotations

from pathlib import Path

from tabulate import tabulate

from defacebench.report.heatmap import write_heatmap
from defacebench.report.html import leaderboard_html
from defacebench.report.rows import MD_HEADERS, LeaderboardRow, csv_text, markdown_cells, with_privacy_gain
from defacebench.report.verdict import (VERDICT_HEADERS, VerdictRow, apply_validity, attacker_validity, verdict,
                                        verdict_cells, verdict_csv)
from defacebench.util.fsutil import atomic_write_text

__all__ = ["LeaderboardRow", "verdict_markdown", "write_leaderboard"]


def verdict_markdown(verdicts: list[VerdictRow]) -> str:
    return tabulate([verdict_cells(v) for v in verdicts], headers=VERDICT_HEADERS, tablefmt="github",
                    disable_numparse=True)


def write_leaderboard(run_dir: Path, rows: list[LeaderboardRow], *, images: bool = True,
                      attacker_floor: float = 0.5) -> list[VerdictRow]:
    """Write the verdict and leaderboard files into ``run_dir``; return the verdict rows."""
    run_dir = Path(run_dir)
    validity = attacker_validity(list(rows), attacker_floor)
    rows = apply_validity(with_privacy_gain(list(rows)), validity)
    verdicts = verdict(rows, validity)
    invalid = [f"{a.label} (control rank-1 {'-' if a.control_rank1 is None else f'{a.control_rank1:.3f}'})"
               for a in validity.values() if not a.valid]
    note = (f"\nAttackers below the control rank-1 floor {attacker_floor} (attacker_invalid, in no verdict): "
            f"{'; '.join(invalid)}.\n" if invalid else "")
    md = tabulate([markdown_cells(r) for r in rows], headers=MD_HEADERS, tablefmt="github", disable_numparse=True)
    atomic_write_text(run_dir / "leaderboard.md", f"# Verdict per defacer (worst case over valid attackers)\n\n"
                                                  f"{verdict_markdown(verdicts)}\n{note}\n# Leaderboard\n\n{md}\n")
    atomic_write_text(run_dir / "leaderboard.csv", csv_text(rows))
    atomic_write_text(run_dir / "defacers.csv", verdict_csv(verdicts))
    heatmap = write_heatmap(run_dir / "heatmap.png", rows, verdicts, validity) if images else None
    atomic_write_text(run_dir / "leaderboard.html", leaderboard_html(rows, run_dir, images=images, verdicts=verdicts,
                                                                     heatmap=heatmap, note=note.strip()))
    return verdicts
