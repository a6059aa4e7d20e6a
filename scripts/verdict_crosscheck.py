"""Recompute a run's verdict statistics independently from its distance matrices and compare.

For every defacer of ``RUN_DIR/defacers.csv`` this reads the ``distances.csv`` (and, for scenarios
with several fusions, every ``distances-<fusion>.csv``) of its results under a valid attacker
(validity recomputed here too: the control's rank-1 from its own matrix against the run's attacker
floor), and recomputes with its own code, sharing nothing with defacebench's statistics modules:

* chance 1/N, and the selected maximum rank-1 (a probe is a hit when its own gallery entry is
  strictly nearer than every other, pessimistic ties, +inf never a hit);
* the max-T p-value: N! relabellings of the gallery drawn with ``numpy.random.Generator.permutation``
  (not the harness's keyed draws), the same relabelling for every attack, brute-force rank-1 of every
  relabelled matrix, p = (1 + #{max >= observed max}) / (1 + permutations).

It prints one line per defacer with both figures and exits 1 when a rank-1 or chance level differs at
all, or when p differs by more than ``--p-tolerance`` (default 0.02) and by more than four standard
errors of the two Monte Carlo estimates (at p = 0.4 and 2,000 permutations each, 0.02 is only 1.3
of them: two honest estimates differ by that one time in five).

    python scripts/verdict_crosscheck.py results/runs/<run_id> [--permutations 20000] [--seed 7]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np


def read_matrix(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """Gallery ids, probe ids and values of a distances.csv in defacebench's layout."""
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    probes = rows[0][1:]
    gallery = [r[0] for r in rows[1:]]
    values = np.array([[float(x) for x in r[1:]] for r in rows[1:]])
    return gallery, probes, values


def aligned(gallery: list[str], probes: list[str], values: np.ndarray, ids: list[str]) -> np.ndarray:
    """The matrix with rows and columns in the order of ``ids`` (genuine pairs on the diagonal)."""
    g = {s: i for i, s in enumerate(gallery)}
    p = {s: j for j, s in enumerate(probes)}
    return values[np.ix_([g[s] for s in ids], [p[s] for s in ids])]


def rank1_under(values: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Rank-1 of a square matrix when probe j belongs to gallery row ``owner[..., j]`` (brute force).

    ``owner``: (P, n) relabellings. A hit: the owner's distance is finite and strictly below every
    other row's distance in that column."""
    n = values.shape[0]
    cols = np.arange(n)
    genuine = values[owner, cols[None, :]]                                   # (P, n)
    others = np.broadcast_to(values, (owner.shape[0], n, n)).copy()          # (P, rows, cols)
    others[np.arange(owner.shape[0])[:, None], owner, cols[None, :]] = np.inf
    return (np.isfinite(genuine) & (genuine < others.min(axis=1))).mean(axis=1)


def defacer_attacks(run: Path, floor: float) -> dict[str, list[tuple[str, np.ndarray, list[str]]]]:
    """defacer -> [(label, aligned matrix, ids)] over the results whose attacker is valid."""
    results = []
    for metrics in sorted(run.glob("*/metrics.json")):
        extra = json.loads(metrics.read_text()).get("extra") or {}
        cid, scenario = extra.get("config_id"), extra.get("scenario", "rescan")
        files = sorted(metrics.parent.glob("distances-*.csv")) or [metrics.parent / "distances.csv"]
        for path in files:
            gallery, probes, values = read_matrix(path)
            ids = sorted(set(gallery) & set(probes))
            results.append((cid.split("-")[0], "-".join(cid.split("-")[1:]), scenario, path.stem,
                            aligned(gallery, probes, values, ids), ids))
    control = {}
    for defacer, attacker, scenario, _, matrix, ids in results:
        if defacer == "none":  # the control's rank-1: its strongest fusion, as the run keeps it
            own = float(rank1_under(matrix, np.arange(len(ids))[None, :])[0])
            control[(attacker, scenario)] = max(control.get((attacker, scenario), 0.0), own)
    out: dict[str, list] = {}
    for defacer, attacker, scenario, name, matrix, ids in results:
        if control.get((attacker, scenario), 0.0) >= floor:
            out.setdefault(defacer, []).append((f"{attacker}, {scenario}, {name}", matrix, ids))
    return out


def max_t(attacks: list[tuple[str, np.ndarray, list[str]]], permutations: int, seed: int) -> tuple[float, float, float]:
    """(selected max rank-1, chance, p) with one relabelling of the subject ids for every attack."""
    ids = attacks[0][2]
    if any(a[2] != ids for a in attacks):
        raise SystemExit("attacks of one defacer over different subject sets: not supported by this check")
    rng = np.random.default_rng(seed)
    owner = np.array([rng.permutation(len(ids)) for _ in range(permutations)])
    identity = np.arange(len(ids))[None, :]
    observed = max(float(rank1_under(m, identity)[0]) for _, m, _ in attacks)
    null_max = np.max([rank1_under(m, owner) for _, m, _ in attacks], axis=0)
    p = (1 + int((null_max >= observed - 1e-9).sum())) / (1 + permutations)
    return observed, 1.0 / len(ids), p


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--permutations", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--p-tolerance", type=float, default=0.02)
    args = parser.parse_args(argv)
    manifest = json.loads((args.run / "manifest.json").read_text())
    floor = float((manifest.get("run") or {}).get("attacker_floor", 0.5))
    with open(args.run / "defacers.csv", newline="") as handle:
        verdict = {r["defacer"]: r for r in csv.DictReader(handle)}
    attacks = defacer_attacks(args.run, floor)
    bad = 0
    print(f"{'defacer':16s} {'attacks':>7s} {'chance':>13s} {'selected max':>17s} {'p_exposed (run / here)':>24s}")
    for defacer, row in verdict.items():
        if defacer not in attacks or not row.get("p_exposed"):
            print(f"{defacer:16s} no valid attack with a matrix (run says exposure {row.get('exposure')})")
            continue
        selected, chance, p = max_t(attacks[defacer], args.permutations, args.seed)
        run_p, run_sel, run_chance = float(row["p_exposed"]), float(row["worst_rank1_selected"]), float(row["chance_rank1"])
        noise = 4 * np.sqrt(p * (1 - p) * (1 / float(row["permutations"]) + 1 / args.permutations))
        ok = abs(run_p - p) <= max(args.p_tolerance, noise) and abs(run_sel - selected) < 1e-9 \
            and abs(run_chance - chance) < 1e-9
        bad += not ok
        print(f"{defacer:16s} {len(attacks[defacer]):7d} {run_chance:6.4f}/{chance:6.4f} {run_sel:8.4f}/{selected:8.4f} "
              f"{run_p:11.4f} / {p:8.4f} (difference {abs(run_p - p):.4f}) {'ok' if ok else 'DIFFERS'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
