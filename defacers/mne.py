"""``mne_deface``: mne-bids' landmark-plane defacing (``mne_bids.write._deface``, mne-bids 0.20.0, BSD-3).

mne-bids defaces a T1 when it writes it to BIDS: every voxel is taken to world (scanner RAS)
coordinates with the image's affine, moved so that the origin sits ``inset`` mm (default 5) behind
the nasion (toward -y, posterior), turned about the x axis by ``-90 + theta`` degrees (``theta``
default 15), and every voxel whose new z is negative is set to 0. In world terms the cut is the
plane through ``nasion - (0, inset, 0)`` whose normal is ``(0, sin a, cos a)``, ``a = theta - 90``:
a coronal plane tilted forward by ``theta`` at the top, so the forehead keeps a little more and
the mouth and chin lose more. Everything in front of it goes. mne-bids' ``inset`` must be >= 0 and
``theta`` in [0, 90), checked the same way here.

This module reimplements that rule (the plane is linear in the voxel indices, so it is evaluated
without building a world-coordinate array of the whole volume); tests/test_mne_deface.py checks it
voxel for voxel against mne-bids' own function when mne-bids is installed (the ``test`` extra
installs it). Two choices mne-bids leaves to its caller:

- the nasion: mne-bids takes it from the user (voxel coordinates). Here it is the deepest point of
  the mid-sagittal skin profile between the nose and the forehead, found on the head mask of the
  input's modality (:func:`defacebench.anatomy.landmarks.profile_landmarks`); no face profile means
  a DefaceError naming the file;
- the fill: mne-bids writes 0 (MRI: nothing). On CT 0 HU is water, so removed voxels become air,
  ``ct_fill`` (-1000 HU); on MRI ``mri_fill`` (0, mne-bids' value).

Like mne-bids, the plane is placed in the image's world frame: a head pitched in the scanner is
cut along a plane pitched the other way relative to the face. The removed-voxel mask is the face
side of the plane (``removed_mask.nii.gz``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated

import nibabel as nib
import numpy as np

from defacebench.anatomy.landmarks import LandmarkError, ProfileParams, profile_landmarks
from defacebench.contracts import Availability, DefaceResult, Range, Volume
from defacebench.errors import DefaceError
from defacers._external import read_input, save_like, write_removed_mask

UPSTREAM = "mne-bids 0.20.0 mne_bids.write._deface"


@dataclass(frozen=True)
class MneDefaceParams:
    """mne-bids' ``inset`` (mm, >= 0) and ``theta`` (degrees, [0, 90)), the fill by modality and
    the nasion search (:class:`~defacebench.anatomy.landmarks.ProfileParams`)."""

    inset_mm: Annotated[float, Range(ge=0)] = 5.0
    theta_deg: Annotated[float, Range(ge=0, lt=90)] = 15.0
    ct_fill: float = -1000.0
    mri_fill: float = 0.0
    nasion: ProfileParams = field(default_factory=ProfileParams)

    def __post_init__(self) -> None:
        if not self.inset_mm >= 0:
            raise ValueError(f"mne_deface: inset_mm must be >= 0 (mne-bids' inset), got {self.inset_mm}")
        if not 0 <= self.theta_deg < 90:
            raise ValueError(f"mne_deface: theta_deg must be in [0, 90) (mne-bids' theta), got {self.theta_deg}")


class MneDeface:
    """``mne_deface``: the landmark plane of mne-bids, at a nasion found on the skin profile."""

    name = "mne_deface"
    version = "1"
    deterministic = True
    licence = "BSD-3-Clause (mne-bids 0.20.0's rule, reimplemented; no mne-bids code)"
    needs = "nothing beyond the base install"
    modalities = ("ct", "mri")

    def __init__(self, params: MneDefaceParams | None = None) -> None:
        self.params = params or MneDefaceParams()

    def available(self) -> Availability:
        """Always: numpy, scipy and nibabel are core dependencies."""
        return Availability.yes()

    def tool_version(self) -> str:
        """The upstream rule this reproduces (part of the cache key)."""
        return f"{UPSTREAM} (reimplemented)"

    def deface(self, volume_path: Path, workdir: Path) -> DefaceResult:
        """Find the nasion, cut along mne-bids' plane, fill by modality; outputs in ``workdir``."""
        from defacebench.anatomy.masks import nifti_modality

        volume_path, workdir = Path(volume_path), Path(workdir)
        img, data = read_input(volume_path, self.name)
        modality = nifti_modality(img, data)
        can = nib.as_closest_canonical(nib.Nifti1Image(data, img.affine))
        try:
            marks = profile_landmarks(Volume(np.asarray(can.dataobj, np.float32), can.affine, modality),
                                      self.params.nasion)
        except LandmarkError as exc:
            raise DefaceError(f"mne_deface on {volume_path}: {exc}") from exc
        p = self.params
        removed = plane_face_side(data.shape, img.affine, marks.nasion, inset_mm=p.inset_mm, theta_deg=p.theta_deg)
        fill = p.ct_fill if modality == "ct" else p.mri_fill
        out = save_like(img, np.where(removed, np.float32(fill), data), workdir / "defaced.nii")
        mask = write_removed_mask(volume_path, out, workdir, removed=removed)
        log = (f"mne_deface: {modality}, nasion (RAS mm) {np.round(marks.nasion, 1).tolist()} "
               f"({marks.nasion_depth_mm:.1f} mm deep), nose tip {np.round(marks.nose_tip, 1).tolist()}; "
               f"{int(removed.sum())} voxels set to {fill:g}; params {asdict(p)}")
        return DefaceResult(volume_path=out, mask_path=mask, tool_version=self.tool_version(), log=log)


def plane_face_side(shape, affine, nasion, *, inset_mm: float = 5.0, theta_deg: float = 15.0) -> np.ndarray:
    """Boolean (shape) mask of the voxels mne-bids' ``_deface`` sets to 0 for a nasion at world
    (RAS mm) ``nasion`` on a grid with voxel-to-world ``affine``.

    The rotated z of voxel (i, j, k) is ``sin(a) (y - ny + inset) + cos(a) (z - nz)`` with
    ``a = theta - 90`` degrees, and y, z are linear in (i, j, k): one term per axis, broadcast."""
    a = math.radians(theta_deg) - math.pi / 2
    affine = np.asarray(affine, float)
    coef = math.sin(a) * affine[1, :3] + math.cos(a) * affine[2, :3]
    const = math.sin(a) * (affine[1, 3] - nasion[1] + inset_mm) + math.cos(a) * (affine[2, 3] - nasion[2])
    i, j, k = (np.arange(n, dtype=float) * c for n, c in zip(shape, coef))
    return (i[:, None, None] + j[None, :, None] + k[None, None, :] + const) < 0
