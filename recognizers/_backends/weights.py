"""Where weight files live: those shipped by registry packages (found without importing the
packages) and the project's own weights folder (models converted once by setup).

Why: ``face_recognition_models/__init__.py`` imports ``pkg_resources``, which is gone from recent
setuptools, so the package must never be imported; its folder is located through
``importlib.util.find_spec`` instead. Nothing here downloads anything.

The weights folder (``weights_root``) is defined once, in :mod:`defacebench.util.packagefiles`
(``$DEFACEBENCH_WEIGHTS``, else ``<checkout>/weights``, else ``~/.cache/defacebench/weights``): the
defacers' files live there too.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from defacebench.contracts import WeightFile
from defacebench.util.packagefiles import WEIGHTS_ENV, weights_root  # noqa: F401  (re-exported: one definition)

FRM_PACKAGE = "face_recognition_models"
FRM_INSTALL = "pip install face-recognition-models (or defacebench[dlib])"


def frm_models_dir() -> Path | None:
    """The ``models`` folder of the installed face-recognition-models package, or None."""
    try:
        spec = importlib.util.find_spec(FRM_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def frm_file(name: str) -> Path | None:
    """Path of one face-recognition-models weight file when it exists, else None."""
    folder = frm_models_dir()
    if folder is None:
        return None
    path = folder / name
    return path if path.is_file() else None


def frm_missing_reason(name: str) -> str:
    """The Availability reason for a missing face-recognition-models file: which file, where, fix."""
    folder = frm_models_dir()
    listing = "`defacebench weights list` shows every weight file"
    if folder is None:
        return f"{name} not found: package face_recognition_models is not installed; {FRM_INSTALL} ({listing})"
    return f"{name} not found in {folder}: reinstall face-recognition-models ({FRM_INSTALL}; {listing})"


def module_missing(module: str) -> bool:
    """True when ``module`` cannot be imported (checked without importing it)."""
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):
        return True


def frm_records(*names: str) -> list[WeightFile]:
    """``defacebench weights`` records of face-recognition-models files (installed with pip)."""
    folder = frm_models_dir() or Path(f"<{FRM_PACKAGE} not installed>") / "models"
    return [WeightFile(name=n, path=folder / n, url="face-recognition-models (pip)", how=FRM_INSTALL) for n in names]
