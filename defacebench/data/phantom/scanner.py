"""One acquisition of a synthetic subject: its grid, the sampled anatomy, hardware and noise.

The grid is what a scanner would write: ``matrix`` x ``matrix`` pixels over an in-plane field of
view of ``fov_mm``, axial slices of ``slice_mm`` from just above the vertex down ``z_extent_mm``
(below the chin: neck and upper shoulders for CT). A gantry-tilted CT series has its slice planes
rotated about the left-right axis while the table still steps along z, so its voxel-to-world affine
is sheared: that is exactly what the DICOM headers of such a series describe.

Every voxel samples the anatomy backwards through the subject's pose and identity (linear
interpolation of the base volumes), in chunks of slices to bound memory. CT then gets its cradle,
table, dental metal streaks and Gaussian noise (thinner slices are noisier); MRI gets a smooth
multiplicative bias field and Rician noise (the magnitude of complex Gaussian noise).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from defacebench.data.phantom.anatomy import BaseAnatomy
from defacebench.data.phantom.hardware import HardwareParams, add_cradle_and_table, add_metal, back_of_head
from defacebench.data.phantom.identity import Identity, coarse_field, to_scanner
from defacebench.data.phantom.template import Landmarks


@dataclass(frozen=True)
class ScannerParams:
    """Acquisition ranges of one modality (each acquisition draws its own values within them).

    ``slice_mm`` / ``slice_weights``: slice thickness choices and their probabilities; ``tilt_fraction``
    of CT series are gantry-tilted by ``tilt_deg``, with a sign drawn from ``tilt_signs`` (+1: the slice
    plane's anterior end up, as a clinical tilt lays it along the orbitomeatal line to keep the eyes'
    lenses out of the beam; the seed study's camera renders the sheared grid as is, so a -1 tilt
    shows the face flexed further toward the chest, docs/realism.md). ``noise``: CT: HU sd at
    ``noise_ref_mm`` slices (a soft-tissue kernel's noise: correlated in-plane over
    ``noise_corr_px`` pixels); MRI: Rician sigma as a fraction of white matter. ``bias``: MRI bias
    field strength (log-amplitude of its linear and quadratic terms). ``mri_scale``: white matter
    value in MR scanner units. ``fov_centre_y``: the field of view's anteroposterior centre in the
    scanner frame (mm); None centres it on the head's own extent, as the technologist does, within
    +-``fov_jitter_mm``, and widens a drawn ``fov_mm`` that would leave less than ``fov_margin_mm``
    of air in front of the nose or behind the occiput (a fixed centre cut the calibrated faces'
    noses and chins off in 9 of 32 series, docs/realism.md)."""

    modality: str = "ct"
    matrix: int = 192
    fov_mm: tuple[float, float] = (235.0, 255.0)
    fov_centre_y: float | None = None
    fov_jitter_mm: float = 4.0
    fov_margin_mm: float = 4.0
    slice_mm: tuple[float, ...] = (1.25, 2.0, 2.5, 3.0, 5.0)
    slice_weights: tuple[float, ...] = (0.05, 0.2, 0.4, 0.25, 0.1)
    z_extent_mm: tuple[float, float] = (275.0, 300.0)
    top_margin_mm: tuple[float, float] = (4.0, 14.0)
    tilt_fraction: float = 0.15
    tilt_deg: tuple[float, float] = (12.0, 22.0)
    tilt_signs: tuple[float, ...] = (1.0,)
    noise: tuple[float, float] = (5.0, 8.0)
    noise_ref_mm: float = 2.5
    noise_corr_px: float = 0.8
    bias: float = 0.15
    mri_scale: float = 800.0
    hardware: HardwareParams = field(default_factory=HardwareParams)


def mri_scanner() -> ScannerParams:
    """The MRI defaults: T1-weighted axial, head to below the chin, no tilt, no visible hardware.

    ``z_extent_mm`` 250-260: a 3D T1's 256 mm head-foot field of view (the real T1 of
    docs/real_head.md spans 256 mm, vertex 21 mm under its top). Why it matters: the seed study's
    camera (`vtk_volume`, ``camera="seed"``) is reset to the volume's bounds, so the extent below
    the chin decides where the face lies in its frame; at 220-240 mm the focal point sat level with
    the eyes and the frame's bottom edge cut the mouth and chin (dlib_hog: 13 of 16 seed-camera
    renders of the calibrated 8-subject sample, 15 of 16 at 250-260; noise, bias field and slice
    thickness changed nothing: docs/realism.md, "MRI sample")."""
    return ScannerParams(modality="mri", fov_mm=(235.0, 255.0), slice_mm=(1.5, 2.0),
                         slice_weights=(0.5, 0.5), z_extent_mm=(250.0, 260.0), tilt_fraction=0.0,
                         noise=(0.02, 0.04), hardware=HardwareParams(cradle=False, table=False))


@dataclass(frozen=True)
class Geometry:
    """One acquisition's grid: ``shape`` and the RAS voxel-to-scanner ``affine`` (sheared if tilted)."""

    shape: tuple[int, int, int]
    affine: np.ndarray
    slice_mm: float
    tilt_deg: float
    fov_mm: float


