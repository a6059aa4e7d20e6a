"""deepface recognizers: `deepface_vggface`, `deepface_facenet512`, `deepface_arcface`,
`deepface_sface`, `deepface_dlib`.

Each embeds the detected crop with ``DeepFace.represent(..., detector_backend="skip")`` in one
batched call (deepface >= 0.0.93 takes a list of images), with the seed study's metric: cosine for
VGG-Face, Facenet512, ArcFace and SFace, euclidean_l2 for Dlib. The crop is the detector's box
grown by ``expand`` on each side; deepface resizes it with black padding to the model's input.

No download can happen: a plugin is available only when its weight file is already in
``$DEEPFACE_HOME/.deepface/weights`` (``deepface_dlib`` provisions its two files from
face-recognition-models), and ``embed`` checks availability before touching deepface.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Sequence

import numpy as np

from defacebench.contracts import Availability, Face, Range, WeightFile

from recognizers._backends import deepface_home as home
from recognizers._backends import deepface_weights
from recognizers._backends.common import CountingRecognizer, crop


@dataclass(frozen=True)
class DeepfaceModelParams:
    """``expand``: fraction of the box size added on each side before cropping;
    ``normalization``: deepface's input normalisation ("base" = deepface's default for represent)."""

    expand: Annotated[float, Range(ge=0)] = 0.0
    normalization: str = "base"


class _DeepfaceModel(CountingRecognizer):
    """A deepface recognition model behind the Recognizer contract."""

    model_name = ""
    weight_stem = ""  # engine-specific file: stem + .onnx / .h5 / .pth
    weight_file = ""  # engine-independent file name (overrides the stem)
    version = "1"
    licence = "MIT (deepface); the model's own licence"
    needs = "deepface and the model's ONNX weights in $DEEPFACE_HOME/.deepface/weights (defacebench weights fetch)"

    def __init__(self, params: DeepfaceModelParams | None = None) -> None:
        super().__init__()
        self.params = params if params is not None else DeepfaceModelParams()

    def weight_files(self) -> tuple[str, ...]:
        """The files deepface would download for this model on this engine."""
        return (self.weight_file or home.backend_file(self.weight_stem),)

    def weights(self) -> list[WeightFile]:
        """The model's weight file(s), fetched by ``defacebench weights fetch`` via deepface."""
        return deepface_weights.records(
            self.weight_files(), lambda: deepface_weights.deepface_sources("facial_recognition", self.model_name))

    def available(self) -> Availability:
        """Available when deepface imports and the model's weight file is already present."""
        avail = home.package_availability()
        if not avail.ok:
            return avail
        return home.weights_availability(self.weight_files(), f"deepface {self.model_name}")

    def _represent(self, crops: list[np.ndarray]) -> np.ndarray:
        """One batched DeepFace.represent call on RGB crops; (n, d) array."""
        home.require(self.available())
        deepface = home.deepface_api()
        bgr = [np.ascontiguousarray(c[:, :, ::-1]) for c in crops]  # deepface takes BGR arrays
        out = deepface.represent(img_path=bgr if len(bgr) > 1 else bgr[0], model_name=self.model_name,
                                 detector_backend="skip", enforce_detection=False, align=False,
                                 normalization=self.params.normalization)
        per_image = out if len(bgr) > 1 else [out]
        return np.array([objs[0]["embedding"] for objs in per_image], dtype=np.float64)

    def embed(self, items: Sequence[tuple[np.ndarray, Face | None]]) -> np.ndarray:
        """(n, d) embeddings of the face crops, one batched call; NaN rows where face is None."""
        return self._embed_present(
            items, lambda present: self._represent([crop(img, f.box, self.params.expand) for img, f in present]))


class DeepfaceVggFace(_DeepfaceModel):
    """VGG-Face (2622 -> 4096-d descriptor), cosine."""

    name, model_name, metric, dim = "deepface_vggface", "VGG-Face", "cosine", 4096
    weight_stem = "vgg_face_weights"


class DeepfaceFacenet512(_DeepfaceModel):
    """FaceNet 512-d, cosine."""

    name, model_name, metric, dim = "deepface_facenet512", "Facenet512", "cosine", 512
    weight_stem = "facenet512_weights"


class DeepfaceArcFace(_DeepfaceModel):
    """ArcFace 512-d, cosine."""

    name, model_name, metric, dim = "deepface_arcface", "ArcFace", "cosine", 512
    weight_stem = "arcface_weights"


class DeepfaceSFace(_DeepfaceModel):
    """OpenCV zoo SFace 128-d, cosine."""

    name, model_name, metric, dim = "deepface_sface", "SFace", "cosine", 128
    weight_file = "face_recognition_sface_2021dec.onnx"


class DeepfaceDlib(_DeepfaceModel):
    """deepface's Dlib model (dlib's ResNet on the unaligned crop resized to 150 px), euclidean_l2;
    runs offline: its weights are provisioned from face-recognition-models."""

    name, model_name, metric, dim = "deepface_dlib", "Dlib", "euclidean_l2", 128
    opt_in = ("dlib's ResNet as dlib_resnet runs it, but on unaligned crops (never stronger on the sample); "
              "the original study's recognizer, run it to reproduce the study")
    weight_file = "dlib_face_recognition_resnet_model_v1.dat"

    def available(self) -> Availability:
        """Also needs dlib itself."""
        avail = home.package_availability("dlib")
        if not avail.ok:
            return avail
        return home.weights_availability(self.weight_files(), f"deepface {self.model_name}")
