"""Load and save 3-D volumes as canonical-RAS float32 :class:`~defacebench.contracts.Volume` records.

Everything downstream of conversion sees one orientation (RAS+, via nibabel's
``as_closest_canonical``) so renderers and defacers never have to guess which way the face points.
Invalid inputs (4-D, NaN/inf, unreadable) raise :class:`~defacebench.errors.ConversionError`
naming the file, the problem and the fix.

The volume's modality travels with the file: :func:`save_volume` writes ``modality=ct`` (or
``mri``) into the NIfTI header's ``descrip`` field, which defacers that copy the input header keep;
:func:`load_volume` reads it back (an explicit ``modality`` argument wins; an untagged file gets the
modality its intensities suggest, see :mod:`defacebench.data.modality`).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

from defacebench.contracts import Volume
from defacebench.data.niigz import nifti_gz_bytes, read_nifti_gz
from defacebench.errors import ConversionError

NIFTI_SUFFIXES = (".nii", ".nii.gz")
_TAG = re.compile(r"modality=(ct|mri)\b")


def tag_modality(img: nib.Nifti1Image, modality: str) -> None:
    """Record ``modality`` in the image header's ``descrip`` (in place; other text is kept)."""
    old = _TAG.sub("", bytes(img.header["descrip"]).split(b"\0")[0].decode("latin-1", "replace")).strip()
    img.header["descrip"] = f"modality={modality} {old}".strip()[:79].encode("latin-1", "replace")


def modality_tag(img) -> str | None:
    """The modality recorded by :func:`tag_modality` in a NIfTI header, or None."""
    header = getattr(img, "header", None)
    if header is None or "descrip" not in header:
        return None
    found = _TAG.search(bytes(header["descrip"]).decode("latin-1", "replace"))
    return found.group(1) if found else None


def is_nifti(path: Path) -> bool:
    """True when ``path``'s name ends in ``.nii`` or ``.nii.gz`` (case-insensitive)."""
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def _check_3d(data_shape: tuple[int, ...], path: Path) -> None:
    """Raise ConversionError unless the image is 3-D (trailing singleton dims are tolerated)."""
    extra = data_shape[3:]
    if len(data_shape) < 3:
        raise ConversionError(
            f"{path}: image has {len(data_shape)} dimensions {data_shape}; a head volume needs 3. "
            "Fix: give a 3-D NIfTI of the whole head."
        )
    if any(n != 1 for n in extra):
        raise ConversionError(
            f"{path}: image is {len(data_shape)}-D with shape {data_shape} (a time series or several "
            "volumes); defacebench needs one 3-D volume. Fix: split it (e.g. fslsplit or "
            "nibabel.four_to_three) and give one volume per acquisition."
        )


def check_finite(data: np.ndarray, path: Path | str) -> None:
    """Raise ConversionError when ``data`` contains NaN or inf (they break thresholds and renders)."""
    bad = ~np.isfinite(data)
    if bad.any():
        n_nan = int(np.isnan(data).sum())
        n_inf = int(bad.sum()) - n_nan
        raise ConversionError(
            f"{path}: volume has {n_nan} NaN and {n_inf} inf voxels; values must be finite HU. "
            "Fix: replace them (e.g. with -1000 for air) or re-export the scan."
        )


def check_affine(affine: np.ndarray, path: Path | str) -> None:
    """Raise ConversionError when the voxel-to-world affine is not finite, zero or singular.

    Why here: without a usable affine the orientation is unknown, so no canonical volume (and no
    face direction) exists; nibabel would fail later with "Could not decompose affine", naming
    neither the file nor a fix.
    """
    a = np.asarray(affine, dtype=float)
    if a.shape != (4, 4) or not np.all(np.isfinite(a)):
        raise ConversionError(f"{path}: the header's voxel-to-world affine is missing or not finite; the "
                              "orientation is unknown. Fix: repair the sform/qform or re-export the scan.")
    linear = a[:3, :3]
    zooms = np.linalg.norm(linear, axis=0)
    normalised_det = abs(float(np.linalg.det(linear))) / float(np.prod(zooms)) if np.all(zooms > 0) else 0.0
    if normalised_det < 1e-6:
        raise ConversionError(
            f"{path}: the header's voxel-to-world affine is zero or singular (axis lengths "
            f"{', '.join(f'{z:.3g}' for z in zooms)} mm, axes not independent); the orientation is unknown. "
            "Fix: repair the header (e.g. `fslorient -copyqform2sform`, or nibabel set_sform/set_qform with "
            "the scanner geometry) or re-export the scan from DICOM."
        )


