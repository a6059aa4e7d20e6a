"""Configuration identity and run settings.

A configuration is one ``(defacer, renderer, detector, recognizer)`` tuple; its id is the four names
joined by ``-`` (names themselves never contain ``-``), which is exactly the pytest id, so
``-k fsl`` or ``-k "pydeface and not ants"`` select naturally. :class:`RunConfig` holds every
run-level setting; it is recorded whole in the run's manifest.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from defacebench.contracts import KINDS
from defacebench.errors import DefacebenchError


@dataclass(frozen=True, order=True)
class ConfigId:
    """One configuration of the product of the four plugin kinds."""

    defacer: str
    renderer: str
    detector: str
    recognizer: str

    def __str__(self) -> str:
        return "-".join(self.parts)

    @property
    def parts(self) -> tuple[str, str, str, str]:
        return (self.defacer, self.renderer, self.detector, self.recognizer)

    @classmethod
    def parse(cls, text: str) -> "ConfigId":
        parts = text.split("-")
        if len(parts) != 4 or not all(parts):
            raise DefacebenchError(f"configuration id {text!r} must be defacer-renderer-detector-recognizer")
        return cls(*parts)


SCENARIOS = ("rescan", "seed")
PROTOCOLS = ("default", "seed")
CLEANUPS = ("mask", "seed_range", "none")


@dataclass(frozen=True)
class RunConfig:
    """Every run-level setting of a benchmark run (recorded in ``manifest.json``).

    ``scenario`` says where the gallery comes from: ``rescan`` (the other acquisition of the
    subject, undefaced; falls back to ``seed`` for subjects with one acquisition) or ``seed`` (the
    undefaced render of the very scan that was defaced, as in the original study).
    """

    dataset: Path
    results: Path = Path("results/runs")
    cache_dir: Path | None = None
    plugins_file: Path | None = None
    executor: str = "local"
    scheduler: str | None = None
    workers: int | None = None
    scenario: str = "rescan"
    protocol: str = "default"
    calibration: float = 0.7
    seed: int = 0
    n_bootstrap: int = 1000
    policy: str = "f1"
    cleanup: str = "mask"
    converter: str = "dicom2nifti"
    qc_filter: str | None = None
    images: bool = True
    run_id: str = ""
    restrict: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())

    def __post_init__(self) -> None:
        checks = {"scenario": SCENARIOS, "protocol": PROTOCOLS, "cleanup": CLEANUPS,
                  "executor": ("local", "serial", "dask")}
        for name, allowed in checks.items():
            if getattr(self, name) not in allowed:
                raise DefacebenchError(f"{name}={getattr(self, name)!r} is not one of {', '.join(allowed)}")
        if not 0.0 < self.calibration <= 1.0:
            raise DefacebenchError(f"calibration fraction must be in (0, 1], got {self.calibration}")

    def to_dict(self) -> dict:
        """JSON-able view for the manifest (paths as strings)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = os.fspath(value) if isinstance(value, Path) else value
        out["restrict"] = {k: list(v) for k, v in self.restrict}
        return out


def parse_name_list(text: str | None) -> tuple[str, ...]:
    """``"a,b , c"`` -> ``("a", "b", "c")``; None or empty -> ``()`` (no restriction)."""
    if not text:
        return ()
    return tuple(part.strip() for part in text.split(",") if part.strip())


def product(names: dict[str, list[str]], restrict: dict[str, tuple[str, ...]] | None = None) -> list[ConfigId]:
    """Every configuration of the product of ``names`` (kind -> plugin names), restricted per kind.

    A restriction naming an unknown plugin is an error listing the installed ones, so a typo in
    ``--defacers`` never silently yields an empty benchmark.
    """
    restrict = restrict or {}
    chosen = []
    for kind in KINDS:
        wanted = restrict.get(kind) or ()
        unknown = [n for n in wanted if n not in names[kind]]
        if unknown:
            raise DefacebenchError(
                f"--{kind} names unknown plugin(s) {', '.join(unknown)}; installed: {', '.join(names[kind])}"
            )
        chosen.append([n for n in names[kind] if not wanted or n in wanted])
    return [ConfigId(*combo) for combo in itertools.product(*chosen)]
