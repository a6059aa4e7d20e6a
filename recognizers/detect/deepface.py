"""deepface face detector backends: `deepface_opencv`, `deepface_ssd`, `deepface_mtcnn`,
`deepface_yunet`, `deepface_retinaface`, `deepface_dlib`.

They run through deepface's detector API (``modeling.build_model(task="face_detector", ...)`` then
``detect_faces`` on a BGR image), which returns every face with its confidence and, depending on
the backend, eyes / nose / mouth corners (returned as landmarks). Each is available only when its
packages and weight files are already present here, so nothing is ever downloaded:
opencv uses the Haar XMLs opencv-python-headless<5 ships; dlib uses the 5-point predictor
provisioned from face-recognition-models; the others need files a user places in
``$DEEPFACE_HOME/.deepface/weights`` (the reason names them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Annotated

import numpy as np

from defacebench.contracts import Availability, Face, Range, WeightFile
from defacebench.data.images import as_rgb

from recognizers._backends import deepface_home as home
from recognizers._backends import deepface_weights
from recognizers._backends.weights import module_missing

_LANDMARK_KEYS = ("right_eye", "left_eye", "nose", "mouth_right", "mouth_left")


@dataclass(frozen=True)
class DeepfaceDetectorParams:
    """``min_score``: faces below this detector confidence are dropped (deepface's own thresholds
    still apply inside each backend)."""

    min_score: Annotated[float, Range(ge=0, le=1)] = 0.0


def _haar_files_present() -> Availability:
    """deepface's opencv backend reads the Haar XMLs from cv2's data folder (else downloads)."""
    if module_missing("cv2"):
        return Availability.no("python module cv2 not installed: pip install 'opencv-contrib-python-headless<5'")
    import cv2

    folder = os.path.join(os.path.dirname(cv2.__file__), "data")
    for name in ("haarcascade_frontalface_default.xml", "haarcascade_eye.xml"):
        if not os.path.isfile(os.path.join(folder, name)):
            return Availability.no(f"deepface opencv: {name} not found in {folder}: install "
                                   "opencv-contrib-python-headless<5 (opencv 5 dropped the cascades)")
    return Availability.yes()


def _to_face(region, min_score: float) -> Face | None:
    """Face record of a deepface FacialAreaRegion (None when below ``min_score``)."""
    score = float(region.confidence) if region.confidence is not None else 1.0
    if score < min_score:
        return None
    points = [getattr(region, k, None) for k in _LANDMARK_KEYS]
    known = [p for p in points if p is not None]
    marks = np.array(known, dtype=float).reshape(-1, 2) if known else None
    box = (float(region.x), float(region.y), float(region.x + region.w), float(region.y + region.h))
    return Face(box=box, score=score, landmarks=marks)


class _DeepfaceDetector:
    """One deepface detector backend behind the Detector contract."""

    backend = ""
    modules: tuple[str, ...] = ()
    version = "1"
    licence = "MIT (deepface); the backend's own licence"
    needs = "deepface (defacebench[deepface]); for some backends their weight files, already present (defacebench weights fetch), deepface_mtcnn TensorFlow"

    def __init__(self, params: DeepfaceDetectorParams | None = None) -> None:
        self.params = params if params is not None else DeepfaceDetectorParams()

    def weight_files(self) -> tuple[str, ...]:
        """Files deepface would download for this backend."""
        return ()

    def weights(self) -> list[WeightFile]:
        """The backend's weight files, fetched by ``defacebench weights fetch`` via deepface."""
        return deepface_weights.records(
            self.weight_files(), lambda: deepface_weights.deepface_sources("face_detector", self.backend))

    def available(self) -> Availability:
        """Available when deepface (+ backend modules) import and every weight file is present."""
        avail = home.package_availability(*self.modules)
        if not avail.ok:
            return avail
        return home.weights_availability(self.weight_files(), f"deepface detector {self.backend}")

    def detect(self, image: np.ndarray) -> list[Face]:
        """All faces in ``image`` (RGB), highest score first."""
        home.require(self.available())
        rgb = as_rgb(image)
        model = home.build_model("face_detector", self.backend)
        regions = model.detect_faces(np.ascontiguousarray(rgb[:, :, ::-1]))  # deepface works in BGR
        faces = [f for f in (_to_face(r, self.params.min_score) for r in regions) if f is not None]
        return sorted(faces, key=lambda f: -f.score)


class DeepfaceOpencv(_DeepfaceDetector):
    """deepface's opencv backend (Haar cascade + eye cascade). In the default product although
    `opencv_haar` runs the same cascade: deepface's own cascade settings draw other boxes, and on
    the sample that moved one quickshear subject to a match with faceres (0.250 vs 0.188)."""

    name, backend, modules = "deepface_opencv", "opencv", ("cv2",)

    def available(self) -> Availability:
        """Needs deepface and the Haar XMLs in cv2's data folder."""
        avail = home.package_availability(*self.modules)
        return avail if not avail.ok else _haar_files_present()


class DeepfaceSsd(_DeepfaceDetector):
    """deepface's OpenCV DNN SSD (res10 300x300)."""

    name, backend, modules = "deepface_ssd", "ssd", ("cv2",)

    def weight_files(self) -> tuple[str, ...]:
        return ("deploy.prototxt", "res10_300x300_ssd_iter_140000.caffemodel")


class DeepfaceMtcnn(_DeepfaceDetector):
    """deepface's MTCNN backend: the mtcnn package bundles its weights but runs them on
    TensorFlow, so this needs TensorFlow too (the `mtcnn` detector runs the same weights on
    onnxruntime without it)."""

    name, backend, modules = "deepface_mtcnn", "mtcnn", ("mtcnn", "tensorflow")
    opt_in = "the same MTCNN weights as mtcnn, run on TensorFlow"


class DeepfaceYunet(_DeepfaceDetector):
    """deepface's YuNet backend (OpenCV FaceDetectorYN)."""

    name, backend, modules = "deepface_yunet", "yunet", ("cv2",)

    def weight_files(self) -> tuple[str, ...]:
        return ("face_detection_yunet_2023mar.onnx",)


class DeepfaceRetinaface(_DeepfaceDetector):
    """deepface's retinaface backend (the retina-face package; same weights as `retinaface`)."""

    name, backend, modules = "deepface_retinaface", "retinaface", ("retinaface",)
    opt_in = "the same RetinaFace weights as retinaface"

    def weight_files(self) -> tuple[str, ...]:
        from recognizers.detect.retinaface import retinaface_weight_file

        return (retinaface_weight_file(),)

    def weights(self) -> list[WeightFile]:
        """retina-face's file, fetched with retina-face's own downloader."""
        return deepface_weights.records(self.weight_files(), deepface_weights.retinaface_sources, "retinaface")


class DeepfaceDlib(_DeepfaceDetector):
    """deepface's dlib backend (HOG + 5-point predictor provisioned from face-recognition-models)."""

    name, backend, modules = "deepface_dlib", "dlib", ("dlib",)
    opt_in = "the same dlib HOG detector as dlib_hog; the original study's detector, run it to reproduce the study"

    def weight_files(self) -> tuple[str, ...]:
        return ("shape_predictor_5_face_landmarks.dat",)
