"""`mtcnn` detector: the MTCNN cascade with its five landmarks, on onnxruntime, no TensorFlow.

The weights are the ones the ``mtcnn`` wheel (>= 1.0, MIT) ships; the networks are rebuilt as ONNX
graphs in memory (recognizers._backends.mtcnn_nets) and the cascade runs in numpy + OpenCV
(recognizers._backends.mtcnn_cascade), step for step as mtcnn 1.0.0 runs it: on the sample's renders
it finds what the package finds (``scripts/mtcnn_reference.py``; docs/models.md has the table). Each face carries five landmarks in the ``face5`` scheme
(eye centres, nose tip, mouth corners; image-left first), which the `mobileface` recognizer aligns
with. Score = O-Net's face probability.

Why not deepface's or mtcnn's own runtime: both need TensorFlow (~600 MB); this route adds the
2 MB wheel, lz4 and onnx, and runs a 512 px render in ~35 ms on one core, faster than dlib's HOG.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import numpy as np

from defacebench.contracts import Availability, Face, Range, WeightFile
from defacebench.data.images import as_rgb
from defacebench.errors import PluginUnavailableError

from recognizers._backends import mtcnn_nets
from recognizers._backends.weights import module_missing

_MODULES = {"joblib": "pip install joblib", "lz4": "pip install lz4", "onnx": "pip install onnx",
            "onnxruntime": "pip install onnxruntime",
            "cv2": "pip install 'opencv-contrib-python-headless<5'"}


_P = Annotated[float, Range(ge=0, le=1)]  # a face probability


@dataclass(frozen=True)
class MtcnnParams:
    """``min_face_px``: smallest face searched for (the pyramid starts where such a face fills
    P-Net's 12 px cell; 40 px halves the time of MTCNN's usual 20 on 512 px renders, whose faces
    are ~200 px); ``scale_factor``: pyramid step; ``thresholds``: face probability each of P-Net,
    R-Net and O-Net must exceed (MTCNN's defaults); ``threads``: onnxruntime threads (1: the
    benchmark runs several workers side by side)."""

    min_face_px: Annotated[int, Range(ge=1)] = 40
    scale_factor: Annotated[float, Range(gt=0, lt=1)] = 0.709
    thresholds: tuple[_P, _P, _P] = (0.6, 0.7, 0.8)
    threads: Annotated[int, Range(ge=1)] = 1


class Mtcnn:
    """MTCNN face detector (see module docstring)."""

    name = "mtcnn"
    version = "2"  # 2: the cascade follows mtcnn 1.0.0 (pyramid, crops, box arithmetic, NMS)
    licence = "MIT (mtcnn 1.0 weights)"
    needs = "the mtcnn wheel's weights, run on onnxruntime (defacebench[mtcnn]; no TensorFlow)"

    def __init__(self, params: MtcnnParams | None = None) -> None:
        self.params = params if params is not None else MtcnnParams()

    def weights(self) -> list[WeightFile]:
        """The three weight files of the mtcnn wheel (installed with pip, never downloaded here)."""
        folder = mtcnn_nets.weights_dir()
        return [WeightFile(name=f"{net}.lz4", path=(folder or _missing_package()) / f"{net}.lz4",
                           url="PyPI package mtcnn 1.0.0", sha256=mtcnn_nets.WEIGHT_SHA256[f"{net}.lz4"],
                           how=mtcnn_nets.INSTALL) for net in mtcnn_nets.NETS]

    def available(self) -> Availability:
        """Needs the mtcnn wheel's weight files, joblib + lz4 to read them, onnx, onnxruntime, cv2."""
        for module, fix in _MODULES.items():
            if module_missing(module):
                return Availability.no(f"python module {module} not installed: {fix}")
        for net in mtcnn_nets.NETS:
            if mtcnn_nets.weight_path(net) is None:
                where = mtcnn_nets.weights_dir() or "the mtcnn package (not installed)"
                return Availability.no(f"{net}.lz4 not found in {where}: {mtcnn_nets.INSTALL} "
                                       "(`defacebench weights list` shows every weight file)")
        return Availability.yes()

    def detect(self, image: np.ndarray) -> list[Face]:
        """All faces in ``image`` (any form images.as_rgb accepts), highest score first."""
        avail = self.available()
        if not avail.ok:
            raise PluginUnavailableError(f"mtcnn: {avail.reason}")
        from recognizers._backends import mtcnn_cascade

        p = self.params
        found = mtcnn_cascade.detect(as_rgb(image), p.min_face_px, p.scale_factor, tuple(p.thresholds), p.threads)
        return [Face(box=tuple(float(v) for v in box), score=float(score), landmarks=marks,
                     landmark_scheme="face5")
                for box, score, marks in zip(found.boxes, found.scores, found.landmarks)
                if box[2] > box[0] and box[3] > box[1]]


def _missing_package():
    """Where the files would be if the mtcnn package were installed: unknown, so a placeholder."""
    from pathlib import Path

    return Path("<mtcnn package not installed>") / "assets" / "weights"
