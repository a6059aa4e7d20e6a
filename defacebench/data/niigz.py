"""Gzipped NIfTI bytes through ISA-L (``isal``): the harness's own .nii.gz reads and writes.

Why (issue #15): every stage reads or writes a float32 volume, and zlib's deflate, even at level 1
as nibabel writes, cost about 0.1 CPU s per 2 mm sample volume written and 0.03 s per volume read
(7 MB each): several seconds of a 16-subject run, more than a stage's own work. ISA-L's gzip
writes the same NIfTI stream about 5x faster and reads it about 1.5x faster; the file is a
standard gzip file (any NIfTI reader, FSL, ANTs), its bytes differ from zlib's, so cache entries
keyed on a volume's hash differ from those written by zlib, while the voxels and the header are the
same. Without ``isal`` installed both fall back to zlib (the same files nibabel writes).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import nibabel as nib

GZIP_LEVEL = 1  # ISA-L's level 1: as small as zlib's level 1 on these volumes (its level 3 is slower)


def gzip_bytes(raw: bytes) -> bytes:
    """``raw`` as one gzip member, header time 0 (the same bytes for the same input)."""
    try:
        from isal import igzip
    except ImportError:
        import gzip

        return gzip.compress(raw, compresslevel=GZIP_LEVEL, mtime=0)
    return igzip.compress(raw, GZIP_LEVEL, mtime=0)


def gunzip_bytes(data: bytes) -> bytes:
    """The content of a gzip file (every member)."""
    try:
        from isal import igzip
    except ImportError:
        return zlib.decompress(data, wbits=31)
    return igzip.decompress(data)


def nifti_gz_bytes(img: nib.Nifti1Image) -> bytes:
    """What ``nib.save(img, "x.nii.gz")`` writes, compressed by :func:`gzip_bytes`."""
    return gzip_bytes(img.to_bytes())


def read_nifti_gz(path: Path) -> nib.Nifti1Image | None:
    """A single-file NIfTI-1 ``.nii.gz`` read in one piece, or None when it is not one (NIfTI-2,
    a corrupt or truncated file...): the caller then uses ``nib.load``, whose errors name the problem."""
    try:
        raw = gunzip_bytes(Path(path).read_bytes())
        if raw[344:348] != b"n+1\x00":
            return None
        return nib.Nifti1Image.from_bytes(raw)
    except Exception:  # noqa: BLE001 - any failure: nib.load reads it (or reports why it cannot)
        return None
