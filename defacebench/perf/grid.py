"""Issue 15 items 4 and 5: measure a small full-grid run, read its per-stage costs, project a large grid.

Two ``defacebench run`` processes share one cold cache: the first runs the ``rescan`` scenario only,
the second adds the multiview scenario, so everything the first computed is a cache hit and the
second computes exactly the multiview work (grid renders, their detections and embeddings). Both
manifests' per-stage timing (run/timing.py) then give CPU seconds per unit of work
(:mod:`defacebench.perf.projection`). Item 5 reruns the first command on a Dask LocalCluster with
1 and 2 single-threaded workers, each with its own cold cache.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from defacebench.perf.measure import BenchmarkError
from defacebench.perf.projection import Grid, Unit
from defacebench.perf.runs import RunMeasure, _check, measure_process, run_argv
from defacebench.util.fsutil import atomic_write_json

CONTROL = "none"
PIPELINE_STAGES = ("convert", "deface", "qc", "render", "detect", "embed")
# named, not left to the run's default: that default now adds multiview, svm and aware, whose
# work the counts of the rescan run must not contain
RESCAN = ("--scenarios", "rescan")


@dataclass(frozen=True)
class GridParams:
    """The measured run: subjects, defacers (``none`` first), one renderer x detectors x one
    recognizer, the multiview attacker's detector, the view grid's size (``views``; ``view_grid``:
    the ``--view-grid`` text giving that many views, None for the run's default of 15), bootstrap
    resamples, and further ``defacebench run`` arguments."""

    subjects: int = 8
    seed: int = 0
    defacers: tuple[str, ...] = ("none", "quickshear", "pydeface_ants")
    renderer: str = "surface"
    detectors: tuple[str, ...] = ("dlib_hog", "opencv_haar", "mtcnn")
    recognizer: str = "dlib_resnet"
    multiview_detector: str = "dlib_hog"
    views: int = 15
    view_grid: str | None = None
    n_bootstrap: int = 200
    extra: tuple[str, ...] = ("--calibration", "1.0")
    env: dict = field(default_factory=dict)

    @property
    def grid(self) -> Grid:
        """The measured grid (tested defacers exclude the control)."""
        return Grid(self.subjects, len(self.defacers) - 1, self.detectors, (self.multiview_detector,), self.views)

    def plugins(self) -> dict[str, str]:
        return {"defacers": ",".join(self.defacers), "renderers": self.renderer,
                "detectors": ",".join(self.detectors), "recognizers": self.recognizer}

    def multiview_args(self) -> tuple[str, ...]:
        """The arguments that add the multiview scenario for one attacker (and its view grid)."""
        spec = f"rescan,multiview@{self.renderer}-{self.multiview_detector}-{self.recognizer}"
        return ("--scenarios", spec, *(("--view-grid", self.view_grid) if self.view_grid else ()))

    def argv(self, dataset: Path, results: Path, run_id: str, cache: Path, *more: str) -> list[str]:
        """The ``defacebench run`` command of one measured run."""
        return [*run_argv(dataset, results, run_id, self.plugins(), self.n_bootstrap, cache), *self.extra, *more]


@dataclass(frozen=True)
class MeasuredRun:
    """A finished run: its command, process measure and manifest."""

    argv: tuple[str, ...]
    measure: RunMeasure
    manifest: dict

    @property
    def stages(self) -> dict[str, dict[str, dict]]:
        return self.manifest["stages"]

    def stage_sum(self, stage: str, field_: str, plugins: tuple[str, ...] | None = None) -> float:
        """Sum of ``field_`` (computed, cpu_s, wall_s) over a stage's plugins (or the named ones)."""
        rows = self.stages.get(stage, {})
        return sum(v[field_] for k, v in rows.items() if plugins is None or k in plugins)


def run_once(argv: list[str], results: Path, run_id: str, env: dict) -> MeasuredRun:
    """Run one measured ``defacebench run`` and read its manifest (a failed run raises BenchmarkError)."""
    m = measure_process(argv, {**os.environ, **env})
    _check(m, f"run {run_id}")
    manifest = json.loads((results / run_id / "manifest.json").read_text())
    # kept next to the run folder so the tables can be rebuilt without rerunning
    atomic_write_json(results / f"{run_id}.measure.json", {"argv": argv, **dataclasses.asdict(m)})
    return MeasuredRun(tuple(argv), m, manifest)


def load_run(results: Path, run_id: str) -> MeasuredRun:
    """A run measured earlier by :func:`run_once` (its manifest and saved measure)."""
    saved = json.loads((results / f"{run_id}.measure.json").read_text())
    argv = saved.pop("argv")
    saved["process_peaks_mib"] = tuple(tuple(x) for x in saved["process_peaks_mib"])
    manifest = json.loads((results / run_id / "manifest.json").read_text())
    return MeasuredRun(tuple(argv), RunMeasure(**saved), manifest)


def measure_grid(p: GridParams, dataset: Path, work: Path) -> tuple[MeasuredRun, MeasuredRun]:
    """(rescan run, multiview increment) on one fresh cache under ``work``."""
    cache, results = work / "cache-grid", work / "results-grid"
    if cache.exists():
        raise BenchmarkError(f"{cache} exists: a measured run needs a cold cache; use a fresh --workdir")
    rescan = run_once(p.argv(dataset, results, "rescan", cache, *RESCAN), results, "rescan", p.env)
    mv = run_once(p.argv(dataset, results, "multiview", cache, *p.multiview_args()), results, "multiview", p.env)
    return rescan, mv


def measure_dask(p: GridParams, dataset: Path, work: Path, workers: int) -> MeasuredRun:
    """The rescan run on a LocalCluster of ``workers`` single-threaded workers, cold cache."""
    cache, results = work / f"cache-dask{workers}", work / f"results-dask{workers}"
    run_id = f"dask{workers}"
    dask = ("--executor", "dask", "--bench-workers", str(workers))
    return run_once(p.argv(dataset, results, run_id, cache, *RESCAN, *dask), results, run_id, p.env)


def _per(stage: str, unit: str, cpu: float, wall: float, n: float) -> Unit:
    if n <= 0:
        raise BenchmarkError(f"the measured run computed no {stage} item ({unit}): nothing to divide by")
    return Unit(stage, unit, cpu / n, wall / n)


def unit_costs(p: GridParams, rescan: MeasuredRun, mv: MeasuredRun) -> tuple[dict[tuple[str, str], Unit], float, float]:
    """(stage, unit) -> per-unit cost, and the measured face rates (default views, grid views).

    Stage seconds are those the manifest records (CPU where the item ran, wall around the item);
    everything else the run process spent (start-up, workers' imports, evaluation, bootstrap,
    reports) is spread over the configurations as ``report``."""
    g, r = p.grid, rescan
    tested = tuple(d for d in p.defacers if d != CONTROL)
    units = [
        _per("convert", "acquisition", r.stage_sum("convert", "cpu_s"), r.stage_sum("convert", "wall_s"),
             r.stage_sum("convert", "computed")),
        _per("deface", "control copy", *(r.stage_sum("deface", f, (CONTROL,)) for f in ("cpu_s", "wall_s", "computed"))),
        _per("deface", "defaced scan", *(r.stage_sum("deface", f, tested) for f in ("cpu_s", "wall_s", "computed"))),
        _per("qc", "defaced scan", *(r.stage_sum("qc", f, tested) for f in ("cpu_s", "wall_s", "computed"))),
        _per("render", "volume, default view", *(r.stage_sum("render", f) for f in ("cpu_s", "wall_s", "computed"))),
        _per("embed", "face", r.stage_sum("embed", "cpu_s"), r.stage_sum("embed", "wall_s"),
             r.manifest["embeddings_computed"]),
        _per("render", "volume, view grid", *(mv.stage_sum("render", f) for f in ("cpu_s", "wall_s", "computed"))),
        _per("embed", "grid face", mv.stage_sum("embed", "cpu_s"), mv.stage_sum("embed", "wall_s"),
             mv.manifest["embeddings_computed"]),
    ]
    units += [_per("detect", f"{d} image", *(r.stage_sum("detect", f, (d,)) for f in ("cpu_s", "wall_s", "computed")))
              for d in p.detectors]
    d = p.multiview_detector
    units.append(_per("detect", f"{d} grid image",
                      *(mv.stage_sum("detect", f, (d,)) for f in ("cpu_s", "wall_s", "computed"))))
    units.append(_per("report", "configuration", other_cpu(rescan) + other_cpu(mv),
                      other_wall(rescan) + other_wall(mv), g.configurations))
    face_rate = r.manifest["embeddings_computed"] / (g.volumes * len(g.detectors))
    grid_face_rate = mv.manifest["embeddings_computed"] / (g.volumes * (g.views - 1) * len(g.multiview))
    return {(u.stage, u.unit): u for u in units}, face_rate, grid_face_rate


def stage_cpu(run: MeasuredRun) -> float:
    """CPU seconds the manifest assigns to the pipeline stages (convert ... embed)."""
    return sum(run.stage_sum(s, "cpu_s") for s in PIPELINE_STAGES)


def other_cpu(run: MeasuredRun) -> float:
    """The run process tree's CPU seconds outside the pipeline stages (never negative)."""
    return max(0.0, run.measure.cpu_seconds - stage_cpu(run))


def other_wall(run: MeasuredRun) -> float:
    """Wall seconds of the run not covered by the stages' summed item wall (an approximation:
    items run in parallel, so this may be 0)."""
    return max(0.0, run.measure.seconds - sum(run.stage_sum(s, "wall_s") for s in PIPELINE_STAGES))


def measured_counts(p: GridParams, rescan: MeasuredRun, mv: MeasuredRun) -> dict[tuple[str, str], float]:
    """The computed item counts the manifests record, under the projection's (stage, unit) keys."""
    tested = tuple(d for d in p.defacers if d != CONTROL)
    out = {("convert", "acquisition"): rescan.stage_sum("convert", "computed"),
           ("deface", "control copy"): rescan.stage_sum("deface", "computed", (CONTROL,)),
           ("deface", "defaced scan"): rescan.stage_sum("deface", "computed", tested),
           ("qc", "defaced scan"): rescan.stage_sum("qc", "computed", tested),
           ("render", "volume, default view"): rescan.stage_sum("render", "computed"),
           ("render", "volume, view grid"): mv.stage_sum("render", "computed"),
           ("detect", f"{p.multiview_detector} grid image"): mv.stage_sum("detect", "computed",
                                                                          (p.multiview_detector,))}
    out.update({("detect", f"{d} image"): rescan.stage_sum("detect", "computed", (d,)) for d in p.detectors})
    out.update({("embed", "face"): rescan.manifest["embeddings_computed"],
                ("embed", "grid face"): mv.manifest["embeddings_computed"]})
    return out
