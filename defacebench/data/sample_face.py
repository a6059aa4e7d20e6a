"""Synthetic head-CT anatomy for the sample dataset: template to HU, identity warps, scan poses.

The only whole head with a face that ships offline is pydeface's averaged T1 template
``mean_reg2mean.nii.gz`` (FIELD.md section 3). This module turns it into a CT-like HU volume
(air, soft tissue, a skull shell derived as a band around the brain, brain) on a 2 mm grid, and
makes distinct identities from it with a smooth random deformation: a few % anisotropic scale plus
Gaussian displacement bumps, most of them centred on the face. Scan and rescan differ by an
independent small pose and noise, so a recognizer must match across acquisitions.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from defacebench.errors import DatasetError


@dataclass(frozen=True)
class AnatomyParams:
    """HU levels and tissue geometry of the synthetic CT (recorded with the sample params)."""

    air_hu: float = -1000.0
    soft_hu: tuple[float, float] = (0.0, 80.0)
    brain_hu: tuple[float, float] = (20.0, 45.0)
    bone_hu: tuple[float, float] = (700.0, 1300.0)
    skull_mm: float = 6.0  # shell thickness around the brain
    head_t1: float = 60.0  # template intensity above which a voxel is head, not air
    brain_t1: float = 150.0  # template intensity of brain tissue (grey and white matter)
    brain_depth_mm: float = 9.0  # brain starts at least this deep below the skin
    skull_base_fraction: float = 0.3  # brain starts this fraction of the head height above its bottom


@dataclass(frozen=True)
class IdentityParams:
    """How different synthetic identities are (FIELD.md section 3's measured recipe)."""

    scale_sd: float = 0.03  # sd of per-axis scale, clipped to 2 sd
    n_bumps: int = 20
    bump_sigma_mm: float = 20.0
    face_fraction: float = 0.75  # fraction of bump centres on the face
    bump_rms_mm: float = 6.0  # RMS of the bumps' peak displacement
    pose_deg: tuple[float, float] = (1.0, 3.0)  # rotation range per acquisition
    shift_mm: float = 2.0  # max translation per axis per acquisition
    noise_hu: float = 15.0


def template_path() -> Path:
    """Path of pydeface's shipped template; DatasetError when pydeface is not installed."""
    spec = importlib.util.find_spec("pydeface")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(
            "the sample dataset is built from pydeface's template mean_reg2mean.nii.gz but pydeface "
            "is not installed. Fix: pip install pydeface"
        )
    path = Path(spec.submodule_search_locations[0]) / "data" / "mean_reg2mean.nii.gz"
    if not path.is_file():
        raise DatasetError(f"{path}: pydeface's template is missing. Fix: reinstall pydeface")
    return path


@dataclass(frozen=True)
class BaseHead:
    """The template as HU on the output grid: ``hu`` (i, j, k), the ``affine`` (RAS mm), tissue
    masks and the face surface points (mm) where identity bumps are centred."""

    hu: np.ndarray
    affine: np.ndarray
    head: np.ndarray
    brain: np.ndarray
    skull: np.ndarray
    face_points: np.ndarray
    surface_points: np.ndarray


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """Keep the largest 6-connected component of ``mask``."""
    labels, n = ndimage.label(mask)
    if n == 0:
        return mask
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def _ball(radius_vox: int) -> np.ndarray:
    """A spherical structuring element of the given radius in voxels."""
    r = np.arange(-radius_vox, radius_vox + 1)
    return (r[:, None, None] ** 2 + r[None, :, None] ** 2 + r[None, None, :] ** 2) <= radius_vox**2


def _template_on_grid(voxel_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Template T1 resampled to ``voxel_mm`` isotropic voxels, padded with air for pose/scale room.

    The template's own small rotation is dropped on purpose: its voxel axes are aligned with the
    head, so a frontal camera along the A-P axis sees the face straight on.
    """
    img = nib.load(str(template_path()))
    t1 = np.asarray(img.dataobj, dtype=np.float32)
    zooms = np.asarray(img.header.get_zooms()[:3], float)
    t1 = ndimage.zoom(t1, zooms / voxel_mm, order=1, prefilter=False)
    pad = int(round(10.0 / voxel_mm))
    t1 = np.pad(t1, pad, mode="constant")
    shape = np.asarray(t1.shape)
    affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    affine[:3, 3] = -(shape - 1) / 2.0 * voxel_mm  # head centred on the scanner origin
    return t1, affine


def _tissues(t1: np.ndarray, voxel_mm: float, p: AnatomyParams) -> tuple[np.ndarray, ...]:
    """Head, brain and skull masks from the T1 template (the skull is a band around the brain)."""
    head = ndimage.binary_fill_holes(_largest_component(ndimage.binary_opening(t1 > p.head_t1)))
    depth = ndimage.distance_transform_edt(head) * voxel_mm
    core = (depth > p.brain_depth_mm) & (t1 > p.brain_t1)
    # the brain sits above the skull base: cut the face, tongue and neck off below it
    k_head = np.nonzero(head.any(axis=(0, 1)))[0]
    k_floor = int(k_head[0] + p.skull_base_fraction * (k_head[-1] - k_head[0]))
    core[:, :, :k_floor] = False
    # opening cuts thin bridges through the skull base to the tongue and neck muscles
    core = ndimage.binary_opening(core, _ball(max(1, int(round(4.0 / voxel_mm)))))
    brain = ndimage.binary_fill_holes(_largest_component(core))
    shell = ndimage.binary_dilation(brain, _ball(max(1, int(round(p.skull_mm / voxel_mm)))))
    skull = shell & ~brain & head & (depth > 2.0 * voxel_mm)
    return head, brain, skull


def _to_hu(t1: np.ndarray, masks: tuple[np.ndarray, ...], p: AnatomyParams) -> np.ndarray:
    """Map T1 intensities to CT-like HU inside each tissue (contrast kept so the face has texture)."""
    head, brain, skull = masks
    inside = t1[head]
    lo, hi = np.percentile(inside, [2, 98])
    rel = np.clip((t1 - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    hu = np.full(t1.shape, p.air_hu, np.float32)
    soft = head & ~brain & ~skull
    hu[soft] = p.soft_hu[0] + rel[soft] * (p.soft_hu[1] - p.soft_hu[0])
    # white matter is bright in T1 but darker than grey matter in CT: invert within the brain
    hu[brain] = p.brain_hu[1] - rel[brain] * (p.brain_hu[1] - p.brain_hu[0])
    # skull is dark in T1: dark band voxels become dense cortical bone
    hu[skull] = p.bone_hu[1] - rel[skull] * (p.bone_hu[1] - p.bone_hu[0])
    # smooth the air/skin step a little, as a CT point-spread function would
    return ndimage.gaussian_filter(hu, 0.5).astype(np.float32)


def _face_points(head: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Anterior first-hit skin points (mm) of the face region and of the whole head surface."""
    surface = head & ~ndimage.binary_erosion(head)
    pts = np.argwhere(surface)
    mm = pts * np.diag(affine)[:3] + affine[:3, 3]
    # the face: front-most skin per (i, k) column, in the lower-front part of the head
    j_front = np.where(head.any(axis=1), head.shape[1] - 1 - np.argmax(head[:, ::-1, :], axis=1), -1)
    ii, kk = np.nonzero(j_front >= 0)
    front = np.stack([ii, j_front[ii, kk], kk], axis=1)
    fmm = front * np.diag(affine)[:3] + affine[:3, 3]
    centre = mm.mean(axis=0)
    y_cut = np.percentile(fmm[:, 1], 60)
    z_top = centre[2] + 0.35 * np.ptp(mm[:, 2])
    face = fmm[(np.abs(fmm[:, 0] - centre[0]) < 45) & (fmm[:, 1] > y_cut) & (fmm[:, 2] < z_top)]
    return face, mm


@functools.lru_cache(maxsize=4)
def base_head(voxel_mm: float = 2.0, anatomy: AnatomyParams = AnatomyParams()) -> BaseHead:
    """The template head in HU on a ``voxel_mm`` grid (cached per process: it costs ~2 s)."""
    t1, affine = _template_on_grid(voxel_mm)
    masks = _tissues(t1, voxel_mm, anatomy)
    hu = _to_hu(t1, masks, anatomy)
    face, surf = _face_points(masks[0], affine)
    return BaseHead(hu=hu, affine=affine, head=masks[0], brain=masks[1], skull=masks[2],
                    face_points=face, surface_points=surf)


@dataclass(frozen=True)
class Identity:
    """One synthetic person: per-axis scale and displacement bumps (centres, sigma, vectors in mm)."""

    scale: np.ndarray
    centres: np.ndarray
    vectors: np.ndarray
    sigma_mm: float


def make_identity(base: BaseHead, rng: np.random.Generator, p: IdentityParams) -> Identity:
    """Draw an identity: anisotropic scale and ``n_bumps`` bumps, ``face_fraction`` on the face."""
    scale = 1.0 + np.clip(rng.normal(0.0, p.scale_sd, 3), -2 * p.scale_sd, 2 * p.scale_sd)
    n_face = int(round(p.face_fraction * p.n_bumps))
    face = base.face_points[rng.choice(len(base.face_points), n_face)]
    other = base.surface_points[rng.choice(len(base.surface_points), p.n_bumps - n_face)]
    centres = np.concatenate([face, other])
    # centres sit a few mm under the skin so a bump moves skin and the tissue under it together
    centres = centres + rng.normal(0.0, 3.0, centres.shape)
    vectors = rng.normal(0.0, p.bump_rms_mm / np.sqrt(3.0), (p.n_bumps, 3))
    return Identity(scale=scale, centres=centres, vectors=vectors, sigma_mm=p.bump_sigma_mm)


def random_pose(rng: np.random.Generator, p: IdentityParams) -> np.ndarray:
    """A 4x4 rigid transform: rotation of ``pose_deg`` degrees about a random axis plus a shift."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = np.deg2rad(rng.uniform(*p.pose_deg))
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rot = np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)
    pose = np.eye(4)
    pose[:3, :3] = rot
    pose[:3, 3] = rng.uniform(-p.shift_mm, p.shift_mm, 3)
    return pose


def _displacement(points: np.ndarray, ident: Identity) -> np.ndarray:
    """Sum of Gaussian bumps at ``points`` (n, 3) mm; evaluated in chunks to bound memory."""
    out = np.zeros_like(points)
    inv = -0.5 / ident.sigma_mm**2
    for c, v in zip(ident.centres, ident.vectors):
        d2 = ((points - c) ** 2).sum(axis=1)
        near = d2 < (4.0 * ident.sigma_mm) ** 2  # beyond 4 sigma a bump is < 0.04 % of its peak
        out[near] += np.exp(d2[near] * inv)[:, None] * v
    return out


def _coarse_field(base: BaseHead, ident: Identity, step_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """The bump field sampled on a coarse grid (the bumps are smooth, sigma ~20 mm): ``(3, ...)``
    displacements and the grid's origin, so warping a volume costs three linear interpolations."""
    lo = base.affine[:3, 3] - 20.0
    hi = lo + 40.0 + (np.asarray(base.hu.shape) - 1) * np.diag(base.affine)[:3]
    axes = [np.arange(a, b + step_mm, step_mm) for a, b in zip(lo, hi)]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    field = _displacement(pts, ident).T.reshape((3, *(len(a) for a in axes)))
    return field.astype(np.float32), lo


def render_acquisition(
    base: BaseHead, ident: Identity, pose: np.ndarray, rng: np.random.Generator, noise_hu: float
) -> np.ndarray:
    """The HU volume of one acquisition of ``ident`` in ``pose`` on the base grid, with noise.

    Backward mapping: each output voxel x samples the base head at S^-1 (P^-1 x) + u, where P is
    the pose, S the identity's scale and u the bump field (defined in template space).
    """
    shape = base.hu.shape
    zoom = np.diag(base.affine)[:3]
    world = np.indices(shape, dtype=np.float32).reshape(3, -1).T * zoom.astype(np.float32)
    world += base.affine[:3, 3].astype(np.float32)
    inv_pose = np.linalg.inv(pose).astype(np.float32)
    src = (world @ inv_pose[:3, :3].T + inv_pose[:3, 3]) / ident.scale.astype(np.float32)
    step = 4.0
    field, origin = _coarse_field(base, ident, step)
    fvox = ((src - origin) / step).T
    for axis in range(3):
        src[:, axis] += ndimage.map_coordinates(field[axis], fvox, order=1, mode="nearest")
    vox = ((src - base.affine[:3, 3]) / zoom).T
    hu = ndimage.map_coordinates(base.hu, vox, order=1, mode="constant", cval=float(base.hu.min()))
    noise = rng.normal(0.0, noise_hu, shape).astype(np.float32)
    return (hu.reshape(shape) + noise).astype(np.float32)


def head_holder(base: BaseHead, air_hu: float, rng: np.random.Generator) -> np.ndarray:
    """A curved foam-and-plastic head rest touching the back of the head (HU volume, air elsewhere).

    Real scanners image the head holder; it shares the outline between a subject's scans (the
    same-scan confound a rescan gallery removes).
    """
    shape = base.hu.shape
    zoom = np.diag(base.affine)[:3]
    ii, jj, kk = np.indices(shape)
    x = ii * zoom[0] + base.affine[0, 3]
    y = jj * zoom[1] + base.affine[1, 3]
    head_pts = np.argwhere(base.head)
    back_y = head_pts[:, 1].min() * zoom[1] + base.affine[1, 3]
    # a cradle: the inner surface is a cylinder along the S axis just behind the skull
    radius = 80.0
    cy = back_y + radius
    r = np.sqrt(x**2 + (y - cy) ** 2)
    shell = (r > radius) & (r < radius + 10.0) & (y < cy - 30.0)
    holder = np.full(shape, air_hu, np.float32)
    holder[shell] = -150.0 + rng.normal(0, 10.0)
    return holder
