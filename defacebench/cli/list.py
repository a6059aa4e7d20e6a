"""``defacebench list``: every plugin of every kind with version, source, availability and whether
it runs by default (a plugin that declares itself opt-in runs only when a run names it)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tabulate import tabulate

from defacebench.contracts import KINDS, opt_in_reason
from defacebench.plugins.registry import load_registry


def register(subparsers) -> None:
    parser = subparsers.add_parser("list", help="list plugins with version, source and availability")
    parser.add_argument("--kind", choices=KINDS, help="only this kind")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.set_defaults(func=run)


def plugin_rows(registry, kinds) -> list[dict]:
    """One dict per plugin (and per plugin that failed to load) for display."""
    rows = []
    for kind in kinds:
        for entry in registry.all_entries(kind):
            avail = entry.plugin.available()
            opt_in = opt_in_reason(entry.plugin)
            rows.append({"kind": kind, "name": entry.name, "version": str(entry.plugin.version),
                         "source": entry.source, "available": bool(avail.ok), "default": not opt_in,
                         "reason": avail.reason if not avail.ok else (f"opt-in: {opt_in}" if opt_in else "")})
        for problem in registry.problems:
            if problem.kind == kind:
                rows.append({"kind": kind, "name": problem.name, "version": "?", "source": problem.source,
                             "available": False, "default": False, "reason": f"failed to load: {problem.error}"})
    return rows


def run(args: argparse.Namespace) -> int:
    registry = load_registry(Path(args.global_plugins_file) if args.global_plugins_file else None)
    kinds = [args.kind] if args.kind else list(KINDS)
    rows = plugin_rows(registry, kinds)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for kind in kinds:
        table = [[r["name"], r["version"], r["source"], "yes" if r["available"] else "no",
                  "yes" if r["default"] else "no", r["reason"]] for r in rows if r["kind"] == kind]
        print(f"\n{kind}:")
        print(tabulate(table, headers=["name", "version", "source", "available", "default", "reason"],
                       maxcolwidths=[None, 20, 40, None, None, 70]))
    return 0
