"""Shared test data of the attacker tests: real renders of a synthetic CT head, made once per session.

The head is the sample phantom's head in HU (``defacebench.data.phantom.anatomy.head_ct``,
2 mm voxels, non-cubic grid); a second "identity" comes from its anisotropic rescaling. Other test
modules import the cached helpers from here (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from defacebench.contracts import Face, Volume

VIEWS = ((0, 0), (15, 0), (-15, 0), (0, 10), (0, -10))


@lru_cache(maxsize=None)
def head_volume(scale: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> Volume:
    """The synthetic CT head (HU, RAS affine); ``scale`` stretches it per axis (another identity)."""
    from defacebench.data.phantom.anatomy import head_ct

    hu, base_affine = head_ct(2.0)
    affine = np.diag([*scale, 1.0]) @ base_affine
    return Volume(hu, affine)


@lru_cache(maxsize=None)
def renders(scale: tuple[float, float, float] = (1.0, 1.0, 1.0), views=VIEWS) -> tuple[np.ndarray, ...]:
    """Surface renders (512 px RGB) of :func:`head_volume` under ``views`` (yaw, pitch)."""
    from recognizers.render.surface import SurfaceParams, SurfaceRenderer

    out = SurfaceRenderer(SurfaceParams(views=tuple(views))).render(head_volume(scale))
    return tuple(v.image for v in out)


@lru_cache(maxsize=None)
def hog_faces(scale: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> tuple[Face | None, ...]:
    """The best dlib_hog face of each render of :func:`renders` (None where none was found)."""
    from defacebench.report.montage import best_face
    from recognizers.detect.dlib import DlibHog

    hog = DlibHog()
    return tuple(best_face(hog.detect(img)) for img in renders(scale))


def test_renders_are_cached_and_distinct():
    """The helpers return the same objects on a second call, and views differ from each other."""
    first, again = renders(), renders()
    assert first is again and len(first) == len(VIEWS)
    assert not np.array_equal(first[0], first[1])
