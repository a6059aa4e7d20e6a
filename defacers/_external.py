"""Shared plumbing of the defacer plugins: staging the input, finding outputs, masks, logs.

Every defacer here follows the same rules:

- the input is never touched: external tools get a *copy* inside the workdir (``stage_input``), so
  tools that write next to their input (pydeface ``--nocleanup``) or choke on spaces in paths (shell
  scripts such as ``fsl_deface``) only ever see a plain name in a folder we own;
- tools may write ``.nii`` or ``.nii.gz`` whatever they were asked for: ``find_nifti`` accepts both;
- the output must keep the input's voxel grid (``check_grid``), else it is a failure;
- ``mask_path`` of a :class:`~defacebench.contracts.DefaceResult` is always a uint8 NIfTI on the
  input grid with **1 = removed (or replaced) voxel**, written by ``write_removed_mask`` from the
  tool's own mask (whatever its polarity) or from the voxels the tool changed.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

from defacebench.errors import DefaceError
from defacebench.plugins.tools import ToolRun, which

REMOVED_MASK_NAME = "removed_mask.nii.gz"


def nifti_suffix(path: Path) -> str:
    """``.nii.gz`` or ``.nii`` (the suffix a staged copy or an output should carry)."""
    return ".nii.gz" if str(path).lower().endswith(".nii.gz") else ".nii"


def stage_input(volume_path: Path, workdir: Path, stem: str = "input") -> Path:
    """Copy the input NIfTI into ``workdir`` under a plain name; the original is only read."""
    volume_path = Path(volume_path)
    if not volume_path.is_file():
        raise DefaceError(f"{volume_path}: input volume not found. Fix: check the path.")
    staged = Path(workdir) / f"{stem}{nifti_suffix(volume_path)}"
    shutil.copyfile(volume_path, staged)
    staged.chmod(0o644)  # the copy of a read-only input must be readable by the tool, nothing more
    return staged


def find_nifti(folder: Path, stem: str) -> Path | None:
    """``folder/stem.nii.gz`` or ``folder/stem.nii``, whichever exists and is non-empty (gz first)."""
    for suffix in (".nii.gz", ".nii"):
        path = Path(folder) / f"{stem}{suffix}"
        if path.is_file() and path.stat().st_size > 0:
            return path
    return None


def require_nifti(folder: Path, stem: str, *, what: str, run: ToolRun | None = None) -> Path:
    """Like :func:`find_nifti` but raise DefaceError (with the tool's log) when neither exists."""
    found = find_nifti(folder, stem)
    if found is None:
        present = sorted(p.name for p in Path(folder).iterdir()) if Path(folder).is_dir() else []
        tail = f" Tool said: {run.tail()}" if run is not None and run.tail() else ""
        raise DefaceError(
            f"{what}: expected output {Path(folder) / stem}.nii[.gz] was not written or is empty "
            f"(folder holds {present}).{tail}",
            log=run.log() if run is not None else "",
        )
    return found


def check_grid(input_path: Path, output_path: Path, *, what: str, log: str = "") -> None:
    """Raise DefaceError when the output's shape or affine differ from the input's."""
    try:
        src, out = nib.load(str(input_path)), nib.load(str(output_path))
        out_shape = out.shape[:3]
    except Exception as exc:  # nibabel raises several types for unreadable files
        raise DefaceError(f"{what}: output {output_path} is not a readable NIfTI ({exc})", log=log) from exc
    if tuple(out_shape) != tuple(src.shape[:3]) or not np.allclose(out.affine, src.affine, atol=1e-3):
        raise DefaceError(
            f"{what}: output {output_path} has shape {out_shape} and affine\n{out.affine}\nbut the input has "
            f"{src.shape[:3]} and\n{src.affine}; a defacer must keep the voxel grid",
            log=log,
        )


def removed_from_tool_mask(mask: np.ndarray, original: np.ndarray, defaced: np.ndarray) -> np.ndarray:
    """Boolean removed-voxel mask from a tool mask of unknown polarity.

    Tools disagree: pydeface's and FSL's masks mark the voxels *kept* (the image is multiplied by
    them), AFNI's face images mark the face. The side of the mask on which the tool changed more
    voxels is the removed side; when nothing changed, a mask covering most of the volume is a keep mask.
    For a keep mask every voxel below its maximum is removed (interpolated borders were scaled).
    """
    values = np.asarray(mask, np.float32).reshape(np.shape(original))
    marked = values != 0
    changed = np.asarray(original) != np.asarray(defaced)
    in_marked, in_unmarked = int((changed & marked).sum()), int((changed & ~marked).sum())
    if in_marked == in_unmarked == 0:
        is_keep = marked.mean() > 0.5
    else:
        is_keep = in_unmarked > in_marked
    if not is_keep:
        return marked
    # A keep mask resampled with interpolation (pydeface's FLIRT) scales its border voxels: they
    # were altered too (air * 0.5 = -500 HU would render), so everything below the maximum counts.
    return values < values.max()


def write_removed_mask(
    input_path: Path, output_path: Path, workdir: Path, *, tool_mask: Path | None = None,
    removed: np.ndarray | None = None,
) -> Path:
    """Write ``workdir/removed_mask.nii.gz`` (uint8, 1 = removed) on the input's grid and return it.

    The mask is ``removed`` when given, else derived from ``tool_mask`` (see
    :func:`removed_from_tool_mask`), else the voxels where output != input.
    """
    src = nib.load(str(input_path))
    if removed is None:
        original = np.asarray(src.dataobj, np.float32)
        defaced = np.asarray(nib.load(str(output_path)).dataobj, np.float32).reshape(original.shape)
        if tool_mask is not None:
            removed = removed_from_tool_mask(np.asarray(nib.load(str(tool_mask)).dataobj), original, defaced)
        else:
            removed = original != defaced
    out = Path(workdir) / REMOVED_MASK_NAME
    nib.save(nib.Nifti1Image(np.asarray(removed, np.uint8), src.affine), str(out))
    return out


def read_input(volume_path: Path, who: str) -> tuple[nib.Nifti1Image, np.ndarray]:
    """The input NIfTI and its float32 voxels for the in-Python defacers; DefaceError naming the file
    when it is missing, unreadable or not 3-D."""
    try:
        img = nib.load(str(volume_path))
        data = np.asarray(img.dataobj, np.float32)
    except Exception as exc:  # nibabel raises several types
        raise DefaceError(f"{volume_path}: cannot read the input NIfTI ({exc}). Fix: give a valid .nii/.nii.gz") from exc
    if data.ndim != 3:
        raise DefaceError(f"{volume_path}: {who} needs a 3-D volume, got shape {data.shape}")
    return img, data


def save_like(img: nib.Nifti1Image, data: np.ndarray, path: Path) -> Path:
    """Save ``data`` as float32 NIfTI with ``img``'s affine and header (its modality tag survives)."""
    out = nib.Nifti1Image(np.asarray(data, np.float32), img.affine, img.header)
    out.set_data_dtype(np.float32)
    nib.save(out, str(path))
    return Path(path)


def find_executable(name: str) -> str | None:
    """``name`` on PATH, else next to this Python (a venv's ``bin``, where pip put e.g. ``pydeface``)."""
    found = which(name)
    if found:
        return found
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None


def join_logs(*parts: str) -> str:
    """One log text from several sections (empty ones skipped)."""
    return "\n".join(p for p in parts if p)
