"""Head and brain masks by modality: the HU rules on CT, the T1 intensity rules on MRI.

The one place that maps ``Volume.modality`` to its mask rules, so QC, cleanup and the defacers that
need a brain mask (quickshear, pydeface_ants' ``spare_brain``) apply the same rules.
"""

from __future__ import annotations

import numpy as np

from defacebench.anatomy.brainmask import BrainMaskParams, ct_brain_mask, ct_head_mask
from defacebench.anatomy.mrimask import MriMaskParams, mri_brain_mask, mri_head_mask
from defacebench.contracts import Volume


def head_mask(volume: Volume, params: BrainMaskParams = BrainMaskParams(),
              mri: MriMaskParams = MriMaskParams()) -> np.ndarray:
    """Head voxels by the volume's modality: :func:`ct_head_mask` (HU) or the MRI rule
    (:func:`defacebench.anatomy.mrimask.mri_head_mask`)."""
    if volume.modality == "mri":
        return mri_head_mask(volume, mri)
    return ct_head_mask(volume, params)


def brain_mask(volume: Volume, params: BrainMaskParams = BrainMaskParams(),
               mri: MriMaskParams = MriMaskParams()) -> np.ndarray:
    """Brain voxels by the volume's modality: :func:`ct_brain_mask` (HU) or the MRI rule
    (:func:`defacebench.anatomy.mrimask.mri_brain_mask`)."""
    if volume.modality == "mri":
        return mri_brain_mask(volume, mri)
    return ct_brain_mask(volume, params)


def head_and_brain_masks(volume: Volume, params: BrainMaskParams = BrainMaskParams(),
                         mri: MriMaskParams = MriMaskParams()) -> tuple[np.ndarray, np.ndarray]:
    """``(head_mask(volume), brain_mask(volume))`` with the MRI head mask computed once (the MRI
    brain rule starts from it; QC needs both)."""
    if volume.modality == "mri":
        head = mri_head_mask(volume, mri)
        return head, mri_brain_mask(volume, mri, head=head)
    return ct_head_mask(volume, params), ct_brain_mask(volume, params)


def head_interior(volume: Volume, depth_mm: float = 15.0, params: BrainMaskParams = BrainMaskParams(),
                  mri: MriMaskParams = MriMaskParams()) -> np.ndarray:
    """A crude cranium for when no brain is found (a CT export with clipped bone, a phantom without
    bone): head voxels deeper than ``depth_mm`` under the skin and above the head's centre of mass
    (canonical RAS). quickshear and caideface_ants fall back to it, and say so in their logs."""
    from scipy import ndimage

    head = head_mask(volume, params, mri)
    if not head.any():
        return head
    depth = ndimage.distance_transform_edt(head, sampling=volume.zooms)
    k = np.arange(head.shape[2])[None, None, :]
    return (depth > depth_mm) & (k > float(np.nonzero(head)[2].mean()))


def nifti_modality(img, data: np.ndarray | None = None) -> str:
    """The modality of a NIfTI image for a plugin that got only a file: the header's tag written
    at conversion (:func:`defacebench.data.volume.tag_modality`), else the intensities' verdict
    (:func:`defacebench.data.modality.intensity_modality`), else "ct"."""
    from defacebench.data.modality import intensity_modality
    from defacebench.data.volume import modality_tag

    tag = modality_tag(img)
    if tag:
        return tag
    values = np.asarray(img.dataobj, np.float32) if data is None else data
    return intensity_modality(values).modality or "ct"
