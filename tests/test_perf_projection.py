"""The full-grid projection's arithmetic (issue 15 item 4): every stage scales with its own count.

Renders scale with scans x (defacers + the control's two acquisitions), multiview renders add one
view grid per such volume, detections scale with images (x views for the grid), embeddings with
the faces found; a unit nobody measured is an error, never a silent zero.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from defacebench.perf.measure import BenchmarkError
from defacebench.perf.projection import Grid, Unit, counts, project, without_multiview

DETS = ("dlib_hog", "opencv_haar", "mtcnn")
UNIT_KEYS = [("convert", "acquisition"), ("deface", "control copy"), ("deface", "defaced scan"),
             ("qc", "defaced scan"), ("render", "volume, default view"), ("render", "volume, view grid"),
             ("embed", "face"), ("embed", "grid face"), ("report", "configuration"),
             *[("detect", f"{d} image") for d in DETS], ("detect", "dlib_hog grid image")]


def _units(scale: float = 1.0) -> dict[tuple[str, str], Unit]:
    """Distinct per-unit costs (a prime-ish spread, so a count swapped between stages shows)."""
    return {k: Unit(k[0], k[1], scale * (i + 1) * 0.37, 2 * scale * (i + 1) * 0.37) for i, k in enumerate(UNIT_KEYS)}


def test_counts_of_a_small_grid_by_hand():
    g = Grid(subjects=4, defacers=2, detectors=("dlib_hog", "opencv_haar"), multiview=("dlib_hog",), views=15)
    c = counts(g, face_rate=0.5, grid_face_rate=0.25)
    assert g.volumes == 4 * (2 + 2) == 16
    assert c[("convert", "acquisition")] == 8 and c[("deface", "control copy")] == 8
    assert c[("deface", "defaced scan")] == c[("qc", "defaced scan")] == 8
    assert c[("render", "volume, default view")] == c[("render", "volume, view grid")] == 16
    assert c[("detect", "dlib_hog image")] == c[("detect", "opencv_haar image")] == 16
    assert c[("detect", "dlib_hog grid image")] == 16 * 14  # the grid's front view is the default view
    assert c[("embed", "face")] == 16 * 2 * 0.5
    assert c[("embed", "grid face")] == 16 * 14 * 0.25
    assert c[("report", "configuration")] == 3 * 3


@given(s=st.integers(1, 500), d=st.integers(0, 8), k=st.integers(1, 5), views=st.integers(2, 81))
def test_every_stage_scales_with_its_own_count(s, d, k, views):
    g = Grid(s, d, DETS, ("dlib_hog",), views)
    c, c2 = counts(g, 0.8, 0.4), counts(Grid(k * s, d, DETS, ("dlib_hog",), views), 0.8, 0.4)
    for key, n in c.items():  # all work grows with subjects, except the per-configuration reports
        assert c2[key] == pytest.approx(n if key[0] == "report" else k * n)
    more = counts(Grid(s, d + 1, DETS, ("dlib_hog",), views), 0.8, 0.4)
    assert more[("render", "volume, view grid")] - c[("render", "volume, view grid")] == s  # one probe per defacer
    assert more[("detect", "dlib_hog grid image")] - c[("detect", "dlib_hog grid image")] == s * (views - 1)
    assert more[("convert", "acquisition")] == c[("convert", "acquisition")]  # conversion does not depend on defacers


@given(s=st.integers(1, 300), d=st.integers(1, 6), views=st.integers(2, 30), rate=st.floats(0.0, 1.0))
def test_projection_is_units_times_cost_and_multiview_only_adds(s, d, views, rate):
    g = Grid(s, d, DETS, ("dlib_hog",), views)
    units = _units()
    with_mv, plain = project(g, units, rate, rate), project(without_multiview(g), units, rate, rate)
    expected = sum(n * units[key].cpu_s for key, n in counts(g, rate, rate).items())
    assert with_mv.cpu_s == pytest.approx(expected)
    assert with_mv.cpu_s >= plain.cpu_s
    assert project(g, _units(3.0), rate, rate).cpu_s == pytest.approx(3 * with_mv.cpu_s)
    assert with_mv.wall_s(4) == pytest.approx(with_mv.cpu_s / 4)
    assert with_mv.wall_s(2, 0.5) == pytest.approx(with_mv.cpu_s)
    assert sum(with_mv.by_stage().values()) == pytest.approx(with_mv.cpu_s)


def test_a_unit_no_run_measured_is_an_error():
    units = _units()
    del units[("qc", "defaced scan")]
    with pytest.raises(BenchmarkError, match="no measured cost for qc per defaced scan"):
        project(Grid(10, 2, DETS), units, 0.5, 0.5)
    del units[("detect", "dlib_hog grid image")]  # not needed without multiview ...
    units[("qc", "defaced scan")] = Unit("qc", "defaced scan", 1.0, 1.0)
    assert project(Grid(10, 2, DETS), units, 0.5, 0.5).cpu_s > 0
    with pytest.raises(BenchmarkError, match="dlib_hog grid image"):  # ... but needed with it
        project(Grid(10, 2, DETS, ("dlib_hog",)), units, 0.5, 0.5)
