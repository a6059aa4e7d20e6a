"""``attacks.png``: every valid attack's rank-1 per defacer, with what it must be read against.

One panel per defacer (verdict order), one line per attack (shared across panels): the rank-1 with
its exact 95 % interval, the chance level 1/N (dashed), the corrected threshold (dotted: the
smallest worst case the max-T test calls exposed at this N and number of attacks) and the
cross-fitted worst case (solid). A dot right of the dotted line is a selection-corrected exposure;
a dot between the dashed and dotted lines is within what chance produces over this many attacks.
"""

from __future__ import annotations

import io
from pathlib import Path

from defacebench.report.verdict import VerdictRow
from defacebench.util.fsutil import atomic_write_bytes


def write_attack_plot(path: Path, verdicts: list[VerdictRow]) -> Path | None:
    """Write the PNG; None when no defacer has a tested attack."""
    shown = [v for v in verdicts if v.details is not None and v.details.attacks]
    if not shown:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = sorted({a.label for v in shown for a in v.details.attacks})
    where = {label: i for i, label in enumerate(labels)}
    fig, axes = plt.subplots(1, len(shown), sharey=True, squeeze=False,
                             figsize=(3.0 + 2.4 * len(shown), 1.6 + 0.17 * len(labels)))
    for ax, v in zip(axes[0], shown):
        for a in v.details.attacks:
            y = where[a.label]
            color = "C3" if v.detectable_rank1 is not None and a.rank1 >= v.detectable_rank1 - 1e-9 else "C0"
            ax.plot([a.interval[0], a.interval[1]], [y, y], color=color, lw=1.2, alpha=0.6)
            ax.plot([a.rank1], [y], "o", color=color, ms=3.5)
        if v.chance_rank1 is not None:
            ax.axvline(v.chance_rank1, color="0.4", ls="--", lw=1, label=f"chance {v.chance_rank1:.3f}")
        if v.detectable_rank1 is not None:
            ax.axvline(v.detectable_rank1, color="C3", ls=":", lw=1.5,
                       label=f"corrected threshold {v.detectable_rank1:.3f}")
        if v.worst_rank1 is not None:
            ax.axvline(v.worst_rank1, color="k", lw=1, label=f"cross-fitted worst {v.worst_rank1:.3f}")
        p = "-" if v.p_exposed is None else f"{v.p_exposed:.3g}"
        ax.set_title(f"{v.defacer}\n{v.exposure} (p {p})", fontsize=8)
        ax.set_xlim(-0.02, 1.02)
        ax.set_xlabel("rank-1 [exact 95% CI]", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.legend(fontsize=6, loc="best")
        ax.grid(axis="x", color="0.9")
    axes[0][0].set_yticks(range(len(labels)), labels)
    axes[0][0].invert_yaxis()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return atomic_write_bytes(Path(path), buf.getvalue())
