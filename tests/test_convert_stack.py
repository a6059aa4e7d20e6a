"""The ``pydicom`` converter (issue #15): the validated datasets' pixels stacked in slice order, with
the headers' geometry; the default, and equal to dicom2nifti on a real series."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from defacebench.data import dicomio
from defacebench.data.convert import ConversionParams, convert_acquisition
from defacebench.data.stack import read_stack
from defacebench.data.volume import load_volume
from defacebench.errors import ConversionError
from tests.test_convert import acq, canonical_reference, make_series


def _ordered(folder: Path):
    series, _ = dicomio.find_series(folder)
    return dicomio.sorted_slices(series[0], folder)[0]


def test_pydicom_is_the_default_and_equals_dicom2nifti(tmp_path):
    make_series(tmp_path / "dcm", shape=(11, 9, 7))
    assert ConversionParams().converter == "pydicom"
    got = load_volume(convert_acquisition(acq(tmp_path / "dcm"), tmp_path / "a.nii.gz").output_path)
    ref = load_volume(convert_acquisition(acq(tmp_path / "dcm"), tmp_path / "b.nii.gz",
                                          ConversionParams("dicom2nifti")).output_path)
    assert got.data.shape == ref.data.shape and float(np.abs(got.data - ref.data).max()) == 0.0
    np.testing.assert_allclose(got.affine, ref.affine, atol=1e-4)


def test_stack_decodes_the_validation_reads_without_reading_again(tmp_path):
    hu, aff = make_series(tmp_path / "dcm", shape=(11, 9, 7))
    ordered = _ordered(tmp_path / "dcm")
    for head in ordered:
        head.path.unlink()  # a second read would fail
    data, affine = read_stack(ordered, tmp_path / "dcm")
    assert data.dtype == np.float32
    got_data, got_affine = canonical_reference(data, affine)  # the writer stores rows/columns in LPS order
    ref_data, ref_affine = canonical_reference(hu, aff)
    np.testing.assert_allclose(got_affine, ref_affine, atol=1e-3)
    np.testing.assert_array_equal(got_data, ref_data)


def test_a_slice_of_another_size_is_named(tmp_path):
    make_series(tmp_path / "a", shape=(11, 9, 4), key="s1")
    make_series(tmp_path / "b", shape=(12, 9, 4), key="s2")
    ordered, odd = _ordered(tmp_path / "a"), _ordered(tmp_path / "b")[0]
    mixed = [*ordered[:2], type(odd)(**{**odd.__dict__, "rows": ordered[0].rows, "columns": ordered[0].columns}),
             *ordered[3:]]
    with pytest.raises(ConversionError, match=str(odd.path.name)):
        read_stack(mixed, tmp_path / "a")
