"""The per-item stages of the pipeline, as picklable top-level functions over frozen task records.

Each stage is a pure function of its inputs' content hashes and the plugin's name, version and
params; its artifact lives in the content-addressed cache and is written atomically, so a rerun
with nothing changed only reads, a changed parameter recomputes exactly the stages below it, and a
run killed at any point resumes. Each returns a typed record (:mod:`defacebench.run.records`);
failures of one item raise and the executor turns them into :class:`~defacebench.run.records.Failed`.

convert -> deface (+ cleanup) -> qc; render -> detect (one task per view image) -> embed (batched).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from defacebench.errors import DefacebenchError
from defacebench.util.fsutil import is_storage_failure
from defacebench.run.cache import Cache, file_hash
from defacebench.run.faces import best_face
from defacebench.run.records import Converted, Defaced, Detected, Rendered, RenderedView, face_from_json, qc_from_json
from defacebench.run.stage_base import (STAGE_VERSION, NotCached, StageEnv, get_or_build, in_lookup_mode,
                                        plugin_identity, read_json, write_json)


def acquisition_hash(path: Path) -> str:
    """Content hash of an acquisition: the file itself, or every file of a series folder."""
    path = Path(path)
    if path.is_file():
        return file_hash(path)
    files = sorted(p for p in path.rglob("*") if p.is_file())
    return Cache.key("series", [(str(p.relative_to(path)), file_hash(p)) for p in files])


# ------------------------------------------------------------------------------------------------
# convert: DICOM series / NIfTI file -> canonical RAS float32 NIfTI
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConvertTask:
    env: StageEnv
    acquisition: Any  # defacebench.data.dataset.Acquisition
    params: Any  # defacebench.data.convert.ConversionParams


def convert_task(task: ConvertTask) -> Converted:
    """Convert one acquisition (cached)."""
    from defacebench.data.convert import RECORD_VERSION, convert_acquisition

    cache = task.env.cache()
    key = cache.key("convert", STAGE_VERSION, acquisition_hash(task.acquisition.path), task.params, RECORD_VERSION)

    def build(tmp: Path) -> None:
        record = convert_acquisition(task.acquisition, tmp / "volume.nii.gz", task.params)
        write_json(tmp / "record.json", record.to_dict())

    folder = get_or_build(cache, "convert", key, build)
    volume = folder / "volume.nii.gz"
    return Converted(str(volume), file_hash(volume), read_json(folder / "record.json"))


# ------------------------------------------------------------------------------------------------
# deface (+ cleanup), then qc as its own entry (a QC threshold change never reruns a tool)
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DefaceTask:
    env: StageEnv
    volume_path: str
    volume_hash: str
    defacer: str
    cleanup: Any  # defacebench.anatomy.cleanup.CleanupParams


def deface_task(task: DefaceTask) -> Defaced:
    """Deface one volume and clean up the removed voxels. A defacer's failure is an outcome
    (``ok=False`` with the tool's message), cached like a success: a deterministic tool fails alike."""
    plugin = task.env.plugin("defacers", task.defacer)
    cache = task.env.cache()
    key = cache.key("deface", STAGE_VERSION, task.volume_hash, plugin_identity(plugin), task.cleanup)
    folder = get_or_build(cache, "deface", key, lambda tmp: _build_deface(task, plugin, tmp))
    result = Defaced.from_json(read_json(folder / "result.json"))
    if not result.ok:
        return result
    defaced = folder / "defaced.nii.gz"
    mask = folder / "mask.nii.gz"
    return replace(result, path=str(defaced), hash=file_hash(defaced), mask_path=str(mask) if mask.exists() else None)


def _build_deface(task: DefaceTask, plugin, tmp: Path) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="work-", dir=tmp))
    start = time.perf_counter()
    try:
        result = plugin.deface(Path(task.volume_path), workdir)
        seconds = time.perf_counter() - start
        if _unchanged_copy(task, plugin.name, result):
            # the tool's output is the input, byte for byte, and cleanup leaves it so: store the input
            # itself instead of decoding, comparing and re-encoding it (the control; issue #15)
            shutil.copyfile(task.volume_path, tmp / "defaced.nii.gz")
        else:
            _store_cleaned(task, plugin.name, result, tmp)
        out = Defaced(plugin.name, True, tool_version=result.tool_version, log=result.log, seconds=seconds)
    except _OriginalUnreadable as exc:
        raise exc.__cause__ from None  # our own input, not the defacer's failure: never cached
    except Exception as exc:  # noqa: BLE001 - whatever a plugin raises, its defacing failed: an outcome
        if is_storage_failure(exc):
            raise  # a full or read-only disk is not the defacer's failure: never cache it as one
        out = Defaced(plugin.name, False, error=f"{plugin.name}: {type(exc).__name__}: {exc}",
                      log=str(getattr(exc, "log", "")), seconds=time.perf_counter() - start)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    write_json(tmp / "result.json", out.to_json())


