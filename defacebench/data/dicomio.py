"""Read DICOM headers, group files into series, pick one series and validate its geometry.

Converters (dicom2nifti, dcm2niix) are good at turning a clean series into NIfTI but either guess
or fail cryptically on a messy folder. This module checks the folder first so every problem
becomes a :class:`~defacebench.errors.ConversionError` naming the file, what is wrong and the fix:
non-DICOM or corrupt files, a single slice, missing slices or uneven spacing, inconsistent slices
within one series, slices of more than one patient, truncated files. Which series of a folder
holding several is converted, and how series are named in outputs (a digest, never the UID), is
:mod:`defacebench.data.series_choice` (re-exported here).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom

from defacebench.data.acquisitions import tree_files
from defacebench.data.series_choice import (SERIES_RULE, SEVERAL_SERIES, SeriesCandidate, SeriesChoice,
                                            select_series, uid_digest)
from defacebench.errors import ConversionError

__all__ = ["SERIES_RULE", "SEVERAL_SERIES", "Series", "SeriesCandidate", "SeriesChoice", "SliceHeader", "find_series",
           "header_affine", "read_header", "select_series", "sorted_slices", "uid_digest"]

SKIP_NAMES = {"DICOMDIR"}
SIDECAR_SUFFIXES = (".json", ".txt", ".md", ".csv", ".tsv", ".log", ".xml", ".ini")

@dataclass(frozen=True)
class SliceHeader:
    """Geometry-relevant header values of one DICOM file."""

    path: Path
    series_uid: str
    modality: str
    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None
    pixel_spacing: tuple[float, float] | None
    thickness: float | None
    rows: int
    columns: int
    patient_key: str = ""  # a hash of PatientID ("" when absent): compared, never shown
    # the file as read for validation, so the pydicom converter decodes its pixels without a second
    # read (issue #15); never compared or shown
    dataset: Any = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Series:
    """One series found in a folder: its UID, modality and slices (unsorted)."""

    uid: str
    modality: str
    slices: tuple[SliceHeader, ...]

    @property
    def n_slices(self) -> int:
        return len(self.slices)

    @property
    def normal(self) -> np.ndarray | None:
        """Unit slice normal from the first slice's ImageOrientationPatient (None if absent)."""
        iop = self.slices[0].orientation
        if iop is None:
            return None
        n = np.cross(np.asarray(iop[:3]), np.asarray(iop[3:]))
        return n / max(np.linalg.norm(n), 1e-9)

    @property
    def is_axial(self) -> bool:
        """Slices are (close to) axial: the normal is within ~37 degrees of the S axis."""
        n = self.normal
        return n is not None and abs(float(n[2])) > 0.8

    @property
    def thickness(self) -> float:
        """SliceThickness of the first slice (inf when missing, so it never wins 'thinnest')."""
        t = self.slices[0].thickness
        return float(t) if t else float("inf")


def _floats(value, n: int) -> tuple[float, ...] | None:
    """A DICOM multi-value as a tuple of ``n`` floats, or None when missing/malformed."""
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return out if len(out) == n else None


def _unreadable(path: Path, why: str) -> ConversionError:
    """The error for a file that is not (or no longer) a readable DICOM file."""
    return ConversionError(
        f"{path}: not a readable DICOM file ({why}). "
        "Fix: remove it from the series folder or replace it with an intact copy."
    )


PIXEL_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_UNDEFINED = 0xFFFFFFFF
_LONGEST_ELEMENT_HEADER = 12  # explicit VR with a 4-byte length: tag 4, VR 2, reserved 2, length 4


def _cut_short(path: Path, ds) -> str | None:
    """Why the file ends before its last element does (a truncated copy), or None.

    pydicom stops quietly where a file ends: a value cut in half comes back short, a cut element
    header is dropped. Both show in the raw elements' offsets: the last element's value runs past
    the end of the file (certain), or a few bytes too short for an element header are left over
    (only told when the object also lacks what an image needs; see :func:`read_header`).
    """
    size = path.stat().st_size
    last = max(((e.value_tell, e.length, e.tag) for e in ds.elements()
                if getattr(e, "value_tell", None) is not None and e.length not in (None, _UNDEFINED)), default=None)
    if last is None:
        return None
    tell, length, tag = last
    if tell + length > size:
        return f"the file ends {tell + length - size} byte(s) inside element {tag}"
    if 0 < size - (tell + length) < _LONGEST_ELEMENT_HEADER:
        return f"the file ends inside the header of the element after {tag}"
    return None


def _is_image_class(ds) -> bool:
    """True when the object's SOP Class is an image storage class (CT/MR/... Image Storage)."""
    try:
        return "Image Storage" in pydicom.uid.UID(str(ds.SOPClassUID)).name
    except Exception:  # noqa: BLE001 - an unparsable SOP Class UID is no known image class
        return False


