"""The CSV manifest layout: rows ``subject_id,path[,session]``, paths relative to the CSV's folder.

Each bad row is a :class:`~defacebench.data.acquisitions.DatasetFailure` naming the CSV, its line
number, what is wrong and the fix; a row never makes discovery look anywhere but the path it gives.
Two checks exist because a manifest is typed by hand (issue 25):

- a subject id or session becomes a file name (``convert`` writes ``<out>/<subject>_<session>.nii.gz``),
  so one that is a path (``../evil``, ``/abs``, ``a/b``, ``..``) would write outside the output
  folder: it is refused before it is used anywhere;
- two rows naming the same file (or folder; also through a symlink or another spelling of the path)
  would make one scan two subjects, or a "rescan" identical to its scan: every such row fails,
  naming the other lines, since no rule can know which row is the right one.
"""

from __future__ import annotations

import csv
import os
import re
from collections import defaultdict
from pathlib import Path

from defacebench.data.acquisitions import (Acquisition, DatasetFailure, Found, acquisition_in, image_kind,
                                           is_image_file)
from defacebench.errors import DatasetError

_UNSAFE = re.compile(r"[/\\\x00-\x1f\x7f]")
"""Characters an id may not hold: path separators (both styles, so ids stay portable) and controls."""


def id_problem(value: str) -> str | None:
    """Why ``value`` cannot be a subject id or session (it would not be one plain file name), or None."""
    if value in (".", ".."):
        return "is a relative folder reference"
    if value.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", value):
        return "is an absolute path"
    found = _UNSAFE.search(value)
    if found:
        char = found.group()
        kind = "a path separator" if char in "/\\" else "a control character"
        return f"contains {kind} ({char!r})"
    return None


def read_manifest(csv_path: Path) -> Found:
    """The acquisitions and failure rows of the manifest at ``csv_path``."""
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{csv_path}: cannot read the manifest ({exc}). Fix: give a UTF-8 CSV.") from exc
    if not rows or not {"subject_id", "path"} <= set(rows[0]):
        raise DatasetError(f"{csv_path}: manifest needs a header with columns subject_id,path[,session] "
                           "and at least one row. Fix: add the header line.")
    found: list[tuple[int, Acquisition | DatasetFailure]] = []
    for n, row in enumerate(rows, start=2):
        sid, raw, session = ((row.get(k) or "").strip() for k in ("subject_id", "path", "session"))
        found.append((n, _row(csv_path, n, sid, raw, session)))
    found = _one_row_per_file(csv_path, found)
    return ([f for _, f in found if isinstance(f, Acquisition)],
            [f for _, f in found if isinstance(f, DatasetFailure)])


def _row(csv_path: Path, n: int, sid: str, raw: str, session: str) -> Acquisition | DatasetFailure:
    """The acquisition one manifest row names, or the failure naming the row and what is wrong."""
    where = f"{csv_path} line {n}"

    def fail(reason: str, path: Path = csv_path) -> DatasetFailure:
        return DatasetFailure(sid or None, path, f"{where}: {reason}", row=n, session=session)

    if not sid or not raw:
        return fail("empty subject_id or path; fill both columns or remove the row")
    for column, value in (("subject_id", sid), ("session", session)):
        problem = id_problem(value) if value else None
        if problem:
            return fail(f"{column} {value!r} {problem}; it becomes part of output file names, so it must "
                        "be one plain name. Fix: use letters, digits, '-' or '_' (e.g. the folder's name)")
    path = Path(raw) if Path(raw).is_absolute() else csv_path.parent / raw
    if not path.exists():
        return fail(f"{path} does not exist (subject {sid}{', session ' + session if session else ''}); "
                    "fix the path or remove the row", path)
    if path.is_file() and is_image_file(path):
        return Acquisition(sid, session, path, image_kind(path))
    if path.is_file():
        what = "is a single DICOM file" if _is_dicom_file(path) else "is not an image file (.nii/.nii.gz, .nrrd, .mha/.mhd)"
        return fail(f"{path} {what}; give an image file or the folder holding the subject's DICOM series", path)
    found = acquisition_in(path, sid, session)
    if isinstance(found, DatasetFailure):
        return fail(found.reason, path)
    return found


def _one_row_per_file(csv_path: Path, found: list[tuple[int, Acquisition | DatasetFailure]]
                      ) -> list[tuple[int, Acquisition | DatasetFailure]]:
    """``found`` with every row that shares its file or folder with another row turned into a failure."""
    rows_of: dict[tuple[int, int], list[int]] = defaultdict(list)
    for n, item in found:
        if isinstance(item, Acquisition):
            st = os.stat(item.path)  # follows symlinks: a link to a listed file is that file
            rows_of[(st.st_dev, st.st_ino)].append(n)
    shared = {n: rows for rows in rows_of.values() if len(rows) > 1 for n in rows}
    out: list[tuple[int, Acquisition | DatasetFailure]] = []
    for n, item in found:
        if isinstance(item, Acquisition) and n in shared:
            lines = ", ".join(map(str, shared[n]))
            item = DatasetFailure(item.subject_id, item.path, (
                f"{csv_path} line {n}: lines {lines} all name {item.path} (the same scan); one scan is one "
                "acquisition of one subject. Fix: correct the path of the wrong row(s) or remove them"),
                row=n, session=item.session)
        out.append((n, item))
    return out


def _is_dicom_file(path: Path) -> bool:
    """True when ``path`` starts with a DICOM Part-10 preamble ("DICM" at byte 128)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(132)[128:] == b"DICM"
    except OSError:
        return False