@dataclass(frozen=True)
class Acquisition:
    """A sampled acquisition: values (HU or MR units), its geometry, and what was drawn for it."""

    data: np.ndarray
    geometry: Geometry
    modality: str
    noise: float
    fillings: int


def draw_geometry(rng: np.random.Generator, p: ScannerParams, vertex_z: float,
                  head_y: tuple[float, float] = (-100.0, 110.0)) -> Geometry:
    """The grid of one acquisition whose top slice lies a margin above scanner height ``vertex_z``;
    ``head_y``: the head's anteroposterior extent (scanner mm), which the field of view holds."""
    fov = float(rng.uniform(*p.fov_mm))
    weights = np.asarray(p.slice_weights, float)
    dz = float(rng.choice(np.asarray(p.slice_mm, float), p=weights / weights.sum()))
    tilted = p.modality == "ct" and rng.uniform() < p.tilt_fraction
    tilt = float(rng.uniform(*p.tilt_deg) * rng.choice(np.asarray(p.tilt_signs, float))) if tilted else 0.0
    g = np.deg2rad(tilt)
    centre_y = p.fov_centre_y
    if centre_y is None:
        centre_y = 0.5 * (head_y[0] + head_y[1]) + float(rng.uniform(-1.0, 1.0)) * p.fov_jitter_mm
        # a slice tilted by g spans centre_y +- fov/2 cos(g) along y: widen it to hold the head
        reach = max(centre_y - head_y[0], head_y[1] - centre_y) + p.fov_margin_mm
        fov = max(fov, 2.0 * reach / np.cos(g))
    step = fov / p.matrix
    # a tilted plane rises across the field of view: start higher so the vertex stays covered
    top = vertex_z + rng.uniform(*p.top_margin_mm) + 0.5 * fov * abs(np.sin(g))
    n = int(round(rng.uniform(*p.z_extent_mm) / dz))
    affine = np.eye(4)
    affine[:3, 0] = (step, 0.0, 0.0)
    affine[:3, 1] = (0.0, step * np.cos(g), step * np.sin(g))
    affine[:3, 2] = (0.0, 0.0, dz)
    centre = np.array([0.0, centre_y, top - (n - 1) * dz])  # in-plane centre of slice 0
    affine[:3, 3] = centre - affine[:3, :2] @ np.full(2, (p.matrix - 1) / 2.0)
    return Geometry((p.matrix, p.matrix, n), affine, dz, tilt, fov)


