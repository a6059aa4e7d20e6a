"""Small JPEG files of the run's montages, for ``leaderboard.html`` to load lazily.

A montage of N subjects is a tall PNG (16 subjects: 1024 x 2192 px, ~0.7 MB); a page of 250
configurations cannot inline them. Each montage gets two small files in ``<run>/thumbs/``:

* ``<key>.row.jpg``: the first subject's original | defaced pair (what the defacing did, at a
  glance), for the leaderboard's table row;
* ``<key>.card.jpg``: the whole montage at a readable width, for the report card of the defacer
  whose worst attack it is.

The page links each one to the full montage. The files depend only on the montage (the same
bytes whenever they are written), and ``defacebench report`` keeps those newer than their montage.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

from defacebench.report.montage import LABEL_PX, THUMB_PX
from defacebench.util.fsutil import atomic_write_bytes

THUMBS = "thumbs"
ROW_WIDTH = 128
CARD_WIDTH = 480
QUALITY = 80


@dataclass(frozen=True)
class Thumb:
    """A written thumbnail: its path relative to the run folder and its size (the page reserves the
    space, so lazily loaded images do not shift the page)."""

    path: str
    width: int
    height: int


def thumb_path(key: str, kind: str) -> str:
    """The thumbnail's path relative to the run folder (``kind``: row or card)."""
    return f"{THUMBS}/{re.sub(r'[^A-Za-z0-9_.-]', '_', key)}.{kind}.jpg"


def _first_pair(width: int, height: int) -> tuple[int, int, int, int] | None:
    """The box of the first subject's original | defaced pair when the image has a montage's layout
    (cells of THUMB_PX, two or more per subject, rows of THUMB_PX + LABEL_PX)."""
    cell = THUMB_PX + LABEL_PX
    fits = width >= 2 * THUMB_PX and width % THUMB_PX == 0 and height >= cell and height % cell == 0
    return (0, 0, 2 * THUMB_PX, cell) if fits else None


def write_thumbnail(montage: Path, run_dir: Path, key: str, kind: str) -> Thumb | None:
    """Write one thumbnail of ``montage`` unless one newer than the montage is there (a rebuild
    decodes no montage again); None when the montage cannot be read (the page then shows '-' and
    the leaderboard keeps the numbers)."""
    from PIL import Image, UnidentifiedImageError

    relative = thumb_path(key, kind)
    target = Path(run_dir) / relative
    try:
        if target.is_file() and target.stat().st_mtime >= Path(montage).stat().st_mtime:
            with Image.open(target) as done:
                return Thumb(relative, *done.size)
        with Image.open(montage) as img:
            box = _first_pair(*img.size) if kind == "row" else None
            img = (img.crop(box) if box else img).convert("RGB")  # crop first: converting copies
            width = ROW_WIDTH if kind == "row" else CARD_WIDTH
            if img.width > width:
                img = img.resize((width, max(1, round(img.height * width / img.width))), Image.Resampling.LANCZOS,
                                 reducing_gap=2.0)
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=QUALITY)
    except (OSError, UnidentifiedImageError):
        return None
    atomic_write_bytes(target, buf.getvalue())
    return Thumb(relative, img.width, img.height)


def write_thumbnails(run_dir: Path, rows, card_keys: set[str]) -> dict[tuple[str, str], Thumb]:
    """Row thumbnails of every row with a montage, card thumbnails of the rows in ``card_keys``
    (each defacer's worst attack); keyed by (row key, kind)."""
    out = {}
    for row in rows:
        if row.montage is None:
            continue
        full = row.montage if row.montage.is_absolute() else Path(run_dir) / row.montage
        for kind in ("row", "card") if row.key in card_keys else ("row",):
            thumb = write_thumbnail(full, run_dir, row.key, kind)
            if thumb is not None:
                out[(row.key, kind)] = thumb
    return out
