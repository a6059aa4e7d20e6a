"""Which face is kept (best_face) and the original-vs-defaced montage."""

from __future__ import annotations

import numpy as np
from PIL import Image

from defacebench.contracts import Face
from defacebench.report.montage import THUMB_PX, MontageRow, write_montage
from defacebench.run.faces import best_face


def test_best_face_rules():
    """Highest score wins; equal scores: larger box; full tie: the first; nothing: None."""
    small, big = Face((0, 0, 10, 10), 0.5), Face((0, 0, 50, 50), 0.5)
    strong = Face((0, 0, 5, 5), 0.9)
    assert best_face([small, strong, big]) is strong
    assert best_face([small, big]) is big
    twin = Face((0, 0, 50, 50), 0.5)
    assert best_face([big, twin]) is big and best_face([twin, big]) is twin
    assert best_face([]) is None and best_face(None) is None


def test_montage_draws_boxes_and_marks_failures(tmp_path):
    """One row per subject, two thumbnails; the kept box is drawn in its colour; a failed defacing
    and a missing face are written as such, not dropped."""
    img = np.full((200, 200, 3), 90, np.uint8)
    face = Face((50, 50, 150, 150), 0.8)
    rows = [MontageRow("s1", img, face, img, None), MontageRow("s2", img, face, None, None)]
    path = write_montage(tmp_path / "m" / "montage.png", rows)
    out = np.asarray(Image.open(path).convert("RGB"))
    assert out.shape == (2 * (THUMB_PX + 18), 2 * THUMB_PX, 3)
    green = (out[..., 1] > 180) & (out[..., 0] < 80)
    assert green[:, :THUMB_PX].sum() > 100  # the original's box
    assert not green[:, THUMB_PX:].any()  # no kept face on the defaced side
    assert not list(tmp_path.glob("m/.*"))  # no temp file left behind


def test_many_subjects_fill_columns():
    """20 subjects: 8 rows per column, 3 column pairs."""
    from defacebench.report.montage import LABEL_PX, ROWS_PER_COLUMN, montage_image

    img = np.full((64, 64, 3), 90, np.uint8)
    rows = [MontageRow(str(i), img, None, img, None) for i in range(20)]
    out = montage_image(rows)
    assert out.shape == (ROWS_PER_COLUMN * (THUMB_PX + LABEL_PX), 3 * 2 * THUMB_PX, 3)


def test_refill_montage_has_three_images_per_subject(tmp_path):
    """A refill attacker's montage: original | defaced | refilled, the refilled face boxed in its colour;
    the thumbnail cut (the first subject's original | defaced pair) still finds its layout."""
    from defacebench.report.montage import BOX_COLORS
    from defacebench.report.thumbs import _first_pair

    img = np.full((200, 200, 3), 90, np.uint8)
    face = Face((50, 50, 150, 150), 0.8)
    rows = [MontageRow("s1", img, face, img, None, img, face, True), MontageRow("s2", img, face, img, None, None, None,
                                                                               True)]
    out = np.asarray(Image.open(write_montage(tmp_path / "montage.png", rows)).convert("RGB"))
    assert out.shape == (2 * (THUMB_PX + 18), 3 * THUMB_PX, 3)
    blue = np.all(np.abs(out.astype(int) - BOX_COLORS["refilled"]) < 10, axis=-1)
    assert blue[:THUMB_PX + 18, 2 * THUMB_PX:].sum() > 100 and not blue[:, :2 * THUMB_PX].any()
    assert not blue[THUMB_PX + 18:].any()  # the second subject's refill has no face
    assert _first_pair(out.shape[1], out.shape[0]) == (0, 0, 2 * THUMB_PX, THUMB_PX + 18)
