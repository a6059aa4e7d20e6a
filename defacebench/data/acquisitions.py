"""The records of dataset discovery (acquisition, subject, failure row) and how a folder is read.

Shared by the layouts of :mod:`defacebench.data.dataset` and the CSV manifest reader
(:mod:`defacebench.data.csv_manifest`). A folder the harness wrote itself (a results folder, a
``convert --out`` folder, a stage cache; see :mod:`defacebench.util.outputs`) is never a subject,
a session or part of a DICOM series: :func:`subdirs` and :func:`tree_files` leave it out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from defacebench.data.itkio import ITK_SUFFIXES, is_itk_image
from defacebench.data.volume import NIFTI_SUFFIXES, is_nifti
from defacebench.util.outputs import is_harness_output

IGNORED_SUFFIXES = (".json", ".txt", ".md", ".csv", ".tsv", ".bval", ".bvec", ".log", ".raw", ".zraw")
"""Sidecar files that sit next to scans and are neither DICOM nor images themselves."""


@dataclass(frozen=True)
class Acquisition:
    """One scan of one subject: ``kind`` "dicom" (``path`` = a folder with one or more series) or
    "nifti" (``path`` = the file)."""

    subject_id: str
    session: str
    path: Path
    kind: str

    @property
    def acq_id(self) -> str:
        """Unique id of the acquisition in its dataset: ``subject`` or ``subject_session``."""
        return self.subject_id if self.session == "" else f"{self.subject_id}_{self.session}"


@dataclass(frozen=True)
class Subject:
    """A subject and its acquisitions (sorted by session)."""

    subject_id: str
    acquisitions: tuple[Acquisition, ...]


@dataclass(frozen=True)
class DatasetFailure:
    """A subject or one of its acquisitions (or an unattributable path) discovery had to leave out,
    and why; ``row`` is the CSV manifest's line number and ``session`` the acquisition's session."""

    subject_id: str | None
    path: Path
    reason: str
    row: int | None = None
    session: str | None = None


Found = tuple[list[Acquisition], list[DatasetFailure]]


def is_image_file(path: Path) -> bool:
    """A single-file volume: NIfTI, or an ITK format (NRRD, MHA/MHD)."""
    return is_nifti(path) or is_itk_image(path)


def image_kind(path: Path) -> str:
    """The acquisition kind of a single-file volume: "nifti" or "itk"."""
    return "nifti" if is_nifti(path) else "itk"


def natural_key(text: str) -> tuple:
    """Sort key that orders embedded numbers numerically: ``sub-2`` < ``sub-10``."""
    parts = re.split(r"(\d+)", text)
    return tuple((0, int(p), p) if p.isdigit() else (1, 0, p.lower()) for p in parts if p != "")


def nifti_stem(path: Path) -> str:
    """File name without ``.nii``/``.nii.gz`` (or an ITK image suffix)."""
    name = path.name
    for suffix in sorted(NIFTI_SUFFIXES + ITK_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def harness_output(folder: Path) -> bool:
    """True when ``folder`` is one of the harness's own output folders (never data)."""
    return is_harness_output(folder, IGNORED_SUFFIXES)


def scan_files(folder: Path) -> list[Path]:
    """Non-hidden, non-sidecar files directly in ``folder``."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and not p.name.lower().endswith(IGNORED_SUFFIXES)
    )


def subdirs(folder: Path) -> list[Path]:
    """Non-hidden subfolders of ``folder`` that are not the harness's own outputs, naturally sorted."""
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")
                   and not harness_output(p)), key=lambda p: natural_key(p.name))


def tree_files(folder: Path) -> list[Path]:
    """Every non-hidden file under ``folder``, outside hidden folders and the harness's own outputs."""
    out = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            continue
        if p.is_file():
            out.append(p)
        elif p.is_dir() and not harness_output(p):
            out += tree_files(p)
    return out


def strip_prefix(prefix: str, name: str) -> str:
    """``name`` without a BIDS entity prefix such as ``sub-`` or ``ses-``."""
    return name[len(prefix):] if name.startswith(prefix) else name


def acquisition_in(folder: Path, subject_id: str, session: str) -> Acquisition | DatasetFailure:
    """The single acquisition held directly in ``folder``, or the failure explaining why not."""
    files = scan_files(folder)
    niftis = [f for f in files if is_image_file(f)]
    if niftis and len(niftis) == len(files):
        if len(niftis) > 1:
            names = ", ".join(f.name for f in niftis[:4])
            return DatasetFailure(subject_id, folder, f"{folder}: several image files ({names}); "
                                  "keep one per acquisition or list them in a CSV manifest")
        return Acquisition(subject_id, session, niftis[0], image_kind(niftis[0]))
    if files:
        return Acquisition(subject_id, session, folder, "dicom")
    if tree_files(folder):
        # series in nested folders (e.g. DICOM exported as study/series/image)
        return Acquisition(subject_id, session, folder, "dicom")
    return DatasetFailure(subject_id, folder, f"{folder}: empty folder (no DICOM or NIfTI files); "
                          "remove it or put the subject's scan in it")
