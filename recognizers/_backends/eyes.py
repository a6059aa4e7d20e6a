"""Eye centres of a detected face that do not depend on which detector drew its box, for the
recognizers that place the eyes (`faceres`, `faceres_deep`; `mobileface` when the detector gives no
``face5`` landmarks).

Why: dlib's 5-point shape predictor starts from the box it is handed, and each detector draws its
box its own way (dlib HOG's are tight, cut the forehead and come in a few pyramid sizes; MTCNN's
are tall; Haar's wide), so the eye centres it finds move by several pixels with the detector. On
the 16-subject sample that was enough to cost `faceres` 2 of 16 rank-1 hits with dlib_hog. Running
the predictor again on a box rebuilt from the eyes it found, drawn the way dlib HOG draws boxes
(the boxes the predictor was trained on), makes the start, and so the answer, the same whatever
the detector.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from defacebench.contracts import Face


@dataclass(frozen=True)
class HogBoxGeometry:
    """Where the eye centres sit in a dlib HOG box, as fractions of the box side: their distance
    apart and their midpoint's x and y. Means over the 32 control renders of the 16-subject sample
    (dlib_hog boxes, eyes from dlib's 5-point predictor on them; spread 0.02-0.05)."""

    eye_distance: float = 0.417
    eye_x: float = 0.494
    eye_y: float = 0.278


def box_from_eyes(eyes: np.ndarray, geometry: HogBoxGeometry = HogBoxGeometry(),
                  scale: float = 1.0) -> tuple[float, float, float, float]:
    """The square (x0, y0, x1, y1) in which ``eyes`` (2, 2) sit as in a dlib HOG box, then
    scaled ``scale`` times about its centre."""
    eyes = np.asarray(eyes, float)
    mid = eyes.mean(axis=0)
    side = float(np.linalg.norm(eyes[1] - eyes[0])) / geometry.eye_distance
    cx = mid[0] + (0.5 - geometry.eye_x) * side
    cy = mid[1] + (0.5 - geometry.eye_y) * side
    half = side * scale / 2.0
    return float(cx - half), float(cy - half), float(cx + half), float(cy + half)


def face5_points(face: Face) -> np.ndarray | None:
    """The face's (5, 2) ``face5`` landmarks (MTCNN's), or None when it has none."""
    marks = face.landmarks
    if face.landmark_scheme == "face5" and marks is not None and np.asarray(marks).shape == (5, 2):
        return np.asarray(marks, float)
    return None


def eye_centres(image: np.ndarray, face: Face, passes: int, scales: tuple[float, ...] = (1.0,)) -> np.ndarray:
    """(2, 2) eye centres, image-left first: the face's own ``face5`` eyes, else those of dlib's
    5-point predictor on its box; then ``passes`` times the mean of those the predictor finds on
    the box rebuilt from the last eyes (:func:`box_from_eyes`) scaled by each of ``scales``.
    ``passes`` 0 keeps the first answer. Why a mean: the predictor's points are whole pixels and
    shift with its start box, so one box leaves ~1 px of jitter under pixel noise (measured on the
    test renders, noise sigma 4: 0.9 px mean; three scales 0.92, 1, 1.08: 0.5 px)."""
    from recognizers._backends import align, dlib_models

    own = face5_points(face)
    eyes = own[:2] if own is not None else align.dlib5_eye_centres(dlib_models.landmarks5(image, face.box))
    for _ in range(max(0, int(passes))):
        if not np.linalg.norm(eyes[1] - eyes[0]) > 0:
            break  # degenerate eyes give no box; keep them (the similarity will say so)
        found = [align.dlib5_eye_centres(dlib_models.landmarks5(image, box_from_eyes(eyes, scale=s)))
                 for s in scales or (1.0,)]
        eyes = np.mean(found, axis=0)
    return eyes
