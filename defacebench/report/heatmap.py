"""The verdict as a picture: defacer x attacker, cell = rank-1, invalid attackers greyed out.

Chance is marked: the colour bar carries a line at 1/N, and a cell at or below its own chance level
shows its number in grey with a "~" (nothing an attacker could not get by guessing)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from defacebench.report.rows import LeaderboardRow
from defacebench.report.verdict import AttackerValidity, VerdictRow
from defacebench.util.fsutil import atomic_write_bytes


def write_heatmap(path: Path, rows: list[LeaderboardRow], verdicts: list[VerdictRow],
                  validity: Mapping[tuple, AttackerValidity]) -> Path | None:
    """Write the heatmap PNG (defacers in verdict order, attackers valid first); None when empty."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    defacers = [v.defacer for v in verdicts]
    attackers = sorted(validity.values(), key=lambda a: (not a.valid, a.label))
    if not defacers or not attackers:
        return None
    grid = np.full((len(defacers), len(attackers)), np.nan)
    chance = np.full_like(grid, np.nan)
    index = {a.attacker: j for j, a in enumerate(attackers)}
    for r in rows:
        if r.defacer in defacers and r.rank1 is not None:
            cell = defacers.index(r.defacer), index[r.attacker]
            grid[cell] = r.rank1
            chance[cell] = np.nan if r.rank1_chance is None else r.rank1_chance
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * len(attackers), 1.4 + 0.45 * len(defacers)))
    cmap = matplotlib.colormaps["RdYlGn_r"].with_extremes(bad="#dddddd")
    shown = np.where([[a.valid for a in attackers]] * len(defacers), grid, np.nan)
    image = ax.imshow(shown, cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
    for i in range(len(defacers)):
        for j, a in enumerate(attackers):
            at_chance = bool(np.isfinite(chance[i, j]) and grid[i, j] <= chance[i, j] + 1e-9)
            text = "-" if np.isnan(grid[i, j]) else f"{'~' if at_chance else ''}{grid[i, j]:.2f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7,
                    color="#444" if not a.valid else ("#666" if at_chance else "black"))
    bar = fig.colorbar(image, ax=ax, fraction=0.03, pad=0.01)
    level = float(np.nanmax(chance)) if np.isfinite(chance).any() else None
    if level is not None:
        bar.ax.axhline(level, color="black", lw=1.5)
        bar.ax.text(1.6, level, f"chance {level:.3f}", transform=bar.ax.get_yaxis_transform(), fontsize=6,
                    va="center")
    ax.set_xticks(range(len(attackers)), [a.label + ("" if a.valid else " (invalid)") for a in attackers],
                  rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(defacers)), defacers, fontsize=8)
    ax.set_title("rank-1 by defacer and attacker (grey: attacker invalid on this dataset; ~: at or below chance 1/N)",
                 fontsize=9)
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return atomic_write_bytes(Path(path), buf.getvalue())
