"""The full-grid benchmark's core on a tiny dataset (issue 15 item 4): real ``defacebench run``
processes, real manifests; the projection's counts must be the counts the runs computed.

Slow (a few minutes on 2 cores): run with ``pytest tests/perf/test_perf_grid.py --run-slow``.
The view grid is cut to 3 views (-15, 0, +15 degrees yaw) so that the multiview counts are checked
at a view count other than the default 15.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from defacebench.perf.grid import GridParams, measure_grid, measured_counts, other_cpu, stage_cpu, unit_costs
from defacebench.perf.projection import counts, project, without_multiview

pytestmark = pytest.mark.slow

PARAMS = GridParams(subjects=2, defacers=("none", "quickshear"), detectors=("dlib_hog", "opencv_haar"),
                    views=3, view_grid="15:15,0:15,1", n_bootstrap=20)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from defacebench.data.sample import SampleParams, make_sample_dataset

    work = tmp_path_factory.mktemp("grid")
    dataset = make_sample_dataset(work / "sample", SampleParams(n_subjects=PARAMS.subjects), workers=1)
    return measure_grid(PARAMS, dataset, work)


def test_projection_counts_are_what_the_runs_computed(runs):
    rescan, mv = runs
    units, face_rate, grid_face_rate = unit_costs(PARAMS, rescan, mv)
    expected = counts(PARAMS.grid, face_rate, grid_face_rate)
    measured = measured_counts(PARAMS, rescan, mv)
    assert measured == pytest.approx({k: expected[k] for k in measured})  # embeddings: float rates
    # 2 subjects x (control: 2 acquisitions + quickshear: 1 probe) = 6 volumes, 2 new views each
    assert measured[("render", "volume, view grid")] == 6 and measured[("detect", "dlib_hog grid image")] == 12
    # the second run computed only the multiview work: nothing upstream of rendering again
    assert sum(v["computed"] for v in mv.stages["convert"].values()) == 0
    assert sum(v["computed"] for v in mv.stages["deface"].values()) == 0
    assert 0 < face_rate <= 1 and 0 <= grid_face_rate <= 1
    assert mv.manifest["embeddings_computed"] <= 12
    assert measured[("embed", "face")] == rescan.manifest["embeddings_computed"] <= 6 * 2


def test_projection_of_the_measured_grid_is_the_measured_cpu(runs):
    rescan, mv = runs
    units, face_rate, grid_face_rate = unit_costs(PARAMS, rescan, mv)
    projected = project(PARAMS.grid, units, face_rate, grid_face_rate)
    measured = rescan.measure.cpu_seconds + mv.measure.cpu_seconds
    # only the second run's cache lookups of convert/deface/qc are left out (milliseconds each)
    assert projected.cpu_s == pytest.approx(measured, rel=0.05)
    assert stage_cpu(rescan) > 0 and other_cpu(rescan) > 0
    plain = project(without_multiview(PARAMS.grid), units, face_rate, grid_face_rate)
    assert plain.cpu_s < projected.cpu_s
    reports = dict(((r[0], r[1]), r[3]) for r in plain.rows)[("report", "configuration")]
    doubled = project(replace(without_multiview(PARAMS.grid), subjects=4), units, face_rate, grid_face_rate)
    assert doubled.cpu_s == pytest.approx(2 * plain.cpu_s - reports)  # all but the per-configuration reports double
