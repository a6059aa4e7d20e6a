"""Issue 15 item 4: per-unit stage costs of a measured run, and the cost of a larger grid from them.

Why per unit: a 300-subject x 5-defacer x 3-attacker run cannot be timed on a shared 2-core machine,
but every stage's work is a count of known units (acquisitions converted, scans defaced, volumes
rendered, images searched for faces, faces embedded). A small measured run gives the CPU seconds per
unit; the grid's counts times those costs give its CPU seconds, and so its wall time on k workers.

The unit counts follow the pipeline (defacebench/run/pipeline.py): the control ``none`` copies both
acquisitions of a subject (probe and gallery), a tested defacer defaces the probe only (no ``aware``
scenario); every copied or defaced scan is rendered once per view set; each detector looks at every
rendered image; faces found are embedded once per recognizer. The multiview grid renders the same
volumes again with ``views`` views, whose front view is the default view (already detected).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from defacebench.perf.measure import BenchmarkError


@dataclass(frozen=True)
class Grid:
    """A benchmark grid: ``subjects`` with two acquisitions each, ``defacers`` tested defacers (the
    control ``none`` comes on top), attackers = one renderer x ``detectors`` x one recognizer;
    ``multiview``: the detectors of the multiview attackers (empty: no multiview scenario) and
    ``views`` per scan in its grid."""

    subjects: int
    defacers: int
    detectors: tuple[str, ...]
    multiview: tuple[str, ...] = ()
    views: int = 15

    @property
    def volumes(self) -> int:
        """Scans rendered per view set: both acquisitions undefaced (control) + one probe per defacer."""
        return self.subjects * (2 + self.defacers)

    @property
    def configurations(self) -> int:
        """Evaluated rows: (control + defacers) x (attackers + multiview attackers)."""
        return (self.defacers + 1) * (len(self.detectors) + len(self.multiview))


@dataclass(frozen=True)
class Unit:
    """One unit of work: its stage, what is counted, and CPU and wall seconds per unit."""

    stage: str
    unit: str
    cpu_s: float
    wall_s: float


def counts(grid: Grid, face_rate: float, grid_face_rate: float) -> dict[tuple[str, str], float]:
    """(stage, unit) -> how many units ``grid`` needs. ``face_rate``: embedded faces per first-view
    image; ``grid_face_rate``: per new multiview image (both measured)."""
    s, d, vols = grid.subjects, grid.defacers, grid.volumes
    out: dict[tuple[str, str], float] = {
        ("convert", "acquisition"): 2 * s,
        ("deface", "control copy"): 2 * s,
        ("deface", "defaced scan"): d * s,
        ("qc", "defaced scan"): d * s,
        ("render", "volume, default view"): vols,
        ("embed", "face"): vols * len(grid.detectors) * face_rate,
        ("report", "configuration"): grid.configurations,
    }
    for det in grid.detectors:
        out[("detect", f"{det} image")] = vols
    if grid.multiview:
        new_images = vols * (grid.views - 1)
        out[("render", "volume, view grid")] = vols
        for det in grid.multiview:
            out[("detect", f"{det} grid image")] = new_images
        out[("embed", "grid face")] = new_images * len(grid.multiview) * grid_face_rate
    return out


@dataclass(frozen=True)
class Projection:
    """The cost of a grid: per (stage, unit) the count and CPU seconds, and totals."""

    grid: Grid
    rows: tuple[tuple[str, str, float, float], ...]  # stage, unit, count, CPU seconds

    @property
    def cpu_s(self) -> float:
        return sum(r[3] for r in self.rows)

    def by_stage(self) -> dict[str, float]:
        """stage -> CPU seconds, largest first."""
        out: dict[str, float] = {}
        for stage, _, _, cpu in self.rows:
            out[stage] = out.get(stage, 0.0) + cpu
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def wall_s(self, workers: int, efficiency: float = 1.0) -> float:
        """Wall seconds on ``workers`` single-threaded workers, each busy ``efficiency`` of the time
        (measured: CPU seconds / (wall x workers) of a real run)."""
        return self.cpu_s / (workers * efficiency)


def project(grid: Grid, units: dict[tuple[str, str], Unit], face_rate: float,
            grid_face_rate: float) -> Projection:
    """CPU seconds of ``grid`` from measured per-unit costs; a unit the grid needs but no run measured
    raises BenchmarkError naming it (a projection that silently drops a stage would be too cheap)."""
    rows = []
    for key, n in counts(grid, face_rate, grid_face_rate).items():
        if key not in units:
            raise BenchmarkError(f"no measured cost for {key[0]} per {key[1]}: run the measurement with it "
                                 f"(measured: {sorted(units)})")
        rows.append((key[0], key[1], float(n), n * units[key].cpu_s))
    return Projection(grid, tuple(rows))


def without_multiview(grid: Grid) -> Grid:
    return replace(grid, multiview=())
