"""Helpers shared by the recognizer plugins: the embedding counter, NaN rows for missing faces, crops.

Why: the pipeline checks that N subjects cost 2N recognizer passes; every recognizer counts the
items it embedded in ``n_embedded``. A missing face (None) gives a NaN row, never a dropped row,
so the distance matrix keeps the subject as a non-match.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from defacebench.contracts import Face
from defacebench.data.images import as_rgb


class CountingRecognizer:
    """Base of every recognizer: ``n_embedded`` counts (image, face) items actually embedded."""

    dim: int = 0

    def __init__(self) -> None:
        self.n_embedded = 0

    def _embed_present(self, items: Sequence[tuple[np.ndarray, Face | None]],
                       fn: Callable[[list[tuple[np.ndarray, Face]]], np.ndarray]) -> np.ndarray:
        """Embed the items that have a face with ``fn`` (one batched call); NaN rows for the rest."""
        keep = [i for i, (_, face) in enumerate(items) if face is not None]
        out = np.full((len(items), self.dim), np.nan, dtype=np.float64)
        if keep:
            present = [(as_rgb(items[i][0]), items[i][1]) for i in keep]
            vectors = np.asarray(fn(present), dtype=np.float64).reshape(len(keep), -1)
            if vectors.shape[1] != self.dim:
                out = np.full((len(items), vectors.shape[1]), np.nan, dtype=np.float64)
            out[keep] = vectors
            self.n_embedded += len(keep)
        return out


def crop(image: np.ndarray, box: tuple[float, float, float, float], expand: float = 0.0) -> np.ndarray:
    """The pixels of ``box`` (x0, y0, x1, y1) grown by ``expand`` x its size on each side, clipped."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box)
    dx, dy = (x1 - x0) * expand, (y1 - y0) * expand
    c0, r0 = int(max(0, np.floor(x0 - dx))), int(max(0, np.floor(y0 - dy)))
    c1, r1 = int(min(w, np.ceil(x1 + dx))), int(min(h, np.ceil(y1 + dy)))
    if c1 <= c0 or r1 <= r0:
        c0, r0, c1, r1 = 0, 0, w, h  # a box outside the image: fall back to the whole image
    return np.ascontiguousarray(image[r0:r1, c0:c1])
