"""The self-contained HTML leaderboard: a sortable table, montage and plot thumbnails inline.

Everything the page needs is inside the file: CSS, a small sorting script and the thumbnails as
base64 ``data:`` URIs (downscaled with Pillow), so the page can be mailed or archived alone. Every
piece of text that comes from data (configuration ids, plugin names, subject ids, status) goes
through ``html.escape``: a subject id such as ``<script>`` shows as text, never as markup.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from defacebench.report.rows import MD_HEADERS, LeaderboardRow, markdown_cells, sort_keys

THUMB_SIZE = (320, 1600)  # width cap; tall montages keep a readable width and scroll in their cell

_CSS = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; vertical-align: top; }
th { background: #eee; cursor: pointer; user-select: none; }
th.asc::after { content: " \\25B2"; } th.desc::after { content: " \\25BC"; }
tr.control { background: #f3f8ff; font-weight: bold; }
div.thumb { max-height: 360px; max-width: 340px; overflow-y: auto; }
img.thumb { display: block; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
"""

# Sort on header click; numbers compare numerically, missing values ('') always last.
_JS = r"""
document.querySelectorAll('#leaderboard th').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var tbody = document.querySelector('#leaderboard tbody');
    var asc = !th.classList.contains('asc');
    document.querySelectorAll('#leaderboard th').forEach(function (h) { h.classList.remove('asc', 'desc'); });
    th.classList.add(asc ? 'asc' : 'desc');
    var rows = Array.prototype.slice.call(tbody.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].dataset.sort, y = b.cells[col].dataset.sort;
      if (x === '' || y === '') { return (x === '') - (y === ''); }
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return asc ? c : -c;
    });
    rows.forEach(function (r) { tbody.appendChild(r); });
  });
});
// A link ending in #sort=<column> (or #sort=-<column>, descending) opens the table sorted.
(function () {
  var m = /^#sort=(-?)(\d+)$/.exec(window.location.hash);
  var th = m && document.querySelectorAll('#leaderboard th')[parseInt(m[2], 10)];
  if (th) { th.click(); if (m[1]) { th.click(); } }
})();
"""


def thumbnail_uri(path: Path, size: tuple[int, int] = THUMB_SIZE) -> str | None:
    """A PNG data URI of a downscaled copy of the image, or None when it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            img.thumbnail(size)
            buf = io.BytesIO()
            img.save(buf, format="PNG", optimize=True)
    except (OSError, UnidentifiedImageError):
        return None
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _image_cell(path: Path | None, run_dir: Path, alt: str, images: bool) -> str:
    """A <td> with the thumbnail of ``path`` (relative paths are under ``run_dir``), or '-'."""
    if not images or path is None:
        return '<td data-sort="">-</td>'
    full = path if path.is_absolute() else run_dir / path
    uri = thumbnail_uri(full)
    if uri is None:
        return '<td data-sort="">-</td>'
    # the link opens the full-size file relative to the page, so a copied run folder keeps working
    try:
        link = html.escape(full.resolve().relative_to(Path(run_dir).resolve()).as_posix())
    except ValueError:
        link = html.escape(full.resolve().as_uri())
    img = f'<img class="thumb" alt="{html.escape(alt)}" src="{uri}">'
    return f'<td data-sort=""><div class="thumb"><a href="{link}">{img}</a></div></td>'


def _identified_cell(row: LeaderboardRow) -> str:
    """The subjects re-identified at rank 1, in a collapsible list (ids escaped)."""
    ids = row.identified_ids
    if not ids:
        return '<td data-sort="0">-</td>'
    items = "".join(f"<li>{html.escape(i)}</li>" for i in ids)
    return (f'<td data-sort="{len(ids)}"><details><summary>{len(ids)} subject(s)</summary>'
            f"<ul>{items}</ul></details></td>")


def _row_html(row: LeaderboardRow, run_dir: Path, images: bool) -> str:
    """One <tr>; numeric cells right-aligned."""
    cells = []
    for i, (text, key) in enumerate(zip(markdown_cells(row), sort_keys(row))):
        cls = ' class="num"' if 0 < i < len(MD_HEADERS) - 2 else ""
        cells.append(f'<td{cls} data-sort="{html.escape(key)}">{html.escape(text)}</td>')
    cells.append(_identified_cell(row))
    cells.append(_image_cell(row.montage, run_dir, f"montage {row.config_id}", images))
    cells.append(_image_cell(row.plot, run_dir, f"ROC/PR {row.config_id}", images))
    klass = "control" if row.is_control else "config"
    return f'<tr class="{klass}" data-config="{html.escape(row.key)}">{"".join(cells)}</tr>'


def _picture(path: Path | None, name: str, alt: str, size: tuple[int, int] = (1400, 1400)) -> str:
    uri = thumbnail_uri(path, size) if path is not None else None
    return f'<p><a href="{name}"><img id="{name.split(".")[0]}" alt="{alt}" src="{uri}"></a></p>' if uri else ""


def _verdict_html(verdicts: list, heatmap: Path | None, attacks: Path | None, note: str) -> str:
    """The verdict table (one row per defacer: usable ones by rank, the control, then the unusable
    ones), the heatmap and the per-attack plot, above the leaderboard."""
    from defacebench.report.verdict_table import VERDICT_HEADERS, verdict_cells

    head = "".join(f"<th>{html.escape(h)}</th>" for h in VERDICT_HEADERS)
    body = "\n".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in verdict_cells(v)) + "</tr>"
                     for v in verdicts)
    return ("<h2>Verdict per defacer</h2>\n<p>How exposed each defacer is over every valid attacker and scenario "
            "(lower rank-1 = better protected), read against chance and corrected for choosing the worst of "
            "many attacks.</p>\n"
            f'<table id="verdict"><thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table>\n'
            + (f"<p>{html.escape(note)}</p>\n" if note else "")
            + _picture(heatmap, "heatmap.png", "rank-1 heatmap, defacer x attacker")
            + _picture(attacks, "attacks.png", "every attack's rank-1 per defacer with chance and the corrected threshold")
            + "\n<h2>Leaderboard</h2>\n")


def leaderboard_html(rows: list[LeaderboardRow], run_dir: Path, *, images: bool = True, verdicts: list = (),
                     heatmap: Path | None = None, attacks: Path | None = None, note: str = "") -> str:
    """The whole page as a string (rows already ordered and with privacy gain filled)."""
    headers = [*MD_HEADERS, "re-identified at rank 1", "montage", "ROC / PR"]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "\n".join(_row_html(r, Path(run_dir), images) for r in rows)
    title = f"defacebench leaderboard: {Path(run_dir).name}"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n"
        + (_verdict_html(list(verdicts), heatmap, attacks, note) if verdicts else "") +
        "<p>Rank-1: share of defaced renders whose nearest original is the same person (lower = better "
        "protected). Privacy gain: control rank-1 minus this rank-1. Click a header to sort.</p>\n"
        f"<table id=\"leaderboard\"><thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table>\n"
        f"<script>{_JS}</script>\n</body></html>\n"
    )
