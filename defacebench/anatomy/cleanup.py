"""Post-defacing cleanup: what happens to the voxels a defacer removed.

Why it exists: pydeface, fsl_deface, AFNI and quickshear were written for MRI, where 0 is "nothing".
They fill removed voxels with 0. In CT, 0 HU is water: a first-hit skin surface (e.g. at -400 HU)
then runs along the outside of the removed block, so a renderer shows a solid "shell" where the face
was, and the head outline still carries shape information. Three policies:

- ``mask`` (default): exactly the removed voxels are set to air: ``air_hu`` (-1000 HU) on CT,
  ``mri_air`` (0, what MRI defacers write anyway) on MRI, by ``Volume.modality``. Removed voxels
  come from the tool's mask (``mask``: nonzero = removed) or, when the tool gives none, from
  ``original != defaced``. Nothing else changes. For refacers (``refacers``: their replaced face is
  their output, not a removal) only mask voxels the tool set to 0 count as removed.
- ``seed_range``: the seed study's replacement, reproduced for comparison. On the defaced volume,
  voxels whose value lies in a per-tool range are set to the volume minimum: [-3, 3] after pydeface
  (and pydeface_ants), [0, 0] after FSL, [-1, 1] after AFNI reface. It also punches holes into real
  tissue whose HU happens to fall in the range (water-like tissue, CSF), which is why it is not the default.
  Defacers without a range in ``seed_ranges`` are left unchanged.
- ``none``: the defacer's output as it is (zero fill renders as a shell on CT).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from defacebench.contracts import Volume

POLICIES = ("mask", "seed_range", "none")

SEED_RANGES: tuple[tuple[str, float, float], ...] = (
    ("pydeface", -3.0, 3.0),
    ("pydeface_ants", -3.0, 3.0),
    ("fsl_deface", 0.0, 0.0),
    ("afni_reface", -1.0, 1.0),
    ("afni_reface_plus", -1.0, 1.0),
    ("afni_deface", -1.0, 1.0),
)
"""The seed study's (defacer, low, high) replacement ranges; the AFNI bounds are the study's for
reface, applied to the other two AFNI outputs too (same tool, same zero fill)."""


@dataclass(frozen=True)
class CleanupParams:
    """Which cleanup ``policy`` runs ("mask" | "seed_range" | "none") and its values."""

    policy: str = "mask"
    air_hu: float = -1000.0
    mri_air: float = 0.0
    seed_ranges: tuple[tuple[str, float, float], ...] = SEED_RANGES
    refacers: tuple[str, ...] = ("afni_reface", "afni_reface_plus")
    fill_value: float = 0.0

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(
                f"cleanup policy {self.policy!r} is unknown: use one of {', '.join(POLICIES)}"
            )


def removed_voxels(
    original: Volume, defaced: Volume, *, mask: np.ndarray | None, defacer: str,
    params: CleanupParams = CleanupParams(),
) -> np.ndarray:
    """Boolean array of the voxels the defacer removed (see the module docstring for the rule)."""
    _check_grids(original, defaced, mask)
    if mask is None:
        return np.asarray(original.data) != np.asarray(defaced.data)
    removed = np.asarray(mask) != 0
    if defacer in params.refacers:
        removed &= np.asarray(defaced.data) == params.fill_value
    return removed


def apply_cleanup(
    original: Volume, defaced: Volume, *, mask: np.ndarray | None, defacer: str,
    params: CleanupParams = CleanupParams(),
) -> Volume:
    """Return the cleaned defaced volume (a new Volume; the inputs are not modified)."""
    if params.policy == "none":
        return defaced
    if params.policy == "seed_range":
        return seed_range_cleanup(defaced, defacer=defacer, params=params)
    removed = removed_voxels(original, defaced, mask=mask, defacer=defacer, params=params)
    data = np.array(defaced.data, dtype=np.float32, copy=True)
    data[removed] = fill_value(original.modality, params)
    return Volume(data=data, affine=np.asarray(defaced.affine, float).copy(), modality=original.modality)


def fill_value(modality: str, params: CleanupParams = CleanupParams()) -> float:
    """What removed voxels become: air in the modality's units (-1000 HU on CT, 0 on MRI)."""
    return params.mri_air if modality == "mri" else params.air_hu


def seed_range_cleanup(defaced: Volume, *, defacer: str, params: CleanupParams = CleanupParams()) -> Volume:
    """The seed study's intensity-range replacement (values in the tool's range -> volume minimum)."""
    bounds = {name: (lo, hi) for name, lo, hi in params.seed_ranges}
    if defacer not in bounds:
        return defaced
    lo, hi = bounds[defacer]
    data = np.array(defaced.data, dtype=np.float32, copy=True)
    data[(data >= lo) & (data <= hi)] = float(np.min(defaced.data))
    return Volume(data=data, affine=np.asarray(defaced.affine, float).copy(), modality=defaced.modality)


def _check_grids(original: Volume, defaced: Volume, mask: np.ndarray | None) -> None:
    """Raise ValueError when the volumes (and mask) are not on one voxel grid."""
    if np.shape(original.data) != np.shape(defaced.data):
        raise ValueError(
            f"cleanup: defaced shape {np.shape(defaced.data)} differs from the original "
            f"{np.shape(original.data)}; the defacer must keep the voxel grid"
        )
    if not np.allclose(original.affine, defaced.affine, atol=1e-3):
        raise ValueError("cleanup: defaced affine differs from the original; the defacer must keep the grid")
    if mask is not None and np.shape(mask) != np.shape(original.data):
        raise ValueError(
            f"cleanup: mask shape {np.shape(mask)} differs from the volume {np.shape(original.data)}"
        )
