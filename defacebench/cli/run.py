"""``defacebench run``: the benchmark without pytest, on the dataset given (default: the sample).

A thin adapter over :class:`defacebench.run.session.Session`, with exactly the options of
``pytest bench/`` (one table, :mod:`defacebench.run.options`): runs every planned (configuration,
scenario), records unavailable ones as skipped with their reason and failing ones with their error,
then writes the same results tree (artifacts, leaderboard and verdict, manifest, baseline, gate).
On a terminal it shows one progress bar per stage and a line per defacer as its configurations
finish, then the compact verdict; ``-v`` adds the per-configuration lines and the full leaderboard
(both always in the run folder's ``run.log``).
"""

from __future__ import annotations

import argparse

from defacebench.run.console import DefacerTally
from defacebench.run.options import add_to_argparse, run_config
from defacebench.run.session import Session
from defacebench.util.progress import StageBoard


def register(subparsers) -> None:
    parser = subparsers.add_parser("run", help="run the benchmark (default: on the embedded sample dataset)",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="also print one line per configuration and the full leaderboard (always in run.log)")
    add_to_argparse(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    values = vars(args)
    if not values.get("plugins_file") and values.get("global_plugins_file"):
        values["plugins_file"] = values["global_plugins_file"]
    verbose = bool(values.get("verbose"))
    session = Session(run_config(values))
    plan = session.plan()
    session.prepare()
    tally = DefacerTally(plan)
    board = StageBoard(len(plan))
    first = {}
    for item in plan:
        first.setdefault(item.config_id.defacer, len(first))
    # one defacer after the other (stable), so each defacer's status line comes as soon as it is done
    ordered = sorted(plan, key=lambda p: first[p.config_id.defacer])
    with board.activate():  # one bar per stage and one of configurations, on a terminal only
        session.run_ahead(ordered)  # the workers compute the stages ahead of the evaluations
        try:
            result = _evaluate_all(session, ordered, board, tally, verbose)
        except BaseException:
            session.abort()
            raise
    counts = {s: sum(v.status == s for v in session.statuses.values())
              for s in ("passed", "failed", "defacer_failed", "skipped")}
    lines = [*result.lines, ", ".join(f"{n} {s}" for s, n in counts.items())]
    if verbose:
        lines += ["", *result.details]
        if session.started and (session.run.run_dir / "leaderboard.md").exists():
            lines.append((session.run.run_dir / "leaderboard.md").read_text())
    print("\n".join(lines), flush=True)
    return 1 if counts["failed"] or counts["defacer_failed"] or result.gate_failed else 0


def _evaluate_all(session: Session, ordered: list, board: StageBoard, tally: DefacerTally, verbose: bool):
    """Evaluate every planned item in order (status lines as each defacer is done), then finish."""
    for item in ordered:
        status, outcome = session.run_item(item)
        board.config_done()
        if status.status in ("defacer_failed", "failed"):
            board.write(f"{status.status.replace('_', ' ').upper()} {item.key}: {status.reason}", err=True)
        if verbose:
            board.write(session.config_lines[-1])
        line = tally.add(item, status, outcome)
        if line:
            board.write(line)
    return session.finish()
