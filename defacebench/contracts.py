"""Plugin contracts: one ``typing.Protocol`` per kind and the records that pass between stages.

This module imports only the standard library and numpy so that discovering plugins and listing
them never pulls in dlib, deepface, ANTs or VTK. Heavy imports happen inside each plugin, on first
use.

Every plugin has ``name`` (lower_snake_case, unique in its kind, no ``-``: the hyphen separates the
parts of a configuration id), ``version`` (a string recorded in results and in cache keys),
``params`` (a frozen dataclass, recorded in results) and ``available()``. A plugin may also set
``opt_in`` (a non-empty string: why it is left out of the default product, e.g. it wraps a backend
another plugin already runs); such a plugin runs only when a run names it (see :func:`opt_in_reason`).
It may also declare ``licence``, ``modalities`` and ``modality_notes``, which ``defacebench list`` shows
(:func:`plugin_notes`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np

KINDS: tuple[str, ...] = ("defacers", "renderers", "detectors", "recognizers")
"""Plugin kinds; each is also the suffix of its entry-point group ``defacebench.<kind>``."""

METRICS: tuple[str, ...] = ("cosine", "euclidean", "euclidean_l2")
"""Distance metrics a recognizer may declare (defined as deepface defines them)."""

MODALITIES: tuple[str, ...] = ("ct", "mri")
"""Modalities a volume may have: CT in Hounsfield units, MRI in scanner units (T1-weighted)."""

LANDMARK_SCHEMES: tuple[str, ...] = ("", "face5")
"""What a Face's landmarks are: ``""`` detector-specific (e.g. dlib's eye corners and nose base);
``"face5"`` the five points of MTCNN, RetinaFace and the ArcFace alignment template, in this order:
eye centre on the image's left, eye centre on the image's right, nose tip, mouth corner on the
image's left, mouth corner on the image's right."""

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid plugin name, else raise ``ValueError`` saying why."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ValueError(
            f"plugin name {name!r} is invalid: use lower_snake_case letters, digits and '_' "
            "(no '-', which separates the parts of a configuration id)"
        )
    return name


@dataclass(frozen=True)
class Range:
    """The values a numeric params field accepts, declared on the field with ``typing.Annotated``::

        mm_per_px: Annotated[float, Range(gt=0)] = 0.7
        thresholds: tuple[Annotated[float, Range(ge=0, le=1)], ...] = (0.6, 0.7, 0.8)

    Values set from the plugins file are checked against it (and every float must be finite), so
    ``mm_per_px = 0`` is refused naming the file, table and key instead of giving a run without a
    face. Bounds left None are open."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def allows(self, value: float) -> bool:
        return ((self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
                and (self.le is None or value <= self.le) and (self.lt is None or value < self.lt))

    def __str__(self) -> str:
        parts = [f"{op} {bound:g}" for op, bound in ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
                 if bound is not None]
        return " and ".join(parts) or "any value"


@dataclass(frozen=True)
class Availability:
    """Whether a plugin can run here; ``reason`` names what is missing and how to get it."""

    ok: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok

    @classmethod
    def yes(cls) -> "Availability":
        return cls(True, "")

    @classmethod
    def no(cls, reason: str) -> "Availability":
        return cls(False, reason)


@dataclass(frozen=True)
class NoParams:
    """Params of a plugin that has none (still a frozen dataclass, so results record it)."""


# ---------------------------------------------------------------------------------------------
# Records passed between stages
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Volume:
    """A 3-D scan in memory: ``data`` (i, j, k) float32 in HU (or scanner units for MR), the
    voxel-to-world ``affine`` (4, 4) in RAS+ millimetres and its ``modality`` (one of
    :data:`MODALITIES`), so renderers, QC and cleanup can apply the modality's rules."""

    data: np.ndarray
    affine: np.ndarray
    modality: str = "ct"

    @property
    def zooms(self) -> tuple[float, float, float]:
        """Voxel sizes in mm along i, j, k."""
        return tuple(float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))  # type: ignore[return-value]


@dataclass(frozen=True)
class DefaceResult:
    """What a defacer produced for one input volume.

    ``volume_path`` is the defaced NIfTI inside the defacer's workdir; ``mask_path`` is the tool's
    removed-voxel (or face) mask when the tool gives one, else None. ``log`` holds the exact
    command line, stdout, stderr and exit code for command-line tools.
    """

    volume_path: Path
    mask_path: Path | None = None
    tool_version: str = ""
    log: str = ""


