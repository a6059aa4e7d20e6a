"""``quickshear``: the quickshear package's shearing plane, with a brain mask derived from the scan itself.

quickshear (Schimke & Hale 2011) needs a brain mask. MRI pipelines take it from a skull stripper;
here it comes from the scan by its modality (:func:`defacebench.anatomy.masks.brain_mask`): on CT
from HU (soft tissue 0..80 HU inside the skull, largest component), on a T1-weighted MRI from
relative intensity bands below the dark skull (:mod:`defacebench.anatomy.mrimask`). The modality is
the input's header tag written at conversion (else its intensities). quickshear then finds the
lower convex hull of the brain's sagittal profile and zeroes everything below the plane
``buffer_vox`` voxels in front of/under it.

The plane is computed by quickshear's own ``quickshear.quickshear`` function, applied to an all-ones
image so the plane comes back as a keep mask; the volume is then multiplied by it exactly as
quickshear does (removed voxels become 0: water on CT, so use a cleanup policy). The removed-voxel
mask is written as ``removed_mask.nii.gz``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Annotated

import nibabel as nib
import numpy as np

from defacebench.anatomy.brainmask import BrainMaskParams
from defacebench.anatomy.masks import brain_mask, head_interior, nifti_modality
from defacebench.contracts import Availability, DefaceResult, Range, Volume
from defacebench.errors import DefaceError
from defacers._external import write_removed_mask


@dataclass(frozen=True)
class QuickshearParams:
    """``buffer_vox``: distance (voxels) between the brain hull and the plane (quickshear's default 10);
    ``brain``: the HU brain-mask settings; ``min_brain_voxels``: a smaller HU brain mask means no skull
    was found. Then ``no_skull`` decides: ``"fail"`` raises DefaceError; ``"head_interior"`` (default)
    uses the head voxels deeper than ``interior_depth_mm`` above the head's centre of mass (a crude
    cranium, e.g. for CT exports whose bone is clipped, or phantoms without bone), logged as such."""

    buffer_vox: Annotated[float, Range(ge=0)] = 10.0
    brain: BrainMaskParams = field(default_factory=BrainMaskParams)
    min_brain_voxels: Annotated[int, Range(ge=0)] = 500
    no_skull: str = "head_interior"
    interior_depth_mm: Annotated[float, Range(ge=0)] = 15.0


class Quickshear:
    """``quickshear``: quickshear's shearing plane from a CT-derived brain mask (pure Python)."""

    name = "quickshear"
    version = "2"
    deterministic = True
    licence = "BSD-3-Clause (quickshear)"
    needs = "the quickshear package (defacebench[quickshear])"

    def __init__(self, params: QuickshearParams | None = None) -> None:
        self.params = params or QuickshearParams()

    def available(self) -> Availability:
        """The quickshear package must import."""
        try:
            import quickshear  # noqa: F401
        except ImportError as exc:
            return Availability.no(f"quickshear cannot be imported ({exc}): pip install quickshear")
        return Availability.yes()

    def tool_version(self) -> str:
        """quickshear's installed version."""
        try:
            return f"quickshear {metadata.version('quickshear')}"
        except metadata.PackageNotFoundError:
            return "quickshear unknown"

    def deface(self, volume_path: Path, workdir: Path) -> DefaceResult:
        """Brain mask from HU, quickshear plane, multiply; outputs in ``workdir``."""
        volume_path, workdir = Path(volume_path), Path(workdir)
        img = _load(volume_path)
        data = np.asarray(img.dataobj, np.float32)
        brain, source = self._brain_mask(img, volume_path)
        keep = self._keep_mask(img, brain)
        out = workdir / "defaced.nii.gz"
        out_img = nib.Nifti1Image(data * keep, img.affine, img.header)
        out_img.set_data_dtype(np.float32)
        nib.save(out_img, str(out))
        nib.save(nib.Nifti1Image(brain.astype(np.uint8), img.affine), str(workdir / "brain_mask.nii.gz"))
        mask = write_removed_mask(volume_path, out, workdir, removed=keep == 0)
        log = (
            f"quickshear: brain mask from {source}: {int(brain.sum())} voxels, buffer "
            f"{self.params.buffer_vox:g} voxels, {int((keep == 0).sum())} voxels removed"
        )
        return DefaceResult(volume_path=out, mask_path=mask, tool_version=self.tool_version(), log=log)

    def _brain_mask(self, img: nib.Nifti1Image, volume_path: Path) -> tuple[np.ndarray, str]:
        """Brain mask on the file's own voxel grid (computed in canonical RAS, mapped back) and its source."""
        can = nib.as_closest_canonical(img)
        data = np.asarray(can.dataobj, np.float32)
        volume = Volume(data, can.affine, nifti_modality(img, data))
        brain_can = brain_mask(volume, self.params.brain)
        source = ("HU (skull interior)" if volume.modality == "ct"
                  else "T1 intensity bands (MRI)")
        if brain_can.sum() < self.params.min_brain_voxels and self.params.no_skull == "head_interior":
            brain_can, source = _head_interior(volume, self.params), "head interior (no skull found)"
        if brain_can.sum() < self.params.min_brain_voxels:
            raise DefaceError(
                f"quickshear on {volume_path}: the {volume.modality.upper()} brain mask has {int(brain_can.sum())} "
                f"voxels (< {self.params.min_brain_voxels}); no skull/brain found. Fix: give a head CT in HU or a "
                "T1-weighted MRI, or adjust QuickshearParams.brain"
            )
        back = nib.orientations.ornt_transform(nib.io_orientation(can.affine), nib.io_orientation(img.affine))
        return nib.orientations.apply_orientation(brain_can, back).astype(bool), source

    def _keep_mask(self, img: nib.Nifti1Image, brain: np.ndarray) -> np.ndarray:
        """quickshear's plane as a keep mask (1 keep, 0 removed) on the file's grid."""
        from quickshear import quickshear

        ones = nib.Nifti1Image(np.ones(brain.shape, np.uint8), img.affine)
        mask_img = nib.Nifti1Image(brain.astype(np.uint8), img.affine)
        try:
            with warnings.catch_warnings():  # quickshear's np.cross on 2-D vectors warns on NumPy 2
                warnings.simplefilter("ignore", DeprecationWarning)
                sheared = quickshear(ones, mask_img, buff=self.params.buffer_vox)
        except (IndexError, ValueError, ZeroDivisionError, FloatingPointError) as exc:
            raise DefaceError(f"quickshear failed to fit a plane to the brain mask: {type(exc).__name__}: {exc}") from exc
        return (np.asarray(sheared.dataobj) > 0).astype(np.uint8)


def _head_interior(volume: Volume, params: QuickshearParams) -> np.ndarray:
    """Head voxels deeper than ``interior_depth_mm`` and above the head's centre of mass (canonical RAS)."""
    return head_interior(volume, params.interior_depth_mm, params.brain)


def _load(volume_path: Path) -> nib.Nifti1Image:
    """The input as a 3-D nibabel image; DefaceError naming the file when unusable."""
    try:
        img = nib.load(str(volume_path))
        if len(img.shape) != 3:
            raise DefaceError(f"{volume_path}: quickshear needs a 3-D volume, got shape {img.shape}")
        return img
    except DefaceError:
        raise
    except Exception as exc:  # nibabel raises several types
        raise DefaceError(f"{volume_path}: cannot read the input NIfTI ({exc}). Fix: give a valid .nii/.nii.gz") from exc
