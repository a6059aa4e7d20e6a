"""``defacebench run``: the benchmark without pytest, on the dataset given (default: the sample).

A thin adapter over :class:`defacebench.run.session.Session`, with exactly the options of
``pytest bench/`` (one table, :mod:`defacebench.run.options`): runs every planned (configuration,
scenario), records unavailable ones as skipped with their reason and failing ones with their error,
then writes the same results tree (artifacts, leaderboard and verdict, manifest, baseline, gate).
"""

from __future__ import annotations

import argparse
import sys

from defacebench.run.options import add_to_argparse, run_config
from defacebench.run.session import Session


def register(subparsers) -> None:
    parser = subparsers.add_parser("run", help="run the benchmark (default: on the embedded sample dataset)",
                                   description=__doc__.splitlines()[0])
    add_to_argparse(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    values = vars(args)
    if not values.get("plugins_file") and values.get("global_plugins_file"):
        values["plugins_file"] = values["global_plugins_file"]
    session = Session(run_config(values))
    plan = session.plan()
    session.prepare()
    for item in plan:
        status, outcome = session.run_item(item)
        if status.status in ("defacer_failed", "failed"):
            print(f"{status.status.replace('_', ' ').upper()} {item.key}: {status.reason}", file=sys.stderr)
        if outcome is None:
            continue
        row = outcome.row
        print(f"{item.key}: n={row.n} rank1={row.rank1:.3f} roc_auc={row.roc_auc:.3f} "
              f"detection={row.detection_rate:.2f} ({outcome.seconds:.1f} s)")
    result = session.finish()
    counts = {s: sum(v.status == s for v in session.statuses.values())
              for s in ("passed", "failed", "defacer_failed", "skipped")}
    for line in result.lines:
        print(line)
    print(", ".join(f"{n} {s}" for s, n in counts.items()))
    if session.started and (session.run.run_dir / "leaderboard.md").exists():
        print((session.run.run_dir / "leaderboard.md").read_text())
    return 1 if counts["failed"] or counts["defacer_failed"] or result.gate_failed else 0
