"""Write one sample subject: draw identity and fillings, acquire each session, write DICOM + NIfTI.

Split from :mod:`defacebench.data.sample` (layout, caching, publishing) so each stays small. Random
streams: the subject's identity and dental metal come from ``(seed, index)``, each session's pose,
grid and noise from ``(seed, index, session)``; CT and MRI of one index are the same person.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np

from defacebench.data.dicom_write import SeriesInfo, quantized_hu, write_series
from defacebench.data.phantom.anatomy import base_anatomy, effective_params
from defacebench.data.phantom.identity import make_identity, random_pose
from defacebench.data.phantom.scanner import acquire
from defacebench.data.tilt import detilt, is_tilted
from defacebench.data.volume import save_nifti_atomic

SESSIONS = ("scan", "rescan")


def nifti_root(dataset_root: Path) -> Path:
    """The NIfTI copy's tree for the DICOM root that :func:`make_sample_dataset` returned."""
    return Path(dataset_root).parent / "nifti"


def nifti_copy_path(dataset_root: Path, subject_id: str, session: str, modality: str | None = None) -> Path:
    """Path of one acquisition's NIfTI copy (BIDS, so ``discover`` can read that tree too).

    ``modality`` None reads it from the dataset's ``sample.json``."""
    if modality is None:
        meta = Path(dataset_root).parent / "sample.json"
        modality = json.loads(meta.read_text())["params"]["modality"] if meta.is_file() else "ct"
    folder, suffix = ("ct", "ct") if modality == "ct" else ("anat", "T1w")
    name = f"sub-{subject_id}_ses-{session}_{suffix}.nii.gz"
    return nifti_root(dataset_root) / f"sub-{subject_id}" / f"ses-{session}" / folder / name


def _series_info(params, subject_id: str, session: str, s_index: int, index: int, tilt: float) -> SeriesInfo:
    """Header values of one series (CT: stored HU + 1024; MR: stored scanner units as they are)."""
    ct = params.modality == "ct"
    return SeriesInfo(
        uid_key=f"sample-{params.key()}-{subject_id}-{session}",
        patient_name=f"SAMPLE^{subject_id}",
        patient_id=f"SAMPLE{subject_id}",
        modality="CT" if ct else "MR",
        study_date="20240115" if session == "scan" else "20240415",
        study_time=f"{9 + index % 8:02d}{(7 * index) % 60:02d}00",
        series_number=1 + s_index,
        series_description=f"synthetic head {'CT' if ct else 'T1w MPRAGE'} {session}",
        rescale_intercept=-1024.0 if ct else 0.0,
        gantry_tilt_deg=tilt,
    )


def _nifti_copy(values: np.ndarray, affine: np.ndarray, path: Path, modality: str) -> None:
    """Write the NIfTI copy as converters return it: tilted series resampled to an orthogonal grid."""
    from defacebench.data.volume import tag_modality

    if is_tilted(affine):  # resampled values are interpolated: keep them as float32
        data, grid = detilt(values, affine)
        img = nib.Nifti1Image(data.astype(np.float32), grid)
    else:
        grid = np.asarray(affine, float)
        img = nib.Nifti1Image(values.astype(np.int16), grid)
    img.set_qform(grid, code=1)
    img.set_sform(grid, code=1)
    tag_modality(img, modality)
    save_nifti_atomic(img, path)


def write_subject(params, index: int, subject_id: str, staging: Path) -> dict:
    """Acquire and write both sessions of subject ``index``; returns ``{acq_id: what was drawn}``."""
    anatomy = params.anatomy
    base = base_anatomy(anatomy)
    scanner = params.scanner_params()
    rng = np.random.default_rng([params.seed, index])
    ident = make_identity(base, rng, params.identity, anatomy.face.scaled_relief())
    hw = scanner.hardware
    n_fill = int(rng.integers(*hw.fillings, endpoint=True)) if rng.uniform() < hw.metal_fraction else 0
    fillings = base.teeth[rng.choice(len(base.teeth), n_fill, replace=False)] if n_fill else np.zeros((0, 3))
    landmarks = effective_params(anatomy).landmarks  # where the lower-face stretch put the chin
    drawn = {}
    for s_index, session in enumerate(SESSIONS):
        srng = np.random.default_rng([params.seed, index, s_index + 1])
        pose = random_pose(srng, params.pose)
        acq = acquire(base, ident, pose, srng, scanner, landmarks, fillings)
        geom = acq.geometry
        info = _series_info(params, subject_id, session, s_index, index, geom.tilt_deg)
        root = staging / "dicom"
        write_series(acq.data, geom.affine, root / subject_id / session, info)
        _nifti_copy(quantized_hu(acq.data, info), geom.affine, nifti_copy_path(root, subject_id, session,
                                                                               params.modality), params.modality)
        drawn[f"{subject_id}_{session}"] = {
            "shape": list(geom.shape), "slice_mm": geom.slice_mm, "tilt_deg": round(geom.tilt_deg, 3),
            "fov_mm": round(geom.fov_mm, 2), "noise": round(acq.noise, 3), "fillings": acq.fillings,
        }
    return drawn
