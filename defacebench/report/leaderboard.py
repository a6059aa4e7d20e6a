"""The run's leaderboard files: the verdict per defacer first, then one row per (configuration, scenario).

:func:`write_leaderboard` judges every attacker's validity from its control row, fills privacy gain
against valid controls only, builds the verdict, and writes ``leaderboard.md`` (tabulate),
``leaderboard.csv``, ``defacers.csv``, ``heatmap.png``, ``attacks.png`` and a self-contained
``leaderboard.html``, all atomically. The files depend only on the rows and the settings, never on
the order rows arrive in, so ``defacebench report`` rebuilds exactly what the run wrote. It returns
the verdict so the surfaces can print it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tabulate import tabulate

from defacebench.report.heatmap import write_heatmap
from defacebench.report.html import leaderboard_html
from defacebench.report.rows import MD_HEADERS, LeaderboardRow, csv_text, markdown_cells, with_privacy_gain
from defacebench.report.verdict import VerdictParams, VerdictRow, apply_validity, attacker_validity, verdict
from defacebench.report.verdict_table import verdict_csv, verdict_markdown, verdict_note
from defacebench.util.fsutil import atomic_write_text

__all__ = ["LeaderboardRow", "verdict_markdown", "write_leaderboard", "TABLES"]

TABLES = ("leaderboard.md", "leaderboard.csv", "defacers.csv", "leaderboard.html", "heatmap.png", "attacks.png")


def _relative(row: LeaderboardRow, run_dir: Path) -> LeaderboardRow:
    """Image paths relative to the run folder when they lie inside it (the same text whether the
    run or ``report`` wrote the tables, and a copied run folder keeps working)."""
    def rel(path: Path | None) -> Path | None:
        if path is None or not path.is_absolute():
            return path
        try:
            return path.resolve().relative_to(run_dir.resolve())
        except ValueError:
            return path

    return dataclasses.replace(row, montage=rel(row.montage), plot=rel(row.plot))


def write_leaderboard(run_dir: Path, rows: list[LeaderboardRow], *, images: bool = True,
                      params: VerdictParams | None = None, attacker_floor: float | None = None) -> list[VerdictRow]:
    """Write the verdict and leaderboard files into ``run_dir``; return the verdict rows."""
    from defacebench.report.attack_plot import write_attack_plot

    run_dir = Path(run_dir)
    params = params or VerdictParams()
    if attacker_floor is not None:
        params = dataclasses.replace(params, attacker_floor=attacker_floor)
    validity = attacker_validity(list(rows), params.attacker_floor)
    rows = apply_validity(with_privacy_gain([_relative(r, run_dir) for r in rows]), validity)
    verdicts = verdict(rows, validity, params)
    invalid = [f"{a.label} (control rank-1 {'-' if a.control_rank1 is None else f'{a.control_rank1:.3f}'})"
               for a in sorted(validity.values(), key=lambda a: a.label) if not a.valid]
    note = (f"\nAttackers below the control rank-1 floor {params.attacker_floor} (attacker_invalid, in no verdict): "
            f"{'; '.join(invalid)}.\n" if invalid else "")
    explained = verdict_note(params)
    md = tabulate([markdown_cells(r) for r in rows], headers=MD_HEADERS, tablefmt="github", disable_numparse=True)
    atomic_write_text(run_dir / "leaderboard.md", f"# Verdict per defacer (over every valid attack)\n\n"
                                                  f"{verdict_markdown(verdicts)}\n\n{explained}\n{note}\n"
                                                  f"# Leaderboard\n\n{md}\n")
    atomic_write_text(run_dir / "leaderboard.csv", csv_text(rows))
    atomic_write_text(run_dir / "defacers.csv", verdict_csv(verdicts, params))
    heatmap = write_heatmap(run_dir / "heatmap.png", rows, verdicts, validity) if images else None
    attacks = write_attack_plot(run_dir / "attacks.png", verdicts) if images else None
    atomic_write_text(run_dir / "leaderboard.html", leaderboard_html(
        rows, run_dir, images=images, verdicts=verdicts, heatmap=heatmap, attacks=attacks,
        note=" ".join(p for p in (explained, note.strip()) if p)))
    return verdicts