class _OriginalUnreadable(DefacebenchError):
    """Carries (as ``__cause__``) why the stage's own input volume cannot be read."""


def _store_cleaned(task: DefaceTask, defacer: str, result, tmp: Path) -> None:
    """Write the cleaned defaced volume (and the tool's removed-voxel mask, if any) into ``tmp``."""
    from defacebench.anatomy.cleanup import apply_cleanup
    from defacebench.data.volume import load_volume, save_volume

    try:
        original = load_volume(Path(task.volume_path))
    except DefacebenchError as exc:
        raise _OriginalUnreadable(str(exc)) from exc
    defaced = load_volume(Path(result.volume_path), modality=original.modality)
    if defaced.data.shape != original.data.shape:
        raise DefacebenchError(f"{defacer} changed the volume shape {original.data.shape} -> {defaced.data.shape}")
    mask = None
    if result.mask_path is not None:
        mask = load_volume(Path(result.mask_path)).data > 0.5
        save_volume(replace(original, data=mask.astype(np.float32)), tmp / "mask.nii.gz")
    save_volume(apply_cleanup(original, defaced, mask=mask, defacer=defacer, params=task.cleanup),
                tmp / "defaced.nii.gz")


def _unchanged_copy(task: DefaceTask, defacer: str, result) -> bool:
    """True when the stored defacing would equal the input volume: the tool gave no removed-voxel
    mask and wrote the input's exact bytes, and the cleanup policy changes nothing in an unchanged
    volume ("mask" removes only what differs; "none"; "seed_range" only for defacers without a range)."""
    if result.mask_path is not None:
        return False
    cleanup = task.cleanup
    if cleanup.policy == "seed_range" and defacer in {name for name, _lo, _hi in cleanup.seed_ranges}:
        return False
    return file_hash(Path(result.volume_path)) == task.volume_hash


@dataclass(frozen=True)
class QCTask:
    env: StageEnv
    volume_path: str
    volume_hash: str
    defaced: Defaced
    params: Any  # defacebench.anatomy.qc.QCParams


def qc_task(task: QCTask) -> Defaced:
    """Assess one defacing against its original (cached); returns the record with ``qc`` filled.

    The original's masks are their own cache entry (``qc_anatomy``, one per acquisition and QC
    params), so the defacers' QC of one acquisition segments the original once (issue #15)."""
    from defacebench.anatomy.qc import QC_VERSION

    cache = task.env.cache()
    key = cache.key("qc", STAGE_VERSION, QC_VERSION, task.volume_hash,
                    task.defaced.hash if task.defaced.ok else None, task.params)

    def build(tmp: Path) -> None:
        from defacebench.anatomy.qc import assess
        from defacebench.data.volume import load_volume

        original = load_volume(Path(task.volume_path))
        anatomy = _qc_anatomy(cache, task, original)
        defaced = load_volume(Path(task.defaced.path), modality=original.modality) if task.defaced.ok else None
        write_json(tmp / "qc.json", assess(original, defaced, params=task.params, anatomy=anatomy).to_dict())

    folder = get_or_build(cache, "qc", key, build)
    return replace(task.defaced, qc=qc_from_json(read_json(folder / "qc.json")))


def _qc_anatomy(cache: Cache, task: QCTask, original):
    """The original's QC masks (:class:`~defacebench.anatomy.qc.Anatomy`), cached per acquisition."""
    from defacebench.anatomy.qc import QC_VERSION, Anatomy, original_anatomy

    key = cache.key("qc_anatomy", STAGE_VERSION, QC_VERSION, task.volume_hash, task.params)
    folder = get_or_build(cache, "qc_anatomy", key,
                          lambda tmp: original_anatomy(original, task.params).save(tmp / "anatomy.npz"))
    return Anatomy.load(folder / "anatomy.npz")


