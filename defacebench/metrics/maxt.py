"""Selection-corrected significance of a defacer's worst case: the max-T permutation test.

A defacer's worst case is the maximum rank-1 over many attacks (renderer x detector x recognizer x
scenario x fusion). With few subjects that maximum is biased upward by selection: 36 attacks on 16
subjects that carry no identity at all still reach about 0.15 on average (chance 1/16 = 0.0625).
The max-T test (Westfall and Young) asks how often a defacer that leaks nothing would reach the
observed maximum: it relabels identities (a random permutation of the gallery ids, the probe
"belongs" to another gallery entry), with the **same** permutation for every attack so that their
correlation is kept, recomputes every attack's rank-1 and takes the maximum. Each attack's rank-1
under a relabelling comes from its :class:`~defacebench.metrics.identification.Identification`
(the strictly nearest gallery id per probe), so nothing is re-rendered and the whole test is a few
array comparisons: 2,000 permutations of 36 attacks x 16 subjects take milliseconds.

``p = (1 + #{permutations whose maximum >= observed maximum}) / (1 + permutations)`` (Phipson and
Smyth: the observed labelling counts as one of the permutations, so p is never 0). Attacks over
different subject sets share the permutation through one random key per subject of their union:
each attack's relabelling is the ordering of its own subjects' keys, uniform for each attack and
identical for attacks over the same subjects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from defacebench.errors import EvaluationError
from defacebench.metrics.identification import Identification

_EPS = 1e-9  # rank-1 values are k/m: compare with a margin far below 1/m


@dataclass(frozen=True, eq=False)
class MaxT:
    """The test's outcome for one set of attacks.

    ``observed`` (A,) rank-1 of each attack; ``null`` (P, A) each attack's rank-1 under each
    permutation; ``p_exposed`` the corrected p-value of the maximum; ``p_attack`` (A,) each attack's
    uncorrected permutation p-value; ``levels`` the rank-1 values the attacks can take (k/m).
    """

    observed: np.ndarray
    null: np.ndarray
    p_exposed: float
    p_attack: np.ndarray
    levels: np.ndarray
    n_permutations: int
    seed: int

    @property
    def null_max(self) -> np.ndarray:
        """(P,) the maximum rank-1 over the attacks under each permutation."""
        return self.null.max(axis=1)

    def detectable(self, *, alpha: float) -> float | None:
        """The smallest worst-case rank-1 these attacks could reach that the test would declare
        exposed at ``alpha`` (about the null maximum's 1 - alpha quantile); None when none could."""
        null_max = np.sort(self.null_max)
        for level in self.levels:
            beaten = len(null_max) - np.searchsorted(null_max, level - _EPS, side="left")
            if (1 + beaten) / (1 + len(null_max)) < alpha:
                return float(level)
        return None


def _encode(attack: Identification) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The attack's gallery ids (sorted), each mated probe's own position and nearest position (-1: none)."""
    gallery = sorted(attack.gallery)
    position = {g: k for k, g in enumerate(gallery)}
    probes = [p for p in attack.nearest if p in position]
    truth = np.array([position[p] for p in probes], dtype=int)
    nearest = np.array([position.get(attack.nearest[p], -1) if attack.nearest[p] is not None else -1
                        for p in probes], dtype=int)
    return gallery, truth, nearest


def max_t_test(attacks: Sequence[Identification], *, n_permutations: int = 2000, seed: int = 0) -> MaxT:
    """Max-T permutation test over ``attacks`` (each with at least one mated probe).

    Raises EvaluationError when ``attacks`` is empty or an attack has no mated probe (its rank-1 is
    undefined; leave it out before calling).
    """
    if not attacks:
        raise EvaluationError("max-T test of no attack: give at least one attack with mated probes")
    if n_permutations < 1:
        raise EvaluationError(f"n_permutations must be >= 1, got {n_permutations}")
    encoded = [_encode(a) for a in attacks]
    if any(len(truth) == 0 for _, truth, _ in encoded):
        raise EvaluationError("an attack without mated probes has no rank-1: leave it out of the max-T test")
    universe = sorted(set().union(*(g for g, _, _ in encoded)))
    column = {g: i for i, g in enumerate(universe)}
    keys = np.random.default_rng(seed).random((n_permutations, len(universe)))
    null = np.empty((n_permutations, len(attacks)))
    observed = np.empty(len(attacks))
    for i, (gallery, truth, nearest) in enumerate(encoded):
        # relabelling of this attack's gallery positions: position k -> relabel[:, k]
        relabel = np.argsort(keys[:, [column[g] for g in gallery]], axis=1)
        null[:, i] = (relabel[:, truth] == nearest[None, :]).mean(axis=1)
        observed[i] = float((truth == nearest).mean())
    beaten = (null.max(axis=1) >= observed.max() - _EPS).sum()
    p_attack = (1 + (null >= observed[None, :] - _EPS).sum(axis=0)) / (1 + n_permutations)
    levels = np.unique(np.concatenate([np.arange(len(t) + 1) / len(t) for _, t, _ in encoded]))
    return MaxT(observed=observed, null=null, p_exposed=float((1 + beaten) / (1 + n_permutations)),
                p_attack=p_attack, levels=levels, n_permutations=n_permutations, seed=seed)
