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

(a) and (c) may be mixed in one folder. A folder the harness wrote itself (a ``--results`` folder,
``convert --out``, a stage cache: they carry a marker, see :mod:`defacebench.util.outputs`) is
never a subject or session; it is listed in :attr:`Dataset.ignored`. The top folder of the sample
dataset (with ``sample.json``) means its ``dicom/`` tree. Subject ids stay strings and are sorted
naturally (``2`` before ``10``). One bad subject never stops discovery: it becomes a
:class:`DatasetFailure` row (empty folder, duplicate id, missing file, ambiguous content; for a CSV
manifest with its row number, also an id that is a path or two rows naming one scan:
:mod:`defacebench.data.csv_manifest`). A subject kept with fewer acquisitions than listed is in
:attr:`Dataset.incomplete_subjects`, so a scenario that needs the missing one can fail it instead of
silently using another. An unusable root, and a dataset where every subject failed, raise
:class:`~defacebench.errors.DatasetError`.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from defacebench.data.acquisitions import (IGNORED_SUFFIXES, Acquisition, DatasetFailure, Found, Subject,
                                           acquisition_in, harness_output, image_kind, is_image_file, natural_key,
                                           nifti_stem, scan_files, strip_prefix, subdirs, tree_files)
from defacebench.data.csv_manifest import read_manifest
from defacebench.util.hashing import file_sha256
from defacebench.errors import DatasetError

__all__ = ["IGNORED_SUFFIXES", "Acquisition", "Dataset", "DatasetFailure", "Subject", "discover", "file_digest",
           "image_kind", "is_image_file", "natural_key", "nifti_stem"]


@dataclass(frozen=True)
class Dataset:
    """The discovered subjects of a dataset root, in natural order, and the failures."""

    root: Path
    subjects: tuple[Subject, ...]
    failures: tuple[DatasetFailure, ...] = ()
    ignored: tuple[Path, ...] = ()  # the harness's own output folders found in the root, left out

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
    """The files an acquisition reads (all non-hidden files under a DICOM folder, outside the
    harness's own output folders)."""
    if acq.kind in ("nifti", "itk") or acq.path.is_file():
        return [acq.path]
    return tree_files(acq.path)


def _subject_folder(folder: Path) -> Found:
    """Acquisitions of one subject folder: its own files, or one session per subfolder."""
    subject_id = folder.name
    if scan_files(folder) or not subdirs(folder):
        found = [acquisition_in(folder, subject_id, "")]
    else:
        found = [acquisition_in(sub, subject_id, strip_prefix("ses-", sub.name)) for sub in subdirs(folder)]
    return ([f for f in found if isinstance(f, Acquisition)],
            [f for f in found if isinstance(f, DatasetFailure)])


def _bids(root: Path) -> Found:
    """``sub-*/[ses-*/]{ct,anat}/*.nii[.gz]``."""
    acqs, fails = [], []
    for sub in (p for p in subdirs(root) if p.name.startswith("sub-")):
        subject_id = strip_prefix("sub-", sub.name)
        sessions = [s for s in subdirs(sub) if s.name.startswith("ses-")] or [sub]
        for ses in sessions:
            session = strip_prefix("ses-", ses.name) if ses is not sub else ""
            files = [f for mod in ("ct", "anat") if (ses / mod).is_dir()
                     for f in scan_files(ses / mod) if is_image_file(f)]
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
    for f in scan_files(root):
        if is_image_file(f):
            acqs.append(Acquisition(nifti_stem(f), "", f, image_kind(f)))
    for sub in subdirs(root):
        a, fl = _subject_folder(sub)
        acqs += a
        fails += fl
    return acqs, fails


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
        acqs, fails = read_manifest(root)
    elif any(p.name.startswith("sub-") for p in subdirs(root)):
        acqs, fails = _bids(root)
    else:
        acqs, fails = _folders(root)
    subjects, fails = _group(acqs, fails)
    if not subjects and not fails:
        raise DatasetError(f"{root}: no subjects found (no subject folders, NIfTI files or sub-* "
                           "folders). Fix: point to the dataset root.")
    if not subjects:
        raise DatasetError(_nothing_usable(root, fails))
    ignored = () if root.is_file() else tuple(sorted(
        p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and harness_output(p)))
    return Dataset(root=root, subjects=subjects, failures=tuple(fails), ignored=ignored)


def _nothing_usable(root: Path, fails: list[DatasetFailure], shown: int = 3) -> str:
    """One line for a dataset where every subject failed: how many, the first reasons, the fix."""
    reasons = "; ".join(f.reason for f in fails[:shown])
    more = f"; and {len(fails) - shown} more" if len(fails) > shown else ""
    return (f"{root}: no usable subject: all {len(fails)} failed discovery ({reasons}{more}). "
            "Fix: put each subject's scan where the reasons say, or point to the right dataset root.")
