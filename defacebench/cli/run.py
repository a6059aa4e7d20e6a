"""``defacebench run``: the benchmark without pytest, on the dataset given (default: the sample).

Runs every available configuration (or the ``--defacers/--renderers/...`` restriction), records
unavailable ones as skipped with their reason and failing ones with their error, and writes the
same results tree as ``pytest bench/``: per-configuration artifacts, leaderboard, manifest.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from defacebench.run.config import RunConfig, parse_name_list, product
from defacebench.contracts import KINDS
from defacebench.errors import DefacebenchError


def register(subparsers) -> None:
    parser = subparsers.add_parser("run", help="run the benchmark (default: on the embedded sample dataset)")
    parser.add_argument("--dataset", type=Path, default=None, help="dataset folder or CSV (default: sample)")
    parser.add_argument("--results", type=Path, default=Path("results/runs"), help="run outputs folder")
    for kind in KINDS:
        parser.add_argument(f"--{kind}", default=None, help=f"comma list restricting the {kind}")
    parser.add_argument("--executor", default="local", choices=("local", "serial", "dask"))
    parser.add_argument("--scheduler", default=None, help="Dask scheduler tcp://HOST:PORT (implies dask)")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--scenario", default="rescan", choices=("rescan", "seed"))
    parser.add_argument("--protocol", default="default", choices=("default", "seed"))
    parser.add_argument("--cleanup", default="mask", choices=("mask", "seed_range", "none"))
    parser.add_argument("--qc-filter", default=None)
    parser.add_argument("--seed", type=int, default=0, help="split seed")
    parser.add_argument("--calibration", type=float, default=0.7)
    parser.add_argument("--n-bootstrap", type=int, default=1000)
    parser.add_argument("--policy", default="f1")
    parser.add_argument("--converter", default="dicom2nifti", choices=("dicom2nifti", "dcm2niix"))
    parser.add_argument("--no-images", action="store_true", help="write no pictures (renders show faces)")
    parser.add_argument("--run-id", default="")
    parser.set_defaults(func=run)


def _run_config(args: argparse.Namespace) -> RunConfig:
    from defacebench.data.sample import sample_dataset

    return RunConfig(
        dataset=args.dataset or sample_dataset(), results=args.results, cache_dir=args.cache_dir,
        plugins_file=Path(args.plugins_file).resolve() if args.plugins_file else None,
        executor="dask" if args.scheduler else args.executor, scheduler=args.scheduler, workers=args.workers,
        scenario=args.scenario, protocol=args.protocol, calibration=args.calibration, seed=args.seed,
        n_bootstrap=args.n_bootstrap, policy=args.policy, cleanup=args.cleanup, converter=args.converter,
        qc_filter=args.qc_filter, images=not args.no_images, run_id=args.run_id or time.strftime("%Y%m%d-%H%M%S"),
        restrict=tuple((k, parse_name_list(getattr(args, k))) for k in KINDS if getattr(args, k)),
    )


def run(args: argparse.Namespace) -> int:
    from defacebench.run.manifest import build_manifest, write_manifest
    from defacebench.run.pipeline import BenchmarkRun
    from defacebench.plugins.registry import load_registry
    from defacebench.report import write_leaderboard

    cfg = _run_config(args)
    registry = load_registry(cfg.plugins_file)
    names = {kind: registry.names(kind) for kind in KINDS}
    configs = product(names, dict(cfg.restrict))
    reasons = registry.unavailable_reasons()
    statuses: dict[str, dict] = {}
    bench = BenchmarkRun(cfg)
    try:
        for cid in configs:
            why = [reasons[(k, n)] for k, n in zip(KINDS, cid.parts) if reasons[(k, n)]]
            if why:
                statuses[str(cid)] = {"status": "skipped", "reason": "; ".join(why)}
                continue
            try:
                outcome = bench.run_config(cid)
            except DefacebenchError as exc:
                statuses[str(cid)] = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
                print(f"FAILED {cid}: {exc}", file=sys.stderr)
                continue
            statuses[str(cid)] = {"status": "passed"}
            ev = outcome.evaluation.to_dict()
            print(f"{cid}: n={ev['n']} rank1={ev['rank1']:.3f} roc_auc={ev['roc_auc']:.3f} "
                  f"detection={outcome.embeddings['probe']}/{ev['n']} ({outcome.seconds:.1f} s)")
        rows = [o.row for o in bench.outcomes.values()]
        if rows:
            write_leaderboard(bench.run_dir, rows)
        manifest = build_manifest(run_config=cfg, registry=registry, statuses=statuses, run=bench)
        write_manifest(bench.run_dir / "manifest.json", manifest)
    finally:
        bench.close()
    passed = sum(s["status"] == "passed" for s in statuses.values())
    failed = sum(s["status"] == "failed" for s in statuses.values())
    print(f"{passed} configurations passed, {failed} failed, {len(statuses) - passed - failed} skipped; "
          f"results in {bench.run_dir}")
    if rows:
        print((bench.run_dir / "leaderboard.md").read_text())
    return 1 if failed else 0


