"""Register pydeface's template head to a subject with antspyx and warp its face mask (no FSL needed).

pydeface registers its template ``data/mean_reg2mean.nii.gz`` (a T1 head with an averaged face) to the
subject with FSL FLIRT and resamples ``data/facemask.nii.gz`` (1 = keep, 0 = face) with that affine.
Here the same affine registration (template -> subject) runs in ANTs through antspyx:

- both images are resampled to ``voxel_mm`` (default 6 mm; two levels, 12 and 6 mm) first: an
  affine needs no fine detail. Measured on the template phantom at 2 mm: the removed region agrees
  with a dense 4 mm / three-level registration at Dice 0.999, in 3 s instead of 12 s (one thread);
- the metric is Mattes mutual information with *dense regular* sampling (``sampling_rate`` 1.0)
  and a fixed ANTs random seed, so the result is the same on every run (deterministic);
- on CT, the subject's HU are first mapped to a T1-like contrast (:class:`CtToT1Params`), because
  MI needs the head's tissues to line up with the template's: air -> dark, fat -> bright, soft tissue
  and brain -> mid grey, bone -> dark (cortical bone has no MR signal). The mapping is a
  piecewise-linear curve through ``hu_knots`` -> ``t1_knots`` and is recorded in the params;
- the face mask is warped with nearest-neighbour interpolation onto the subject's own voxel grid.

``import ants`` happens inside the functions (heavy import).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Literal

import numpy as np


@dataclass(frozen=True)
class CtToT1Params:
    """Piecewise-linear HU -> T1-like intensity map (``np.interp`` through the knots, clipped at the ends).

    Air (< -400 HU) -> 0; fat (-100 HU) -> 0.9 (bright on T1); water/CSF (0 HU) -> 0.35; brain and
    muscle (40-80 HU) -> 0.6; bone (>= 300 HU) -> 0.1 and below (dark on T1).
    """

    hu_knots: tuple[float, ...] = (-1000.0, -400.0, -100.0, 0.0, 40.0, 80.0, 300.0, 1500.0)
    t1_knots: tuple[float, ...] = (0.0, 0.05, 0.9, 0.35, 0.6, 0.6, 0.1, 0.0)
    ct_if_below_hu: float = -500.0
    ct_min_fraction: float = 0.05


@dataclass(frozen=True)
class RegistrationParams:
    """antspyx affine registration of the template to the subject (see the module docstring)."""

    voxel_mm: float = 6.0
    transform: str = "Affine"
    metric: str = "mattes"
    sampling_bins: int = 32
    sampling_rate: float = 1.0
    iterations: tuple[int, ...] = (100, 50)
    shrink_factors: tuple[int, ...] = (2, 1)
    smoothing_sigmas: tuple[float, ...] = (1.0, 0.0)
    random_seed: int = 20240517
    convergence_threshold: float = 1e-6
    convergence_window: int = 10
    fine_sampling_rate: float | None = None
    """Regular sampling rate of the last (finest) level alone; when set, that level runs as its own
    antsRegistration stage at this rate (issue 23: the fine level is ~90 % of the CPU). None keeps
    one stage at ``sampling_rate`` (antspyx's call: today's results)."""
    fine_sampling_strategy: Literal["regular", "random"] = "regular"
    """How that fine stage picks its points: ``"regular"`` (every 1/rate-th voxel, each at a random
    offset within its voxel) or ``"random"`` (uniformly drawn voxels); both seeded by ``random_seed``.
    On the sample, 30 % random agreed with today's masks as closely as today's with another seed."""

    def __post_init__(self) -> None:
        """ANTs reads a rate outside (0, 1] as a fraction it cannot sample: say so here, naming the field."""
        for name in ("sampling_rate", "fine_sampling_rate"):
            rate = getattr(self, name)
            if rate is not None and not 0.0 < rate <= 1.0:
                raise ValueError(f"RegistrationParams.{name} must be in (0, 1], got {rate!r}")
        if self.fine_sampling_strategy not in ("regular", "random"):
            raise ValueError(f"RegistrationParams.fine_sampling_strategy must be 'regular' or 'random', "
                             f"got {self.fine_sampling_strategy!r}")


def pydeface_data(name: str) -> Path:
    """Path of a file shipped in pydeface's ``data`` folder (``mean_reg2mean.nii.gz``, ``facemask.nii.gz``)."""
    return Path(str(files("pydeface").joinpath("data", name)))


