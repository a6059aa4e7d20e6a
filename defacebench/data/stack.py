"""The ``pydicom`` converter: a validated, sorted series stacked into one array, geometry from its headers.

Why (issue #15): by the time a converter runs, :mod:`defacebench.data.dicomio` has read every file,
chosen the series, sorted its slices and derived its affine (:func:`~defacebench.data.dicomio.header_affine`);
dicom2nifti then reads every file again and deep-copies each dataset, which cost about two thirds of
a 2 mm sample series' conversion. What is left to do is pixel decoding (of the datasets read for validation, no second read) and the modality LUT
(RescaleSlope/RescaleIntercept, or a Modality LUT Sequence), which pydicom does; this module only
puts the decoded slices in order. Its volumes equal dicom2nifti's on the sample (tests/test_convert_stack.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from defacebench.errors import ConversionError


def _modality_lut():
    """pydicom's ``apply_modality_lut`` (moved to ``pydicom.pixels`` in pydicom 3)."""
    try:
        from pydicom.pixels import apply_modality_lut
    except ImportError:  # pydicom 2.x
        from pydicom.pixel_data_handlers.util import apply_modality_lut
    return apply_modality_lut


def read_stack(ordered, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """(data, affine) of a sorted series (:class:`~defacebench.data.dicomio.SliceHeader` list):
    float32 values after the modality LUT (HU for CT), index order (column, row, slice) as NIfTI
    writers use, and the RAS affine of :func:`~defacebench.data.dicomio.header_affine`."""
    import pydicom

    from defacebench.data.dicomio import header_affine

    lut = _modality_lut()
    first = ordered[0]
    data = np.empty((first.columns, first.rows, len(ordered)), np.float32)
    for k, head in enumerate(ordered):
        try:
            ds = head.dataset if head.dataset is not None else pydicom.dcmread(head.path)
            pixels = np.asarray(lut(ds.pixel_array, ds), np.float32)
        except Exception as exc:  # pydicom raises many types for undecodable pixel data
            raise ConversionError(f"{head.path}: pixel data cannot be decoded ({type(exc).__name__}: {exc}). "
                                  "Fix: try --converter dcm2niix or re-export the series.") from exc
        if pixels.shape != (first.rows, first.columns):
            raise ConversionError(f"{head.path}: image is {pixels.shape}, the series' first slice "
                                  f"{(first.rows, first.columns)}. Fix: split mixed acquisitions.")
        data[:, :, k] = pixels.T  # DICOM rows run down a column: NIfTI's i is the column index
    return data, header_affine(ordered)
