"""``defacebench report RUN_DIR``: rebuild a run's leaderboard from its per-configuration metrics.json.

Useful after editing or deleting configurations by hand, or to regenerate the HTML without images
(``--no-images``). Optionally gates against a baseline (``--compare``) or writes one
(``--save-baseline``), exactly as the pytest options do.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from defacebench.errors import DefacebenchError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` subcommand."""
    p = subparsers.add_parser("report", help="rebuild leaderboard.md/.csv/.html of a run folder")
    p.add_argument("run_dir", type=Path, help="a run folder: results/runs/<run_id>")
    p.add_argument("--no-images", action="store_true", help="no thumbnails in the HTML (faces stay out)")
    p.add_argument("--compare", type=Path, default=None, metavar="BASELINE", help="fail (exit 1) on regressions")
    p.add_argument("--compare-fail", default="rank1:0.05,roc_auc:0.05", metavar="TOLERANCES",
                   help="tolerances beyond the baseline CI, e.g. rank1:0.05,roc_auc:0.05")
    p.add_argument("--save-baseline", type=Path, default=None, metavar="PATH", help="write a baseline JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Rebuild the leaderboard; 0 on success, 1 on regressions, 2 on a user error."""
    from defacebench.report import compare_baseline, format_regressions, parse_tolerances, rows_from_run, save_baseline
    from defacebench.report.baseline import load_baseline
    from defacebench.report.leaderboard import write_leaderboard
    from defacebench.run.gate import check_comparable

    try:
        rows = rows_from_run(args.run_dir)
        write_leaderboard(args.run_dir, rows, images=not args.no_images)
        print(f"wrote {args.run_dir / 'leaderboard.html'} ({len(rows)} configurations)")
        if args.save_baseline or args.compare:
            origin = _provenance(args.run_dir)
        if args.save_baseline:
            save_baseline(args.save_baseline, rows, dataset=origin["dataset"], split=origin["split"],
                          plugins=origin["versions"])
            print(f"wrote baseline {args.save_baseline}")
        if args.compare:
            check_comparable(load_baseline(args.compare), keys=[r.key for r in rows], **origin)
            regressions = compare_baseline(rows, args.compare, tolerances=parse_tolerances(args.compare_fail))
            print(format_regressions(regressions))
            return 1 if regressions else 0
    except DefacebenchError as exc:
        print(f"defacebench report: {exc}", file=sys.stderr)
        return 2
    return 0


def _provenance(run_dir: Path) -> dict:
    """What the run was measured on, from its manifest (a baseline must record it)."""
    from defacebench.run.gate import GateError, provenance_from_manifest

    path = Path(run_dir) / "manifest.json"
    try:
        return provenance_from_manifest(json.loads(path.read_text()))
    except (OSError, ValueError) as exc:
        raise GateError(f"{path}: cannot read the run's manifest ({exc}); a baseline records the dataset it was "
                        "measured on, so report --save-baseline/--compare need the run folder's manifest.json") from None
