"""Typed records of a run: what each stage produced for one item, and what a configuration produced.

Every stage returns one frozen record per item, or :class:`Failed` when the item could not be
processed (the executor caught the error). A defacer that ran and failed is not ``Failed``: it is a
:class:`Defaced` with ``ok == False``, an outcome that is cached and scored (a failed defacing is
exposure, see :mod:`defacebench.run.scenarios`). Records round-trip through JSON for the cache.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from defacebench.anatomy.qc import QCResult
from defacebench.contracts import Face

CONTROL = "none"


@dataclass(frozen=True)
class Failed:
    """An item a stage could not process: the stage, the error ("Type: message") and the tool log."""

    stage: str
    error: str
    log: str = ""

    ok = False


@dataclass(frozen=True)
class Converted:
    """One acquisition as a canonical-RAS float32 NIfTI: its path, content hash and conversion record."""

    path: str
    hash: str
    record: Mapping[str, Any] = field(default_factory=dict)

    ok = True

    @property
    def modality(self) -> str:
        return str(self.record.get("modality", "ct"))


@dataclass(frozen=True)
class Defaced:
    """One defacing: ``ok`` with the cleaned defaced volume, or the defacer's failure (an outcome).

    ``qc`` is filled by the QC stage (None until then, and for the control's copies)."""

    defacer: str
    ok: bool
    path: str | None = None
    hash: str | None = None
    error: str = ""
    log: str = ""
    tool_version: str = ""
    mask_path: str | None = None
    seconds: float | None = None
    qc: QCResult | None = None

    def to_json(self) -> dict:
        data = asdict(self)
        data.pop("qc")
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Defaced":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "qc"})


def qc_from_json(data: Mapping[str, Any]) -> QCResult:
    return QCResult(**{k: data[k] for k in QCResult.__dataclass_fields__})


@dataclass(frozen=True)
class RenderedView:
    """One rendered image: its view id, PNG path, content hash and camera description."""

    view_id: str
    path: str
    hash: str
    camera: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rendered:
    """Every view a renderer made of one volume, in the renderer's order."""

    views: tuple[RenderedView, ...]

    ok = True


@dataclass(frozen=True)
class Detected:
    """Faces a detector found in one image and the one the harness keeps (``best``; None = no face)."""

    faces: tuple[Face, ...]
    best: Face | None

    ok = True

    def to_json(self) -> dict:
        return {"faces": [face_to_json(f) for f in self.faces], "best": None if self.best is None else face_to_json(self.best)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Detected":
        best = data.get("best")
        return cls(tuple(face_from_json(f) for f in data.get("faces", ())), None if best is None else face_from_json(best))


def face_to_json(face: Face) -> dict:
    lm = None if face.landmarks is None else np.asarray(face.landmarks, float).tolist()
    return {"box": [float(v) for v in face.box], "score": float(face.score), "landmarks": lm,
            "landmark_scheme": face.landmark_scheme}


def face_from_json(data: Mapping[str, Any]) -> Face:
    lm = None if data.get("landmarks") is None else np.asarray(data["landmarks"], float)
    return Face(box=tuple(float(v) for v in data["box"]), score=float(data["score"]), landmarks=lm,
                landmark_scheme=str(data.get("landmark_scheme", "")))


@dataclass(frozen=True)
class Embedded:
    """Embeddings of every view of one subject's render: ``vectors`` (n_views, d), a NaN row where
    the view has no kept face; ``view_ids`` name the rows."""

    view_ids: tuple[str, ...]
    vectors: np.ndarray

    ok = True

    @property
    def has_face(self) -> np.ndarray:
        """(n_views,) bool: which views have an embedding."""
        return np.isfinite(self.vectors).all(axis=1) if self.vectors.size else np.zeros(len(self.view_ids), bool)


@dataclass(frozen=True)
class SubjectRoles:
    """Which acquisition of a subject is the probe (defaced) and which is its other acquisition
    (``other`` None when the subject has only one)."""

    subject_id: str
    probe: Any  # defacebench.data.dataset.Acquisition
    other: Any | None


@dataclass(frozen=True)
class FailureRow:
    """One recorded failure: the subject, the stage, the side (gallery/probe/-) and the message."""

    subject_id: str
    stage: str
    role: str
    error: str


@dataclass
class ConfigOutcome:
    """What one (configuration, scenario) produced: its leaderboard row, folder, evaluation, failures."""

    config_id: Any  # ConfigId
    scenario: str
    row: Any  # LeaderboardRow
    outdir: Path
    evaluation: Any  # Evaluation
    status: str = "ok"
    failures: list[FailureRow] = field(default_factory=list)
    embeddings: dict = field(default_factory=dict)
    first_error: str = ""
    seconds: float = 0.0

    @property
    def key(self) -> str:
        return result_id(self.config_id, self.scenario)


DEFAULT_SCENARIO = "rescan"


def result_id(config_id: Any, scenario: str) -> str:
    """The pytest id of a (configuration, scenario): four parts for the default scenario (so
    baselines stay comparable), a fifth part naming any other scenario."""
    return str(config_id) if scenario == DEFAULT_SCENARIO else f"{config_id}-{scenario}"
