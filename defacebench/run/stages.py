"""The per-item stages of the pipeline, as picklable top-level functions over frozen task records.

Each stage is a pure function of its inputs' content hashes and the plugin's name, version and
params; its artifact lives in the content-addressed cache (:mod:`defacebench.run.cache`) and is written
atomically, so a rerun with nothing changed only reads, a changed parameter recomputes exactly the
stages below it, and a run killed at any point resumes. Tasks run in whatever process the executor
picks (local pool, Dask worker), so they carry everything they need: cache root, plugins file,
paths and hashes. Failures of one item raise; the executor turns them into failed outcomes.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from defacebench.run.cache import Cache, file_hash
from defacebench.contracts import Face
from defacebench.errors import DefacebenchError

STAGE_VERSION = "1"  # bump when a stage's artifact layout or semantics change

_LOCAL = threading.local()


class NotCached(LookupError):
    """Raised in :func:`lookup_only` mode when a stage would have to compute something."""


@contextmanager
def lookup_only():
    """Within this block stages only read the cache and raise :class:`NotCached` on a miss, so the
    pipeline answers warm items in-process and sends only the misses to the executor."""
    previous = getattr(_LOCAL, "lookup", False)
    _LOCAL.lookup = True
    try:
        yield
    finally:
        _LOCAL.lookup = previous


def _lookup_only() -> bool:
    return getattr(_LOCAL, "lookup", False)


def get_or_build(cache: Cache, stage: str, key: str, build) -> Path:
    """``cache.get_or_build`` unless in lookup-only mode, where a miss raises :class:`NotCached`."""
    if _lookup_only():
        found = cache.get(stage, key)
        if found is None:
            raise NotCached(stage)
        return found
    return cache.get_or_build(stage, key, build)


@dataclass(frozen=True)
class StageEnv:
    """Where stages find the cache and the plugins (a worker rebuilds its registry from this)."""

    cache_root: str
    plugins_file: str | None = None

    def cache(self) -> Cache:
        return Cache(Path(self.cache_root))

    def plugin(self, kind: str, name: str):
        from defacebench.plugins.registry import load_registry

        return load_registry(Path(self.plugins_file) if self.plugins_file else None).get(kind, name)


def _plugin_identity(plugin) -> dict:
    """What keys a plugin's artifacts: name, version (which includes the external tool's version for
    wrappers) and params (paths inside params count by their text)."""
    from dataclasses import is_dataclass

    params = asdict(plugin.params) if is_dataclass(plugin.params) else repr(plugin.params)
    return {"name": plugin.name, "version": str(plugin.version), "tool_version": _tool_version(plugin),
            "params": json.loads(json.dumps(params, sort_keys=True, default=str)),
            "params_type": type(plugin.params).__qualname__}


_TOOL_VERSIONS: dict[tuple[str, int], str] = {}


def _tool_version(plugin) -> str:
    """The external tool's version (FSL, AFNI, pydeface) for wrappers that expose ``tool_version()``,
    asked once per process: upgrading the tool must recompute its defacings."""
    getter = getattr(plugin, "tool_version", None)
    if not callable(getter):
        return ""
    key = (plugin.name, id(plugin))
    if key not in _TOOL_VERSIONS:
        _TOOL_VERSIONS[key] = str(getter())
    return _TOOL_VERSIONS[key]


def _read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def _write_json(path: Path, obj) -> None:
    Path(path).write_text(json.dumps(obj, indent=1, sort_keys=True, default=str))


# ------------------------------------------------------------------------------------------------
# convert: DICOM series / NIfTI file -> canonical RAS float32 HU NIfTI
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConvertTask:
    env: StageEnv
    acquisition: object  # defacebench.data.dataset.Acquisition
    params: object  # defacebench.data.convert.ConversionParams


def acquisition_hash(path: Path) -> str:
    """Content hash of an acquisition: the file itself, or every file of a series folder."""
    path = Path(path)
    if path.is_file():
        return file_hash(path)
    files = sorted(p for p in path.rglob("*") if p.is_file())
    return Cache.key("series", [(str(p.relative_to(path)), file_hash(p)) for p in files])


def convert_task(task: ConvertTask) -> dict:
    """Convert one acquisition (cached); returns the volume path, its hash and the record."""
    from defacebench.data.convert import convert_acquisition

    cache = task.env.cache()
    key = cache.key("convert", STAGE_VERSION, acquisition_hash(task.acquisition.path), task.params)

    def build(tmp: Path) -> None:
        record = convert_acquisition(task.acquisition, tmp / "volume.nii.gz", task.params)
        _write_json(tmp / "record.json", _jsonable(record))

    folder = get_or_build(cache, "convert", key, build)
    volume = folder / "volume.nii.gz"
    return {"path": str(volume), "hash": file_hash(volume), "record": _read_json(folder / "record.json")}


def _jsonable(record) -> dict:
    data = asdict(record) if hasattr(record, "__dataclass_fields__") else dict(record)
    return json.loads(json.dumps(data, default=str))


# ------------------------------------------------------------------------------------------------
# deface (+ cleanup + QC)
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DefaceTask:
    env: StageEnv
    volume_path: str
    volume_hash: str
    defacer: str
    cleanup: object  # defacebench.anatomy.cleanup.CleanupParams
    qc: object  # defacebench.anatomy.qc.QCParams


def deface_task(task: DefaceTask) -> dict:
    """Deface one volume and clean up the removed voxels, then assess it (QC, its own cache entry so
    changing a QC threshold does not rerun the tool). A tool failure is a result (status ``failed``
    with the tool's message), cached like a success because a deterministic tool fails the same way."""
    plugin = task.env.plugin("defacers", task.defacer)
    cache = task.env.cache()
    key = cache.key("deface", STAGE_VERSION, task.volume_hash, _plugin_identity(plugin), task.cleanup)
    folder = get_or_build(cache, "deface", key, lambda tmp: _build_deface(task, plugin, tmp))
    result = _read_json(folder / "result.json")
    defaced = folder / "defaced.nii.gz"
    if result["status"] == "ok":
        result["path"] = str(defaced)
        result["hash"] = file_hash(defaced)
    qc_key = cache.key("qc", STAGE_VERSION, task.volume_hash, result.get("hash"), task.qc)
    qc_folder = get_or_build(cache, "qc", qc_key, lambda tmp: _build_qc(task, result, tmp))
    result["qc"] = _read_json(qc_folder / "qc.json")
    return result


def _build_deface(task: DefaceTask, plugin, tmp: Path) -> None:
    from defacebench.anatomy.cleanup import apply_cleanup
    from defacebench.data.volume import load_volume, save_volume

    original = load_volume(Path(task.volume_path))
    workdir = Path(tempfile.mkdtemp(prefix="work-", dir=tmp))
    out: dict = {"defacer": plugin.name, "version": str(plugin.version)}
    try:
        result = plugin.deface(Path(task.volume_path), workdir)
        defaced = load_volume(Path(result.volume_path))
        if defaced.data.shape != original.data.shape:
            raise DefacebenchError(
                f"{plugin.name} changed the volume shape {original.data.shape} -> {defaced.data.shape}")
        mask = None
        if result.mask_path is not None:
            mask = load_volume(Path(result.mask_path)).data > 0.5
            save_volume(_mask_volume(mask, original), tmp / "mask.nii.gz")
        cleaned = apply_cleanup(original, defaced, mask=mask, defacer=plugin.name, params=task.cleanup)
        save_volume(cleaned, tmp / "defaced.nii.gz")
        out.update(status="ok", tool_version=result.tool_version, log=result.log)
    except (DefacebenchError, OSError, ValueError, RuntimeError) as exc:
        out.update(status="failed", error=f"{type(exc).__name__}: {exc}", log=getattr(exc, "log", ""))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    _write_json(tmp / "result.json", out)


def _build_qc(task: DefaceTask, result: dict, tmp: Path) -> None:
    from defacebench.anatomy.qc import assess
    from defacebench.data.volume import load_volume

    original = load_volume(Path(task.volume_path))
    defaced = load_volume(Path(result["path"])) if result["status"] == "ok" else None
    _write_json(tmp / "qc.json", assess(original, defaced, params=task.qc).to_dict())


def _mask_volume(mask: np.ndarray, like):
    from defacebench.contracts import Volume

    return Volume(mask.astype(np.float32), like.affine)


# ------------------------------------------------------------------------------------------------
# render
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderTask:
    env: StageEnv
    volume_path: str
    volume_hash: str
    renderer: str


def render_task(task: RenderTask) -> list[dict]:
    """Render one volume (cached); returns one ``{view_id, path, hash, camera}`` per view."""
    plugin = task.env.plugin("renderers", task.renderer)
    cache = task.env.cache()
    key = cache.key("render", STAGE_VERSION, task.volume_hash, _plugin_identity(plugin))

    def build(tmp: Path) -> None:
        from PIL import Image

        from defacebench.data.volume import load_volume

        views = plugin.render(load_volume(Path(task.volume_path)))
        index = []
        for i, view in enumerate(views):
            name = f"view{i:02d}.png"
            Image.fromarray(view.image).save(tmp / name)
            index.append({"view_id": view.view_id, "file": name, "camera": view.camera})
        _write_json(tmp / "views.json", index)

    folder = get_or_build(cache, "render", key, build)
    views = _read_json(folder / "views.json")
    for view in views:
        view["path"] = str(folder / view.pop("file"))
        view["hash"] = file_hash(Path(view["path"]))
    return views


# ------------------------------------------------------------------------------------------------
# detect
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DetectTask:
    env: StageEnv
    image_path: str
    image_hash: str
    detector: str


def face_to_dict(face: Face) -> dict:
    lm = None if face.landmarks is None else np.asarray(face.landmarks, float).tolist()
    return {"box": [float(v) for v in face.box], "score": float(face.score), "landmarks": lm,
            "landmark_scheme": face.landmark_scheme}


def face_from_dict(data: dict) -> Face:
    lm = None if data.get("landmarks") is None else np.asarray(data["landmarks"], float)
    return Face(box=tuple(data["box"]), score=data["score"], landmarks=lm,
                landmark_scheme=data.get("landmark_scheme", ""))


def detect_task(task: DetectTask) -> dict:
    """Detect faces in one image (cached); returns every face and the kept (best) one or None."""
    from defacebench.report.montage import best_face

    plugin = task.env.plugin("detectors", task.detector)
    cache = task.env.cache()
    key = cache.key("detect", STAGE_VERSION, task.image_hash, _plugin_identity(plugin))

    def build(tmp: Path) -> None:
        from defacebench.data.images import read_image

        faces = plugin.detect(read_image(Path(task.image_path)))
        best = best_face(faces)
        _write_json(tmp / "faces.json", {"faces": [face_to_dict(f) for f in faces],
                                         "best": None if best is None else face_to_dict(best)})

    return _read_json(get_or_build(cache, "detect", key, build) / "faces.json")


# ------------------------------------------------------------------------------------------------
# embed (batched: one recognizer call for every item of a chunk that is not cached yet)
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EmbedItem:
    image_path: str
    image_hash: str
    face: dict


@dataclass(frozen=True)
class EmbedTask:
    env: StageEnv
    recognizer: str
    items: tuple[EmbedItem, ...]


def embed_task(task: EmbedTask) -> dict:
    """Embed every item once (cached per image and face); returns the vectors in item order and
    how many were computed now (the rest came from the cache)."""
    from defacebench.data.images import read_image

    plugin = task.env.plugin("recognizers", task.recognizer)
    cache = task.env.cache()
    identity = _plugin_identity(plugin)
    keys = [cache.key("embed", STAGE_VERSION, it.image_hash, it.face, identity) for it in task.items]
    vectors: list[np.ndarray | None] = [_cached_vector(cache, k) for k in keys]
    missing = [i for i, v in enumerate(vectors) if v is None]
    if missing and _lookup_only():
        raise NotCached("embed")
    if missing:
        batch = [(read_image(Path(task.items[i].image_path)), face_from_dict(task.items[i].face)) for i in missing]
        computed = np.asarray(plugin.embed(batch), dtype=np.float64)
        for row, i in enumerate(missing):
            vector = computed[row]
            folder = cache.get_or_build("embed", keys[i], lambda tmp, v=vector: np.save(tmp / "vector.npy", v))
            vectors[i] = np.load(folder / "vector.npy")
    return {"vectors": [np.asarray(v) for v in vectors], "computed": len(missing)}


def _cached_vector(cache: Cache, key: str) -> np.ndarray | None:
    folder = cache.get("embed", key)
    return None if folder is None else np.load(folder / "vector.npy")
