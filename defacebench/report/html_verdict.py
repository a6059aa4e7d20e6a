"""The verdict at the top of ``leaderboard.html``: one row per defacer with its class and the
selection-corrected figures, an interval bar, and what the classes mean.

The columns are those of issue 19 (docs/statistics.md): rank with the defacers it is tied with,
class (exposure, or why the defacer is not usable), the cross-fitted worst-case rank-1 with its
exact interval (the headline), the selected maximum and the attack that reached it, chance,
``p_exposed`` and the detectable rank-1. What the defacing cost is in each defacer's report card.
"""

from __future__ import annotations

from defacebench.report.exposure import format_p
from defacebench.report.html_parts import CLASSES, NO_RESULT, anchor, badge, bar, defacer_class, esc, num
from defacebench.report.verdict import VerdictRow
from defacebench.report.verdict_table import VERDICT_HEADERS, verdict_cells

NUM = ' class="num"'
HEADERS = ["rank", "defacer", "class", "worst-case rank-1 [95% CI] (cross-fitted)", "on 0..1",
           "selected max rank-1 [95% CI]", "reached by (attacker, scenario)", "chance rank-1", "p_exposed (max-T)",
           "detectable rank-1", "valid attacks"]


def _row(v: VerdictRow) -> str:
    text = dict(zip(VERDICT_HEADERS, verdict_cells(v)))
    name = defacer_class(v)
    cells = [
        esc(text["rank"]), f'<a href="#{anchor(v.defacer)}">{esc(v.defacer)}</a>',
        badge(name) + (f'<div class="reason">{esc(v.status)}: {esc(v.reason)}</div>' if v.reason else ""),
        num(v.worst_rank1, v.worst_rank1_ci),
        bar(v.worst_rank1, v.worst_rank1_ci, chance=v.chance_rank1, threshold=v.detectable_rank1),
        num(v.worst_rank1_selected, v.worst_rank1_selected_ci),
        f'<span class="nowrap">{esc(v.worst_attacker)}</span><br>{esc(v.worst_scenario)}',
        num(v.chance_rank1), esc(format_p(v.p_exposed)), num(v.detectable_rank1), str(v.n_attacks),
    ]
    numeric = {3, 5, 7, 8, 9, 10}
    tds = "".join(f'<td{NUM if i in numeric else ""}>{c}</td>' for i, c in enumerate(cells))
    return f'<tr class="v-{esc(name)}" data-defacer="{esc(v.defacer)}">{tds}</tr>'


def _missing_row(defacer: str, failed: int) -> str:
    """A defacer that produced no result at all still has its line in the verdict."""
    cells = ["-", f'<a href="#{anchor(defacer)}">{esc(defacer)}</a>',
             badge(NO_RESULT) + f'<div class="reason">{failed} configuration(s) did not run to a result</div>', "-",
             bar(None, None), "-", "-", "-", "-", "-", "0"]
    return f'<tr class="v-{NO_RESULT}" data-defacer="{esc(defacer)}">{"".join(f"<td>{c}</td>" for c in cells)}</tr>'


def _legend() -> str:
    items = "".join(f"<dt>{badge(name)}</dt><dd>{esc(text)}</dd>" for name, text in CLASSES.items())
    return (f'<dl class="legend">{items}</dl>\n<p class="small">Bars: the rank-1 (dot) with its exact 95% interval '
            "on a 0 to 1 scale; dashed: chance 1/N; dotted red: the detectable rank-1 (a dot at or right of it is "
            "red: exposed after correction).</p>\n")


def verdict_section(verdicts: list[VerdictRow], missing: dict[str, int], note: str) -> str:
    """The verdict section; ``missing`` maps a defacer without any result to its failed configurations."""
    head = "".join(f"<th>{esc(h)}</th>" for h in HEADERS)
    body = "\n".join([*(_row(v) for v in verdicts), *(_missing_row(d, n) for d, n in sorted(missing.items()))])
    return ('<section id="verdict">\n<h2>Verdict per defacer</h2>\n'
            "<p>How exposed each defacer is over every valid attack (lower rank-1 = better protected), read against "
            "chance and corrected for choosing the worst of many attacks. Usable defacers by rank, then the control "
            "<code>none</code> (the reference), then the defacers that are not usable.</p>\n"
            f'<div class="scroll"><table id="verdict-table"><thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n'
            "</tbody></table></div>\n" + (f'<p class="small">{esc(note)}</p>\n' if note else "") + _legend()
            + "</section>\n")
