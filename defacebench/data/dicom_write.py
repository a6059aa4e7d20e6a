"""Write a RAS volume as a real axial CT or MR DICOM series (one file per slice) with pydicom.

Used by the sample dataset and by tests that need real (also deliberately malformed) series.
Geometry follows the DICOM patient coordinate system (LPS): rows run anterior-to-posterior,
columns right-to-left, slices inferior-to-superior, so ``ImageOrientationPatient`` is the
standard axial ``[1, 0, 0, 0, 1, 0]`` unless the volume's affine is oblique. A sheared affine (a
gantry-tilted CT: slice planes tilted, table stepping along z) is written as such: tilted
``ImageOrientationPatient``, positions stepping along z, ``GantryDetectorTilt`` set, and
``SliceThickness`` the spacing along the slice normal.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid

RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass(frozen=True)
class SeriesInfo:
    """Non-geometric header values of one series; UIDs are derived from ``uid_key`` so the same key
    always gives the same UIDs (deterministic datasets)."""

    uid_key: str
    patient_name: str = "SAMPLE^000"
    patient_id: str = "SAMPLE000"
    modality: str = "CT"
    study_date: str = "20240101"
    study_time: str = "120000"
    series_number: int = 1
    series_description: str = "synthetic head CT"
    rescale_intercept: float = -1024.0
    rescale_slope: float = 1.0
    gantry_tilt_deg: float = 0.0

    @property
    def sop_class(self) -> str:
        """CT or MR Image Storage, by modality."""
        return MRImageStorage if self.modality == "MR" else CTImageStorage


def uid(key: str, part: str) -> str:
    """A valid, deterministic DICOM UID for ``part`` (study/series/frame/instance) of ``key``."""
    return generate_uid(entropy_srcs=["defacebench", key, part])


def _lps_affine(ras_affine: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Voxel-to-LPS affine of the volume reindexed so that i runs toward L, j toward P (DICOM
    column and row directions of an axial image)."""
    flip = np.eye(4)
    flip[0, 0], flip[0, 3] = -1.0, shape[0] - 1
    flip[1, 1], flip[1, 3] = -1.0, shape[1] - 1
    return RAS_TO_LPS @ ras_affine @ flip


def _base_dataset(info: SeriesInfo, lps: np.ndarray, shape: tuple[int, int, int]) -> dict:
    """Header values shared by every slice of the series."""
    zooms = np.linalg.norm(lps[:3, :3], axis=0)
    col_dir = lps[:3, 0] / zooms[0]  # along a row (increasing column index)
    row_dir = lps[:3, 1] / zooms[1]  # down a column (increasing row index)
    normal = np.cross(col_dir, row_dir)
    spacing = abs(float(lps[:3, 2] @ normal))  # = the slice step unless the gantry is tilted
    common = {
        "Modality": info.modality,
        "PatientName": info.patient_name,
        "PatientID": info.patient_id,
        "StudyDate": info.study_date,
        "StudyTime": info.study_time,
        "SeriesDate": info.study_date,
        "SeriesTime": info.study_time,
        "AcquisitionDate": info.study_date,
        "AcquisitionTime": info.study_time,
        "ContentDate": info.study_date,
        "ContentTime": info.study_time,
        "StudyInstanceUID": uid(info.uid_key, "study"),
        "SeriesInstanceUID": uid(info.uid_key, "series"),
        "FrameOfReferenceUID": uid(info.uid_key, "frame"),
        "StudyID": "1",
        "SeriesNumber": info.series_number,
        "AcquisitionNumber": 1,
        "SeriesDescription": info.series_description,
        "Manufacturer": "defacebench synthetic",
        "ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"],
        "ImageOrientationPatient": [f"{v:.6f}" for v in (*col_dir, *row_dir)],
        "PixelSpacing": [f"{zooms[1]:.6f}", f"{zooms[0]:.6f}"],
        "SliceThickness": f"{spacing:.6f}",
        "Rows": shape[1],
        "Columns": shape[0],
        "SamplesPerPixel": 1,
        "PhotometricInterpretation": "MONOCHROME2",
        "BitsAllocated": 16,
        "BitsStored": 16,
        "HighBit": 15,
        "PixelRepresentation": 1,
        "RescaleIntercept": f"{info.rescale_intercept:g}",
        "RescaleSlope": f"{info.rescale_slope:g}",
        "PositionReferenceIndicator": "",
        "PatientPosition": "HFS",
    }
    return {**common, **_modality_tags(info)}


def _modality_tags(info: SeriesInfo) -> dict:
    """Tags only one modality has (CT: HU rescale, kVp, gantry tilt; MR: field and sequence)."""
    if info.modality == "MR":
        return {"MagneticFieldStrength": "3", "ScanningSequence": "GR", "SequenceVariant": ["SP", "MP"],
                "MRAcquisitionType": "3D", "RepetitionTime": "2300", "EchoTime": "2.98", "FlipAngle": "9",
                "ImageType": ["ORIGINAL", "PRIMARY", "M", "ND"]}
    return {"RescaleType": "HU", "KVP": "120", "GantryDetectorTilt": f"{info.gantry_tilt_deg:.2f}"}


def _slice_file(common: dict, info: SeriesInfo, k: int, position: np.ndarray, pixels: np.ndarray) -> FileDataset:
    """One slice as a complete Part-10 CT Image Storage dataset."""
    sop_uid = uid(info.uid_key, f"instance-{k}")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = info.sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    for key, value in common.items():
        setattr(ds, key, value)
    ds.SOPClassUID = info.sop_class
    ds.SOPInstanceUID = sop_uid
    ds.InstanceNumber = k + 1
    ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
    ds.SliceLocation = f"{position[2]:.6f}"
    ds.PixelData = np.ascontiguousarray(pixels.astype("<i2")).tobytes()
    return ds


def stored_values(hu: np.ndarray, info: SeriesInfo) -> np.ndarray:
    """HU to the int16 values stored in the files (rounded, clipped to the int16 range)."""
    raw = np.rint((hu - info.rescale_intercept) / info.rescale_slope)
    return np.clip(raw, -32768, 32767).astype(np.int16)


def quantized_hu(hu: np.ndarray, info: SeriesInfo) -> np.ndarray:
    """The HU a reader gets back from :func:`stored_values` (what a NIfTI copy should hold)."""
    return (stored_values(hu, info).astype(np.float32) * info.rescale_slope + info.rescale_intercept)


def write_series(hu: np.ndarray, ras_affine: np.ndarray, folder: Path, info: SeriesInfo) -> list[Path]:
    """Write ``hu`` (i, j, k) with its RAS affine as one DICOM file per axial slice into ``folder``.

    Returns the written paths in slice order. The volume's k axis must be (close to) the S axis;
    the affine may be sheared (gantry tilt: see the module docstring).
    """
    folder.mkdir(parents=True, exist_ok=True)
    shape = tuple(int(n) for n in hu.shape)
    lps = _lps_affine(np.asarray(ras_affine, float), shape)  # type: ignore[arg-type]
    common = _base_dataset(info, lps, shape)  # type: ignore[arg-type]
    # reindex to (col=i toward L, row=j toward P): flip the first two RAS axes, then rows-major
    stored = stored_values(hu, info)[::-1, ::-1, :]
    paths = []
    for k in range(shape[2]):
        position = (lps @ np.array([0.0, 0.0, k, 1.0]))[:3]
        ds = _slice_file(common, info, k, position, stored[:, :, k].T)
        path = folder / f"slice_{k + 1:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
