"""Shared fixtures of the test suite: synthetic head CTs, renders of the sample head, a seeded random
generator and a small sample dataset.

Every volume here is small, non-cubic, has a non-identity affine and real HU values, so code that
confuses axes, ignores the affine or assumes MRI intensities fails. The expensive ones (the template
head, renders, detections, the sample dataset) are built once per session; the factories return a
fresh volume per call where a test may modify it. Heavy imports stay inside the builders so that
collecting the suite stays fast.

- ``ellipsoid_ct(zooms=..., shape=..., tilt_deg=...)``: an ellipsoid head (skin 30 HU, skull
  1000 HU, brain 35 HU) with a nose-like block in front of the lower half, on a grid rotated by
  8 degrees about x; analytic regions.
- ``template_ct(voxel_mm)``: pydeface's shipped template head (a real averaged face) resampled to
  ``voxel_mm`` and mapped to HU: outside -1000, soft tissue 25 HU, brain 35 HU (tissue deeper than
  11 mm above a skull-base plane) wrapped in a ~6 mm skull (1000 HU). Registration-based defacers
  need its real face.
- ``write_ct(volume, path)``: save a volume as float32 NIfTI (folders created).
- ``head_volume(scale)``, ``renders(scale, views)``, ``hog_faces(scale)``: the sample dataset's head
  (``defacebench.data.phantom.anatomy.head_ct``, 2 mm, non-cubic grid), its surface renders under
  ``render_views`` and dlib_hog's best face per render; ``scale`` stretches the head per axis (a
  second "identity").
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from defacebench.contracts import Face, Volume

VIEWS = ((0, 0), (15, 0), (-15, 0), (0, 10), (0, -10))
SCALE = tuple[float, float, float]
IDENTITY: SCALE = (1.0, 1.0, 1.0)


# ----------------------------------------------------------------------------- defacer phantoms

def _rotation_x(deg: float) -> np.ndarray:
    """3x3 rotation about the x axis."""
    t = np.deg2rad(deg)
    return np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])


def _ellipsoid_ct(zooms=(4.0, 3.5, 4.5), shape=(46, 66, 52), tilt_deg=8.0) -> Volume:
    """Ellipsoid head CT in HU on a tilted grid (see the module docstring)."""
    affine = np.eye(4)
    affine[:3, :3] = _rotation_x(tilt_deg) @ np.diag(zooms)
    centre_ijk = (np.array(shape) - 1) / 2.0
    affine[:3, 3] = -affine[:3, :3] @ centre_ijk + np.array([1.0, 10.0, -3.0])
    ijk = np.indices(shape).reshape(3, -1).astype(float)
    x, y, z = (affine[:3, :3] @ ijk + affine[:3, 3:]).reshape((3,) + shape)
    x0, y0, z0 = x - 1.0, y - 10.0, z + 3.0
    r = np.sqrt((x0 / 75) ** 2 + (y0 / 95) ** 2 + (z0 / 100) ** 2)
    data = np.full(shape, -1000.0, np.float32)
    data[r <= 1.0] = 30.0
    data[(r <= 0.94) & (r > 0.86)] = 1000.0
    data[r <= 0.86] = 35.0
    nose = (np.abs(x0) < 18) & (y0 > 80) & (y0 < 112) & (z0 > -45) & (z0 < -5)
    data[nose & (data == -1000.0)] = 30.0
    return Volume(data=data, affine=affine)


@lru_cache(maxsize=4)
def _template_ct_cached(voxel_mm: float) -> tuple[bytes, tuple, bytes]:
    """The template CT's voxels, shape and affine as immutable values (so callers get fresh copies)."""
    from importlib.resources import files

    import nibabel as nib
    from scipy import ndimage

    from defacebench.anatomy.brainmask import ct_head_mask

    img = nib.load(str(files("pydeface").joinpath("data/mean_reg2mean.nii.gz")))
    t1 = np.asarray(img.dataobj, np.float32)
    zoom = np.array(img.header.get_zooms()[:3]) / voxel_mm
    small = ndimage.zoom(t1, zoom, order=1)[:, :, :-5]  # crop empty top slices: non-cubic grid
    affine = img.affine.copy()
    affine[:3, :3] = img.affine[:3, :3] @ np.diag(1.0 / zoom)
    head = ct_head_mask(Volume(small * 10.0 - 1000.0, affine))
    depth = ndimage.distance_transform_edt(head, sampling=[voxel_mm] * 3)
    ijk = np.indices(small.shape).reshape(3, -1)
    _, y, z = (affine[:3, :3] @ ijk + affine[:3, 3:]).reshape((3,) + small.shape)
    # brain: deep tissue above a skull-base plane sloping down to the back (template ~ MNI space)
    brain = (depth > 11.0) & (z > -32.0 + 0.3 * y)
    skull = ndimage.binary_dilation(brain, iterations=max(1, round(6.0 / voxel_mm))) & ~brain
    data = np.full(small.shape, -1000.0, np.float32)
    data[head] = 25.0
    data[skull] = 1000.0
    data[brain] = 35.0
    return data.tobytes(), data.shape, affine.tobytes()


