"""The harness's .nii.gz through ISA-L (issue #15): the same NIfTI stream as nibabel writes, read
back to the same voxels, header and affine; deterministic bytes; zlib when isal is missing; a
broken file still gets load_volume's error naming it."""

from __future__ import annotations

import sys
import zlib

import nibabel as nib
import numpy as np
import pytest

from defacebench.contracts import Volume
from defacebench.data import niigz
from defacebench.data.volume import load_volume, save_volume, to_nifti
from defacebench.errors import ConversionError


def _volume() -> Volume:
    rng = np.random.default_rng(3)
    affine = np.array([[0, 2.0, 0, 3], [1.5, 0, 0, -4], [0, 0, 1.1, 5], [0, 0, 0, 1]])  # non-canonical
    return Volume(rng.normal(0, 400, (9, 6, 7)).astype(np.float32), affine, "ct")


def test_saved_volume_is_nibabels_stream_and_reads_identically(tmp_path):
    volume = _volume()
    path = save_volume(volume, tmp_path / "v.nii.gz")
    nib.save(to_nifti(volume), str(tmp_path / "nib.nii.gz"))
    assert zlib.decompress(path.read_bytes(), wbits=31) == zlib.decompress((tmp_path / "nib.nii.gz").read_bytes(), wbits=31)
    ours, theirs = load_volume(path), load_volume(tmp_path / "nib.nii.gz")
    assert np.array_equal(ours.data, theirs.data) and np.array_equal(ours.affine, theirs.affine)
    assert ours.modality == theirs.modality == "ct"
    fast = niigz.read_nifti_gz(path)
    slow = nib.load(str(path))
    assert np.array_equal(np.asarray(fast.dataobj), np.asarray(slow.dataobj))
    assert fast.header.binaryblock == slow.header.binaryblock
    assert save_volume(volume, tmp_path / "again.nii.gz").read_bytes() == path.read_bytes()  # deterministic


def test_without_isal_the_files_are_zlibs(tmp_path, monkeypatch):
    volume = _volume()
    with_isal = save_volume(volume, tmp_path / "isal.nii.gz")
    monkeypatch.setitem(sys.modules, "isal", None)  # import isal -> ImportError
    plain = save_volume(volume, tmp_path / "zlib.nii.gz")
    assert zlib.decompress(plain.read_bytes(), wbits=31) == zlib.decompress(with_isal.read_bytes(), wbits=31)
    assert np.array_equal(load_volume(plain).data, load_volume(with_isal).data)


def test_a_truncated_file_is_reported_by_name(tmp_path):
    path = save_volume(_volume(), tmp_path / "v.nii.gz")
    path.write_bytes(path.read_bytes()[:-400])
    assert niigz.read_nifti_gz(path) is None
    with pytest.raises(ConversionError, match="v.nii.gz"):
        load_volume(path)
