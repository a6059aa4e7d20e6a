"""Which DICOM series of a folder is converted, and how a series is named in everything the harness writes.

A folder with several series of one patient gets one picked by a documented rule (or fails, on
request), and the choice is a :class:`SeriesChoice`, printed and recorded, never silent.

Series are named by :func:`uid_digest`, never by their SeriesInstanceUID: DICOM's confidentiality
profile (PS3.15 Annex E) treats UIDs as identifying (they often embed a device serial number and
the acquisition time), so no record, report, manifest, log line or error message carries one
(issue 25). The digest is stable (the same series always gets the same one), short, and tells the
series of a folder apart; ``--series`` accepts it as well as the full UID.

A ``--series`` choice applies to the acquisition whose folder holds that series; every other
acquisition is converted by the usual rule (issue 25: it used to fail every other acquisition).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from defacebench.errors import ConversionError

SERIES_RULE = (
    "CT before other modalities, then axial, then most slices, then thinnest slices, "
    "then smallest SeriesInstanceUID"
)
"""How :func:`select_series` chooses among several series (recorded with every conversion)."""
SEVERAL_SERIES = ("pick", "fail")
"""What to do with several series in one acquisition folder: pick one by SERIES_RULE, or fail."""
DIGEST_PREFIX = "series-"


def uid_digest(uid: str) -> str:
    """The name of a series in outputs: ``series-`` and 12 hex digits of the UID's sha256.

    48 bits make a collision between the series of one dataset negligible; a value that already is
    a digest is returned unchanged, so recording a user's ``--series`` choice never double-hashes."""
    text = str(uid).strip()
    if is_digest(text):
        return text
    return DIGEST_PREFIX + hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:12]


def is_digest(text: str) -> bool:
    """True when ``text`` has the form :func:`uid_digest` gives."""
    tail = text[len(DIGEST_PREFIX):]
    return text.startswith(DIGEST_PREFIX) and len(tail) == 12 and all(c in "0123456789abcdef" for c in tail)


def matches(uid: str, requested: str) -> bool:
    """True when ``requested`` (a full SeriesInstanceUID or its digest) names the series ``uid``."""
    requested = requested.strip()
    return requested == uid or requested == uid_digest(uid)


@dataclass(frozen=True)
class SeriesCandidate:
    """What the selection rule saw of one series (no patient data; ``uid`` is the digest)."""

    uid: str
    modality: str
    n_slices: int
    thickness: float
    axial: bool

    def describe(self) -> str:
        """``series-1a2b3c4d5e6f (CT, axial, 9 slices, 2.5 mm)``."""
        return (f"{self.uid} ({self.modality or 'no modality'}, {'axial' if self.axial else 'non-axial'}, "
                f"{self.n_slices} slices, {self.thickness:g} mm)")


@dataclass(frozen=True)
class SeriesChoice:
    """Which series of a folder holding several was converted, why, and what the others were."""

    folder: str
    chosen: str
    reason: str
    candidates: tuple[SeriesCandidate, ...]

    @classmethod
    def from_dict(cls, data: dict) -> "SeriesChoice":
        """Rebuild from the JSON form stored with a cached conversion record."""
        cands = tuple(SeriesCandidate(**c) for c in data.get("candidates", ()))
        return cls(data["folder"], data["chosen"], data["reason"], cands)

    def notice(self) -> str:
        """One line for the console: the folder, the series converted, the others, how to choose."""
        chosen = next(c for c in self.candidates if c.uid == self.chosen)
        others = ", ".join(c.describe() for c in self.candidates if c.uid != self.chosen)
        return (f"{self.folder}: {len(self.candidates)} DICOM series; converted {chosen.describe()} "
                f"({self.reason}); not used: {others}. To choose another, pass --series with its name "
                "(or its SeriesInstanceUID) or move the other series out of the folder")


def candidate(s: Any) -> SeriesCandidate:
    """The selection-relevant facts of one :class:`~defacebench.data.dicomio.Series`."""
    return SeriesCandidate(uid_digest(s.uid), s.modality, s.n_slices, s.thickness, s.is_axial)


def select_series(series: Sequence[Any], folder: Path, series_uid: str | None = None,
                  several: str = "pick") -> tuple[Any, str, SeriesChoice | None]:
    """Pick the series to convert: the user's ``series_uid`` when this folder holds it, the only
    one, or (``several="pick"``) the first by ``SERIES_RULE``; ``several="fail"`` refuses a folder
    with several series.

    Returns the series, why it was chosen, and a :class:`SeriesChoice` when there was a choice.
    """
    if several not in SEVERAL_SERIES:
        raise ConversionError(f"several-series policy {several!r} is unknown; use one of {', '.join(SEVERAL_SERIES)}")
    cands = tuple(candidate(s) for s in series)
    requested = [s for s in series if series_uid is not None and matches(s.uid, series_uid)]
    if requested:
        chosen = requested[0]
        why = f"requested with --series {uid_digest(chosen.uid)}"
        return chosen, why, (SeriesChoice(str(folder), uid_digest(chosen.uid), why, cands) if len(series) > 1 else None)
    elsewhere = "" if series_uid is None else f"--series {uid_digest(series_uid)} is not in this folder; "
    if len(series) == 1:
        return series[0], f"{elsewhere}only series in the folder", None
    if several == "fail":
        raise ConversionError(
            f"{folder}: {elsewhere}{len(series)} DICOM series in one acquisition folder "
            f"({', '.join(c.describe() for c in cands)}). Fix: keep one series per folder, pass --series with "
            "one of these names, or allow the documented choice (--several-series pick)."
        )
    ranked = sorted(series, key=lambda s: (s.modality != "CT", not s.is_axial, -s.n_slices, s.thickness, s.uid))
    best = ranked[0]
    why = f"{elsewhere}{len(series)} series in the folder; chose {candidate(best).describe()} by rule: {SERIES_RULE}"
    return best, why, SeriesChoice(str(folder), uid_digest(best.uid), f"{elsewhere}rule: {SERIES_RULE}", cands)
