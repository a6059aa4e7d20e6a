"""What a converted volume must be to be benchmarked at all: not blank, and able to hold a face.

Why at intake (issue 25): an all-zero (or otherwise constant) volume used to be accepted, and the
defacer's resulting failure was charged to the defacer; a 2-slice volume or one with 50 mm slices
was accepted without a word, and then the control found no face, which reads as protection. Such a
scan fails its conversion here, naming the file, so it is a recorded failure row of that subject
(dropped before defacing, for every defacer alike) and never a result.

The decision, per case:

- constant volume (every voxel the same value): refused; there is no head in it.
- fewer than ``min_slices`` voxels along an axis, or voxels larger than ``max_voxel_mm``: refused.
  A face's features (nose ~20 mm deep, eye sockets ~35 mm wide) then span at most about two
  voxels: no renderer can show a face, and no defacer has one to remove, so any number computed
  on it would measure the sampling, not the defacer.
- voxels larger than ``warn_voxel_mm`` (thicker than the 5 mm of a routine thick-slice head CT),
  or a field of view shorter than ``warn_extent_mm`` along an axis: converted, with a warning in
  the conversion record (printed by ``convert`` and the run). Such scans are real clinical data;
  whether a face survives in them is what the benchmark measures, so they are not refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from defacebench.errors import ConversionError

AXES = ("R-L", "A-P", "S-I")
"""Names of the canonical (RAS) axes, in index order."""


@dataclass(frozen=True)
class GeometryLimits:
    """When a converted volume is refused (``min_slices``, ``max_voxel_mm``) or converted with a
    warning (``warn_voxel_mm``, ``warn_extent_mm``); see the module docstring for why these values."""

    min_slices: int = 3
    max_voxel_mm: float = 10.0
    warn_voxel_mm: float = 5.0
    warn_extent_mm: float = 100.0


def voxel_mm(affine: np.ndarray) -> np.ndarray:
    """Edge lengths of one voxel (mm) along the index axes of ``affine``."""
    return np.linalg.norm(np.asarray(affine, float)[:3, :3], axis=0)


def check_volume(data: np.ndarray, affine: np.ndarray, where: str,
                 limits: GeometryLimits = GeometryLimits()) -> tuple[dict, list[str]]:
    """Refuse a blank volume or one that cannot hold a face (ConversionError naming ``where``);
    return its geometry (voxel and field-of-view sizes, mm) and the warnings for what is merely coarse.

    ``data`` and ``affine`` are canonical (RAS axes in index order)."""
    shape = tuple(int(n) for n in data.shape[:3])
    sizes = voxel_mm(affine)
    extent = sizes * np.asarray(shape)
    geometry = {"voxel_mm": [round(float(v), 4) for v in sizes], "extent_mm": [round(float(e), 2) for e in extent]}
    few = [k for k, n in enumerate(shape) if n < limits.min_slices]
    if few:
        k = few[0]
        raise ConversionError(
            f"{where}: only {shape[k]} slices along the {AXES[k]} axis (shape {shape}); a head volume needs at "
            f"least {limits.min_slices} to hold a face (this looks like a localiser or a partial export). "
            "Fix: export the whole series, or remove this subject from the dataset")
    coarse = [k for k, v in enumerate(sizes) if v > limits.max_voxel_mm]
    if coarse:
        k = coarse[0]
        raise ConversionError(
            f"{where}: {sizes[k]:g} mm voxels along the {AXES[k]} axis, over the {limits.max_voxel_mm:g} mm limit: "
            "a face's features (nose, eye sockets: 20-35 mm) span at most two voxels, so no face can be "
            "rendered or removed. Fix: use a thinner reconstruction of the scan (most CT studies also store "
            "a 0.5-5 mm series), or remove this subject")
    low, high = float(np.min(data)), float(np.max(data))
    if low == high:
        raise ConversionError(
            f"{where}: the volume is constant (every voxel is {low:g}): an empty or blank scan, with no head "
            "to deface or render. Fix: re-export the scan, or remove this subject from the dataset")
    warnings = [f"{where}: {sizes[k]:g} mm voxels along the {AXES[k]} axis (thicker than {limits.warn_voxel_mm:g} mm): "
                "the face's relief is coarsely sampled; expect the control to find fewer faces"
                for k, v in enumerate(sizes) if v > limits.warn_voxel_mm]
    if np.any(extent < limits.warn_extent_mm):
        size = " x ".join(f"{e:.0f}" for e in extent)
        warnings.append(f"{where}: field of view only {size} mm ({' x '.join(AXES)}); a whole face needs about "
                        f"{limits.warn_extent_mm:g} mm each way, so the face may be cut off")
    return geometry, warnings
