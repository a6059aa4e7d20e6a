"""The verdict's statistics: exact intervals, McNemar, the max-T permutation test and the cross-fitted
worst case, as properties (hypothesis) and as error rates over seeded simulated runs (issue 19).

The rate tests simulate 400 runs of 36 correlated attacks (defacebench.metrics.simulation: a share
of every cell's variance common to all attacks) and check what the verdict promises: at most 7 %
of leak-free defacers called exposed at alpha 0.05, at least 80 % power against one attack with a
true rank-1 of 0.5 at N = 16, and a cross-fitted worst case that is not biased upward.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest

from defacebench.metrics.binomial import exact_interval, mcnemar_exact
from defacebench.metrics.crossfit import cross_fit_worst
from defacebench.metrics.distance import DistanceMatrix
from defacebench.metrics.identification import Identification, hit_matrix, rank_k, rank_table
from defacebench.metrics.maxt import max_t_test
from defacebench.metrics.simulation import leak_delta, simulate_attacks

RUNS = 400


# ------------------------------------------------------------------------------ exact pieces

@given(n=st.integers(1, 200), data=st.data())
def test_exact_interval_is_clopper_pearson_and_never_collapses(n, data):
    k = data.draw(st.integers(0, n))
    lo, hi = exact_interval(k, n)
    ref = binomtest(k, n).proportion_ci(method="exact")
    assert (lo, hi) == pytest.approx((ref.low, ref.high))
    assert 0.0 <= lo <= k / n <= hi <= 1.0 and hi - lo > 0.0
    half = exact_interval(k + 0.5, n + 1)  # a fractional count (cross-fitted) lies between its neighbours
    assert exact_interval(k, n + 1)[0] <= half[0] <= exact_interval(k + 1, n + 1)[0]


def test_exact_interval_of_none_and_all_of_16():
    assert exact_interval(0, 16) == pytest.approx((0.0, 0.2059), abs=1e-4)
    assert exact_interval(16, 16) == pytest.approx((0.7941, 1.0), abs=1e-4)


@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=60))
def test_mcnemar_is_symmetric_and_only_discordant_probes_count(pairs):
    a = np.array([x for x, _ in pairs])
    b = np.array([y for _, y in pairs])
    p = mcnemar_exact(a, b)
    assert p == pytest.approx(mcnemar_exact(b, a)) and 0.0 < p <= 1.0
    agree = np.ones(3, bool)
    assert mcnemar_exact(np.concatenate([a, agree]), np.concatenate([b, agree])) == pytest.approx(p)
    if (a == b).all():
        assert p == 1.0


@st.composite
def _matrices(draw):
    n = draw(st.integers(2, 9))
    cells = draw(st.lists(st.sampled_from([0.1, 0.2, 0.3, 0.5, np.inf]), min_size=n * n, max_size=n * n))
    ids = [f"s{i}" for i in range(n)]
    return DistanceMatrix(ids, ids, np.array(cells).reshape(n, n), "euclidean")


@given(_matrices())
def test_identification_hits_are_exactly_the_pessimistic_rank1(matrix):
    """A probe is a hit when its own gallery entry is strictly nearest (ties and +inf: misses)."""
    ident = Identification.from_matrix(matrix)
    assert ident.rank1 == pytest.approx(rank_k(rank_table(matrix), 1))
    assert Identification.from_dict(ident.to_dict()) == ident


# ------------------------------------------------------------------------------ max-T properties

@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), attacks=st.integers(1, 6), n=st.integers(3, 12))
def test_max_t_p_is_a_corrected_p_value(seed, attacks, n):
    found = simulate_attacks(np.random.default_rng(seed), n=n, attacks=attacks, leak=0.6)
    test = max_t_test(found, n_permutations=200, seed=seed)
    top = int(np.argmax(test.observed))
    assert 1 / 201 <= test.p_exposed <= 1.0
    assert test.p_exposed >= test.p_attack[top] - 1e-12  # correcting for selection never lowers p
    assert test.observed.max() == pytest.approx(max(a.rank1 for a in found))
    detectable = test.detectable(alpha=0.05)
    if detectable is not None and test.observed.max() >= detectable:
        assert test.p_exposed < 0.05  # the threshold says exactly what the test would declare
    again = max_t_test(found, n_permutations=200, seed=seed)
    assert again.p_exposed == test.p_exposed  # seeded


def test_identical_attacks_share_one_permutation():
    """The same attack twice must give the same null as once: the permutation is shared, so the
    maximum over copies is the copy itself (independent permutations would inflate it)."""
    one = simulate_attacks(np.random.default_rng(5), n=16, attacks=1, leak=0.3)
    single = max_t_test(one, n_permutations=500, seed=1)
    twice = max_t_test(one * 5, n_permutations=500, seed=1)
    assert twice.p_exposed == single.p_exposed
    assert np.array_equal(twice.null[:, 0], twice.null[:, 4])


def test_two_thousand_permutations_of_36_attacks_take_well_under_a_second():
    import time

    found = simulate_attacks(np.random.default_rng(0), n=16, attacks=36)
    start = time.process_time()
    max_t_test(found, n_permutations=2000, seed=0)
    assert time.process_time() - start < 1.0


# ------------------------------------------------------------------------------ simulated error rates

def _runs(n: int, leak: float | None, *, permutations: int, repeats: int = 50):
    """p_exposed, cross-fitted worst case and the leaking attack's observed rank-1 of RUNS runs."""
    rng = np.random.default_rng(20_000 + n + int(100 * (leak or 0)))
    out = []
    for run in range(RUNS):
        found = simulate_attacks(rng, n=n, attacks=36, leak=leak)
        test = max_t_test(found, n_permutations=permutations, seed=run)
        _, hits = hit_matrix(found)
        out.append((test.p_exposed, cross_fit_worst(hits, repeats=repeats, seed=run).rank1, found[0].rank1,
                    test.observed.max()))
    return np.array(out)


@pytest.fixture(scope="module")
def null_runs():
    return _runs(16, None, permutations=1000)


@pytest.fixture(scope="module")
def leak_runs():
    return _runs(16, 0.5, permutations=1000)


def test_a_defacer_that_leaks_nothing_is_rarely_called_exposed(null_runs):
    false_exposed = float(np.mean(null_runs[:, 0] < 0.05))
    assert false_exposed <= 0.07
    # what the issue measured: the uncorrected maximum of a leak-free defacer sits far above chance
    assert null_runs[:, 3].mean() > 2 * (1 / 16)
    assert abs(null_runs[:, 1].mean() - 1 / 16) < 0.02  # the cross-fitted worst case stays at chance


def test_one_leaking_attack_among_36_is_found(leak_runs):
    assert leak_delta(0.5, 16) > 0 and abs(leak_runs[:, 2].mean() - 0.5) < 0.02  # the planted leak is 0.5
    assert float(np.mean(leak_runs[:, 0] < 0.05)) >= 0.8


def test_the_cross_fitted_worst_case_is_not_biased_upward(leak_runs):
    assert leak_runs[:, 1].mean() <= 0.5 + 0.02
    assert leak_runs[:, 3].mean() > leak_runs[:, 1].mean()  # the selected maximum is


def test_the_cross_fitted_worst_case_is_close_at_64_subjects():
    runs = _runs(64, 0.5, permutations=100)
    assert abs(runs[:, 1].mean() - 0.5) <= 0.05