# ------------------------------------------------------------------------------------------------
# render
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderTask:
    env: StageEnv
    volume_path: str
    volume_hash: str
    renderer: str
    params: Any = None  # the renderer's params for this task (None: its registered params)


def render_task(task: RenderTask) -> Rendered:
    """Render one volume (cached): every view the renderer's params ask for."""
    plugin = task.env.plugin("renderers", task.renderer)
    if task.params is not None:
        plugin = type(plugin)(params=task.params)
    cache = task.env.cache()
    key = cache.key("render", STAGE_VERSION, task.volume_hash, plugin_identity(plugin))

    def build(tmp: Path) -> None:
        from PIL import Image

        from defacebench.data.volume import load_volume

        index = []
        for i, view in enumerate(plugin.render(load_volume(Path(task.volume_path)))):
            name = f"view{i:02d}.png"
            # level 1: lossless like any level, 3x faster to write than PIL's default 6 (24 -> 8 ms per
            # 512 px view); the renders are written once per view and read once per detector
            Image.fromarray(view.image).save(tmp / name, compress_level=1)
            index.append({"view_id": view.view_id, "file": name, "camera": view.camera})
        write_json(tmp / "views.json", index)

    folder = get_or_build(cache, "render", key, build)
    views = []
    for item in read_json(folder / "views.json"):
        path = folder / item["file"]
        views.append(RenderedView(item["view_id"], str(path), file_hash(path), item.get("camera", {})))
    return Rendered(tuple(views))


# ------------------------------------------------------------------------------------------------
# detect (one image per task)
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DetectTask:
    env: StageEnv
    image_path: str
    image_hash: str
    detector: str
    params: Any = None  # the detector's params for this task (None: its registered params)


def detect_task(task: DetectTask) -> Detected:
    """Detect faces in one image (cached); keeps every face and the best one (or None)."""
    plugin = task.env.plugin("detectors", task.detector)
    if task.params is not None:
        plugin = type(plugin)(params=task.params)
    cache = task.env.cache()
    key = cache.key("detect", STAGE_VERSION, task.image_hash, plugin_identity(plugin))

    def build(tmp: Path) -> None:
        from defacebench.data.images import read_image

        faces = tuple(plugin.detect(read_image(Path(task.image_path))))
        write_json(tmp / "faces.json", Detected(faces, best_face(faces)).to_json())

    return Detected.from_json(read_json(get_or_build(cache, "detect", key, build) / "faces.json"))


# ------------------------------------------------------------------------------------------------
# embed (batched: one recognizer call for every item of a chunk that is not cached yet)
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EmbedItem:
    image_path: str
    image_hash: str
    face: dict  # face_to_json of the kept face


@dataclass(frozen=True)
class EmbedTask:
    env: StageEnv
    recognizer: str
    items: tuple[EmbedItem, ...]


@dataclass(frozen=True)
class EmbedBatch:
    """Vectors of an :class:`EmbedTask`'s items in order, and how many were computed now."""

    vectors: tuple[np.ndarray, ...]
    computed: int


def embed_task(task: EmbedTask) -> EmbedBatch:
    """Embed every item once (cached per image and face)."""
    from defacebench.data.images import read_image

    plugin = task.env.plugin("recognizers", task.recognizer)
    cache = task.env.cache()
    identity = plugin_identity(plugin)
    keys = [cache.key("embed", STAGE_VERSION, it.image_hash, it.face, identity) for it in task.items]
    vectors: list[np.ndarray | None] = [_cached_vector(cache, k) for k in keys]
    missing = [i for i, v in enumerate(vectors) if v is None]
    if missing and in_lookup_mode():
        raise NotCached("embed")
    if missing:
        batch = [(read_image(Path(task.items[i].image_path)), face_from_json(task.items[i].face)) for i in missing]
        computed = np.asarray(plugin.embed(batch), dtype=np.float64)
        for row, i in enumerate(missing):
            folder = get_or_build(cache, "embed", keys[i], lambda tmp, v=computed[row]: np.save(tmp / "vector.npy", v))
            vectors[i] = np.load(folder / "vector.npy")
    return EmbedBatch(tuple(np.asarray(v) for v in vectors), len(missing))


def _cached_vector(cache: Cache, key: str) -> np.ndarray | None:
    folder = cache.get("embed", key)
    return None if folder is None else np.load(folder / "vector.npy")
