"""`opencv_haar` detector: OpenCV's Viola-Jones cascade ``haarcascade_frontalface_default.xml``.

The XMLs ship with opencv-python(-headless) < 5 (``cv2.data.haarcascades``). Score = the level
weight of ``detectMultiScale3`` (higher is more confident); no landmarks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated

import numpy as np

from defacebench.contracts import Availability, Face, Range
from defacebench.errors import PluginUnavailableError
from defacebench.data.images import as_rgb

from recognizers._backends.weights import module_missing

CASCADE = "haarcascade_frontalface_default.xml"


@dataclass(frozen=True)
class OpencvHaarParams:
    """detectMultiScale settings: pyramid ``scale_factor``, ``min_neighbors`` (higher = fewer false
    faces), ``min_size_px`` smallest face side."""

    scale_factor: Annotated[float, Range(gt=1)] = 1.1
    min_neighbors: Annotated[int, Range(ge=0)] = 5
    min_size_px: Annotated[int, Range(ge=1)] = 40


def _cascade_path() -> str | None:
    """Path of the frontal-face cascade in cv2's data folder, or None."""
    import cv2

    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if not folder:
        return None
    path = os.path.join(folder, CASCADE)
    return path if os.path.isfile(path) else None


@lru_cache(maxsize=None)
def _cascade():
    """The loaded cascade classifier (once per process)."""
    import cv2

    return cv2.CascadeClassifier(_cascade_path())


class OpencvHaar:
    """OpenCV Haar cascade detector (see module docstring)."""

    name = "opencv_haar"
    version = "1"
    licence = "Apache-2.0 (OpenCV and its Haar cascades)"
    needs = "opencv-contrib-python-headless < 5 (defacebench[opencv])"

    def __init__(self, params: OpencvHaarParams | None = None) -> None:
        self.params = params if params is not None else OpencvHaarParams()

    def available(self) -> Availability:
        """Needs cv2 < 5 with CascadeClassifier and the frontal-face XML."""
        fix = "pip install 'opencv-contrib-python-headless<5'"
        if module_missing("cv2"):
            return Availability.no(f"python module cv2 not installed: {fix}")
        import cv2

        if not hasattr(cv2, "CascadeClassifier"):
            return Availability.no(f"cv2 {cv2.__version__} has no CascadeClassifier (opencv 5 dropped it): {fix}")
        if _cascade_path() is None:
            return Availability.no(f"{CASCADE} not found in cv2.data.haarcascades: {fix}")
        return Availability.yes()

    def detect(self, image: np.ndarray) -> list[Face]:
        """All faces in ``image`` (RGB), highest level weight first."""
        avail = self.available()
        if not avail.ok:
            raise PluginUnavailableError(avail.reason)
        import cv2

        gray = cv2.cvtColor(as_rgb(image), cv2.COLOR_RGB2GRAY)
        p = self.params
        boxes, _, weights = _cascade().detectMultiScale3(
            gray, scaleFactor=p.scale_factor, minNeighbors=p.min_neighbors,
            minSize=(p.min_size_px, p.min_size_px), outputRejectLevels=True)
        faces = [Face(box=(float(x), float(y), float(x + w), float(y + h)), score=float(s))
                 for (x, y, w, h), s in zip(np.asarray(boxes).reshape(-1, 4), np.asarray(weights).ravel())]
        return sorted(faces, key=lambda f: -f.score)
