"""The exact speed-ups of issue 23 give the former numbers: defacebench.anatomy.morph equals
scipy.ndimage (the brain mask must not change a voxel) on random masks, ellipsoids of random radii
and voxel sizes and the slice-wise hole filling; registration.ct_to_t1's lookup equals np.interp."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from defacebench.anatomy import morph
from defacebench.anatomy.brainmask import ball

MASKS = arrays(bool, st.tuples(st.integers(1, 12), st.integers(1, 12), st.integers(1, 12)))
ZOOMS = st.tuples(*[st.floats(0.4, 3.0)] * 3)
RADII = st.floats(0.3, 6.0)


@settings(max_examples=80, deadline=None)
@given(MASKS, ZOOMS, RADII)
def test_dilate_erode_close_open_equal_scipy(mask, zooms, radius):
    b = ball(radius, zooms)
    assert np.array_equal(morph.dilate(mask, b), ndimage.binary_dilation(mask, b))
    assert np.array_equal(morph.erode(mask, b), ndimage.binary_erosion(mask, b, border_value=0))
    assert np.array_equal(morph.closing(mask, b), ndimage.binary_closing(mask, b, border_value=0))
    assert np.array_equal(morph.opening(mask, b), ndimage.binary_opening(mask, b))


@settings(max_examples=80, deadline=None)
@given(MASKS, st.integers(-1, 2))
def test_fill_holes_equals_scipy(mask, axis):
    """axis -1: scipy's default 3-D structure; 0..2: the slice-wise cross of brainmask.fill_slices."""
    structure = None
    if axis >= 0:
        structure = np.zeros((3, 3, 3), bool)
        index = [slice(None)] * 3
        index[axis] = 1
        structure[tuple(index)] = ndimage.generate_binary_structure(2, 1)
    assert np.array_equal(morph.fill_holes(mask, structure), ndimage.binary_fill_holes(mask, structure))


def test_a_closed_shell_is_filled_and_an_open_one_is_not():
    shell = np.zeros((9, 10, 11), bool)
    shell[2:7, 2:8, 2:9] = True
    shell[3:6, 3:7, 3:8] = False
    assert morph.fill_holes(shell)[4, 5, 5]
    shell[4, 5, 2] = False  # a hole through the wall to the outside
    assert not morph.fill_holes(shell)[4, 5, 5]


def test_non_contiguous_rows_are_refused():
    structure = np.zeros((3, 3, 3), bool)
    structure[1, 1, [0, 2]] = True
    with pytest.raises(ValueError, match="contiguous"):
        morph.dilate(np.ones((4, 4, 4), bool), structure)


def test_empty_mask_closing_and_box():
    empty = np.zeros((5, 6, 7), bool)
    assert morph.box_of(empty, 2) is None
    assert not morph.closing(empty, ball(2.0, (1.0, 1.0, 1.0))).any()
    assert not morph.opening(empty, ball(2.0, (1.0, 1.0, 1.0))).any()


@settings(max_examples=60, deadline=None)
@given(arrays(np.float32, st.integers(1, 200), elements=st.one_of(
    st.integers(-3024, 3071).map(float),
    st.floats(-5000, 5000, width=32, allow_nan=False))), st.booleans())
def test_ct_to_t1_lookup_equals_interp_everywhere(values, whole):
    """The per-HU lookup of registration.ct_to_t1 gives np.interp's numbers, for whole HU (the
    lookup) and for fractional ones (the fallback)."""
    from defacebench.anatomy.registration import CtToT1Params, ct_to_t1

    data = np.round(values) if whole else values
    p = CtToT1Params()
    assert np.array_equal(ct_to_t1(data, p), np.interp(data, p.hu_knots, p.t1_knots).astype(np.float32))
