"""Tests of the shared test data of tests/conftest.py: the defacer phantoms' tissues are where they
should be, and the attacker's renders are cached and differ between views."""

from __future__ import annotations

import numpy as np

from defacebench.anatomy.brainmask import ct_brain_mask, ct_head_mask


def test_ellipsoid_phantom_masks_are_nested(ellipsoid_ct):
    vol = ellipsoid_ct()
    head, brain = ct_head_mask(vol), ct_brain_mask(vol)
    assert vol.data.shape == (46, 66, 52)
    assert brain.sum() > 0.3 * head.sum()
    assert not (brain & ~head).any()
    assert (vol.data[brain] == 35.0).all()


def test_template_phantom_has_skull_and_brain(template_ct):
    vol = template_ct(4.0)
    brain = ct_brain_mask(vol)
    assert len(set(vol.data.shape)) == 3
    assert (vol.data > 300).sum() > 1000
    assert brain.sum() > 5000


def test_phantom_factories_return_fresh_volumes(ellipsoid_ct, template_ct):
    """A test may modify its volume: the next call still gets the original."""
    for make in (ellipsoid_ct, lambda: template_ct(4.0)):
        first = make()
        first.data[:] = 0.0
        again = make()
        assert again.data is not first.data and (again.data == -1000.0).any()
    assert not np.allclose(ellipsoid_ct().affine[:3, :3], np.diag(np.diag(ellipsoid_ct().affine[:3, :3])))


def test_renders_are_cached_and_distinct(renders, render_views):
    """The helpers return the same objects on a second call, and views differ from each other."""
    first, again = renders(), renders()
    assert first is again and len(first) == len(render_views)
    assert not np.array_equal(first[0], first[1])
