"""What a head CT shows besides the patient: the head cradle, the table, dental metal and its streaks.

The cradle is a curved plastic/carbon trough along the scanner's z axis whose inner surface touches
the back of the head (as in real scans, where the head rests in it); the table is a carbon-skinned
foam slab under the cradle. Both are drawn in scanner coordinates on the acquisition's own voxel
grid, only where the patient is not. Dental fillings are small dense spheres on a few teeth; each
throws the alternating bright/dark streaks of metal artefact across the slices through it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class HardwareParams:
    """Geometry and HU of the cradle, the table and dental metal."""

    cradle: bool = True
    cradle_radius_mm: float = 96.0
    cradle_wall_mm: float = 6.0
    cradle_hu: float = 180.0
    cradle_open_mm: float = 25.0  # the cradle's sides end this far below its axis (face stays free)
    cradle_length_mm: float = 240.0
    table: bool = True
    table_gap_mm: float = 4.0
    table_mm: float = 40.0
    table_skin_mm: float = 2.5
    table_skin_hu: float = 260.0
    table_core_hu: float = -900.0
    metal_fraction: float = 0.3  # subjects with dental fillings
    metal_hu: float = 3071.0
    metal_radius_mm: float = 2.5
    fillings: tuple[int, int] = (1, 3)
    streak_hu: float = 250.0
    streak_decay_mm: float = 30.0
    streak_lines: tuple[int, int] = (7, 12)


def world_coords(affine: np.ndarray, shape: tuple[int, int, int], k0: int, k1: int) -> np.ndarray:
    """Scanner mm coordinates (3, nx, ny, k1 - k0) of the voxels of slices k0..k1-1."""
    ijk = np.indices((shape[0], shape[1], k1 - k0), dtype=np.float32)
    ijk[2] += k0
    a = np.asarray(affine, np.float32)
    return np.einsum("ab,b...->a...", a[:3, :3], ijk) + a[:3, 3, None, None, None]


def back_of_head(data: np.ndarray, affine: np.ndarray, z_from: float, body_hu: float) -> tuple[float, float]:
    """(x, y) of the most posterior patient voxel above scanner height ``z_from`` (the occiput).

    Looks at every 2nd row and column of the slices whose centre lies above ``z_from`` (enough to
    place a cradle, and 10x cheaper than every voxel)."""
    a = np.asarray(affine, float)
    centre = (np.asarray(data.shape[:2]) - 1) / 2.0
    ks = [k for k in range(data.shape[2]) if (a[:3, :3] @ [centre[0], centre[1], k] + a[:3, 3])[2] > z_from]
    body = np.argwhere(data[::2, ::2, ks] > body_hu).astype(float)
    body[:, :2] *= 2
    body[:, 2] = np.asarray(ks)[body[:, 2].astype(int)]
    xyz = body @ a[:3, :3].T + a[:3, 3]
    back = xyz[np.argmin(xyz[:, 1])]
    return float(back[0]), float(back[1])


def add_cradle_and_table(data: np.ndarray, affine: np.ndarray, back: tuple[float, float], z_contact: float,
                         p: HardwareParams, air_hu: float) -> None:
    """Draw the cradle touching the head at ``back`` and the table under it, in place, where
    ``data`` is air (below ``air_hu``); the patient always wins where they overlap."""
    hx, hy = back
    cy = hy + p.cradle_radius_mm  # the cradle's inner surface passes through the occiput
    table_top = hy - p.cradle_wall_mm - p.table_gap_mm
    step = 16
    for k0 in range(0, data.shape[2], step):
        k1 = min(data.shape[2], k0 + step)
        x, y, z = world_coords(affine, data.shape, k0, k1)
        r = np.hypot(x - hx, y - cy)
        shell = ((r >= p.cradle_radius_mm) & (r <= p.cradle_radius_mm + p.cradle_wall_mm)
                 & (y < cy - p.cradle_open_mm) & (z > z_contact - 0.6 * p.cradle_length_mm)
                 & (z < z_contact + 0.4 * p.cradle_length_mm)) if p.cradle else np.zeros(x.shape, bool)
        below = table_top - y
        slab = (below >= 0) & (below <= p.table_mm) if p.table else np.zeros(x.shape, bool)
        skin = slab & ((below <= p.table_skin_mm) | (below >= p.table_mm - p.table_skin_mm))
        chunk = data[:, :, k0:k1]
        free = chunk < air_hu
        chunk[free & slab] = p.table_core_hu
        chunk[free & skin] = p.table_skin_hu
        chunk[free & shell] = p.cradle_hu


def add_metal(data: np.ndarray, affine: np.ndarray, centres: np.ndarray, rng: np.random.Generator,
              p: HardwareParams) -> None:
    """Paint fillings at ``centres`` (scanner mm) with streaks across the slices through them, in place."""
    inv = np.linalg.inv(affine)
    zooms = np.linalg.norm(np.asarray(affine)[:3, :3], axis=0)
    ii, jj = np.indices(data.shape[:2], dtype=np.float32)
    for c in centres:
        ci, cj, ck = inv[:3, :3] @ c + inv[:3, 3]
        half = int(np.ceil(p.metal_radius_mm / zooms[2]))
        n_lines, phase = int(rng.integers(*p.streak_lines, endpoint=True)), rng.uniform(0, np.pi)
        dx, dy = (ii - ci) * zooms[0], (jj - cj) * zooms[1]
        rr = np.hypot(dx, dy)
        ray = np.cos(n_lines * np.arctan2(dy, dx) + phase)
        streak = p.streak_hu * np.sign(ray) * np.abs(ray) ** 12 * np.exp(-rr / p.streak_decay_mm)
        for k in range(int(np.floor(ck)) - half, int(np.ceil(ck)) + half + 1):
            if not 0 <= k < data.shape[2]:
                continue
            dz = (k - ck) * zooms[2]
            inside = rr**2 + dz**2 <= p.metal_radius_mm**2
            weight = max(0.0, 1.0 - abs(dz) / (p.metal_radius_mm + zooms[2]))
            data[:, :, k] += weight * streak
            data[:, :, k][inside] = p.metal_hu