def _check_pixel_bytes(path: Path, ds) -> None:
    """Raise when an image's pixel data is missing, or (uncompressed) shorter than its size says."""
    if not any(tag in ds for tag in PIXEL_TAGS):
        raise _unreadable(path, "the file ends before its pixel data; truncated")
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is None or syntax.is_compressed or "PixelData" not in ds:
        return
    needed = (int(ds.Rows) * int(ds.get("Columns", 0)) * int(ds.get("BitsAllocated", 16)) // 8
              * int(ds.get("SamplesPerPixel", 1)) * int(ds.get("NumberOfFrames", 1) or 1))
    have = len(ds.get("PixelData", b"") or b"")
    if have < needed:
        raise _unreadable(path, f"pixel data has {have} bytes, the image needs {needed}; truncated")


def read_header(path: Path) -> SliceHeader | None:
    """Read one file's header and check it and its pixel data are complete.

    Returns None for an intact DICOM object that is not an image (a structured report, presentation
    state: scanners export them next to the slices); raises ConversionError naming the file when
    it is not DICOM, is corrupt, or is truncated (issue 25: an image slice cut before its series UID
    used to pass as "non-image" and silently leave the volume a slice short).
    """
    try:
        # full read (slices are small): a truncated pixel block is caught here, with the file's name
        ds = pydicom.dcmread(path)
        ds.get("Rows")  # forces parsing of the header up to the image attributes
    except Exception as exc:  # pydicom raises many types (InvalidDicomError, EOFError, struct.error...)
        raise _unreadable(path, f"{type(exc).__name__}: {exc}") from exc
    cut = _cut_short(path, ds)
    if cut and not cut.startswith("the file ends inside the header"):
        raise _unreadable(path, f"truncated: {cut}")
    if "SOPClassUID" not in ds:
        raise _unreadable(path, "header ends before the SOP Class UID (truncated?)")
    if "SeriesInstanceUID" not in ds or "Rows" not in ds:
        if cut or _is_image_class(ds):
            raise _unreadable(path, f"truncated: {cut or 'an image whose header ends before its series UID or size'}")
        return None
    try:
        _check_pixel_bytes(path, ds)
        return _slice_header(path, ds)
    except ConversionError:
        raise
    except Exception as exc:  # noqa: BLE001 - a value pydicom cannot convert: a damaged or cut header
        raise _unreadable(path, f"{type(exc).__name__}: {exc}; truncated or damaged header") from exc


def _slice_header(path: Path, ds) -> SliceHeader:
    """The :class:`SliceHeader` of an image object read by :func:`read_header`."""
    thickness = ds.get("SliceThickness")
    return SliceHeader(
        path=path,
        series_uid=str(ds.SeriesInstanceUID),
        modality=str(ds.get("Modality", "") or "").upper(),
        position=_floats(ds.get("ImagePositionPatient"), 3),  # type: ignore[arg-type]
        orientation=_floats(ds.get("ImageOrientationPatient"), 6),
        pixel_spacing=_floats(ds.get("PixelSpacing"), 2),  # type: ignore[arg-type]
        thickness=float(thickness) if thickness not in (None, "") else None,
        rows=int(ds.Rows),
        columns=int(ds.get("Columns", 0)),
        patient_key=_patient_key(ds.get("PatientID")),
        dataset=ds,
    )


def _patient_key(patient_id) -> str:
    """A short hash of PatientID so slices can be compared without keeping the identifier."""
    text = str(patient_id or "").strip()
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16] if text else ""


def check_one_patient(headers: list[SliceHeader], folder: Path) -> None:
    """Raise when the slices in ``folder`` belong to more than one patient (different PatientIDs).

    Why fail rather than pick: another patient's scan copied into a subject folder would be
    benchmarked as this subject, and no selection rule can know which patient is the right one.
    The message names one file of each patient, never the PatientIDs themselves.
    """
    first: dict[str, SliceHeader] = {}
    counts: dict[str, int] = defaultdict(int)
    for head in headers:
        if head.patient_key:
            first.setdefault(head.patient_key, head)
            counts[head.patient_key] += 1
    if len(first) > 1:
        groups = "; ".join(f"{counts[k]} slice(s) like {first[k].path.relative_to(folder)}" for k in first)
        raise ConversionError(
            f"{folder}: DICOM files of {len(first)} different patients (PatientID differs: {groups}). "
            "Fix: keep one patient's scan per subject folder and move the other files out."
        )


def list_dicom_files(folder: Path) -> list[Path]:
    """Candidate DICOM files under ``folder`` (recursive; hidden files and folders, the harness's own
    output folders, DICOMDIR and sidecars skipped)."""
    files = [p for p in tree_files(folder)
             if p.name not in SKIP_NAMES and not p.name.lower().endswith(SIDECAR_SUFFIXES)]
    if not files:
        raise ConversionError(f"{folder}: empty folder, no DICOM files. Fix: put the subject's series in it.")
    return files


