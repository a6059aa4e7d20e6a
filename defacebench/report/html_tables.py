"""The two big tables of ``leaderboard.html``: the rank-1 heatmap and the full leaderboard.

The heatmap is an HTML table, not a picture: a run has 36 to 60 attackers, whose labels no
downscaled image keeps readable. Its header has one row per part of an attacker (scenario,
renderer, detector, recognizer); a part shared by neighbouring columns is one spanning cell, the
rest are written vertically, and every cell's tooltip names its full attack. Cells are coloured as
``heatmap.png`` (matplotlib's RdYlGn_r), link to their leaderboard row, show "~" at or below chance
and are greyed for invalid attackers.

The leaderboard groups its rows by defacer (one ``<tbody>`` each, in verdict order); the page's
script sorts rows within their group and filters them. Montages are small JPEG thumbnails
(:mod:`defacebench.report.thumbs`) loaded lazily, each opening its full montage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from defacebench.report.html_parts import anchor, badge, defacer_class, esc, link, thumbnail
from defacebench.report.rows import MD_HEADERS, LeaderboardRow, markdown_cells, sort_keys
from defacebench.report.thumbs import Thumb
from defacebench.report.verdict import AttackerValidity, VerdictRow

LEVELS = ("scenario", "renderer", "detector", "recognizer")
# the Markdown columns with the montage thumbnail second (in view beside its id) and two more at the end
BOARD_HEADERS = [MD_HEADERS[0], "montage", *MD_HEADERS[1:], "re-identified at rank 1", "ROC / PR"]


def _parts(a: AttackerValidity) -> tuple[str, str, str, str]:
    renderer, detector, recognizer, scenario = a.attacker
    return (scenario, renderer, detector, recognizer)


def _runs(attackers: list[AttackerValidity], level: int) -> list[tuple[int, int]]:
    """(start, end) of each run of columns sharing the parts up to ``level``."""
    out, start = [], 0
    for j in range(1, len(attackers) + 1):
        if j == len(attackers) or _parts(attackers[j])[:level + 1] != _parts(attackers[start])[:level + 1]:
            out.append((start, j))
            start = j
    return out


def _header(attackers: list[AttackerValidity]) -> str:
    rows = []
    for level, name in enumerate(LEVELS):
        cells = [f'<th class="lvl">{name}</th>']
        for start, end in _runs(attackers, level):
            a = attackers[start]
            text = _parts(a)[level]
            mark = "\u2717 " if level == len(LEVELS) - 1 and not a.valid else ""
            tip = a.label if end - start == 1 else text
            cls = "vert" if end - start == 1 else "span"
            cells.append(f'<th class="{cls}" colspan="{end - start}" title="{esc(tip)}">{esc(mark + text)}</th>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return "\n".join(rows)


def _colour(value: float) -> tuple[str, str]:
    """(background, text colour) of a rank-1 in RdYlGn_r, as heatmap.png draws it."""
    import matplotlib
    from matplotlib.colors import to_hex

    r, g, b, _ = matplotlib.colormaps["RdYlGn_r"](float(value))
    dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
    return to_hex((r, g, b)), ("#fff" if dark else "#000")


def _cell(row: LeaderboardRow | None, a: AttackerValidity) -> str:
    if row is None or row.rank1 is None:
        status = "" if row is None else f" ({row.status})"
        return f'<td class="hm none{"" if a.valid else " invalid"}" title="{esc(a.label + status)}">-</td>'
    at_chance = row.rank1_chance is not None and row.rank1 <= row.rank1_chance + 1e-9
    text = f"{'~' if at_chance else ''}{row.rank1:.2f}"
    ci = "" if row.rank1_ci is None else f" [{row.rank1_ci[0]:.3f}, {row.rank1_ci[1]:.3f}]"
    chance = "" if row.rank1_chance is None else f", chance {row.rank1_chance:.3f}"
    tip = f"{row.defacer} x {a.label}: rank-1 {row.rank1:.3f}{ci}{chance}"
    if not a.valid:
        return (f'<td class="hm invalid" title="{esc(tip + " (attacker invalid)")}">'
                f'<a href="#row-{esc(row.key)}">{text}</a></td>')
    background, colour = _colour(row.rank1)
    return (f'<td class="hm{" chance" if at_chance else ""}" style="background:{background};color:{colour}" '
            f'title="{esc(tip)}"><a href="#row-{esc(row.key)}">{text}</a></td>')


def heatmap_table(rows: list[LeaderboardRow], defacers: list[str], validity: Mapping[tuple, AttackerValidity], *,
                  after: str = "") -> str:
    """The heatmap section: defacers (rows, in ``defacers`` order) x attackers (columns), then ``after``."""
    attackers = sorted(validity.values(), key=lambda a: (a.attacker[3] != "rescan", *_parts(a)))
    if not attackers or not defacers:
        return ""
    found = {(r.defacer, r.attacker): r for r in rows}
    body = "\n".join(f'<tr><th class="lvl"><a href="#{anchor(d)}">{esc(d)}</a></th>'
                     + "".join(_cell(found.get((d, a.attacker)), a) for a in attackers) + "</tr>" for d in defacers)
    return ('<section id="heatmap">\n<h2>Rank-1 by defacer and attack</h2>\n'
            f"<p>{len(attackers)} attackers (renderer x detector x recognizer x scenario). Cell: rank-1, the share of "
            "defaced scans whose nearest undefaced scan is the same person (green 0, red 1); ~: at or below chance "
            "1/N; \u2717 and grey: the attacker is invalid on this dataset (its control rank-1 is below the floor) and "
            "judges no defacer. Hover a cell for its interval; click it for its leaderboard row.</p>\n"
            f'<div class="scroll"><table class="heat"><thead>\n{_header(attackers)}\n</thead><tbody>\n{body}\n'
            f"</tbody></table></div>\n{after}\n</section>\n")


def _identified(row: LeaderboardRow) -> str:
    ids = row.identified_ids
    if not ids:
        return '<td data-sort="0">-</td>'
    items = "".join(f"<li>{esc(i)}</li>" for i in ids)
    return (f'<td data-sort="{len(ids)}"><details><summary>{len(ids)} subject(s)</summary>'
            f"<ul>{items}</ul></details></td>")


def _board_row(row: LeaderboardRow, run_dir: Path, thumbs: Mapping[tuple[str, str], Thumb], images: bool) -> str:
    cells = []
    for i, (text, key) in enumerate(zip(markdown_cells(row), sort_keys(row))):
        cls = ' class="id"' if i == 0 else (' class="num"' if i < len(MD_HEADERS) - 2 else "")
        cells.append(f'<td{cls} data-sort="{esc(key)}">{esc(text)}</td>')
    montage = thumbnail(thumbs.get((row.key, "row")), link(row.montage, run_dir), f"montage {row.key}", "row")
    cells.insert(1, f'<td data-sort="">{montage if images else "-"}</td>')
    cells.append(_identified(row))
    plot = link(row.plot, run_dir) if images else None
    cells.append(f'<td data-sort=""><a class="zoom" href="{plot}" data-caption="ROC and precision-recall curves '
                 f'{esc(row.key)}">ROC / PR</a></td>' if plot else '<td data-sort="">-</td>')
    search = " ".join(f"{part}:{getattr(row, part)}" for part in ("defacer", "renderer", "detector", "recognizer",
                                                                  "scenario", "status"))
    klass = "control" if row.is_control else "config"
    return (f'<tr class="{klass}" id="row-{esc(row.key)}" data-config="{esc(row.key)}" '
            f'data-defacer="{esc(row.defacer)}" data-search="{esc((row.key + " " + search).lower())}">'
            f'{"".join(cells)}</tr>')


def leaderboard_table(rows: list[LeaderboardRow], defacers: list[str], verdicts: Mapping[str, VerdictRow],
                      run_dir: Path, thumbs: Mapping[tuple[str, str], Thumb], images: bool) -> str:
    """The leaderboard section: filter controls and one group of rows per defacer."""
    head = "".join(f'<th title="click to sort">{esc(h)}</th>' for h in BOARD_HEADERS)
    groups = []
    for d in defacers:
        mine = [r for r in rows if r.defacer == d]
        if not mine:
            continue
        name = defacer_class(verdicts[d]) if d in verdicts else "no_result"
        groups.append(f'<tbody class="group" data-defacer="{esc(d)}"><tr><th colspan="{len(BOARD_HEADERS)}">'
                      f'<a href="#{anchor(d)}">{esc(d)}</a> {badge(name)} {len(mine)} result(s)</th></tr></tbody>\n'
                      f'<tbody class="rows" data-defacer="{esc(d)}">\n'
                      + "\n".join(_board_row(r, run_dir, thumbs, images) for r in mine) + "\n</tbody>")
    options = "".join(f'<option value="{esc(d)}">{esc(d)}</option>' for d in defacers)
    return ('<section id="board">\n<h2 id="leaderboard-title">Leaderboard</h2>\n'
            "<p>Every result, grouped by defacer. Rank-1: share of defaced renders whose nearest original is the same "
            "person (lower = better protected). Privacy gain: control rank-1 minus this rank-1. Click a header to "
            "sort within each defacer; type words to filter (all must match, -word excludes).</p>\n"
            '<div class="controls"><label>Filter <input id="filter" type="search" '
            'placeholder="e.g. aware mobileface -invalid"></label> <label>Defacer <select id="filter-defacer">'
            f'<option value="">every defacer</option>{options}</select></label> '
            '<span id="filter-count"></span></div>\n'
            f'<div class="scroll"><table id="leaderboard"><thead><tr>{head}</tr></thead>\n'
            + "\n".join(groups) + "\n</table></div>\n</section>\n")
