"""The embedded sample head-CT dataset: deterministic, offline, cached, with distinct faces.

``make_sample_dataset`` synthesises ``n_subjects`` identities from pydeface's template (see
:mod:`defacebench.data.sample_face`), two acquisitions each (sessions ``scan`` and ``rescan``), and
writes them as real CT DICOM series plus a NIfTI copy::

    <out>/dicom/<001..N>/<scan|rescan>/slice_0001.dcm ...   <- returned root; ``discover`` reads it
    <out>/nifti/sub-<id>/ses-<session>/ct/sub-<id>_ses-<session>_ct.nii.gz
    <out>/sample.json                                         params and layout
    <out>/COMPLETE                                            written last: the cache marker

A subject's identity depends only on (seed, subject index), so subject 007 is the same person in a
16- and a 100-subject dataset. Patient names and ids are neutral synthetic values (``SAMPLE^001``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from defacebench.errors import DatasetError
from defacebench.data.sample_face import AnatomyParams, IdentityParams

SESSIONS = ("scan", "rescan")
MARKER = "COMPLETE"
FORMAT_VERSION = 1  # bump when the generator changes its output for the same params


@dataclass(frozen=True)
class SampleParams:
    """Everything that determines the sample dataset's content (hashed into its cache key)."""

    n_subjects: int = 16
    seed: int = 0
    voxel_mm: float = 2.0
    head_holder: bool = False
    identity: IdentityParams = field(default_factory=IdentityParams)
    anatomy: AnatomyParams = field(default_factory=AnatomyParams)

    def key(self) -> str:
        """Content key of these params (and the generator version)."""
        blob = json.dumps({"v": FORMAT_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def subject_ids(n: int) -> list[str]:
    """Zero-padded numbered subject ids ``001``..``N`` (at least 3 digits, so they sort naturally)."""
    width = max(3, len(str(n)))
    return [f"{i + 1:0{width}d}" for i in range(n)]


def default_sample_dir(params: SampleParams = SampleParams()) -> Path:
    """Where the sample with these params lives: ``$DEFACEBENCH_DATA`` or ``~/.cache/defacebench``."""
    base = os.environ.get("DEFACEBENCH_DATA")
    root = Path(base) if base else Path.home() / ".cache" / "defacebench"
    return root / f"sample-n{params.n_subjects}-s{params.seed}-{params.key()}"


def nifti_root(dataset_root: Path) -> Path:
    """The NIfTI copy's tree for the DICOM root that :func:`make_sample_dataset` returned."""
    return Path(dataset_root).parent / "nifti"


def nifti_copy_path(dataset_root: Path, subject_id: str, session: str) -> Path:
    """Path of one acquisition's NIfTI copy (BIDS-like, so ``discover`` can read that tree too)."""
    name = f"sub-{subject_id}_ses-{session}_ct.nii.gz"
    return nifti_root(dataset_root) / f"sub-{subject_id}" / f"ses-{session}" / "ct" / name


def _is_complete(out: Path, params: SampleParams) -> bool:
    """True when ``out`` holds a finished sample built with exactly ``params``."""
    marker = out / MARKER
    return marker.is_file() and marker.read_text().strip() == params.key()


def _build_subject(task: tuple[SampleParams, int, str, str]) -> str:
    """Generate and write both acquisitions of one subject (a top-level function: picklable)."""
    from defacebench.data import sample_face as sf
    from defacebench.data.dicom_write import SeriesInfo, quantized_hu, write_series
    from defacebench.data.volume import save_nifti_atomic

    import nibabel as nib

    params, index, subject_id, staging = task
    base = sf.base_head(params.voxel_mm, params.anatomy)
    ident = sf.make_identity(base, np.random.default_rng([params.seed, index]), params.identity)
    for s_index, session in enumerate(SESSIONS):
        rng = np.random.default_rng([params.seed, index, s_index + 1])
        pose = sf.random_pose(rng, params.identity)
        hu = sf.render_acquisition(base, ident, pose, rng, params.identity.noise_hu)
        if params.head_holder:
            hu = np.maximum(hu, sf.head_holder(base, params.anatomy.air_hu, rng))
        info = SeriesInfo(
            uid_key=f"sample-{params.key()}-{subject_id}-{session}",
            patient_name=f"SAMPLE^{subject_id}",
            patient_id=f"SAMPLE{subject_id}",
            study_date="20240115" if session == "scan" else "20240415",
            study_time=f"{9 + index % 8:02d}{(7 * index) % 60:02d}00",
            series_number=1 + s_index,
            series_description=f"synthetic head CT {session}",
        )
        root = Path(staging) / "dicom"
        write_series(hu, base.affine, root / subject_id / session, info)
        copy = quantized_hu(hu, info).astype(np.int16)
        img = nib.Nifti1Image(copy, base.affine)
        img.set_qform(base.affine, code=1)
        img.set_sform(base.affine, code=1)
        save_nifti_atomic(img, nifti_copy_path(root, subject_id, session))
    return subject_id


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


def _run_tasks(tasks: list, workers: int | None) -> None:
    """Build subjects in a process pool (or serially for one worker)."""
    n = workers or min(len(tasks), os.cpu_count() or 1)
    if n <= 1:
        for t in tasks:
            _build_subject(t)
        return
    with ProcessPoolExecutor(max_workers=n) as pool:
        list(pool.map(_build_subject, tasks))


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
        _run_tasks([(params, i, sid, str(staging)) for i, sid in enumerate(ids)], workers)
        meta = {"params": asdict(params), "key": params.key(), "subjects": ids, "sessions": SESSIONS}
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


def sample_dataset() -> Path:
    """The default sample dataset (16 subjects, seed 0), built on first use."""
    return make_sample_dataset()
