"""`vtk_volume`'s no-copy path (issue 23): a volume in nibabel's Fortran layout goes through the
smoothing, the head cut and into VTK's image without a transposing copy, and gives the same numbers
and the same pixels as the same volume in C order (the former path)."""

from __future__ import annotations

import numpy as np
import pytest

from defacebench.contracts import Volume
from recognizers._backends.head import HeadSeparation, block_any, head_component
from recognizers.render.vtk_volume import VtkVolumeParams, VtkVolumeRenderer, head_only, smoothed


def oblique_head(order: str) -> Volume:
    """A noisy CT-like ellipsoid head on a non-cubic grid, anisotropic voxels, a tilted affine."""
    rng = np.random.default_rng(5)
    shape, zooms = (44, 52, 30), np.array([2.1, 1.8, 3.0])
    idx = np.indices(shape).astype(float)
    r = sum(((idx[a] - (n - 1) / 2) * zooms[a] / (0.4 * n * zooms[a])) ** 2 for a, n in enumerate(shape))
    data = np.where(r <= 1.0, 40.0, -1000.0) + rng.normal(0, 25, shape)
    c, s = np.cos(0.2), np.sin(0.2)
    affine = np.eye(4)
    affine[:3, :3] = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ np.diag(zooms)
    affine[:3, 3] = (-40.0, -47.0, -45.0)
    return Volume(np.asarray(data, np.float32, order=order), affine, "ct")


def test_fortran_smoothing_and_head_cut_equal_the_c_order_ones():
    f, c = oblique_head("F"), oblique_head("C")
    sf, sc = smoothed(f, 1.0, 0.6), smoothed(c, 1.0, 0.6)
    assert sf.data.flags.f_contiguous and np.array_equal(sf.data, sc.data)  # bit for bit
    head = head_component(sc, -400.0, HeadSeparation())
    assert np.array_equal(head.mask, head_component(sf, -400.0, HeadSeparation()).mask)
    hf, hc = head_only(sf, head), head_only(sc, head)
    assert hf.data.flags.f_contiguous and np.array_equal(hf.data, hc.data)


def test_block_any_of_a_fortran_mask_is_that_of_the_c_mask():
    mask = np.random.default_rng(1).random((13, 10, 7)) < 0.1
    for factors in ((2, 2, 1), (3, 2, 2), (1, 1, 4)):
        assert np.array_equal(block_any(np.asfortranarray(mask), factors), block_any(mask, factors))


def test_vtk_image_shares_a_fortran_volume():
    pytest.importorskip("vtkmodules")
    from vtkmodules.util import numpy_support

    from recognizers._backends.vtk_scene import _image_data

    vol = oblique_head("F")
    scalars = numpy_support.vtk_to_numpy(_image_data(vol).GetPointData().GetScalars())
    assert np.shares_memory(scalars, vol.data)
    assert np.array_equal(scalars, vol.data.ravel(order="F"))  # x fastest, as VTK indexes


def test_fortran_and_c_order_render_the_same_pixels():
    renderer = VtkVolumeRenderer(VtkVolumeParams(size_px=96, mm_per_px=1.5, views=((0.0, 0.0, 0), (35.0, 10.0, 0))))
    if not renderer.available().ok:
        pytest.skip(renderer.available().reason)
    f = [v.image for v in renderer.render(oblique_head("F"))]
    c = [v.image for v in renderer.render(oblique_head("C"))]
    assert all(np.array_equal(a, b) for a, b in zip(f, c)) and all((a.max(axis=2) > 10).mean() > 0.1 for a in f)