def _template_ct(voxel_mm: float = 4.0) -> Volume:
    """pydeface's template head as a synthetic CT (see the module docstring); a fresh copy each call."""
    raw, shape, aff = _template_ct_cached(float(voxel_mm))
    data = np.frombuffer(raw, np.float32).reshape(shape).copy()
    return Volume(data=data, affine=np.frombuffer(aff, float).reshape(4, 4).copy())


def _write_ct(volume: Volume, path: Path) -> Path:
    """Save ``volume`` as a float32 NIfTI at ``path`` (folders created)."""
    from defacebench.data.volume import save_volume

    path.parent.mkdir(parents=True, exist_ok=True)
    return save_volume(volume, path)


@pytest.fixture(scope="session")
def ellipsoid_ct() -> Callable[..., Volume]:
    """Factory of the ellipsoid head CT: ``ellipsoid_ct(zooms=..., shape=..., tilt_deg=...)``, fresh each call."""
    return _ellipsoid_ct


@pytest.fixture(scope="session")
def template_ct() -> Callable[[float], Volume]:
    """Factory of the template head CT: ``template_ct(voxel_mm=4.0)``, built once per size, fresh each call."""
    return _template_ct


@pytest.fixture(scope="session")
def write_ct() -> Callable[[Volume, Path], Path]:
    """``write_ct(volume, path)``: save as float32 NIfTI, folders created; returns the path."""
    return _write_ct


# ----------------------------------------------------------------------------- attacker images

@lru_cache(maxsize=None)
def _head_volume(scale: SCALE = IDENTITY) -> Volume:
    """The synthetic CT head (HU, RAS affine); ``scale`` stretches it per axis (another identity)."""
    from defacebench.data.phantom.anatomy import head_ct

    hu, affine = head_ct(2.0)
    return Volume(hu, np.diag([*scale, 1.0]) @ affine)


@lru_cache(maxsize=None)
def _renders(scale: SCALE = IDENTITY, views=VIEWS) -> tuple[np.ndarray, ...]:
    """Surface renders (512 px RGB) of the head under ``views`` (yaw, pitch)."""
    from recognizers.render.surface import SurfaceParams, SurfaceRenderer

    out = SurfaceRenderer(SurfaceParams(views=tuple(views))).render(_head_volume(scale))
    return tuple(v.image for v in out)


@lru_cache(maxsize=None)
def _hog_faces(scale: SCALE = IDENTITY) -> tuple[Face | None, ...]:
    """The best dlib_hog face of each render of ``_renders(scale)`` (None where none was found)."""
    from defacebench.run.faces import best_face
    from recognizers.detect.dlib import DlibHog

    hog = DlibHog()
    return tuple(best_face(hog.detect(img)) for img in _renders(scale))


@pytest.fixture(scope="session")
def render_views() -> tuple[tuple[int, int], ...]:
    """The (yaw, pitch) views ``renders`` uses by default: frontal, +-15 deg yaw, +-10 deg pitch."""
    return VIEWS


@pytest.fixture(scope="session")
def head_volume() -> Callable[..., Volume]:
    """Factory: ``head_volume(scale=(1, 1, 1))``, the sample head in HU (cached: do not modify it)."""
    return _head_volume


@pytest.fixture(scope="session")
def renders() -> Callable[..., tuple[np.ndarray, ...]]:
    """Factory: ``renders(scale=(1, 1, 1), views=render_views)``, surface renders (cached per arguments)."""
    return _renders


@pytest.fixture(scope="session")
def hog_faces() -> Callable[..., tuple[Face | None, ...]]:
    """Factory: ``hog_faces(scale=(1, 1, 1))``, dlib_hog's best face per default render (cached)."""
    return _hog_faces


# ----------------------------------------------------------------------------- randomness, data

@pytest.fixture
def rng() -> np.random.Generator:
    """A random generator seeded with 0, fresh per test: random test data is the same on every run."""
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def sample_params():
    """Parameters of :func:`sample_dataset`: 4 subjects (8 acquisitions), seed 3, default anatomy."""
    from defacebench.data.sample import SampleParams

    return SampleParams(n_subjects=4, seed=3)


@pytest.fixture(scope="session")
def sample_dataset(tmp_path_factory, sample_params) -> Path:
    """DICOM root of a small sample dataset built once per session (real DICOM series and their
    NIfTI copies). Read-only: a test that modifies a dataset copies it first."""
    from defacebench.data.sample import make_sample_dataset

    return make_sample_dataset(tmp_path_factory.mktemp("sample") / "s4", sample_params)
