"""Gantry-tilted CT series: detect the shear in a voxel-to-world affine and resample it away.

A CT scanner whose gantry is tilted acquires slice planes rotated about the left-right axis while
the table still steps along z, so the series' voxel grid is sheared: the slice step is not
perpendicular to the slice planes. NIfTI's qform cannot hold a shear and most tools (ANTs/ITK,
VTK, FSL) assume an orthogonal grid. The harness therefore resamples every tilted series once,
with one implementation whatever the converter, onto the orthogonal grid that keeps the row axis
and the table step and takes the in-plane column axis' part perpendicular to both. For the usual
tilt about the row axis this moves each image row along the table axis only (linear
interpolation); voxels that fall outside the acquired slab get ``fill`` (the series' minimum,
i.e. air). The tilt and the resampling are recorded with the conversion.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

TILT_TOLERANCE_DEG = 0.01
"""Shears below this angle are rounding noise in the headers, not a tilted gantry."""


def shear_deg(affine: np.ndarray) -> float:
    """Angle (degrees) between the slice step (third column) and the slice planes' normal."""
    a = np.asarray(affine, float)[:3, :3]
    normal = np.cross(a[:, 0], a[:, 1])
    normal /= max(np.linalg.norm(normal), 1e-12)
    step = a[:, 2] / max(np.linalg.norm(a[:, 2]), 1e-12)
    return float(np.degrees(np.arccos(np.clip(abs(step @ normal), 0.0, 1.0))))


def is_tilted(affine: np.ndarray) -> bool:
    """True when the grid is sheared by more than :data:`TILT_TOLERANCE_DEG`."""
    return shear_deg(affine) > TILT_TOLERANCE_DEG


def orthogonal_affine(affine: np.ndarray) -> np.ndarray:
    """The de-sheared grid: the same row axis and table step, the column axis made perpendicular
    to both (its length shrinks by the cosine of the tilt), the same origin."""
    a = np.asarray(affine, float).copy()
    c0, c1, c2 = a[:3, 0], a[:3, 1], a[:3, 2]
    u0, u2 = c0 / np.linalg.norm(c0), c2 / np.linalg.norm(c2)
    # Gram-Schmidt of c1 against the plane of c0 and c2 (c0 and c2 are orthogonal for a gantry tilt)
    basis = np.linalg.qr(np.column_stack([u0, u2]))[0]
    a[:3, 1] = c1 - basis @ (basis.T @ c1)
    return a


def detilt(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Resample a sheared volume onto :func:`orthogonal_affine` (linear); returns (data, affine).

    An unsheared volume is returned unchanged (same array, same affine)."""
    if not is_tilted(affine):
        return data, np.asarray(affine, float)
    target = orthogonal_affine(affine)
    # target voxel -> source voxel: one affine map, applied by scipy in a single pass
    to_source = np.linalg.inv(np.asarray(affine, float)) @ target
    fill = float(np.min(data))
    out = ndimage.affine_transform(np.asarray(data, np.float32), to_source[:3, :3], offset=to_source[:3, 3],
                                   output_shape=data.shape, order=1, mode="constant", cval=fill,
                                   prefilter=False)
    return out.astype(np.float32), target
