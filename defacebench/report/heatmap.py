"""The verdict as a picture: defacer x attacker, cell = rank-1, invalid attackers greyed out."""

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
    index = {a.attacker: j for j, a in enumerate(attackers)}
    for r in rows:
        if r.defacer in defacers and r.rank1 is not None:
            grid[defacers.index(r.defacer), index[r.attacker]] = r.rank1
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * len(attackers), 1.4 + 0.45 * len(defacers)))
    cmap = matplotlib.colormaps["RdYlGn_r"].with_extremes(bad="#dddddd")
    shown = np.where([[a.valid for a in attackers]] * len(defacers), grid, np.nan)
    ax.imshow(shown, cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
    for i in range(len(defacers)):
        for j, a in enumerate(attackers):
            text = "-" if np.isnan(grid[i, j]) else f"{grid[i, j]:.2f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color="#444" if not a.valid else "black")
    ax.set_xticks(range(len(attackers)), [a.label + ("" if a.valid else " (invalid)") for a in attackers],
                  rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(defacers)), defacers, fontsize=8)
    ax.set_title("rank-1 by defacer and attacker (grey: attacker invalid on this dataset)", fontsize=9)
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return atomic_write_bytes(Path(path), buf.getvalue())
