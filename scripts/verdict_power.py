"""How many subjects a defacing study needs: the verdict's power by simulation (docs/statistics.md).

For each number of subjects N and each true rank-1 of one leaking attack among ``--attacks``
correlated attacks (defacebench.metrics.simulation: every cell's variance shared across attacks in
the share ``--rho``; the other attacks leak nothing), it simulates ``--runs`` studies and reports the
share the verdict calls ``exposed`` (max-T p < alpha with ``--permutations`` permutations), next to
the false-exposed rate of a defacer that leaks nothing, the median smallest detectable rank-1, and
the mean selected maximum and cross-fitted worst case under no leak.

    python scripts/verdict_power.py [--runs 200] [--subjects 16,32,64,128] [--leaks 0.1,0.2,0.3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from defacebench.metrics.crossfit import cross_fit_worst
from defacebench.metrics.identification import hit_matrix
from defacebench.metrics.maxt import max_t_test
from defacebench.metrics.simulation import simulate_attacks


def study(rng, n: int, leak: float | None, args) -> tuple[float, float | None, float, float]:
    """(p_exposed, detectable rank-1, selected maximum, cross-fitted worst case) of one simulated study."""
    found = simulate_attacks(rng, n=n, attacks=args.attacks, rho=args.rho, leak=leak)
    test = max_t_test(found, n_permutations=args.permutations, seed=int(rng.integers(2**31)))
    _, hits = hit_matrix(found)
    worst = cross_fit_worst(hits, repeats=args.repeats, seed=int(rng.integers(2**31))).rank1
    return test.p_exposed, test.detectable(alpha=args.alpha), float(test.observed.max()), worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--subjects", default="16,32,64,128")
    parser.add_argument("--leaks", default="0.1,0.2,0.3")
    parser.add_argument("--attacks", type=int, default=36)
    parser.add_argument("--rho", type=float, default=0.5)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--permutations", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sizes = [int(x) for x in args.subjects.split(",")]
    leaks = [float(x) for x in args.leaks.split(",")]
    start = time.process_time()
    lines = [f"| N | chance 1/N | " + " | ".join(f"power at true rank-1 {x:g}" for x in leaks)
             + " | false exposed (no leak) | detectable rank-1 (median) | selected max, no leak | cross-fitted, no leak |",
             "|" + "---|" * (len(leaks) + 6)]
    for n in sizes:
        rng = np.random.default_rng([args.seed, n])
        null = np.array([study(rng, n, None, args) for _ in range(args.runs)], dtype=float)
        power = [np.mean([study(rng, n, leak, args)[0] < args.alpha for _ in range(args.runs)]) for leak in leaks]
        cells = [f"{n}", f"{1 / n:.3f}", *(f"{p:.2f}" for p in power), f"{np.mean(null[:, 0] < args.alpha):.3f}",
                 f"{np.nanmedian(null[:, 1]):.3f}", f"{null[:, 2].mean():.3f}", f"{null[:, 3].mean():.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    print(f"\n{args.runs} simulated studies per cell, {args.attacks} attacks (rho {args.rho}), one leaking; "
          f"alpha {args.alpha}, {args.permutations} permutations; {time.process_time() - start:.0f} CPU s\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
