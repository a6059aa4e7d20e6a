"""``defacebench cache info|clear|sweep``: inspect and empty the content-addressed stage cache.

Why: the cache can grow to many gigabytes (defaced volumes, renders); users need to see what it
holds per stage and to drop one stage (e.g. after fixing a renderer) without losing the others.
Every command refuses a folder that is not a cache root (one line naming it, exit 2), so a wrong
``--cache-dir`` never deletes a dataset, and a folder that does not exist (exit 2: an empty table
would hide a mistyped ``--cache-dir`` or ``$DEFACEBENCH_CACHE``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from tabulate import tabulate

from defacebench.run.cache import Cache, CacheInfo, default_cache_dir
from defacebench.errors import CacheError, StorageError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``cache`` with its ``info`` and ``clear`` subcommands."""
    parser = subparsers.add_parser("cache", help="show or clear the stage cache",
                                   description="Show or clear the content-addressed stage cache.")
    sub = parser.add_subparsers(dest="cache_command", metavar="{info,clear,sweep}")
    sub.required = True
    info = sub.add_parser("info", help="entries and sizes per stage")
    clear = sub.add_parser("clear", help="delete cached artifacts (all, or one stage)")
    sweep = sub.add_parser("sweep", help="delete builds abandoned for over an hour (killed runs)")
    for p in (info, clear, sweep):
        p.add_argument("--cache-dir", type=Path, default=None,
                       help="cache folder (default: $DEFACEBENCH_CACHE or ~/.cache/defacebench/cache)")
    info.add_argument("--json", action="store_true", help="print the figures as JSON")
    clear.add_argument("--stage", default=None, help="only this stage (see `defacebench cache info`)")
    clear.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.set_defaults(func=run)


def _size(n: int) -> str:
    """Human-readable byte count in SI units (kB, MB, GB: powers of 1000)."""
    from tqdm import tqdm

    return tqdm.format_sizeof(n, suffix="B", divisor=1000)


def format_info(info: CacheInfo) -> str:
    """The text `cache info` prints: one row per stage, a total, and temp folders."""
    rows = [(s.stage, s.entries, _size(s.bytes)) for s in info.stages]
    rows.append(("total", info.entries, _size(info.bytes)))
    lines = [f"cache: {info.root}", tabulate(rows, headers=("stage", "entries", "size"), colalign=("left", "right", "right"))]
    lines.append(f"temp folders: {info.temp_dirs} ({_size(info.temp_bytes)}), "
                 f"stale (> 1 h, removed by `defacebench cache sweep` or `clear`): {info.stale_temp_dirs}")
    if info.quarantined:
        lines.append(f"quarantined corrupt artifacts: {info.quarantined} ({_size(info.quarantine_bytes)}), "
                     "kept for inspection until `defacebench cache clear`")
    return "\n".join(lines)


def _confirm(prompt: str) -> bool:
    """Ask y/N on a terminal; never blocks a non-interactive run."""
    if not sys.stdin or not sys.stdin.isatty():
        return False
    return input(f"{prompt} [y/N] ").strip().lower() in {"y", "yes"}


def run_info(cache: Cache, as_json: bool = False) -> int:
    """Print per-stage counts and sizes."""
    info = cache.info()
    print(json.dumps(info.to_dict(), indent=1) if as_json else format_info(info))
    return 0


def run_clear(cache: Cache, stage: str | None, yes: bool) -> int:
    """Delete all artifacts or one stage's, after confirmation unless ``yes``."""
    present = cache.stages()  # refuses (CacheError) a folder that is not a cache, before any prompt
    if stage is not None and stage not in present:
        known = ", ".join(present) or "none"
        print(f"defacebench cache clear: no stage {stage!r} in {cache.root} (stages: {known})", file=sys.stderr)
        return 1
    what = f"stage {stage!r}" if stage else "every stage"
    if not yes and not _confirm(f"Delete {what} of the cache at {cache.root}?"):
        print(f"defacebench cache clear: nothing deleted; pass --yes to delete {what} of {cache.root} "
              "without a prompt", file=sys.stderr)
        return 1
    removed = cache.clear(stage)
    print(f"removed {removed} artifact(s) of {what} from {cache.root}")
    return 0


def run_sweep(cache: Cache) -> int:
    """Delete temp folders of builds abandoned for over an hour."""
    print(f"removed {cache.sweep()} abandoned build folder(s) from {cache.root}")
    return 0


def missing_root(root: Path, given: bool) -> str | None:
    """The message for a cache folder that does not exist (None when it does)."""
    if root.exists():
        return None
    source = ("--cache-dir" if given else
              "$DEFACEBENCH_CACHE" if os.environ.get("DEFACEBENCH_CACHE") else "the default location")
    return (f"{root}: no cache here (the folder does not exist; it came from {source}). A run creates it on "
            "first use. Fix: check the path, or pass the cache folder a run used with --cache-dir")


def run(args: argparse.Namespace) -> int:
    """Entry point of ``defacebench cache``; returns the exit code."""
    given = bool(getattr(args, "cache_dir", None))
    cache = Cache(args.cache_dir if given else default_cache_dir())
    missing = missing_root(Path(cache.root), given)
    if missing:
        print(f"defacebench cache: {missing}", file=sys.stderr)
        return 2
    try:
        if args.cache_command == "info":
            return run_info(cache, getattr(args, "json", False))
        if args.cache_command == "clear":
            return run_clear(cache, getattr(args, "stage", None), getattr(args, "yes", False))
        if args.cache_command == "sweep":
            return run_sweep(cache)
    except (CacheError, StorageError) as e:
        print(f"defacebench cache: {e}", file=sys.stderr)
        return 2
    print(f"defacebench cache: unknown command {args.cache_command!r}; use info, clear or sweep", file=sys.stderr)
    return 2
