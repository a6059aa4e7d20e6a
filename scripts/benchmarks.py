#!/usr/bin/env python
"""Pipeline performance measurements of issue 7 item 5 (d, e, f, a2), printed as a Markdown table.

Why a script next to ``bench/test_perf_pipeline.py``: the whole-run figures (cold/warm sample run,
peak memory over 100 subjects) take minutes and spawn ``defacebench run`` as a subprocess, which
pytest-benchmark's repeat loop does not suit. The bench file imports the measuring functions from
here, so both report the same quantities. Run, e.g.::

    python scripts/benchmarks.py --only convert,matrix
    python scripts/benchmarks.py --sample-defacers none,quickshear,pydeface_ants --sample-renderers surface

Every figure comes with the machine it was measured on (cores, RAM, CPU model).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from defacebench.errors import DefacebenchError

MEASUREMENTS = ("convert", "sample_run", "memory", "matrix")


@dataclass(frozen=True)
class Figure:
    """One measured figure: what, the value with its unit, and how it was obtained."""

    item: str
    what: str
    value: str
    note: str = ""


@dataclass(frozen=True)
class BenchParams:
    """Sizes and restrictions of the measurements (recorded with the results)."""

    convert_series: int = 4
    sample_defacers: str | None = None
    sample_renderers: str | None = None
    sample_detectors: str | None = None
    sample_recognizers: str | None = None
    sample_bootstrap: int = 200
    memory_subjects: int = 100
    memory_reference_subjects: int = 16
    memory_seed: int = 1
    memory_plugins: tuple[tuple[str, str], ...] = (("defacers", "none,quickshear"), ("renderers", "surface"),
                                                   ("detectors", "dlib_hog"), ("recognizers", "dlib_resnet"))
    matrix_n: int = 200
    matrix_pairs: int = 200
    seed: int = 0
    extra_env: dict = field(default_factory=dict)


class BenchmarkError(DefacebenchError):
    """A measurement could not be made (a run failed, no face to embed): its figure would be wrong."""


# ------------------------------------------------------------------------------------------- machine

def machine() -> dict:
    """Cores, RAM (GiB) and CPU model of this machine, for the report header."""
    import psutil

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cores": os.cpu_count(), "ram_gib": round(psutil.virtual_memory().total / 2**30, 1), "cpu": model,
            "python": platform.python_version(), "os": platform.platform()}


def cpu_now() -> float:
    """CPU seconds (user + sys) of this process plus its reaped children (tools, workers): unlike wall
    time, barely affected by other jobs competing for the cores."""
    import resource

    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


@dataclass(frozen=True)
class Timing:
    """Wall and CPU seconds of one measured call."""

    wall: float
    cpu: float


def timed(fn, *args):
    """``(fn(*args), Timing)``."""
    wall, cpu = time.perf_counter(), cpu_now()
    result = fn(*args)
    return result, Timing(time.perf_counter() - wall, cpu_now() - cpu)


# ------------------------------------------------------------------------------------------- d: conversion

def sample_acquisitions(n: int, root: Path | None = None) -> list:
    """The first ``n`` DICOM acquisitions of the sample dataset (default sample unless ``root``)."""
    from defacebench.data.dataset import discover
    from defacebench.data.sample import sample_dataset

    ds = discover(root or sample_dataset())
    acqs = [a for s in ds.subjects for a in s.acquisitions if a.kind == "dicom"]
    return acqs[:n]


def time_conversion(acqs: list, converter: str, out_dir: Path) -> list[Timing]:
    """Wall and CPU seconds of ``convert_acquisition`` per series with ``converter`` (one call each)."""
    from defacebench.data.convert import ConversionParams, convert_acquisition

    params = ConversionParams(converter=converter)
    out_dir.mkdir(parents=True, exist_ok=True)
    return [timed(convert_acquisition, acq, out_dir / f"{converter}-{i}.nii.gz", params)[1]
            for i, acq in enumerate(acqs)]


def measure_convert(p: BenchParams, work: Path) -> list[Figure]:
    """Item d: median seconds per series of both converters on the sample's 2 mm series."""
    import nibabel as nib

    acqs = sample_acquisitions(p.convert_series)
    time_conversion(acqs[:1], "dicom2nifti", work / "warmup")  # imports and page cache, not timed
    time_conversion(acqs[:1], "dcm2niix", work / "warmup")
    runs = {c: time_conversion(acqs, c, work / "convert") for c in ("dicom2nifti", "dcm2niix")}
    wall = {c: float(np.median([t.wall for t in ts])) for c, ts in runs.items()}
    cpu = {c: float(np.median([t.cpu for t in ts])) for c, ts in runs.items()}
    shape = nib.load(str(work / "convert" / "dicom2nifti-0.nii.gz")).shape
    note = (f"median of {len(acqs)} sample series, {shape[0]}x{shape[1]}x{shape[2]} voxels; "
            f"load {os.getloadavg()[0]:.1f}")
    return [Figure("d", f"DICOM->NIfTI, {c} (s/series, wall / CPU)", f"{wall[c]:.2f} / {cpu[c]:.2f}", note)
            for c in runs] + [
        Figure("d", "ratio dicom2nifti / dcm2niix (wall / CPU)",
               f"{wall['dicom2nifti'] / wall['dcm2niix']:.2f} / {cpu['dicom2nifti'] / cpu['dcm2niix']:.2f}")]