def is_ct(data: np.ndarray, params: CtToT1Params = CtToT1Params()) -> bool:
    """True when at least ``ct_min_fraction`` of the voxels are below ``ct_if_below_hu`` (air in HU)."""
    return float(np.mean(np.asarray(data) < params.ct_if_below_hu)) >= params.ct_min_fraction


def ct_to_t1(data: np.ndarray, params: CtToT1Params = CtToT1Params()) -> np.ndarray:
    """Map HU to a T1-like contrast in [0, 1] (float32); see :class:`CtToT1Params`.

    CT values are whole HU (stored integers times a whole slope): then the curve is evaluated once
    per HU value in the volume's range and looked up per voxel, the same numbers as ``np.interp``
    over every voxel at a third of the cost (issue 23)."""
    values = np.asarray(data, np.float32)
    if values.size:
        lo, hi = float(values.min()), float(values.max())
        if np.isfinite(lo) and np.isfinite(hi) and hi - lo <= 1 << 16:
            offsets = values - np.float32(lo)  # exact for whole numbers of this range
            index = offsets.astype(np.intp)
            if np.array_equal(index, offsets):
                table = np.interp(lo + np.arange(int(hi - lo) + 1, dtype=np.float64), params.hu_knots, params.t1_knots)
                return table.astype(np.float32)[index]
    return np.interp(values, params.hu_knots, params.t1_knots).astype(np.float32)


@lru_cache(maxsize=4)
def _template_image(path: str, voxel_mm: float):
    """The template read once per process and resampled to ``voxel_mm`` (cached: ~1 s to read)."""
    import ants

    return ants.resample_image(ants.image_read(path), (voxel_mm,) * 3, use_voxels=False, interp_type=0)


@lru_cache(maxsize=4)
def _mask_image(path: str):
    """The face mask read once per process, as float32 (``apply_transforms``' own type: no copy of
    the 11-million-voxel mask per call) and cropped to its face voxels' box plus one voxel (outside
    that box the mask is 1, the value ``warp_face_mask`` gives points outside the mask anyway)."""
    import ants

    mask = ants.image_read(path).clone("float")
    face = np.nonzero(mask.numpy() < 0.5)
    if not face[0].size:
        return mask
    lo = [max(int(a.min()) - 1, 0) for a in face]
    hi = [min(int(a.max()) + 2, n) for a, n in zip(face, mask.shape)]
    return ants.crop_indices(mask, lo, hi)