def find_series(folder: Path) -> tuple[list[Series], list[Path]]:
    """All image series under ``folder`` ordered by SeriesInstanceUID, and the non-image DICOM
    files that were skipped."""
    groups: dict[str, list[SliceHeader]] = defaultdict(list)
    skipped = []
    for path in list_dicom_files(folder):
        head = read_header(path)
        if head is None:
            skipped.append(path)
        else:
            groups[head.series_uid].append(head)
    if not groups:
        raise ConversionError(
            f"{folder}: no DICOM image slices, only {len(skipped)} non-image DICOM object(s) "
            f"(e.g. {skipped[0].name}). Fix: add the image series."
        )
    check_one_patient([h for slices in groups.values() for h in slices], folder)
    series = [Series(uid=uid, modality=slices[0].modality, slices=tuple(slices))
              for uid, slices in sorted(groups.items())]
    return series, skipped


def _check_consistent(series: Series) -> None:
    """All slices of one series share size, pixel spacing and orientation (else: mixed series)."""
    first = series.slices[0]
    for s in series.slices[1:]:
        same_size = (s.rows, s.columns) == (first.rows, first.columns)
        same_spacing = s.pixel_spacing == first.pixel_spacing
        same_orient = (
            s.orientation is not None
            and first.orientation is not None
            and np.allclose(s.orientation, first.orientation, atol=1e-3)
        )
        if not (same_size and same_spacing and same_orient):
            raise ConversionError(
                f"{s.path}: mixed series: this slice's size/pixel spacing/orientation "
                f"({s.rows}x{s.columns}, {s.pixel_spacing}, {s.orientation}) differs from {first.path.name} "
                f"({first.rows}x{first.columns}, {first.pixel_spacing}, {first.orientation}) in series "
                f"{uid_digest(series.uid)}. Fix: separate the acquisitions into their own folders or series."
            )


def sorted_slices(series: Series, folder: Path) -> tuple[list[SliceHeader], float]:
    """Slices sorted along the normal and their spacing; ConversionError for bad geometry.

    Rejects: a single slice, missing position/orientation, duplicate positions, and gaps that
    differ from the median spacing by more than 10 % (missing slices or uneven spacing).
    """
    if series.n_slices < 2:
        raise ConversionError(
            f"{folder}: series {uid_digest(series.uid)} has a single slice ({series.slices[0].path.name}); a head "
            "volume needs many. Fix: export the whole series (or choose another with --series)."
        )
    missing = [s.path for s in series.slices if s.position is None or s.orientation is None]
    if missing:
        raise ConversionError(
            f"{missing[0]}: slice without ImagePositionPatient/ImageOrientationPatient; the volume "
            "geometry is unknown. Fix: re-export the series with full geometry headers."
        )
    _check_consistent(series)
    normal = series.normal
    ordered = sorted(series.slices, key=lambda s: float(np.dot(s.position, normal)))  # type: ignore[arg-type]
    depth = np.array([float(np.dot(s.position, normal)) for s in ordered])  # type: ignore[arg-type]
    gaps = np.diff(depth)
    median = float(np.median(gaps))
    if median <= 1e-6 or np.any(gaps <= 1e-6):
        k = int(np.argmin(gaps))
        raise ConversionError(
            f"{ordered[k + 1].path}: same slice position as {ordered[k].path.name} (duplicate slices). "
            "Fix: remove the duplicate file."
        )
    bad = np.nonzero(np.abs(gaps - median) > 0.1 * median)[0]
    if bad.size:
        k = int(bad[0])
        raise ConversionError(
            f"{folder}: missing slice(s) or uneven spacing in series {uid_digest(series.uid)}: gap of {gaps[k]:.3g} mm "
            f"between {ordered[k].path.name} and {ordered[k + 1].path.name}, expected {median:.3g} mm "
            f"({bad.size} irregular gap(s)). Fix: re-export the complete series with even spacing."
        )
    return ordered, median


def header_affine(ordered: list[SliceHeader]) -> np.ndarray:
    """RAS voxel-to-world affine of a sorted series from its headers alone, in the index order
    (column, row, slice): a gantry-tilted series gets its true, sheared slice step."""
    first, last = ordered[0], ordered[-1]
    iop = np.asarray(first.orientation, float)
    row_spacing, col_spacing = first.pixel_spacing or (1.0, 1.0)
    lps = np.eye(4)
    lps[:3, 0] = iop[:3] * col_spacing  # along a row: increasing column index
    lps[:3, 1] = iop[3:] * row_spacing  # down a column: increasing row index
    lps[:3, 2] = (np.asarray(last.position) - np.asarray(first.position)) / max(len(ordered) - 1, 1)
    lps[:3, 3] = first.position
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
