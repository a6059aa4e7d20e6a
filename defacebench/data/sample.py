"""The embedded sample dataset: clinical-looking head CT (or T1-weighted MRI), deterministic, cached.

``make_sample_dataset`` synthesises ``n_subjects`` identities from the phantom
(:mod:`defacebench.data.phantom`), two acquisitions each (sessions ``scan`` and ``rescan``), and
writes them as real DICOM series plus a NIfTI copy in a BIDS layout::

    <out>/dicom/<001..N>/<scan|rescan>/slice_0001.dcm ...    <- returned root; ``discover`` reads it
    <out>/nifti/sub-<id>/ses-<session>/ct/sub-<id>_ses-<session>_ct.nii.gz        (CT)
    <out>/nifti/sub-<id>/ses-<session>/anat/sub-<id>_ses-<session>_T1w.nii.gz     (MRI)
    <out>/sample.json     params, layout and what each acquisition drew (slice, tilt, metal...)
    <out>/COMPLETE        written last: the cache marker

CT acquisitions vary like clinical series: head position and tilt in the field of view, slice
thickness, a few gantry-tilted series (written as tilted DICOM; the NIfTI copy holds what the
converters give back: the series resampled to an orthogonal grid), noise, and dental metal
streaks in some subjects; the head lies in a cradle on the table. A subject's identity depends
only on (seed, subject index), so subject 007 is the same person in a 16- and a 100-subject
dataset, in CT and in MRI. Patient names and ids are neutral synthetic values (``SAMPLE^001``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from defacebench.data.phantom.anatomy import AnatomyParams
from defacebench.data.phantom.identity import IdentityParams, PoseParams
from defacebench.data.phantom.scanner import ScannerParams, mri_scanner
from defacebench.data.sample_write import SESSIONS, nifti_copy_path, nifti_root, write_subject
from defacebench.errors import DatasetError

__all__ = ["SESSIONS", "MARKER", "SampleParams", "make_sample_dataset", "sample_dataset", "nifti_copy_path",
           "nifti_root", "subject_ids", "default_sample_dir", "acquisitions_info", "data_root"]

MARKER = "COMPLETE"
FORMAT_VERSION = 5  # bump when the generator changes its output for the same params
MODALITIES = ("ct", "mri")


@dataclass(frozen=True)
class SampleParams:
    """Everything that determines the sample dataset's content (hashed into its cache key).

    ``scanner`` None means the modality's defaults (:class:`ScannerParams` for CT,
    :func:`mri_scanner` for MRI); ``matrix`` > 0 overrides their in-plane matrix (512 = clinical)."""

    n_subjects: int = 16
    seed: int = 0
    modality: str = "ct"
    matrix: int = 0
    identity: IdentityParams = field(default_factory=IdentityParams)
    pose: PoseParams = field(default_factory=PoseParams)
    anatomy: AnatomyParams = field(default_factory=AnatomyParams)
    scanner: ScannerParams | None = None

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise DatasetError(f"sample modality {self.modality!r} is unknown: use one of {', '.join(MODALITIES)}")

    @classmethod
    def calibrated(cls, **changes) -> "SampleParams":
        """The sample with the face and pose calibrated against a real head (docs/realism.md): the
        default since format 5 (kept so scripts can name it)."""
        return cls(**changes)

    @classmethod
    def template(cls, **changes) -> "SampleParams":
        """The averaged template's face at pitch 0 +- 3 (the default face and pose up to format 4;
        for comparisons, docs/realism.md)."""
        from defacebench.data.phantom.face import FaceParams

        return cls(anatomy=AnatomyParams(face=FaceParams.template()), pose=PoseParams.template_frame(), **changes)

    def scanner_params(self) -> ScannerParams:
        """The acquisition settings actually used (modality defaults, matrix override)."""
        p = self.scanner or (ScannerParams() if self.modality == "ct" else mri_scanner())
        return replace(p, matrix=self.matrix) if self.matrix > 0 else p

    def key(self) -> str:
        """Content key of these params (and the generator version)."""
        blob = json.dumps({"v": FORMAT_VERSION, **asdict(self), "resolved": asdict(self.scanner_params())},
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def subject_ids(n: int) -> list[str]:
    """Zero-padded numbered subject ids ``001``..``N`` (at least 3 digits, so they sort naturally)."""
    width = max(3, len(str(n)))
    return [f"{i + 1:0{width}d}" for i in range(n)]


def data_root() -> Path:
    """Where generated data is cached: ``$DEFACEBENCH_DATA`` or ``~/.cache/defacebench``."""
    base = os.environ.get("DEFACEBENCH_DATA")
    return Path(base) if base else Path.home() / ".cache" / "defacebench"


def default_sample_dir(params: SampleParams = SampleParams()) -> Path:
    """Where the sample with these params lives (under :func:`data_root`)."""
    tag = "" if params.modality == "ct" else f"-{params.modality}"
    return data_root() / f"sample{tag}-n{params.n_subjects}-s{params.seed}-{params.key()}"


def _is_complete(out: Path, params: SampleParams) -> bool:
    """True when ``out`` holds a finished sample built with exactly ``params``."""
    marker = out / MARKER
    return marker.is_file() and marker.read_text().strip() == params.key()


def _build_subject(task: tuple[SampleParams, int, str, str]) -> dict:
    """Generate and write both acquisitions of one subject (top-level: picklable); returns what
    each acquisition drew."""
    params, index, subject_id, staging = task
    return write_subject(params, index, subject_id, Path(staging))


def _prepare_target(out: Path) -> None:
    """Remove a previous partial build at ``out``; refuse to touch a folder that is not ours."""
    if not out.exists():
        return
    ours = {"dicom", "nifti", "sample.json", MARKER}
    names = {p.name for p in out.iterdir()}
    if names - ours:
        raise DatasetError(
            f"{out}: folder exists and holds files that are not a defacebench sample dataset "
            f"({', '.join(sorted(names - ours)[:5])}). Fix: choose an empty or new --out folder."
        )
    shutil.rmtree(out)


def _run_tasks(tasks: list, workers: int | None) -> list[dict]:
    """Build subjects in a process pool (or serially for one worker); the anatomy is built (or
    read from its cache) once here first, so workers only read it."""
    from defacebench.data.phantom.anatomy import base_anatomy

    base_anatomy(tasks[0][0].anatomy)
    n = workers or min(len(tasks), os.cpu_count() or 1)
    if n <= 1:
        return [_build_subject(t) for t in tasks]
    with ProcessPoolExecutor(max_workers=n) as pool:
        return list(pool.map(_build_subject, tasks))


def make_sample_dataset(
    out_dir: Path | None = None, params: SampleParams = SampleParams(), *, workers: int | None = None
) -> Path:
    """Generate (or reuse) the sample dataset and return its DICOM root for :func:`discover`.

    A complete dataset with the same params is returned at once. Otherwise the dataset is built in
    a staging folder next to ``out_dir`` and moved into place, with ``COMPLETE`` written last, so a
    crashed build is never mistaken for a finished one.
    """
    if params.n_subjects < 1:
        raise DatasetError(f"n_subjects={params.n_subjects}: the sample needs at least 1 subject.")
    out = Path(out_dir) if out_dir is not None else default_sample_dir(params)
    if _is_complete(out, params):
        return out / "dicom"
    _prepare_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    os.chmod(staging, 0o755)  # mkdtemp makes it private; the dataset is meant to be shared
    try:
        ids = subject_ids(params.n_subjects)
        drawn = _run_tasks([(params, i, sid, str(staging)) for i, sid in enumerate(ids)], workers)
        meta = {"params": asdict(params), "scanner": asdict(params.scanner_params()), "key": params.key(),
                "subjects": ids, "sessions": SESSIONS,
                "acquisitions": {k: v for d in drawn for k, v in d.items()}}
        (staging / "sample.json").write_text(json.dumps(meta, indent=2))
        (staging / MARKER).write_text(params.key())  # last file; the rename publishes it all at once
        _publish(staging, out, params)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out / "dicom"


def _publish(staging: Path, out: Path, params: SampleParams) -> None:
    """Rename the finished staging folder to ``out``; a concurrent builder that won is fine."""
    try:
        os.replace(staging, out)
    except OSError:
        if not _is_complete(out, params):
            raise


def acquisitions_info(dataset_root: Path) -> dict:
    """What each acquisition of a built sample drew (``{"001_scan": {"slice_mm": ..., ...}}``)."""
    return json.loads((Path(dataset_root).parent / "sample.json").read_text())["acquisitions"]


def sample_dataset(modality: str = "ct", n_subjects: int | None = None) -> Path:
    """The default sample dataset (seed 0, ``n_subjects`` subjects, default 16) of ``modality``, built on
    first use."""
    params = SampleParams(modality=modality)
    return make_sample_dataset(params=params if n_subjects is None else replace(params, n_subjects=n_subjects))
