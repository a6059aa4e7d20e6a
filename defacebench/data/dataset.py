"""Dataset discovery: find subjects and their acquisitions in the layouts users actually have.

Supported layouts (checked in this order):

(d) a CSV manifest file ``subject_id,path[,session]`` (paths relative to the CSV's folder);
(b) a BIDS-like tree ``sub-*/[ses-*/]{ct,anat}/*.nii[.gz]`` (or NRRD/MHA/MHD images);
(a) subject folders (numbered or named), each holding a DICOM series (or several), a NIfTI or
    NRRD/MHA/MHD file, or session subfolders (a subject folder with no files of its own has one
    session per subfolder);
(c) a flat folder of NIfTI (or NRRD/MHA/MHD) files (subject id = file name without extension).

Image files other than NIfTI (NRRD ``.nrrd``/``.nhdr``, MetaImage ``.mha``/``.mhd``) are acquisitions
of kind "itk", read with SimpleITK at conversion; a MetaImage's ``.raw``/``.zraw`` data file is its
sidecar, not a scan.

(a) and (c) may be mixed in one folder. The top folder of the sample dataset (with ``sample.json``)
means its ``dicom/`` tree. Subject ids stay strings and are sorted naturally
(``2`` before ``10``). One bad subject never stops discovery: it becomes a :class:`DatasetFailure`
row (empty folder, duplicate id, missing file, ambiguous content; for a CSV manifest with its row
number). A subject kept with fewer acquisitions than listed is in :attr:`Dataset.incomplete_subjects`,
so a scenario that needs the missing one can fail it instead of silently using another. An
unusable root, and a dataset where every subject failed, raise :class:`~defacebench.errors.DatasetError`.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from defacebench.data.itkio import ITK_SUFFIXES, is_itk_image
from defacebench.util.hashing import file_sha256
from defacebench.data.volume import NIFTI_SUFFIXES, is_nifti
from defacebench.errors import DatasetError

IGNORED_SUFFIXES = (".json", ".txt", ".md", ".csv", ".tsv", ".bval", ".bvec", ".log", ".raw", ".zraw")
"""Sidecar files that sit next to scans and are neither DICOM nor images themselves."""


def is_image_file(path: Path) -> bool:
    """A single-file volume: NIfTI, or an ITK format (NRRD, MHA/MHD)."""
    return is_nifti(path) or is_itk_image(path)


def image_kind(path: Path) -> str:
    """The acquisition kind of a single-file volume: "nifti" or "itk"."""
    return "nifti" if is_nifti(path) else "itk"


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


@dataclass(frozen=True)
class Dataset:
    """The discovered subjects of a dataset root, in natural order, and the failures."""

    root: Path
    subjects: tuple[Subject, ...]
    failures: tuple[DatasetFailure, ...] = ()

    @property
    def subject_ids(self) -> tuple[str, ...]:
        """Subject ids in natural order."""
        return tuple(s.subject_id for s in self.subjects)

    @property
    def acquisitions(self) -> tuple[Acquisition, ...]:
        """Every acquisition of every subject, subject by subject."""
        return tuple(a for s in self.subjects for a in s.acquisitions)

    @property
    def incomplete_subjects(self) -> dict[str, tuple[DatasetFailure, ...]]:
        """Subjects that were kept although one of their acquisitions failed (e.g. a CSV row whose
        scan is missing), with those failures: their remaining acquisitions are not what the user
        listed, so a scenario that needs two scans must fail them rather than fall back."""
        kept = set(self.subject_ids)
        out: dict[str, list[DatasetFailure]] = defaultdict(list)
        for fail in self.failures:
            if fail.subject_id in kept:
                out[fail.subject_id].append(fail)  # type: ignore[index]
        return {sid: tuple(f) for sid, f in out.items()}

    def fingerprint(self) -> str:
        """Content hash of the input files and of how they map to acquisitions (sha256 hex).

        File hashes are memoised by (path, size, mtime_ns), so recomputing is cheap.
        """
        h = hashlib.sha256()
        for acq in self.acquisitions:
            h.update(f"{acq.acq_id}\0{acq.kind}\0".encode())
            for f in _input_files(acq):
                h.update(file_digest(f).encode())
        for fail in self.failures:
            h.update(f"fail\0{fail.subject_id}\0{fail.reason}\0".encode())
        return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def file_digest(path: Path) -> str:
    """sha256 of a file's content, memoised with the cache keys' hashes (one read per file per run)."""
    return file_sha256(path)


def _input_files(acq: Acquisition) -> list[Path]:
    """The files an acquisition reads (all non-hidden files under a DICOM folder)."""
    if acq.kind in ("nifti", "itk") or acq.path.is_file():
        return [acq.path]
    return sorted(p for p in acq.path.rglob("*") if p.is_file() and not p.name.startswith("."))


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


def _scan_files(folder: Path) -> list[Path]:
    """Non-hidden, non-sidecar files directly in ``folder``."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and not p.name.lower().endswith(IGNORED_SUFFIXES)
    )


