"""Which modality an acquisition is (CT in HU or T1-weighted MRI), decided once and recorded.

Evidence, strongest first:

1. the user's choice (``--modality ct|mri``; ``auto`` = decide from the data);
2. what the file declares: the DICOM ``Modality`` (``CT``, ``MR``) or a BIDS suffix
   (``*_ct.nii.gz``; ``*_T1w``, ``*_T2w``, ``*_FLAIR``, ``*_PDw`` ... are MRI);
3. the intensities: a CT has air near -1000 HU (a mode there, a sizeable share of voxels below
   ``air_below_hu``); an MRI is (almost) non-negative with no such mode, and its air is a dark
   background near 0 (a sizeable share of voxels below ``dark_fraction`` of its 99th percentile).
   A volume that is neither (e.g. a cropped CT with no air around the head) decides nothing.

A declaration the intensities contradict (a series labelled CT whose values look like MRI, or the
reverse) is never used silently: in ``auto`` mode it is a :class:`ModalityError` naming the file,
both verdicts and the fix; with an explicit ``--modality`` the user's choice wins and the
disagreement is kept as a warning in the decision. Nothing declared and undecidable intensities
is an error too (the fix: ``--modality``). Every decision is a :class:`ModalityDecision` record the
pipeline stores with the conversion.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from defacebench.errors import ConversionError

CHOICES = ("auto", "ct", "mri")
MRI_SUFFIXES = ("T1w", "T2w", "FLAIR", "PDw", "T2starw", "inplaneT1", "inplaneT2", "angio", "UNIT1", "MP2RAGE")
DICOM_MODALITIES = {"CT": "ct", "MR": "mri"}


class ModalityError(ConversionError):
    """The modality of an acquisition is contradictory or cannot be decided."""


@dataclass(frozen=True)
class ModalityParams:
    """Intensity rules: a CT has at least ``min_air_fraction`` of voxels below ``air_below_hu`` and
    a histogram mode within ``air_window_hu`` of -1000; an MRI has at most ``max_negative_fraction``
    of voxels below ``negative_below`` (interpolation may leave a few slightly negative) and at least
    ``min_air_fraction`` of its voxels below ``dark_fraction`` x its 99th percentile (air)."""

    air_below_hu: float = -500.0
    min_air_fraction: float = 0.05
    air_window_hu: float = 150.0
    negative_below: float = -50.0
    max_negative_fraction: float = 0.001
    dark_fraction: float = 0.05
    max_samples: int = 2_000_000


@dataclass(frozen=True)
class IntensityVerdict:
    """What the intensities alone say: ``modality`` "ct", "mri" or None (undecided) and why."""

    modality: str | None
    evidence: str


@dataclass(frozen=True)
class ModalityDecision:
    """The recorded decision: the modality used, where it came from (``override``, ``dicom``,
    ``bids``, ``intensity``), what was declared and what the intensities said, and any warning."""

    modality: str
    source: str
    declared: str | None
    intensity: str | None
    evidence: str
    warning: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _sample(data: np.ndarray, n: int) -> np.ndarray:
    """A strided subsample of at most ``n`` voxels (the verdict needs a histogram, not every voxel)."""
    flat = np.asarray(data).reshape(-1)
    step = max(1, flat.size // n)
    return flat[::step].astype(np.float32)


def intensity_modality(data: np.ndarray, params: ModalityParams = ModalityParams()) -> IntensityVerdict:
    """CT, MRI or undecided from the intensity histogram alone (see the module docstring)."""
    v = _sample(data, params.max_samples)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return IntensityVerdict(None, "no finite voxels")
    air = float(np.mean(v < params.air_below_hu))
    negative = float(np.mean(v < params.negative_below))
    low = v[v < params.air_below_hu]
    mode = float(np.median(low)) if low.size else float("nan")
    stats = (f"min {float(v.min()):.0f}, {100 * air:.1f} % of voxels below {params.air_below_hu:g}, "
             f"low-value mode {mode:.0f}")
    if air >= params.min_air_fraction and abs(mode + 1000.0) <= params.air_window_hu:
        return IntensityVerdict("ct", f"air near -1000 HU ({stats})")
    dark = float(np.mean(v <= params.dark_fraction * float(np.percentile(v, 99))))
    if negative <= params.max_negative_fraction and dark >= params.min_air_fraction:
        return IntensityVerdict("mri", f"non-negative with a dark background, no -1000 mode ({stats}, "
                                       f"{100 * dark:.1f} % dark)")
    return IntensityVerdict(None, f"neither CT-like nor MRI-like ({stats})")


def declared_from_dicom(modality_tag: str | None) -> str | None:
    """``CT`` -> "ct", ``MR`` -> "mri", anything else (or nothing) -> None."""
    return DICOM_MODALITIES.get((modality_tag or "").strip().upper())


def declared_from_name(path: Path | str) -> str | None:
    """The modality a BIDS-style file name declares (``_ct``, ``_T1w``...), or None."""
    name = Path(path).name
    stem = re.sub(r"\.(nii(\.gz)?|nrrd|nhdr|mha|mhd)$", "", name, flags=re.IGNORECASE)
    suffix = stem.rsplit("_", 1)[-1] if "_" in stem else ""
    if suffix.lower() == "ct":
        return "ct"
    if suffix in MRI_SUFFIXES:
        return "mri"
    return None


def decide(data: np.ndarray, *, where: str, declared: str | None = None, declared_by: str = "",
           choice: str = "auto", params: ModalityParams = ModalityParams()) -> ModalityDecision:
    """Decide the modality of the volume ``data`` read from ``where`` (see the module docstring).

    ``declared`` / ``declared_by``: what the file says and which field said it (``dicom``, ``bids``).
    Raises :class:`ModalityError` for a contradiction in ``auto`` mode or when nothing decides."""
    if choice not in CHOICES:
        raise ModalityError(f"--modality {choice!r} is unknown: use one of {', '.join(CHOICES)}")
    verdict = intensity_modality(data, params)
    said = f"{declared_by} says {declared.upper()}" if declared else ""
    if choice != "auto":
        warning = ""
        if verdict.modality and verdict.modality != choice:
            warning = (f"{where}: --modality {choice} overrides intensities that look like "
                       f"{verdict.modality.upper()} ({verdict.evidence})")
        return ModalityDecision(choice, "override", declared, verdict.modality, verdict.evidence, warning)
    if declared:
        if verdict.modality and verdict.modality != declared:
            raise ModalityError(
                f"{where}: {said} but its intensities look like {verdict.modality.upper()} "
                f"({verdict.evidence}). Fix: check the file (mislabelled or wrongly scaled?), or pass "
                f"--modality {verdict.modality} (or --modality {declared}) to decide explicitly.")
        return ModalityDecision(declared, declared_by, declared, verdict.modality, verdict.evidence)
    if verdict.modality is None:
        raise ModalityError(f"{where}: modality undecided: nothing declares it and the intensities are "
                            f"{verdict.evidence}. Fix: pass --modality ct or --modality mri.")
    return ModalityDecision(verdict.modality, "intensity", None, verdict.modality, verdict.evidence)