def register_template(
    subject_path: "Path | object", workdir: Path, *, template: Path, params: RegistrationParams,
    mapping: CtToT1Params | None,
) -> tuple[list[str], object]:
    """Affine-register ``template`` to the subject; return (forward transform files, subject image).

    ``subject_path`` is a file or an already read ANTs image (read once by :func:`keep_mask_in_process`).

    ``mapping`` (CT only) is applied to the subject before registration. Transform files are written
    under ``workdir`` (never next to the input).
    """
    import ants
    import ants.config

    subject = subject_path if hasattr(subject_path, "numpy") else ants.image_read(str(subject_path))
    fixed = subject
    if mapping is not None:
        fixed = subject.new_image_like(ct_to_t1(subject.numpy(), mapping))
    fixed = ants.resample_image(fixed, (params.voxel_mm,) * 3, use_voxels=False, interp_type=0)
    moving = _template_image(str(template), float(params.voxel_mm))
    prefix = str(Path(workdir) / "template_to_subject_")
    own_call = (params.convergence_threshold, params.convergence_window) != ANTS_CONVERGENCE
    if own_call or params.fine_sampling_rate is not None:
        return [run_affine(fixed, moving, prefix, params)], subject
    previous = ants.config._random_seed
    ants.config._random_seed = params.random_seed  # antspyx reads its seed from this module global
    try:
        reg = ants.registration(
            fixed, moving, type_of_transform=params.transform, outprefix=prefix,
            aff_metric=params.metric, aff_sampling=params.sampling_bins,
            aff_random_sampling_rate=params.sampling_rate, aff_iterations=params.iterations,
            aff_shrink_factors=params.shrink_factors, aff_smoothing_sigmas=params.smoothing_sigmas,
        )
    finally:
        ants.config._random_seed = previous
    return list(reg["fwdtransforms"]), subject


ANTS_CONVERGENCE = (1e-6, 10)  # antsRegistration's own default, which antspyx's registration() leaves in place


def run_affine(fixed, moving, prefix: str, params: RegistrationParams) -> str:
    """antsRegistration with antspyx's ``Affine`` arguments plus the convergence test and the fine
    level's sampling rate of ``params`` (antspyx's ``registration`` can set neither); returns the
    ``0GenericAffine.mat`` path.

    Why (issue 23): the fine level costs ~90 % of the registration (8x the coarse level's points)
    and, with ANTs' default threshold, runs all its iterations while the metric barely moves; a
    threshold on the slope of the last ``convergence_window`` metric values ends it once it has
    converged, and ``fine_sampling_rate`` evaluates it on that fraction of its points (then the
    fine level is a second stage, since antsRegistration has one sampling rate per stage). The rest
    is antspyx's call: centre-of-mass start, regular Mattes sampling, ``--float 1``, the transform
    collapsed to one affine file."""
    from ants.internal import get_lib_fn, get_pointer_string

    fixed, moving = fixed.clone("float"), moving.clone("float")
    f, m = get_pointer_string(fixed), get_pointer_string(moving)
    levels = list(zip(params.iterations, params.shrink_factors, params.smoothing_sigmas))
    rate = params.sampling_rate
    stages = [(levels, rate, "regular")] if params.fine_sampling_rate is None else [
        (levels[:-1], rate, "regular"), (levels[-1:], params.fine_sampling_rate, params.fine_sampling_strategy)]
    args = ["--dimensionality", "3", "-r", f"[{f},{m},1]"]
    for stage_levels, stage_rate, strategy in stages:
        if stage_levels:
            args += _stage_args(f, m, stage_levels, stage_rate, params, strategy)
    args += ["-u", "0", "-z", "1", "--output", f"[{prefix}]", "--random-seed", str(params.random_seed),
             "--float", "1", "-x", "[NA,NA]"]
    status = get_lib_fn("antsRegistration")(args)
    if status != 0 or not Path(prefix + "0GenericAffine.mat").is_file():
        raise RuntimeError(f"antsRegistration exit status {status}; no transform at {prefix}0GenericAffine.mat")
    return prefix + "0GenericAffine.mat"


def _stage_args(f: str, m: str, levels: list[tuple], rate: float, params: RegistrationParams,
                strategy: str = "regular") -> list[str]:
    """One antsRegistration stage (metric, transform, convergence, smoothing, shrinking) over ``levels``
    ((iterations, shrink factor, smoothing sigma) each), sampling ``rate`` of the points by ``strategy``."""
    x = "x".join
    iterations, shrinks, sigmas = (x(str(level[i]) for level in levels) for i in range(3))
    return ["--metric", f"{params.metric}[{f},{m},1,{params.sampling_bins},{strategy},{rate}]",
            "--transform", f"{params.transform}[0.25]",
            "--convergence", f"[{iterations},{params.convergence_threshold},{params.convergence_window}]",
            "--smoothing-sigmas", sigmas, "--shrink-factors", shrinks]