def _chunk_indices(shape: tuple[int, int, int], k0: int, k1: int, stride: int = 1) -> tuple[np.ndarray, tuple]:
    """Voxel indices (3, n) of slices k0..k1-1, every ``stride``-th row/column (ends included)."""
    axes = [np.linspace(0, shape[a] - 1, -(-(shape[a] - 1) // stride) + 1, dtype=np.float32) for a in (0, 1)]
    ijk = np.stack(np.meshgrid(axes[0], axes[1], np.arange(k0, k1, dtype=np.float32), indexing="ij"))
    return ijk.reshape(3, -1), (len(axes[0]), len(axes[1]), k1 - k0)


def _interp_axis(a: np.ndarray, n_out: int, axis: int) -> np.ndarray:
    """Linear interpolation of ``a`` along ``axis`` from end-aligned samples to ``n_out`` samples."""
    n_in = a.shape[axis]
    if n_in == 1:
        return np.repeat(a, n_out, axis=axis)
    pos = np.linspace(0.0, n_in - 1.0, n_out)
    lo = np.minimum(pos.astype(int), n_in - 2)
    shape = [1] * a.ndim
    shape[axis] = n_out
    frac = (pos - lo).astype(a.dtype).reshape(shape)
    return np.take(a, lo, axis=axis) * (1 - frac) + np.take(a, lo + 1, axis=axis) * frac


def _upsample(coarse: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Bilinear in-plane upsampling of (cx, cy, k) to (nx, ny, k)."""
    return _interp_axis(_interp_axis(coarse, shape[0], 0), shape[1], 1)


def sample_base(base_volume: np.ndarray, base: BaseAnatomy, ident: Identity, pose: np.ndarray, geom: Geometry,
            cval: float) -> np.ndarray:
    """Backward-sample ``base_volume`` onto the acquisition grid through pose, scale and bumps.

    The bump field is smooth (sigma ~20 mm), so it is evaluated on every 4th row and column of
    each slice and interpolated up; only the anatomy itself is sampled at every voxel."""
    grid = base.grid
    lo = np.asarray(grid.origin) - 20.0
    hi = lo + 40.0 + (np.asarray(grid.shape) - 1) * grid.step
    fstep = 5.0
    fld, forigin = coarse_field(lo, hi, ident, fstep)
    # voxel -> template frame before the bumps: S^-1 P^-1 A (one affine map)
    pre = (np.diag([*(1.0 / ident.scale), 1.0]) @ np.linalg.inv(pose) @ geom.affine).astype(np.float32)
    origin = np.asarray(grid.origin, np.float32)[:, None]
    out = np.empty(geom.shape, np.float32)
    chunk = 8
    for k0 in range(0, geom.shape[2], chunk):
        k1 = min(geom.shape[2], k0 + chunk)
        coarse, cshape = _chunk_indices(geom.shape, k0, k1, stride=4)
        fvox = ((pre[:3, :3] @ coarse + pre[:3, 3:4]) - forigin[:, None].astype(np.float32)) / fstep
        full_shape = (geom.shape[0], geom.shape[1], k1 - k0)
        bumps = [_upsample(ndimage.map_coordinates(fld[a], fvox, order=1, mode="nearest").reshape(cshape),
                           full_shape).reshape(-1) for a in range(3)]
        ijk, _ = _chunk_indices(geom.shape, k0, k1)
        vox = (pre[:3, :3] @ ijk + pre[:3, 3:4] + np.stack(bumps) - origin) / grid.step
        values = ndimage.map_coordinates(base_volume, vox, order=1, mode="constant", cval=cval, prefilter=False)
        out[:, :, k0:k1] = values.reshape(full_shape)
    return out


def _bias_field(geom: Geometry, rng: np.random.Generator, strength: float) -> np.ndarray:
    """A smooth multiplicative field exp(linear + quadratic terms) over the grid (MRI coil shading)."""
    shape = geom.shape
    axes = [np.linspace(-1.0, 1.0, n, dtype=np.float32) for n in shape]
    x, y, z = axes[0][:, None, None], axes[1][None, :, None], axes[2][None, None, :]
    c = rng.normal(0.0, strength, 6).astype(np.float32)
    return np.exp(c[0] * x + c[1] * y + c[2] * z + c[3] * x * x + c[4] * y * y + c[5] * z * z)


def acquire(base: BaseAnatomy, ident: Identity, pose: np.ndarray, rng: np.random.Generator, p: ScannerParams,
            landmarks: Landmarks, fillings: np.ndarray) -> Acquisition:
    """Sample one acquisition of ``ident`` in ``pose``; ``fillings`` are tooth centres (template mm)."""
    vertex = to_scanner(np.array([[0.0, -10.0, landmarks.vertex_z]]), ident, pose)[0]
    head_y = to_scanner(head_outline(base, landmarks.chin[2] - 10.0), ident, pose)[:, 1]
    geom = draw_geometry(rng, p, float(vertex[2]), (float(head_y.min()), float(head_y.max())))
    metal = to_scanner(fillings, ident, pose) if len(fillings) else np.zeros((0, 3))
    hw = p.hardware
    if p.modality == "ct":
        data = sample_base(base.hu, base, ident, pose, geom, cval=-1000.0)
        if hw.cradle or hw.table:
            ear = to_scanner(np.array([[0.0, landmarks.ear_y, landmarks.ear_level_z]]), ident, pose)[0]
            back = back_of_head(data, geom.affine, z_from=float(ear[2]) - 20.0, body_hu=-300.0)
            add_cradle_and_table(data, geom.affine, back, float(ear[2]), hw, air_hu=-900.0)
        sigma = float(rng.uniform(*p.noise)) * np.sqrt(p.noise_ref_mm / geom.slice_mm)
        add_metal(data, geom.affine, metal, rng, hw)
        data += _ct_noise(rng, data.shape, sigma, p.noise_corr_px)
        np.clip(data, -1024.0, 3071.0, out=data)
        return Acquisition(data, geom, "ct", sigma, len(metal))
    t1 = sample_base(base.t1, base, ident, pose, geom, cval=0.0)
    signal = np.maximum(t1, 0.0) * p.mri_scale * _bias_field(geom, rng, p.bias)
    _metal_voids(signal, geom.affine, metal)
    sigma = float(rng.uniform(*p.noise)) * p.mri_scale
    real = signal + rng.normal(0.0, sigma, signal.shape).astype(np.float32)
    imag = rng.normal(0.0, sigma, signal.shape).astype(np.float32)
    return Acquisition(np.hypot(real, imag).astype(np.float32), geom, "mri", sigma, len(metal))


def head_outline(base: BaseAnatomy, above_z: float, stride: int = 2) -> np.ndarray:
    """The head's front and back skin points (template mm) above template height ``above_z``, one per
    (x, z) column of every ``stride``-th voxel: what the field of view must hold
    (the facial relief moves the skin past ``base.surface_points``, which follow the template)."""
    g = base.grid
    k0 = max(0, int((above_z - g.origin[2]) / g.step))
    head = base.labels[::stride, :, k0::stride] > 0
    ii, kk = np.nonzero(head.any(axis=1))
    front = head.shape[1] - 1 - np.argmax(head[ii, ::-1, kk], axis=1)
    back = np.argmax(head[ii, :, kk], axis=1)
    ijk = np.concatenate([np.stack([ii * stride, front, k0 + kk * stride], 1),
                          np.stack([ii * stride, back, k0 + kk * stride], 1)])
    return ijk * g.step + np.asarray(g.origin)


def _ct_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float, corr_px: float) -> np.ndarray:
    """Gaussian noise of sd ``sigma``, correlated in-plane (a reconstruction kernel smooths it)."""
    noise = rng.normal(0.0, 1.0, shape).astype(np.float32)
    if corr_px > 0:
        noise = ndimage.gaussian_filter(noise, (corr_px, corr_px, 0.0))
        noise *= 1.0 / max(float(noise.std()), 1e-6)
    return noise * np.float32(sigma)


def _metal_voids(signal: np.ndarray, affine: np.ndarray, centres: np.ndarray, radius_mm: float = 7.0) -> None:
    """Dental metal in MRI: a signal void around each filling (susceptibility), in place."""
    inv = np.linalg.inv(affine)
    zooms = np.linalg.norm(np.asarray(affine)[:3, :3], axis=0)
    for c in centres:
        centre = inv[:3, :3] @ c + inv[:3, 3]
        lo = np.maximum(0, np.floor(centre - radius_mm / zooms).astype(int))
        hi = np.minimum(signal.shape, np.ceil(centre + radius_mm / zooms).astype(int) + 1)
        if np.any(lo >= hi):
            continue
        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        idx = np.indices(tuple(hi - lo)).astype(float) + lo[:, None, None, None]
        d2 = sum(((idx[a] - centre[a]) * zooms[a]) ** 2 for a in range(3))
        signal[box][d2 <= radius_mm**2] = 0.0
