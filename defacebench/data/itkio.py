"""SimpleITK input: DICOM series through GDCM, and single-file images (NRRD, MHA/MHD, NIfTI...).

ITK images carry origin, spacing and a direction matrix in LPS; this module turns them into a
numpy array indexed (i, j, k) = (x, y, z) of the ITK image and a RAS voxel-to-world affine, the
convention of the rest of defacebench. ``import SimpleITK`` happens on first use.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from defacebench.errors import ConversionError

ITK_SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd")
"""Single-file image formats read through SimpleITK (NIfTI stays with nibabel unless asked)."""


def is_itk_image(path: Path) -> bool:
    """True when ``path``'s name ends in one of :data:`ITK_SUFFIXES` (case-insensitive)."""
    return str(path).lower().endswith(ITK_SUFFIXES)


def _sitk():
    """The SimpleITK module, or a ConversionError saying how to install it."""
    try:
        import SimpleITK as sitk
    except ImportError as exc:
        raise ConversionError(f"SimpleITK is not installed ({exc}). Fix: pip install SimpleITK") from exc
    return sitk


def image_to_array(image) -> tuple[np.ndarray, np.ndarray]:
    """(data indexed x, y, z as float32, RAS affine) of a 3-D SimpleITK image."""
    sitk = _sitk()
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise ConversionError(f"image has {image.GetDimension()} dimensions and "
                              f"{image.GetNumberOfComponentsPerPixel()} components; a head volume is 3-D scalar")
    data = np.ascontiguousarray(sitk.GetArrayFromImage(image).transpose(2, 1, 0)).astype(np.float32)
    direction = np.asarray(image.GetDirection(), float).reshape(3, 3)
    lps = np.eye(4)
    lps[:3, :3] = direction * np.asarray(image.GetSpacing(), float)[None, :]
    lps[:3, 3] = image.GetOrigin()
    return data, np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def read_image(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one image file with SimpleITK; ConversionError naming the file when it cannot."""
    sitk = _sitk()
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:  # SimpleITK raises RuntimeError with ITK's message
        first = str(exc).strip().splitlines()[-1][:300] if str(exc).strip() else "no message"
        raise ConversionError(f"{path}: SimpleITK cannot read it ({first}). Fix: give a valid "
                              "NRRD/MHA/MHD/NIfTI file (re-export it).") from exc
    try:
        return image_to_array(image)
    except ConversionError as exc:
        raise ConversionError(f"{path}: {exc}") from exc


def read_series(files: list[Path], folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a sorted DICOM series with SimpleITK's GDCM series reader (rescale slope/intercept applied)."""
    sitk = _sitk()
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(f) for f in files])
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1][:300] if str(exc).strip() else "no message"
        raise ConversionError(f"{folder}: SimpleITK failed to read the series ({first}). "
                              "Fix: try --converter dicom2nifti or check the series.") from exc
    return image_to_array(image)