def _subdirs(folder: Path) -> list[Path]:
    """Non-hidden subfolders of ``folder``, naturally sorted."""
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: natural_key(p.name))


def _strip(prefix: str, name: str) -> str:
    """``name`` without a BIDS entity prefix such as ``sub-`` or ``ses-``."""
    return name[len(prefix):] if name.startswith(prefix) else name


Found = tuple[list[Acquisition], list[DatasetFailure]]


def _acquisition_in(folder: Path, subject_id: str, session: str) -> Acquisition | DatasetFailure:
    """The single acquisition held directly in ``folder``, or the failure explaining why not."""
    files = _scan_files(folder)
    niftis = [f for f in files if is_image_file(f)]
    if niftis and len(niftis) == len(files):
        if len(niftis) > 1:
            names = ", ".join(f.name for f in niftis[:4])
            return DatasetFailure(subject_id, folder, f"{folder}: several image files ({names}); "
                                  "keep one per acquisition or list them in a CSV manifest")
        return Acquisition(subject_id, session, niftis[0], image_kind(niftis[0]))
    if files:
        return Acquisition(subject_id, session, folder, "dicom")
    if any(p.is_file() for p in folder.rglob("*") if not p.name.startswith(".")):
        # series in nested folders (e.g. DICOM exported as study/series/image)
        return Acquisition(subject_id, session, folder, "dicom")
    return DatasetFailure(subject_id, folder, f"{folder}: empty folder (no DICOM or NIfTI files); "
                          "remove it or put the subject's scan in it")


def _subject_folder(folder: Path) -> Found:
    """Acquisitions of one subject folder: its own files, or one session per subfolder."""
    subject_id = folder.name
    if _scan_files(folder) or not _subdirs(folder):
        found = [_acquisition_in(folder, subject_id, "")]
    else:
        found = [_acquisition_in(sub, subject_id, _strip("ses-", sub.name)) for sub in _subdirs(folder)]
    return ([f for f in found if isinstance(f, Acquisition)],
            [f for f in found if isinstance(f, DatasetFailure)])


def _bids(root: Path) -> Found:
    """``sub-*/[ses-*/]{ct,anat}/*.nii[.gz]``."""
    acqs, fails = [], []
    for sub in (p for p in _subdirs(root) if p.name.startswith("sub-")):
        subject_id = _strip("sub-", sub.name)
        sessions = [s for s in _subdirs(sub) if s.name.startswith("ses-")] or [sub]
        for ses in sessions:
            session = _strip("ses-", ses.name) if ses is not sub else ""
            files = [f for mod in ("ct", "anat") if (ses / mod).is_dir()
                     for f in _scan_files(ses / mod) if is_image_file(f)]
            if len(files) == 1:
                acqs.append(Acquisition(subject_id, session, files[0], image_kind(files[0])))
            elif not files:
                fails.append(DatasetFailure(subject_id, ses, f"{ses}: no NIfTI file under ct/ or anat/; "
                                            "add the scan or remove the folder"))
            else:
                names = ", ".join(f.name for f in files[:4])
                fails.append(DatasetFailure(subject_id, ses, f"{ses}: several NIfTI files ({names}); keep "
                                            "one per session or list the one to use in a CSV manifest"))
    return acqs, fails


def _folders(root: Path) -> Found:
    """Subject folders and flat NIfTI files directly in ``root``."""
    acqs, fails = [], []
    for f in _scan_files(root):
        if is_image_file(f):
            acqs.append(Acquisition(nifti_stem(f), "", f, image_kind(f)))
    for sub in _subdirs(root):
        a, fl = _subject_folder(sub)
        acqs += a
        fails += fl
    return acqs, fails


def _manifest(csv_path: Path) -> Found:
    """Rows ``subject_id,path[,session]``; relative paths are relative to the CSV's folder.

    Each bad row is a failure naming the CSV, its line number and the path; a row never makes
    discovery look anywhere but the path it gives.
    """
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{csv_path}: cannot read the manifest ({exc}). Fix: give a UTF-8 CSV.") from exc
    if not rows or not {"subject_id", "path"} <= set(rows[0]):
        raise DatasetError(f"{csv_path}: manifest needs a header with columns subject_id,path[,session] "
                           "and at least one row. Fix: add the header line.")
    acqs, fails = [], []
    for n, row in enumerate(rows, start=2):
        sid, raw, session = (row.get("subject_id") or "").strip(), (row.get("path") or "").strip(), \
            (row.get("session") or "").strip()
        found = _manifest_row(csv_path, n, sid, raw, session)
        (acqs if isinstance(found, Acquisition) else fails).append(found)
    return acqs, fails


