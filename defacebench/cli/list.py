"""``defacebench list``: every plugin of every kind with version, source, availability, whether
it runs by default (a plugin that declares itself opt-in runs only when a run names it) and the
licence and modality notes it declares."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tabulate import tabulate

from defacebench.contracts import KINDS, opt_in_reason, plugin_notes
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
                         "reason": avail.reason if not avail.ok else (f"opt-in: {opt_in}" if opt_in else ""),
                         "notes": plugin_notes(entry.plugin)})
        for problem in registry.problems:
            if problem.kind == kind:
                rows.append({"kind": kind, "name": problem.name, "version": "?", "source": problem.source,
                             "available": False, "default": False, "reason": f"failed to load: {problem.error}",
                             "notes": ""})
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
                  "yes" if r["default"] else "no", r["reason"], r["notes"]] for r in rows if r["kind"] == kind]
        print(f"\n{kind}:")
        print(tabulate(table, headers=["name", "version", "source", "available", "default", "reason", "notes"],
                       maxcolwidths=[None, 20, 40, None, None, 70, 50]))
    return 0
