"""Which detected face the harness keeps of the faces a detector found in one image.

The rule every stage uses: the highest detector score wins; on equal scores the larger box wins (a
render shows one head, and a spurious small detection is the likelier error); on equal score and
area the earlier face in the detector's list wins.
"""

from __future__ import annotations

from typing import Sequence

from defacebench.contracts import Face


def best_face(faces: Sequence[Face] | None) -> Face | None:
    """The kept face: highest score, then largest box area, then first in list; None if no face."""
    best, best_key = None, None
    for face in faces or ():
        x0, y0, x1, y1 = face.box
        key = (float(face.score), max(0.0, x1 - x0) * max(0.0, y1 - y0))
        if best_key is None or key > best_key:  # strict: the earlier face wins a full tie
            best, best_key = face, key
    return best