def warp_face_mask(subject, transforms: list[str], *, facemask: Path) -> np.ndarray:
    """Warp pydeface's face mask (1 keep, 0 face) onto the subject grid (nearest neighbour) as uint8.

    Only the subject voxels whose points can land in the (cropped) mask are resampled: the box of the
    mask's corners carried into the subject by the inverse affine, plus a voxel; every other voxel
    lands outside the mask, where the warp gives 1. Voxel for voxel the full-grid warp, at a
    fraction of its cost (issue 23)."""
    import ants

    mask = _mask_image(str(facemask))
    lo, hi = _subject_box(subject, mask, transforms[0])
    keep = np.ones(subject.shape, np.uint8)
    if any(b <= a for a, b in zip(lo, hi)):
        return keep
    part = ants.crop_indices(subject, lo, hi)
    warped = ants.apply_transforms(
        fixed=part, moving=mask, transformlist=transforms, interpolator="nearestNeighbor", defaultvalue=1,
    )
    keep[tuple(slice(a, b) for a, b in zip(lo, hi))] = warped.numpy() > 0.5
    return keep


def _subject_box(subject, mask, affine_file: str) -> tuple[list[int], list[int]]:
    """Index box (low inclusive, high exclusive) of the subject voxels whose points the affine
    (subject -> mask) can send inside ``mask``'s buffer (continuous index -0.5 .. size - 0.5)."""
    import ants

    size = np.array(mask.shape, float)
    corners = np.array([[(-0.5, s - 0.5)[(i >> k) & 1] for k, s in enumerate(size)] for i in range(8)])
    physical = np.array(mask.origin) + (np.array(mask.direction) @ (corners * np.array(mask.spacing)).T).T
    inverse = ants.read_transform(affine_file).invert()
    points = np.array([inverse.apply_to_point(tuple(p)) for p in physical])
    index = (np.linalg.inv(np.array(subject.direction)) @ (points - np.array(subject.origin)).T).T
    index /= np.array(subject.spacing)
    lo = np.maximum(np.floor(index.min(axis=0)).astype(int) - 1, 0)
    hi = np.minimum(np.ceil(index.max(axis=0)).astype(int) + 2, subject.shape)
    return lo.tolist(), hi.tolist()


def keep_mask_in_process(
    subject_path: Path, workdir: Path, *, template: Path | None = None, facemask: Path | None = None,
    params: RegistrationParams = RegistrationParams(), mapping: CtToT1Params | None = CtToT1Params(),
) -> tuple[np.ndarray, bool]:
    """pydeface's keep mask (1 keep, 0 face) on the subject's grid, and whether the CT mapping was used.

    Runs ANTs in this process with whatever ITK thread count the process already has; use
    :func:`keep_mask_for` for the deterministic, isolated version. ``mapping`` is used only when the
    subject looks like a CT (:func:`is_ct`).
    """
    import ants

    template = template or pydeface_data("mean_reg2mean.nii.gz")
    facemask = facemask or pydeface_data("facemask.nii.gz")
    subject = ants.image_read(str(subject_path))  # read once: the CT test, the registration, the warp
    use_ct = mapping is not None and is_ct(subject.numpy(), mapping)
    os.makedirs(workdir, exist_ok=True)
    transforms, subject = register_template(
        subject, workdir, template=template, params=params, mapping=mapping if use_ct else None,
    )
    return warp_face_mask(subject, transforms, facemask=facemask), use_ct