# ------------------------------------------------------------------------------------------- e, f: whole runs

def run_argv(dataset: Path | None, results: Path, run_id: str, plugins: dict[str, str | None],
             n_bootstrap: int) -> list[str]:
    """The ``defacebench run`` command line (the same one docs/benchmarks.md shows)."""
    exe = str(Path(sys.executable).with_name("defacebench"))
    argv = [exe, "run", "--results", str(results), "--run-id", run_id, "--n-bootstrap", str(n_bootstrap)]
    if dataset is not None:
        argv += ["--dataset", str(dataset)]
    for kind, names in plugins.items():
        if names:
            argv += [f"--{kind}", names]
    return argv


@dataclass(frozen=True)
class RunMeasure:
    """Wall seconds, peak RSS summed over the process tree (psutil polling), largest single process
    RSS (MiB), and the mean 1-minute load average during the run (other jobs on the machine inflate
    wall times: the load says how much)."""

    seconds: float
    cpu_seconds: float
    tree_peak_mib: float
    largest_process_mib: float
    mean_load: float
    returncode: int
    stdout: str
    stderr: str


def measure_process(argv: list[str], env: dict, poll_s: float = 0.1) -> RunMeasure:
    """Run ``argv`` and poll the RSS of it and all its descendants every ``poll_s`` seconds."""
    import psutil

    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    start, cpu = time.perf_counter(), cpu_now()
    proc = psutil.Popen(argv, env=env, stdout=out, stderr=err)
    tree_peak = single_peak = 0
    loads = []
    while proc.poll() is None:
        loads.append(os.getloadavg()[0])
        total = 0
        for p in [proc, *_children(proc)]:
            try:
                rss = p.memory_info().rss
            except psutil.Error:  # a worker that exited between listing and reading
                continue
            total += rss
            single_peak = max(single_peak, rss)
        tree_peak = max(tree_peak, total)
        time.sleep(poll_s)
    seconds, cpu = time.perf_counter() - start, cpu_now() - cpu
    out.seek(0), err.seek(0)
    return RunMeasure(seconds, cpu, tree_peak / 2**20, single_peak / 2**20, float(np.mean(loads or [0.0])),
                      proc.returncode,
                      out.read().decode(errors="replace"), err.read().decode(errors="replace"))


