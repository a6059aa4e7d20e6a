"""Scenario records and view fusions: pure functions of per-subject view embeddings."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist

from defacebench.metrics.identification import rank_k, rank_table
from defacebench.run.scenarios import SCENARIOS, ScenarioError, fuse, get_scenario
from defacebench.run.viewgrid import grid, parse_grid

FUSIONS = ("single", "min", "mean", "svm")


def _subjects(rng, n: int, views: int, dim: int = 8, spread: float = 0.3, missing: float = 0.0):
    """n subjects, each a cluster of ``views`` noisy copies of its own centre; some views missing (NaN)."""
    centres = rng.normal(size=(n, dim))
    out = []
    for c in centres:
        v = c + spread * rng.normal(size=(views, dim))
        v[rng.random(views) < missing] = np.nan
        out.append(v)
    return out


@settings(max_examples=25, deadline=None)
@given(st.integers(3, 7), st.integers(1, 4), st.integers(0, 10_000), st.sampled_from(FUSIONS))
def test_permuting_subjects_permutes_the_fused_matrix(n, views, seed, fusion):
    rng = np.random.default_rng(seed)
    ids = [f"s{i}" for i in range(n)]
    gallery, probe = _subjects(rng, n, views, missing=0.2), _subjects(rng, n, views, missing=0.2)
    perm = rng.permutation(n)
    base = fuse(fusion, ids, gallery, ids, probe, metric="cosine")
    moved = fuse(fusion, [ids[i] for i in perm], [gallery[i] for i in perm], [ids[i] for i in perm],
                 [probe[i] for i in perm], metric="cosine")
    assert np.allclose(moved.values, base.values[np.ix_(perm, perm)], rtol=1e-6, atol=1e-9)


def test_min_fusion_is_the_minimum_over_view_pairs_and_missing_views_are_ignored():
    rng = np.random.default_rng(1)
    ids = ["a", "b", "c"]
    gallery, probe = _subjects(rng, 3, 4), _subjects(rng, 3, 5)
    probe[1][2] = np.nan
    out = fuse("min", ids, gallery, ids, probe, metric="euclidean").values
    for i in range(3):
        for j in range(3):
            ok = np.isfinite(probe[j]).all(axis=1)
            assert np.isclose(out[i, j], cdist(gallery[i], probe[j][ok]).min())


def test_a_subject_without_any_face_is_a_non_match_in_every_fusion():
    rng = np.random.default_rng(2)
    ids = ["a", "b", "c", "d"]
    gallery, probe = _subjects(rng, 4, 3), _subjects(rng, 4, 3)
    probe[2][:] = np.nan
    for fusion in FUSIONS:
        values = fuse(fusion, ids, gallery, ids, probe, metric="cosine").values
        assert np.isinf(values[:, 2]).all() and np.isfinite(np.delete(values, 2, axis=1)).all(), fusion


def test_single_fusion_uses_the_first_view_only():
    rng = np.random.default_rng(3)
    ids = ["a", "b"]
    gallery, probe = _subjects(rng, 2, 3), _subjects(rng, 2, 3)
    single = fuse("single", ids, gallery, ids, probe, metric="euclidean").values
    assert np.allclose(single, cdist(np.stack([g[0] for g in gallery]), np.stack([p[0] for p in probe])))


def test_svm_identifies_separable_subjects_and_not_structureless_ones():
    """Known separability: tight per-subject clusters -> rank-1 1.0; views that carry no identity
    (every subject drawn from one distribution) -> rank-1 near chance."""
    rng = np.random.default_rng(4)
    n, ids = 20, [f"s{i:02d}" for i in range(20)]
    separable = fuse("svm", ids, _subjects(rng, n, 8, spread=0.2), ids,
                     _subjects(np.random.default_rng(4), n, 8, spread=0.2), metric="cosine")
    assert separable.metric == "svm" and rank_k(rank_table(separable), 1) == 1.0
    noise = [rng.normal(size=(8, 8)) for _ in range(n)]
    blind = fuse("svm", ids, noise, ids, [rng.normal(size=(8, 8)) for _ in range(n)], metric="cosine")
    assert rank_k(rank_table(blind), 1) <= 0.3
    assert ((blind.values > 0) & (blind.values < 1)).all()


def test_scenario_records():
    assert set(SCENARIOS) == {"rescan", "seed", "multiview", "svm", "aware", "refill_template", "refill_learned"}
    assert get_scenario("refill_learned").probe_source("quickshear") == "quickshear+learned"
    assert get_scenario("rescan").probe_source("quickshear") == "quickshear"
    assert get_scenario("refill_template").gallery == get_scenario("rescan").gallery
    assert get_scenario("multiview").fusions == ("min", "mean") and get_scenario("multiview").views == "grid"
    assert get_scenario("aware").defaced_gallery and not get_scenario("rescan").defaced_gallery
    assert get_scenario("seed").needs_other_acquisition is False
    with pytest.raises(ScenarioError, match="unknown"):
        get_scenario("photos")
    with pytest.raises(ScenarioError):
        fuse("median", ["a"], [np.zeros((1, 2))], ["a"], [np.zeros((1, 2))], metric="cosine")


def test_view_grid_defaults_to_15_views_frontal_first_and_scales_to_81():
    views = grid()
    assert len(views) == 15 and views[0] == (0.0, 0.0, 0) and len(set(views)) == 15
    assert {v[0] for v in views} == {-30, -15, 0, 15, 30} and {v[1] for v in views} == {-15, 0, 15}
    assert len(grid(*parse_grid("30:30,15:15,9"))) == 81
    with pytest.raises(ValueError, match="YAWMAX"):
        parse_grid("30")


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 90), st.integers(0, 45), st.integers(0, 90), st.integers(0, 45), st.integers(1, 4))
def test_the_view_count_of_a_grid_is_known_without_building_it(ymax, ystep, pmax, pstep, lights):
    from defacebench.run.viewgrid import n_views

    args = (float(ymax), float(ystep), float(pmax), float(pstep), lights)
    assert n_views(args) == len(grid(*args))


def test_scenario_specs_restrict_the_attackers_a_scenario_runs_for():
    from defacebench.run.config import RunConfig
    from defacebench.run.scenarios import ScenarioSpec
    from defacebench.run.session import Session

    spec = ScenarioSpec.parse("multiview@surface-dlib_hog-*")
    assert spec.covers("surface", "dlib_hog", "dlib_resnet") and not spec.covers("vtk_volume", "dlib_hog", "dlib_resnet")
    assert ScenarioSpec.parse("svm").attackers == "*"
    assert ScenarioSpec.parse("svm@surface-*").covers("surface", "mtcnn", "mobileface")
    with pytest.raises(ScenarioError, match="renderer-detector-"):
        ScenarioSpec.parse("svm@a-b-c-d")
    plan = Session(RunConfig(scenarios=("rescan", "multiview@surface-dlib_hog-*"), defacers=("none", "quickshear"),
                             detectors=("dlib_hog", "opencv_haar"))).plan()
    keys = {p.key for p in plan}
    assert "quickshear-surface-dlib_hog-dlib_resnet-multiview" in keys
    assert "quickshear-surface-opencv_haar-dlib_resnet" in keys
    assert not any(k.endswith("-multiview") and ("opencv_haar" in k or "vtk_volume" in k) for k in keys)