def load_volume(path: Path | str, modality: str | None = None) -> Volume:
    """Read a NIfTI file as a canonical RAS+ float32 Volume; raise ConversionError when unusable.

    The Volume's modality: ``modality`` when given, else the header's tag, else the intensities'
    verdict (:func:`defacebench.data.modality.intensity_modality`; CT when undecided)."""
    path = Path(path)
    try:
        # in one piece through ISA-L when it is a single-file NIfTI-1 .nii.gz; nib.load otherwise
        img = (read_nifti_gz(path) if path.name.endswith(".gz") else None) or nib.load(str(path))
        shape = tuple(int(n) for n in img.shape)
    except FileNotFoundError:
        raise ConversionError(f"{path}: file not found. Fix: check the path.") from None
    except Exception as exc:  # nibabel raises many types for corrupt files
        raise ConversionError(
            f"{path}: cannot read as NIfTI ({type(exc).__name__}: {exc}). "
            "Fix: give a valid .nii/.nii.gz file (re-export or re-convert it)."
        ) from exc
    _check_3d(shape, path)
    try:
        data = np.asarray(img.dataobj, dtype=np.float32).reshape(shape[:3])
    except Exception as exc:  # truncated gzip / short data
        raise ConversionError(
            f"{path}: voxel data unreadable ({type(exc).__name__}: {exc}); the file is probably "
            "truncated. Fix: re-export or re-convert it."
        ) from exc
    check_finite(data, path)
    check_affine(img.affine, path)
    img3 = nib.Nifti1Image(data, img.affine)
    can = nib.as_closest_canonical(img3)
    if modality is None:
        modality = modality_tag(img)
    if modality is None:
        from defacebench.data.modality import intensity_modality

        modality = intensity_modality(data).modality or "ct"
    return Volume(data=np.asarray(can.dataobj, dtype=np.float32), affine=np.asarray(can.affine, float),
                  modality=modality)


def to_nifti(volume: Volume) -> nib.Nifti1Image:
    """Wrap a Volume as a float32 NIfTI image with both qform and sform set to its affine."""
    img = nib.Nifti1Image(np.asarray(volume.data, dtype=np.float32), np.asarray(volume.affine, float))
    img.set_qform(volume.affine, code=1)
    img.set_sform(volume.affine, code=1)
    img.header.set_xyzt_units("mm")
    tag_modality(img, volume.modality)
    return img


def save_nifti_atomic(img: nib.Nifti1Image, path: Path | str, *, fast_gzip: bool = False) -> Path:
    """Write ``img`` to ``path`` atomically: temp file in the same folder, then ``os.replace``.
    ``fast_gzip``: a .nii.gz is compressed by :mod:`defacebench.data.niigz` (ISA-L), not nibabel's zlib.

    A full disk or a read-only folder leaves nothing behind and raises StorageError naming the folder.
    """
    from defacebench.util.fsutil import storage_errors

    path = Path(path)
    with storage_errors(path.parent, path.name):
        path.parent.mkdir(parents=True, exist_ok=True)
        suffix = ".nii.gz" if str(path).endswith(".gz") else ".nii"
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=path.parent)
        os.close(fd)
        try:
            if fast_gzip and suffix == ".nii.gz" and isinstance(img, nib.Nifti1Image):
                Path(tmp).write_bytes(nifti_gz_bytes(img))  # the same NIfTI stream, a faster gzip
            else:
                nib.save(img, tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return path


def save_volume(volume: Volume, path: Path | str) -> Path:
    """Save a Volume as a float32 NIfTI atomically; raise ConversionError on 4-D or non-finite data."""
    data = np.asarray(volume.data)
    if data.ndim != 3:
        raise ConversionError(
            f"{path}: refusing to save a {data.ndim}-D array {data.shape}; a Volume must be 3-D."
        )
    check_finite(data, path)
    return save_nifti_atomic(to_nifti(volume), path, fast_gzip=True)
