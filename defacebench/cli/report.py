"""``defacebench report RUN_DIR``: rebuild a run's leaderboard from its per-result metrics.json.

It rebuilds exactly what the run wrote: the rows come from what each ``metrics.json`` recorded
(configuration, scenario, fusion, per-probe facts) and the verdict's settings (attacker floor,
alpha, permutations, seed, images) from the run's ``manifest.json``, so on an untouched run every
table is byte-identical. It warns when the manifest is missing or a result folder the run wrote is
gone, and never replaces a file without saying so: each table is reported as unchanged or
rewritten, and the run's own version of a rewritten file is kept once as ``<name>.orig``.
Optionally gates against a baseline (``--compare``) or writes one (``--save-baseline``), exactly
as the run options do.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from defacebench.errors import DefacebenchError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` subcommand."""
    p = subparsers.add_parser("report", help="rebuild leaderboard.md/.csv/.html of a run folder")
    p.add_argument("run_dir", type=Path, help="a run folder: results/runs/<run_id>")
    p.add_argument("--no-images", action="store_true", help="no thumbnails in the HTML (faces stay out)")
    p.add_argument("--compare", type=Path, default=None, metavar="BASELINE", help="fail (exit 1) on regressions")
    p.add_argument("--compare-fail", default=None, metavar="TOLERANCES",
                   help="tolerance per gated metric, e.g. rank1:0.05,roc_auc:0.05 (default: the run's)")
    p.add_argument("--save-baseline", type=Path, default=None, metavar="PATH", help="write a baseline JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Rebuild the leaderboard; 0 on success, 1 on regressions, 2 on a user error."""
    from defacebench.report.rebuild import read_run

    try:
        folder = read_run(args.run_dir)
        for warning in folder.warnings:
            print(f"defacebench report: warning: {warning}", file=sys.stderr)
        settings = (folder.manifest or {}).get("run") or {}
        _rebuild(args.run_dir, folder.rows, settings, images=not args.no_images and settings.get("images", True))
        if args.save_baseline or args.compare:
            origin = _provenance(args.run_dir, folder.manifest)
        if args.save_baseline:
            from defacebench.report import save_baseline

            save_baseline(args.save_baseline, folder.rows, dataset=origin["dataset"], split=origin["split"],
                          plugins=origin["versions"])
            print(f"wrote baseline {args.save_baseline}")
        if args.compare:
            return _gate(args, folder.rows, settings, origin)
    except DefacebenchError as exc:
        print(f"defacebench report: {exc}", file=sys.stderr)
        return 2
    return 0


def _rebuild(run_dir: Path, rows, settings: dict, *, images: bool) -> None:
    """Write the tables, then say for each one whether it changed; keep the run's original once."""
    from defacebench.report.leaderboard import TABLES, write_leaderboard
    from defacebench.report.verdict import VerdictParams

    before = {name: (run_dir / name).read_bytes() for name in TABLES if (run_dir / name).is_file()}
    originals = {name: run_dir / f"{name}.orig" for name in before}
    write_leaderboard(run_dir, rows, images=images, params=VerdictParams.from_settings(settings))
    changed = []
    for name, old in before.items():
        path = run_dir / name
        if path.is_file() and path.read_bytes() != old:
            if not originals[name].exists():
                originals[name].write_bytes(old)
            changed.append(name)
    unchanged = [n for n in before if n not in changed and (run_dir / n).is_file()]
    print(f"rebuilt {run_dir} from {len(rows)} results")
    if unchanged:
        print(f"  unchanged (identical to what was there): {', '.join(unchanged)}")
    for name in changed:
        print(f"  REWRITTEN {name}: it differs from the previous file, kept as {originals[name].name}")
    new = [n for n in TABLES if n not in before and (run_dir / n).is_file()]
    if new:
        print(f"  written: {', '.join(new)}")


def _gate(args: argparse.Namespace, rows, settings: dict, origin: dict) -> int:
    from defacebench.report import compare_figures, format_comparison, gate_failed, parse_tolerances
    from defacebench.report.baseline import load_baseline
    from defacebench.report.compare import write_gate_csv
    from defacebench.run.gate import check_comparable

    check_comparable(load_baseline(args.compare), keys=[r.key for r in rows], **origin)
    if args.compare_fail is not None:
        tolerances = parse_tolerances(args.compare_fail)
    else:
        tolerances = {k: v for k, v in settings.get("compare_fail") or ()} or parse_tolerances("rank1:0.05")
    figures = compare_figures(rows, args.compare, tolerances=tolerances, rule=settings.get("compare_rule") or "noise",
                              alpha=settings.get("alpha") or 0.05)
    write_gate_csv(args.run_dir / "gate.csv", figures)
    print(format_comparison(figures))
    return 1 if gate_failed(figures) else 0


def _provenance(run_dir: Path, manifest: dict | None) -> dict:
    """What the run was measured on, from its manifest (a baseline must record it)."""
    from defacebench.run.gate import GateError, provenance_from_manifest

    if manifest is None:
        raise GateError(f"{Path(run_dir) / 'manifest.json'}: cannot read the run's manifest; a baseline records the "
                        "dataset it was measured on, so report --save-baseline/--compare need the run folder's "
                        "manifest.json")
    return provenance_from_manifest(manifest)

