"""A coarser voxel grid for the QC masks, and back.

Why: the QC masks (head, brain, face region) are morphology on the whole volume (closings,
slice-by-slice hole filling, connected components); their cost grows with the voxel count, and a
mask on a grid twice as coarse costs about an eighth. QC needs the masks' voxel counts and
overlaps, not their exact boundary, so a 4 mm grid moves the QC figures by far less than the
labels' thresholds (issue #15 measured brain Dice moves < 0.005 on the sample; see
docs/benchmarks.md).

Coarsening averages blocks of ``factors`` voxels (block mean: HU thresholds still read HU, and the
noise drops rather than aliases); refining repeats every coarse voxel over its block (nearest
neighbour), so a refined mask has the fine volume's exact shape.
"""

from __future__ import annotations

import numpy as np

from defacebench.contracts import Volume


def grid_factors(zooms: tuple[float, float, float], grid_mm: float) -> tuple[int, int, int]:
    """Integer block size per axis that brings voxels of ``zooms`` mm nearest to ``grid_mm``
    (1 = keep the axis; ``grid_mm <= 0`` keeps the fine grid)."""
    if grid_mm <= 0:
        return (1, 1, 1)
    return tuple(max(1, int(round(grid_mm / float(z)))) for z in zooms)  # type: ignore[return-value]


def coarsen(volume: Volume, factors: tuple[int, int, int]) -> Volume:
    """``volume`` averaged over blocks of ``factors`` voxels, with the affine of the block centres.

    A partial last block (shape not a multiple of the factor) is filled up by repeating the
    volume's last voxel along that axis (edge padding) before averaging, so every fine voxel
    belongs to exactly one coarse voxel."""
    if factors == (1, 1, 1):
        return volume
    data = np.asarray(volume.data, np.float32)
    pad = [(0, (-n) % f) for n, f in zip(data.shape, factors)]
    padded = np.pad(data, pad, mode="edge") if any(p for _, p in pad) else data
    shape = [n // f for n, f in zip(padded.shape, factors)]
    blocks = padded.reshape(shape[0], factors[0], shape[1], factors[1], shape[2], factors[2])
    coarse = blocks.mean(axis=(1, 3, 5), dtype=np.float32)
    scale = np.diag([*factors, 1]).astype(float)
    scale[:3, 3] = [(f - 1) / 2.0 for f in factors]  # coarse voxel centre = centre of its block
    return Volume(np.ascontiguousarray(coarse), np.asarray(volume.affine, float) @ scale, volume.modality)


def refine(mask: np.ndarray, factors: tuple[int, int, int], shape: tuple[int, int, int]) -> np.ndarray:
    """A coarse mask on the fine grid of ``shape``: each coarse voxel repeated over its block
    (the inverse of a block reduction such as :func:`coarsen`; the renderers' head masks use it too)."""
    out = np.asarray(mask, bool)
    for axis, f in enumerate(factors):
        if f > 1:
            out = np.repeat(out, f, axis=axis)
    return np.ascontiguousarray(out[: shape[0], : shape[1], : shape[2]])
