"""Records of a run: subject roles, failure rows and what one configuration produced."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

CONTROL = "none"


@dataclass(frozen=True)
class SubjectRoles:
    """Which acquisition of a subject is the probe (defaced) and which feeds the gallery."""

    subject_id: str
    probe: object  # Acquisition
    gallery: object  # Acquisition
    scenario: str


@dataclass(frozen=True)
class Failure:
    """One recorded failure row: the subject, the stage and the message (never a dropped row)."""

    subject_id: str
    stage: str
    role: str
    error: str


@dataclass
class ConfigOutcome:
    """What one configuration produced: its leaderboard row, output folder and failure rows."""

    config_id: ConfigId
    row: object
    outdir: Path
    evaluation: object
    failures: list[Failure] = field(default_factory=list)
    embeddings: dict = field(default_factory=dict)
    seconds: float = 0.0
