"""The per-configuration montage image.

``write_montage`` draws
original vs defaced renders per subject side by side with the kept face box, so a person can see
at a glance what the attacker saw; "no face" is written on images without a kept face.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from defacebench.contracts import Face
from defacebench.util.fsutil import atomic_write_bytes
from defacebench.data.images import as_rgb

THUMB_PX = 256
LABEL_PX = 18
ROWS_PER_COLUMN = 8
BOX_COLORS = {"original": (40, 200, 60), "defaced": (230, 60, 40), "refilled": (60, 140, 240)}


@dataclass(frozen=True)
class MontageRow:
    """One subject's row: the original render and its kept face, the defaced render (None when
    defacing failed) and its kept face."""

    subject_id: str
    original: np.ndarray
    original_face: Face | None
    defaced: np.ndarray | None
    defaced_face: Face | None
    refilled: np.ndarray | None = None
    refilled_face: Face | None = None
    has_refilled: bool = False  # a third image: the probe after a refill attacker reconstructed its face


def shrink(image: np.ndarray, face: Face | None) -> tuple[np.ndarray, Face | None]:
    """The image reduced to the montage's cell size and its face box scaled with it, so a montage
    over many subjects holds thumbnails rather than full renders in memory."""
    from dataclasses import replace

    from PIL import Image

    rgb = as_rgb(image)
    h, w = rgb.shape[:2]
    scale = THUMB_PX / max(h, w)
    if scale >= 1.0:
        return rgb, face
    small = np.asarray(Image.fromarray(rgb).resize((max(1, round(w * scale)), max(1, round(h * scale)))))
    if face is None:
        return small, None
    lm = None if face.landmarks is None else np.asarray(face.landmarks) * scale
    return small, replace(face, box=tuple(v * scale for v in face.box), landmarks=lm)


def _thumb(image: np.ndarray | None, face: Face | None, color: tuple[int, int, int]):
    """A THUMB_PX square PIL thumbnail with the face box drawn (or a "no face"/"failed" note)."""
    from PIL import Image, ImageDraw

    if image is None:
        thumb = Image.new("RGB", (THUMB_PX, THUMB_PX), (60, 60, 60))
        ImageDraw.Draw(thumb).text((8, THUMB_PX // 2), "failed", fill=(255, 255, 255))
        return thumb
    rgb = as_rgb(image)
    h, w = rgb.shape[:2]
    scale = THUMB_PX / max(h, w)
    thumb = Image.new("RGB", (THUMB_PX, THUMB_PX))
    thumb.paste(Image.fromarray(rgb).resize((max(1, round(w * scale)), max(1, round(h * scale)))))
    draw = ImageDraw.Draw(thumb)
    if face is None:
        draw.text((8, 8), "no face", fill=(255, 255, 0))
    else:
        draw.rectangle([v * scale for v in face.box], outline=color, width=3)
        draw.text((8, 8), f"score {face.score:.2f}", fill=color)
    return thumb


def montage_image(rows: Sequence[MontageRow], rows_per_column: int = ROWS_PER_COLUMN) -> np.ndarray:
    """The montage as an (H, W, 3) uint8 array: per subject the original left of the defaced render
    (and of the refilled render when a refill attacker made one);
    subjects fill columns of ``rows_per_column`` so large runs stay viewable."""
    from PIL import Image, ImageDraw

    n_rows = min(max(1, len(rows)), rows_per_column)
    n_cols = max(1, -(-len(rows) // rows_per_column))
    per = 3 if any(r.has_refilled for r in rows) else 2
    cell_h = THUMB_PX + LABEL_PX
    canvas = Image.new("RGB", (n_cols * per * THUMB_PX, n_rows * cell_h), (20, 20, 20))
    draw = ImageDraw.Draw(canvas)
    for i, row in enumerate(rows):
        left, top = (i // rows_per_column) * per * THUMB_PX, (i % rows_per_column) * cell_h
        label = "original | defaced" + (" | refilled" if per == 3 else "")
        draw.text((left + 4, top + 3), f"{row.subject_id}: {label}", fill=(230, 230, 230))
        canvas.paste(_thumb(row.original, row.original_face, BOX_COLORS["original"]), (left, top + LABEL_PX))
        canvas.paste(_thumb(row.defaced, row.defaced_face, BOX_COLORS["defaced"]),
                     (left + THUMB_PX, top + LABEL_PX))
        if per == 3:
            canvas.paste(_thumb(row.refilled, row.refilled_face, BOX_COLORS["refilled"]),
                         (left + 2 * THUMB_PX, top + LABEL_PX))
    return np.asarray(canvas)


def write_montage(path: Path, rows: Sequence[MontageRow]) -> Path:
    """Write the montage PNG atomically (temp file in the same folder, then rename)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(montage_image(rows)).save(buf, format="PNG")
    return atomic_write_bytes(Path(path), buf.getvalue())