def _manifest_row(csv_path: Path, n: int, sid: str, raw: str, session: str) -> Acquisition | DatasetFailure:
    """The acquisition one manifest row names, or the failure naming the row and what is wrong."""
    where = f"{csv_path} line {n}"

    def fail(reason: str, path: Path = csv_path) -> DatasetFailure:
        return DatasetFailure(sid or None, path, f"{where}: {reason}", row=n, session=session)

    if not sid or not raw:
        return fail("empty subject_id or path; fill both columns or remove the row")
    path = Path(raw) if Path(raw).is_absolute() else csv_path.parent / raw
    if not path.exists():
        return fail(f"{path} does not exist (subject {sid}{', session ' + session if session else ''}); "
                    "fix the path or remove the row", path)
    if path.is_file() and is_image_file(path):
        return Acquisition(sid, session, path, image_kind(path))
    if path.is_file():
        what = "is a single DICOM file" if _is_dicom_file(path) else "is not an image file (.nii/.nii.gz, .nrrd, .mha/.mhd)"
        return fail(f"{path} {what}; give an image file or the folder holding the subject's DICOM series", path)
    found = _acquisition_in(path, sid, session)
    if isinstance(found, DatasetFailure):
        return fail(found.reason, path)
    return found


def _is_dicom_file(path: Path) -> bool:
    """True when ``path`` starts with a DICOM Part-10 preamble ("DICM" at byte 128)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(132)[128:] == b"DICM"
    except OSError:
        return False


def _group(acqs: list[Acquisition], fails: list[DatasetFailure]) -> tuple[tuple[Subject, ...], list[DatasetFailure]]:
    """Group acquisitions by subject; duplicate acquisition ids fail the whole subject."""
    by_subject: dict[str, list[Acquisition]] = defaultdict(list)
    for a in acqs:
        by_subject[a.subject_id].append(a)
    subjects = []
    for sid in sorted(by_subject, key=natural_key):
        items = sorted(by_subject[sid], key=lambda a: natural_key(a.session))
        ids = [a.acq_id for a in items]
        dups = sorted({i for i in ids if ids.count(i) > 1})
        if dups:
            paths = ", ".join(str(a.path) for a in items if a.acq_id in dups)
            fails.append(DatasetFailure(sid, items[0].path, f"duplicate subject id {sid!r}"
                                        f"{'' if dups == [sid] else ' (acquisitions ' + ', '.join(dups) + ')'}"
                                        f" from {paths}; rename one so each id is unique"))
            continue
        subjects.append(Subject(sid, tuple(items)))
    # a subject with one failed session stays usable with its other sessions, so it is kept
    fails.sort(key=lambda f: (natural_key(f.subject_id or ""), str(f.path)))
    return tuple(subjects), fails


def discover(path: Path | str) -> Dataset:
    """Discover the subjects and acquisitions under ``path`` (folder or CSV manifest)."""
    root = Path(path)
    if not root.exists():
        raise DatasetError(f"{root}: dataset path does not exist. Fix: check the path.")
    if (root / "sample.json").is_file() and (root / "dicom").is_dir():
        root = root / "dicom"  # the sample dataset's top folder: its DICOM tree is the dataset
    if root.is_file():
        if root.suffix.lower() != ".csv":
            raise DatasetError(f"{root}: a dataset is a folder or a CSV manifest "
                               "(subject_id,path[,session]); got a file. Fix: give its folder.")
        acqs, fails = _manifest(root)
    elif any(p.name.startswith("sub-") for p in _subdirs(root)):
        acqs, fails = _bids(root)
    else:
        acqs, fails = _folders(root)
    subjects, fails = _group(acqs, fails)
    if not subjects and not fails:
        raise DatasetError(f"{root}: no subjects found (no subject folders, NIfTI files or sub-* "
                           "folders). Fix: point to the dataset root.")
    if not subjects:
        raise DatasetError(_nothing_usable(root, fails))
    return Dataset(root=root, subjects=subjects, failures=tuple(fails))


def _nothing_usable(root: Path, fails: list[DatasetFailure], shown: int = 3) -> str:
    """One line for a dataset where every subject failed: how many, the first reasons, the fix."""
    reasons = "; ".join(f.reason for f in fails[:shown])
    more = f"; and {len(fails) - shown} more" if len(fails) > shown else ""
    return (f"{root}: no usable subject: all {len(fails)} failed discovery ({reasons}{more}). "
            "Fix: put each subject's scan where the reasons say, or point to the right dataset root.")