def _children(proc) -> list:
    """All live descendants of ``proc`` (workers, tools); none once it has exited."""
    import psutil

    try:
        return proc.children(recursive=True)
    except psutil.Error:
        return []


def _env(cache: Path, extra: dict) -> dict:
    """The environment of a measured run: ours plus its own cache folder."""
    return {**os.environ, "DEFACEBENCH_CACHE": str(cache), **extra}


def _check(m: RunMeasure, what: str) -> None:
    """A failed run makes its timing meaningless: stop with the run's own message."""
    if m.returncode != 0:
        raise BenchmarkError(f"{what} exited with {m.returncode} (fix the run, then measure again):\n"
                             f"{m.stdout[-3000:]}\n{m.stderr[-3000:]}")


def measure_sample_run(p: BenchParams, work: Path) -> list[Figure]:
    """Item e: the default sample run, cold (empty cache) then warm (same cache, same command)."""
    plugins = {"defacers": p.sample_defacers, "renderers": p.sample_renderers,
               "detectors": p.sample_detectors, "recognizers": p.sample_recognizers}
    from defacebench.data.sample import sample_dataset

    sample_dataset()  # the dataset is an input, built (or found) before timing
    env = _env(work / "cache-e", p.extra_env)
    cold = measure_process(run_argv(None, work / "results-e", "cold", plugins, p.sample_bootstrap), env)
    _check(cold, "cold sample run")
    warm = measure_process(run_argv(None, work / "results-e", "warm", plugins, p.sample_bootstrap), env)
    _check(warm, "warm sample run")
    restricted = ", ".join(f"--{k} {v}" for k, v in plugins.items() if v) or "all available plugins"
    return [Figure("e", "sample run, cold (s, wall / CPU)", f"{cold.seconds:.1f} / {cold.cpu_seconds:.1f}",
                   f"{restricted}; {_summary_line(cold.stdout)}; mean load {cold.mean_load:.1f}"),
            Figure("e", "sample run, warm (s, wall / CPU)", f"{warm.seconds:.1f} / {warm.cpu_seconds:.1f}",
                   f"{_summary_line(warm.stdout)}; mean load {warm.mean_load:.1f}"),
            Figure("e", "warm / cold (wall / CPU)", f"{100 * warm.seconds / cold.seconds:.1f} % / "
                   f"{100 * warm.cpu_seconds / cold.cpu_seconds:.1f} %", "target < 10 %")]


def _summary_line(stdout: str) -> str:
    """The run's "N configurations passed, ..." line, without the results path."""
    return next((ln for ln in stdout.splitlines() if "configurations passed" in ln), "").split(";")[0]


def volumes_float32_bytes(root: Path) -> tuple[int, int]:
    """(number of volumes, total bytes as float32) of every acquisition of a DICOM dataset, from the
    DICOM headers (rows x columns x slices x 4), without loading a volume."""
    import pydicom

    n, total = 0, 0
    for series in sorted({f.parent for f in root.rglob("*.dcm")}):
        files = list(series.glob("*.dcm"))
        head = pydicom.dcmread(files[0], stop_before_pixels=True)
        total += int(head.Rows) * int(head.Columns) * len(files) * 4
        n += 1
    return n, total


@dataclass(frozen=True)
class MemoryRun:
    """One cold-cache run over a generated sample: its measure and the size of its volumes."""

    n_subjects: int
    n_volumes: int
    volumes_mib: float
    measure: RunMeasure


def memory_run(p: BenchParams, work: Path, n_subjects: int) -> MemoryRun:
    """A cold-cache run of the restricted plugins over an ``n_subjects`` sample (built first, untimed)."""
    from defacebench.data.sample import SampleParams, make_sample_dataset

    tag = f"n{n_subjects}"
    root = make_sample_dataset(work / f"sample-{tag}", SampleParams(n_subjects=n_subjects, seed=p.memory_seed))
    n_vol, vol_bytes = volumes_float32_bytes(root)
    m = measure_process(run_argv(root, work / f"results-{tag}", "mem", dict(p.memory_plugins), p.sample_bootstrap),
                        _env(work / f"cache-{tag}", p.extra_env))
    _check(m, f"{n_subjects}-subject run")
    return MemoryRun(n_subjects, n_vol, vol_bytes / 2**20, m)