@dataclass(frozen=True)
class View:
    """One rendered image: ``image`` (H, W, 3) uint8 RGB or (H, W) uint8 gray, its ``view_id``
    (e.g. ``"frontal"`` or ``"yaw+20_pitch+0"``) and a description of the camera."""

    view_id: str
    image: np.ndarray
    camera: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Face:
    """One detected face: ``box`` (x0, y0, x1, y1) in pixels, a detector ``score`` (higher is more
    confident) and ``landmarks`` (k, 2) pixel coordinates when the detector has them, with their
    ``landmark_scheme`` (one of :data:`LANDMARK_SCHEMES`) so a recognizer that aligns knows which
    points they are."""

    box: tuple[float, float, float, float]
    score: float = 1.0
    landmarks: np.ndarray | None = None
    landmark_scheme: str = ""


@dataclass(frozen=True)
class WeightFile:
    """One model or detector file a plugin needs, as ``defacebench weights`` lists and fetches it.

    A plugin may offer ``weights() -> Sequence[WeightFile]`` (optional, not part of the
    protocols): ``name`` is the file's name (what ``weights fetch NAME`` takes), ``path`` where the
    plugin looks for it, ``url`` where it comes from, ``sha256`` its digest when known in advance,
    ``how`` one line saying how to get it by hand, and ``fetch`` a callable that downloads or builds
    it into ``path`` (None when only ``how`` can get it, e.g. a file shipped in a pip package).
    ``fetch`` raises :class:`defacebench.errors.WeightsError` with a one-line reason on failure.
    ``check`` (optional) says whether a present file is usable: "" or why not (e.g. it does not
    parse); ``sha256`` may also be a digest recorded when the file was built here.
    """

    name: str
    path: Path
    url: str = ""
    sha256: str = ""
    how: str = ""
    fetch: Callable[[], Path] | None = field(default=None, compare=False, repr=False)
    check: Callable[[], str] | None = field(default=None, compare=False, repr=False)


# ---------------------------------------------------------------------------------------------
# Protocols, one per kind
# ---------------------------------------------------------------------------------------------


@runtime_checkable
class Plugin(Protocol):
    """What every plugin has, whatever its kind."""

    name: str
    version: str
    params: object

    def available(self) -> Availability: ...


@runtime_checkable
class Defacer(Plugin, Protocol):
    """Removes or replaces the face of a head volume.

    ``deface`` reads the NIfTI at ``volume_path`` (never modifies it, never writes next to it) and
    writes its outputs inside ``workdir`` (which exists and is empty). It raises
    :class:`defacebench.errors.DefaceError` with the tool's message on failure. ``deterministic``
    says whether the same input always gives the same output (checked by the conformance suite).
    """

    deterministic: bool

    def deface(self, volume_path: Path, workdir: Path) -> DefaceResult: ...

    def tool_version(self) -> str:
        """The external tool's version ("" for a defacer that runs no tool); asked once per process
        and part of the defacings' cache keys, so upgrading the tool recomputes them."""
        ...


@runtime_checkable
class Renderer(Plugin, Protocol):
    """Turns a volume into one image per view."""

    def render(self, volume: Volume) -> list[View]: ...


@runtime_checkable
class Detector(Plugin, Protocol):
    """Finds faces in an image (H, W, 3) uint8 RGB; returns every face found, maybe none."""

    def detect(self, image: np.ndarray) -> list[Face]: ...


@runtime_checkable
class Recognizer(Plugin, Protocol):
    """Embeds faces. ``embed`` takes a sequence of (image, face) pairs and returns an array
    (n, d) float, one row per pair, in one batched call. ``metric`` is one of :data:`METRICS`."""

    metric: str

    def embed(self, items: Sequence[tuple[np.ndarray, Face]]) -> np.ndarray: ...


def opt_in_reason(plugin: object) -> str:
    """Why ``plugin`` is left out of the default product ("" when it belongs to it).

    ``opt_in`` is optional so that plugins written before it existed keep conforming; the default
    product is every available plugin, and a run leaves out only what a plugin itself declares
    redundant or too costly to run unasked."""
    reason = getattr(plugin, "opt_in", "")
    return reason if isinstance(reason, str) else ""


def plugin_notes(plugin: object) -> str:
    """What ``defacebench list`` says of a plugin besides its availability: the licence of the upstream
    code or data it runs (optional ``licence``, a string) and the modalities it is made for (optional
    ``modalities``, a subset of :data:`MODALITIES`) and how it treats them (optional ``modality_notes``,
    e.g. what a model trained on MRI gets on CT); "" when it declares none."""
    parts = []
    licence = getattr(plugin, "licence", "")
    if isinstance(licence, str) and licence:
        parts.append(f"licence: {licence}")
    modalities = getattr(plugin, "modalities", ())
    if isinstance(modalities, (tuple, list)) and modalities:
        parts.append(f"modalities: {', '.join(str(m) for m in modalities)}")
    notes = getattr(plugin, "modality_notes", "")
    if isinstance(notes, str) and notes:
        parts.append(notes)
    return "; ".join(parts)


PROTOCOLS: dict[str, type] = {
    "defacers": Defacer,
    "renderers": Renderer,
    "detectors": Detector,
    "recognizers": Recognizer,
}
