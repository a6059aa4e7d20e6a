"""Pieces of ``leaderboard.html`` its sections share: escaped text, a defacer's class and badge,
interval bars drawn with CSS, and links to the run folder's images.

Every piece of text that comes from data (configuration ids, plugin names, subject ids, reasons)
goes through :func:`esc`: a subject id such as ``<script>`` shows as text, never as markup.
"""

from __future__ import annotations

import html
from pathlib import Path

from defacebench.report.rows import fmt_value
from defacebench.report.thumbs import Thumb
from defacebench.report.verdict import VerdictRow

NO_RESULT = "no_result"

# what each class means, in the words the page's legend uses
CLASSES = {
    "exposed": "an attack re-identifies defaced scans above chance, corrected for choosing the worst of all attacks "
               "(max-T p_exposed < alpha)",
    "not_shown_exposed": "no attack beats chance after that correction at this number of subjects; not proof of "
                         "protection: exposures below the detectable rank-1 go unseen",
    "untestable": "no valid attack with per-subject results: nothing can be said",
    "anatomy_destroyed": "the defacing removed the head or damaged the brain on more subjects than allowed: not usable",
    "defacer_failed": "the defacing failed on more subjects than allowed: not usable",
    NO_RESULT: "no configuration of this defacer produced a result (see its failures)",
}


def esc(text: object) -> str:
    """HTML-escaped text (quotes too: safe inside attributes)."""
    return html.escape(str(text), quote=True)


def num(value: float | None, ci: tuple[float, float] | None = None) -> str:
    """'0.800 [0.700, 0.880]' or '-', escaped."""
    return esc(fmt_value(value, ci))


def defacer_class(v: VerdictRow) -> str:
    """The one word that says what a defacer is: its exposure, unless it is not usable."""
    return v.status if v.status in ("anatomy_destroyed", "defacer_failed") else v.exposure


def badge(name: str) -> str:
    """The class as a coloured label whose tooltip says what it means."""
    return f'<span class="badge c-{esc(name)}" title="{esc(CLASSES.get(name, name))}">{esc(name)}</span>'


def anchor(defacer: str) -> str:
    """The id of a defacer's report card."""
    return f"card-{esc(defacer)}"


def _pct(x: float) -> str:
    return f"{100 * min(max(x, 0.0), 1.0):.1f}%"


def bar(value: float | None, ci: tuple[float, float] | None, *, chance: float | None = None,
        threshold: float | None = None, worst: float | None = None) -> str:
    """A rank-1 on a 0..1 scale: its interval, the chance level (dashed), the corrected threshold
    (dotted: the smallest worst case the max-T test calls exposed) and the cross-fitted worst case
    (solid). Drawn with CSS, so a page of hundreds of bars stays small and needs no script."""
    if value is None:
        return '<span class="bar empty"></span>'
    hot = threshold is not None and value >= threshold - 1e-9
    parts = []
    if ci is not None:
        parts.append(f'<i class="ci" style="left:{_pct(ci[0])};width:{_pct(ci[1] - ci[0])}"></i>')
    for cls, x in (("chance", chance), ("thr", threshold), ("worst", worst)):
        if x is not None:
            parts.append(f'<i class="{cls}" style="left:{_pct(x)}"></i>')
    parts.append(f'<b style="left:{_pct(value)}"></b>')
    return f'<span class="bar{" hot" if hot else ""}">{"".join(parts)}</span>'


def link(path: Path | None, run_dir: Path) -> str | None:
    """An escaped href to ``path`` (relative paths are under ``run_dir``): relative to the page when
    the file is inside the run folder (a copied run folder keeps working), else a file URI."""
    if path is None:
        return None
    full = path if path.is_absolute() else Path(run_dir) / path
    try:
        return esc(full.resolve().relative_to(Path(run_dir).resolve()).as_posix())
    except ValueError:
        return esc(full.resolve().as_uri())


def thumbnail(thumb: Thumb | None, full: str | None, alt: str, cls: str) -> str:
    """A lazily loaded thumbnail that opens the full image on click, or '-'."""
    if thumb is None or full is None:
        return "-"
    return (f'<a class="zoom" href="{full}" data-caption="{esc(alt)}"><img class="{cls}" loading="lazy" '
            f'src="{esc(thumb.path)}" width="{thumb.width}" height="{thumb.height}" alt="{esc(alt)}"></a>')