def measure_memory(p: BenchParams, work: Path) -> list[Figure]:
    """Item f: peak RSS and wall time over ``memory_subjects`` subjects, against the same run over
    ``memory_reference_subjects``: if volumes were held all at once, the peak would grow by at
    least the growth of the volumes' total size."""
    ref = memory_run(p, work, p.memory_reference_subjects)
    big = memory_run(p, work, p.memory_subjects)
    restricted = " ".join(f"--{k} {v}" for k, v in p.memory_plugins)
    rows = []
    for r in (ref, big):
        m = r.measure
        rows += [Figure("f", f"{r.n_subjects}-subject run (s, wall / CPU)", f"{m.seconds:.1f} / {m.cpu_seconds:.1f}",
                        f"cold cache; {restricted}; mean load {m.mean_load:.1f}"),
                 Figure("f", f"{r.n_subjects} subjects: peak RSS, tree sum / largest process (MiB)",
                        f"{m.tree_peak_mib:.0f} / {m.largest_process_mib:.0f}", "psutil, polled every 0.1 s"),
                 Figure("f", f"{r.n_subjects} subjects: all {r.n_volumes} volumes as float32 (MiB)",
                        f"{r.volumes_mib:.0f}")]
    growth = (big.measure.tree_peak_mib - ref.measure.tree_peak_mib) / (big.volumes_mib - ref.volumes_mib)
    return rows + [Figure("f", "peak growth / volume growth", f"{growth:.3f}",
                          "1.0 or more would mean the volumes accumulate in memory")]


# ------------------------------------------------------------------------------------------- a2: matrix

def face_items(n: int, seed: int = 0) -> list:
    """``n`` (image, Face) items: a real surface render of the sample head, dlib_hog's face, and
    per-item pixel noise (so no two inputs are identical; the network's cost does not depend on it)."""
    from defacebench.report.montage import best_face
    from defacebench.data.phantom.anatomy import head_ct
    from defacebench.contracts import Volume
    from recognizers.detect.dlib import DlibHog
    from recognizers.render.surface import SurfaceParams, SurfaceRenderer

    image = SurfaceRenderer(SurfaceParams(views=((0, 0),))).render(Volume(*head_ct(2.0)))[0].image
    face = best_face(DlibHog().detect(image))
    if face is None:
        raise BenchmarkError("dlib_hog found no face on the frontal surface render of the sample head "
                             "(defacebench.data.phantom.anatomy.head_ct): check the surface renderer and dlib_hog")
    rng = np.random.default_rng(seed)
    return [(np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8), face) for _ in range(n)]


def embed_once(rec, gallery: list, probe: list) -> np.ndarray:
    """The pipeline's way: embed each of the 2N items once, then one vectorised distance matrix."""
    from scipy.spatial.distance import cdist

    return cdist(rec.embed(gallery), rec.embed(probe))


def per_pair(rec, gallery: list, probe: list, pairs: list[tuple[int, int]]) -> np.ndarray:
    """The seed study's way: a verify call per (gallery, probe) pair, embedding both images each time."""
    out = np.empty(len(pairs))
    for k, (i, j) in enumerate(pairs):
        a, b = rec.embed([gallery[i], probe[j]])
        out[k] = np.linalg.norm(a - b)
    return out


