"""`retinaface` detector: the retina-face package (RetinaFace ResNet-50), scores and 5 landmarks.

retina-face looks for its weights in ``$DEEPFACE_HOME/.deepface/weights`` (``retinaface.onnx``,
``.h5`` or ``.pth`` depending on the engine it runs on) and downloads them when missing; this plugin
is available only when the file is already there, so it never downloads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import numpy as np

from defacebench.contracts import Availability, Face, Range, WeightFile
from defacebench.data.images import as_rgb

from recognizers._backends import deepface_home as home
from recognizers._backends import deepface_weights
from recognizers._backends.weights import module_missing

_SUFFIX = {"onnx": ".onnx", "tensorflow": ".h5", "pytorch": ".pth"}
_LANDMARKS = ("right_eye", "left_eye", "nose", "mouth_right", "mouth_left")


def retinaface_weight_file() -> str:
    """The weight file name retina-face needs on the engine it will run on."""
    home.activate()
    from retinaface.commons import backend_utils

    return "retinaface" + _SUFFIX.get(backend_utils.get_backend_engine(), ".onnx")


@dataclass(frozen=True)
class RetinaFaceParams:
    """``threshold``: retina-face's detection threshold; ``allow_upscaling``: its pyramid upscaling."""

    threshold: Annotated[float, Range(ge=0, le=1)] = 0.9
    allow_upscaling: bool = True


class RetinaFace:
    """retina-face detector behind the Detector contract."""

    name = "retinaface"
    version = "1"
    licence = "MIT (retina-face)"
    needs = "retina-face and its weight file, already present (defacebench weights fetch)"

    def __init__(self, params: RetinaFaceParams | None = None) -> None:
        self.params = params if params is not None else RetinaFaceParams()

    def weights(self) -> list[WeightFile]:
        """retina-face's weight file, fetched by ``defacebench weights fetch`` with its own downloader."""
        if module_missing("retinaface"):
            return []
        return deepface_weights.records((retinaface_weight_file(),), deepface_weights.retinaface_sources, "retinaface")

    def available(self) -> Availability:
        """Needs the retina-face package and its weight file in the defacebench DEEPFACE_HOME."""
        if module_missing("retinaface"):
            return Availability.no("python module retinaface not installed: pip install retina-face")
        return home.weights_availability((retinaface_weight_file(),), "retinaface")

    def detect(self, image: np.ndarray) -> list[Face]:
        """All faces in ``image`` (RGB), highest score first, with 5 landmarks each."""
        home.require(self.available())
        from retinaface import RetinaFace as rf

        rgb = as_rgb(image)
        found = rf.detect_faces(np.ascontiguousarray(rgb[:, :, ::-1]), threshold=self.params.threshold,
                                model=rf.build_model(), allow_upscaling=self.params.allow_upscaling)
        faces = []
        for obj in (found.values() if isinstance(found, dict) else []):
            marks = np.array([obj["landmarks"][k] for k in _LANDMARKS if k in obj.get("landmarks", {})],
                             dtype=float).reshape(-1, 2)
            box = tuple(float(v) for v in obj["facial_area"])
            faces.append(Face(box=box, score=float(obj["score"]), landmarks=marks if marks.size else None))
        return sorted(faces, key=lambda f: -f.score)
