"""``leaderboard.html``: the run's report, organised by defacer.

In order: the verdict (each defacer's class and selection-corrected figures,
:mod:`~defacebench.report.html_verdict`), the rank-1 heatmap as a table, one report card per
defacer (:mod:`~defacebench.report.html_cards`) and the full leaderboard grouped by defacer,
sortable and filterable (:mod:`~defacebench.report.html_tables`).

The page works offline: its CSS and script (``assets/``, no library, no CDN) are inlined. Images
are not: montages appear as small JPEG thumbnails in ``thumbs/`` (:mod:`defacebench.report.thumbs`)
loaded lazily, and the thumbnails, plots and full montages are linked by paths relative to the run
folder, so a page of 250 configurations stays a few hundred kilobytes; copy the run folder, not
the page alone. Every piece of text from data is escaped.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Mapping

from defacebench.report.html_cards import cards_section
from defacebench.report.html_parts import anchor, esc
from defacebench.report.html_tables import heatmap_table, leaderboard_table
from defacebench.report.html_verdict import verdict_section
from defacebench.report.rows import CONTROL, LeaderboardRow
from defacebench.report.thumbs import Thumb
from defacebench.report.verdict import AttackerValidity, VerdictParams, VerdictRow, attacker_validity

NOT_A_RESULT = ("passed",)  # manifest statuses of configurations that need no line under failures


def _asset(name: str) -> str:
    return files("defacebench.report").joinpath("assets", name).read_text(encoding="utf-8")


def failed_configurations(statuses: Mapping[str, Mapping] | None) -> dict[str, list[tuple[str, str, str]]]:
    """Defacer -> [(result key, status, reason)] of the configurations that did not pass (the run's
    ``Status.to_dict()`` per key, as ``manifest.json`` stores it under ``configurations``)."""
    out: dict[str, list[tuple[str, str, str]]] = {}
    for key, status in sorted((statuses or {}).items()):
        state = str((status or {}).get("status", ""))
        if state and state not in NOT_A_RESULT:
            out.setdefault(key.split("-")[0], []).append((key, state, str(status.get("reason", ""))))
    return out


def _pictures(heatmap: Path | None, attacks: Path | None) -> str:
    parts = []
    if attacks is not None:
        parts.append(f'<h3>Every attack per defacer</h3><p><a class="zoom" href="{esc(attacks.name)}" '
                     'data-caption="every valid attack\'s rank-1 per defacer"><img id="attacks" loading="lazy" '
                     f'src="{esc(attacks.name)}" alt="every valid attack\'s rank-1 per defacer with chance and the '
                     'corrected threshold" style="max-width:100%"></a></p>')
    if heatmap is not None:
        parts.append(f'<p class="small">The heatmap as a picture: <a href="{esc(heatmap.name)}">'
                     f"{esc(heatmap.name)}</a>.</p>")
    return "\n".join(parts)


def _head(title: str, defacers: list[str], n_rows: int, n_failed: int) -> str:
    links = " ".join(f'<a href="#{anchor(d)}">{esc(d)}</a>' for d in defacers)
    return (f"<header><h1>{esc(title)}</h1>\n<p class=\"small\">{len(defacers)} defacer(s), {n_rows} result(s)"
            f"{f', {n_failed} configuration(s) without a result' if n_failed else ''}.</p>\n"
            '<nav><a href="#verdict">Verdict</a><a href="#heatmap">Heatmap</a><a href="#defacers">Report cards:</a>'
            f'{links} <a href="#board">Leaderboard</a></nav></header>\n')


def leaderboard_html(rows: list[LeaderboardRow], run_dir: Path, *, images: bool = True, verdicts: list = (),
                     validity: Mapping[tuple, AttackerValidity] | None = None, heatmap: Path | None = None,
                     attacks: Path | None = None, note: str = "", statuses: Mapping[str, Mapping] | None = None,
                     thumbs: Mapping[tuple[str, str], Thumb] | None = None) -> str:
    """The whole page as a string (rows ordered, privacy gain and validity applied; ``thumbs`` from
    :func:`defacebench.report.thumbs.write_thumbnails`)."""
    run_dir = Path(run_dir)
    verdicts = list(verdicts)
    validity = validity if validity is not None else attacker_validity(rows, VerdictParams().attacker_floor)
    configs = failed_configurations(statuses)
    by_name: dict[str, VerdictRow] = {v.defacer: v for v in verdicts}
    seen = {r.defacer for r in rows}
    missing = {d: len(c) for d, c in configs.items() if d not in by_name and d not in seen}
    # verdict order; defacers with rows but no verdict (none given) after them, then those without results
    defacers = [*by_name, *sorted(seen - set(by_name), key=lambda d: (d != CONTROL, d)), *sorted(missing)]
    thumbs = thumbs or {}
    title = f"defacebench report: {run_dir.name}"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{_asset('report.css')}</style></head>\n<body>\n"
        + _head(title, defacers, len(rows), sum(len(c) for c in configs.values()))
        + (verdict_section(verdicts, missing, note) if verdicts or missing else "")
        + heatmap_table(rows, [d for d in defacers if d in seen], validity,
                        after=_pictures(heatmap, attacks) if images else "")
        + cards_section(defacers, by_name, rows, validity, configs, thumbs, run_dir)
        + leaderboard_table(rows, defacers, by_name, run_dir, thumbs, images)
        + '<div id="lightbox" hidden><p class="caption"></p><img alt="full-size image"></div>\n'
        f"<script>{_asset('report.js')}</script>\n</body></html>\n"
    )