def measure_matrix(p: BenchParams, work: Path) -> list[Figure]:
    """Item a2: embed-once vs per-pair loop for N = ``matrix_n``; the loop timed on ``matrix_pairs``
    random pairs and extrapolated linearly to N^2 pairs."""
    from recognizers.embed.dlib_resnet import DlibResnet

    n = p.matrix_n
    items = face_items(2 * n, p.seed)
    gallery, probe = items[:n], items[n:]
    rec = DlibResnet()
    rec.embed(gallery[:1])  # load the network outside the timing
    matrix, once = timed(embed_once, rec, gallery, probe)
    rng = np.random.default_rng(p.seed)
    pairs = [tuple(int(v) for v in rng.integers(0, n, 2)) for _ in range(p.matrix_pairs)]
    dists, sub = timed(per_pair, rec, gallery, probe, pairs)
    scale = n * n / len(pairs)
    loop = Timing(sub.wall * scale, sub.cpu * scale)
    err = max(abs(matrix[i, j] - d) for (i, j), d in zip(pairs, dists))
    return [Figure("a2", f"matrix N={n}, embed once (s, wall / CPU)", f"{once.wall:.1f} / {once.cpu:.1f}",
                   f"{2 * n} embeddings, dlib_resnet"),
            Figure("a2", f"matrix N={n}, per-pair loop (s, wall / CPU)", f"{loop.wall:.0f} / {loop.cpu:.0f}",
                   f"{2 * n * n} embeddings; timed on {len(pairs)} random pairs "
                   f"({sub.wall:.1f} s), extrapolated linearly"),
            Figure("a2", "per-pair / embed-once (wall / CPU)", f"{loop.wall / once.wall:.0f}x / "
                   f"{loop.cpu / once.cpu:.0f}x",
                   f"max abs distance difference {err:.1e}; load {os.getloadavg()[0]:.1f}")]


# ------------------------------------------------------------------------------------------- report

def markdown(figures: list[Figure], info: dict) -> str:
    """The results as a Markdown table preceded by the machine."""
    from tabulate import tabulate

    head = (f"Machine: {info['cores']} cores, {info['ram_gib']} GiB RAM, {info['cpu']}; "
            f"Python {info['python']}, {info['os']}\n\n")
    rows = [(f.item, f.what, f.value, f.note) for f in figures]
    return head + tabulate(rows, headers=("item", "measurement", "value", "note"), tablefmt="github")


def main(argv: list[str] | None = None) -> int:
    """Parse options, run the chosen measurements, print the Markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(MEASUREMENTS), help=f"comma list of {', '.join(MEASUREMENTS)}")
    ap.add_argument("--workdir", type=Path, default=None, help="scratch folder (default: a fresh temp folder)")
    for kind in ("defacers", "renderers", "detectors", "recognizers"):
        ap.add_argument(f"--sample-{kind}", default=None, help=f"restrict the sample run's {kind} (default: all)")
    ap.add_argument("--memory-subjects", type=int, default=100)
    ap.add_argument("--matrix-n", type=int, default=200)
    ap.add_argument("--matrix-pairs", type=int, default=200)
    args = ap.parse_args(argv)
    p = BenchParams(sample_defacers=args.sample_defacers, sample_renderers=args.sample_renderers,
                    sample_detectors=args.sample_detectors, sample_recognizers=args.sample_recognizers,
                    memory_subjects=args.memory_subjects, matrix_n=args.matrix_n, matrix_pairs=args.matrix_pairs)
    chosen = [m.strip() for m in args.only.split(",") if m.strip()]
    unknown = set(chosen) - set(MEASUREMENTS)
    if unknown:
        ap.error(f"unknown measurement(s) {sorted(unknown)}; choose from {', '.join(MEASUREMENTS)}")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="defacebench-bench-"))
    funcs = {"convert": measure_convert, "sample_run": measure_sample_run, "memory": measure_memory,
             "matrix": measure_matrix}
    figures: list[Figure] = []
    for name in MEASUREMENTS:
        if name in chosen:
            figures += funcs[name](p, work / name)
            print(f"[{name} done]", file=sys.stderr)
    print(markdown(figures, machine()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
