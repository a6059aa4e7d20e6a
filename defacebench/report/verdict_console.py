"""The verdict as a terminal shows it: a compact table and one sentence per exposure class.

Why separate from :mod:`defacebench.report.verdict_table`: the Markdown and CSV there carry every
column (what a study cites); the end of a run must fit on one screen, so the console keeps the
columns that say who is exposed, how much and by what, and says the answer in words. The full table
stays in ``leaderboard.md`` and the run's ``run.log``.
"""

from __future__ import annotations

from tabulate import tabulate

from defacebench.report.exposure import EXPOSED, NOT_SHOWN, UNTESTABLE, format_p
from defacebench.report.rows import CONTROL
from defacebench.report.verdict import VerdictRow
from defacebench.report.verdict_table import verdict_cells

# the columns kept, by their full header (verdict_table.VERDICT_HEADERS); shorter labels where the
# full one would widen the table past a terminal
COMPACT = {"rank": "rank", "defacer": "defacer", "exposure (p max-T)": "exposure (p max-T)",
           "worst-case rank-1 [95% CI] (cross-fitted)": "worst-case rank-1\n[95% CI]\n(cross-fitted)",
           "selected max rank-1 [95% CI]": "selected max rank-1", "reached by (attacker, scenario)": "reached by",
           "chance rank-1": "chance", "detectable rank-1": "detectable rank-1", "QC": "QC", "status": "status"}

CLASSES = ((EXPOSED, "exposed"), (NOT_SHOWN, "not shown exposed"), (UNTESTABLE, "untestable"))


def verdict_compact(verdicts: list[VerdictRow]) -> str:
    """The verdict table with the columns of :data:`COMPACT` (the selected maximum without its
    interval), as plain text for a terminal."""
    from defacebench.report.verdict_table import VERDICT_HEADERS

    keep = [VERDICT_HEADERS.index(h) for h in COMPACT]
    rows = []
    for v in verdicts:
        cells = verdict_cells(v)
        cells[VERDICT_HEADERS.index("selected max rank-1 [95% CI]")] = (
            "-" if v.worst_rank1_selected is None else f"{v.worst_rank1_selected:.3f}")
        rows.append([cells[i] for i in keep])
    return tabulate(rows, headers=list(COMPACT.values()), tablefmt="simple", disable_numparse=True)


def _mention(v: VerdictRow) -> str:
    """``quickshear (worst-case rank-1 0.250, p 0.003; tied with x)``."""
    facts = []
    if v.worst_rank1 is not None:
        facts.append(f"worst-case rank-1 {v.worst_rank1:.3f}")
    if v.p_exposed is not None:
        facts.append(f"p {format_p(v.p_exposed)}")
    extra = []
    if v.tied_with:
        extra.append(f"tied with {', '.join(v.tied_with)}")
    if v.status != "ok":
        extra.append(v.status)
    text = ", ".join(facts) + ("; " if facts and extra else "") + "; ".join(extra)
    return f"{v.defacer} ({text})" if text else v.defacer


def verdict_sentences(verdicts: list[VerdictRow]) -> list[str]:
    """One sentence per exposure class over the tested defacers (the control is the reference, not
    a class member), best rank first: "exposed: ..." and "not shown exposed: ..." always (an empty
    class says so), "untestable: ..." when some defacer had no valid attacker. A defacer that is
    not usable (failed, anatomy destroyed) stays in its class with its status named."""
    tested = [v for v in verdicts if v.defacer != CONTROL]
    if not tested:
        return ["No defacer tested besides the control none: nothing to judge."]
    order = sorted(tested, key=lambda v: (v.rank is None, v.rank or 0, v.defacer))
    lines = []
    for key, label in CLASSES:
        members = [v for v in order if v.exposure == key]
        if not members and key == UNTESTABLE:
            continue
        said = ", ".join(_mention(v) for v in members) if members else "no defacer"
        lines.append(f"{label}: {said}.")
    return lines