def keep_mask_for(
    subject_path: Path, workdir: Path, *, template: Path | None = None, facemask: Path | None = None,
    params: RegistrationParams = RegistrationParams(), mapping: CtToT1Params | None = CtToT1Params(),
    threads: int = 1, timeout_s: float = 600.0,
) -> tuple[np.ndarray, bool, str]:
    """:func:`keep_mask_in_process` with a fixed ITK thread count; returns (keep mask, used CT mapping, log).

    Why: ITK fixes its thread count at its first use in a process, and ANTs' multi-threaded metric
    sums differ from run to run, so only a known thread count (1 = bit-identical results) is
    deterministic. When this process has not imported ANTs yet, the count is pinned here (see
    :func:`_pin_itk_threads`) and the registration runs in-process (the template stays loaded for the
    next subject); otherwise it runs in a child Python process with
    ``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS=threads``. Raises RuntimeError with the child's message.
    """
    from defacebench.plugins.tools import run_tool

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if _pin_itk_threads(threads):
        keep, used_ct = keep_mask_in_process(
            subject_path, workdir, template=template, facemask=facemask, params=params, mapping=mapping,
        )
        return keep, used_ct, f"antspyx registration in-process with {threads} ITK thread(s)"
    spec = {
        "template": str(template) if template else None, "facemask": str(facemask) if facemask else None,
        "params": asdict(params), "mapping": asdict(mapping) if mapping is not None else None,
    }
    out = workdir / "keep_mask.nii.gz"
    argv = [sys.executable, "-m", "defacebench.anatomy.registration", str(subject_path), str(out), json.dumps(spec)]
    env = {"ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS": str(int(threads)), "OMP_NUM_THREADS": str(int(threads))}
    run = run_tool(argv, cwd=workdir, timeout=timeout_s, env=env)
    if run.timed_out or run.returncode != 0 or not out.is_file():
        status = "timed out" if run.timed_out else f"exit code {run.returncode}"
        raise RuntimeError(f"antspyx registration child {status}: {run.tail()}\n{run.log()}")
    import nibabel as nib

    keep = np.asarray(nib.load(str(out)).dataobj, np.uint8)
    used_ct = json.loads(run.stdout.strip().splitlines()[-1])["used_ct"]
    return keep, bool(used_ct), run.log()


_PINNED_THREADS: int | None = None


def _pin_itk_threads(threads: int) -> bool:
    """True when ANTs in this process runs with exactly ``threads`` ITK threads.

    The first call before ``ants`` is imported sets ``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS`` (read by
    ITK once, at its first use) and remembers it; later calls agree only for the same count.
    """
    global _PINNED_THREADS
    if _PINNED_THREADS is None and "ants" not in sys.modules:
        os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(int(threads))
        _PINNED_THREADS = int(threads)
    return _PINNED_THREADS == int(threads)


def pin_itk_threads(threads: int) -> bool:
    """Public form of the thread pinning above, for plugins that run their own antspyx steps
    (caideface_ants): True when ANTs in this process runs with exactly ``threads`` ITK threads;
    False means the caller must run ANTs in a child process to get that count."""
    return _pin_itk_threads(threads)


def _tuples(d: dict) -> dict:
    """JSON lists back to tuples (the params dataclasses hold tuples)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


def main(argv: list[str] | None = None) -> int:
    """Child entry point: ``python -m defacebench.anatomy.registration SUBJECT OUT_MASK SPEC_JSON``."""
    import nibabel as nib

    subject, out, spec_text = (argv if argv is not None else sys.argv[1:])
    spec = json.loads(spec_text)
    mapping = CtToT1Params(**_tuples(spec["mapping"])) if spec["mapping"] else None
    keep, used_ct = keep_mask_in_process(
        Path(subject), Path(out).parent,
        template=Path(spec["template"]) if spec["template"] else None,
        facemask=Path(spec["facemask"]) if spec["facemask"] else None,
        params=RegistrationParams(**_tuples(spec["params"])), mapping=mapping,
    )
    src = nib.load(subject)
    nib.save(nib.Nifti1Image(keep.astype(np.uint8), src.affine), out)
    print(json.dumps({"used_ct": used_ct}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
