"""What a cache root is, so that the cache only ever writes into, or deletes from, its own folders.

Why: ``defacebench cache clear --cache-dir X`` deletes folders. Pointed at the wrong folder (a
dataset root, a home folder) it must refuse, not delete. A cache root is recognised by a marker
file the cache writes when it creates the root (:data:`ROOT_MARKER`). A root made by an older
defacebench has no marker; it is recognised only when *everything* in it has the cache's own
layout (``<stage>/<2 hex>/<64 hex>/`` and the hidden ``.tmp``/``.quarantine`` folders), which no
dataset or user folder has, and is then marked. Anything else is refused with the fix.

Inside a recognised root the same layout test decides what counts as a stage: a folder with any
other content is never treated (or deleted) as one.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from defacebench.errors import CacheError

ROOT_MARKER = ".defacebench-cache"
"""File whose presence makes a folder a cache root (its JSON content is informational only)."""
TAG_FILE = "CACHEDIR.TAG"
"""The Cache Directory Tagging Specification's file, so backup tools skip the cache."""
TAG_TEXT = ("Signature: 8a477f597d28d172789f06886806bc55\n"
            "# This file is a cache directory tag created by defacebench (its stage cache).\n")
TEMP_DIRNAME = ".tmp"
QUARANTINE_DIRNAME = ".quarantine"
HIDDEN_ENTRIES = frozenset({ROOT_MARKER, TEMP_DIRNAME, QUARANTINE_DIRNAME})
STAGE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
KEY_RE = re.compile(r"^[0-9a-f]{64}$")
_SHARD_RE = re.compile(r"^[0-9a-f]{2}$")


def _entries(folder: Path) -> list[os.DirEntry]:
    """The entries of ``folder`` (empty when it vanished meanwhile)."""
    try:
        with os.scandir(folder) as it:
            return list(it)
    except (FileNotFoundError, NotADirectoryError):
        return []


def stage_layout_problem(stage_dir: Path) -> str | None:
    """None when ``stage_dir`` holds only ``<2 hex>/<64 hex starting with them>/`` folders, else what
    does not fit (named, so the user can find it)."""
    for shard in _entries(stage_dir):
        if not (shard.is_dir(follow_symlinks=False) and _SHARD_RE.match(shard.name)):
            return f"{shard.path} is not a cache shard folder"
        for item in _entries(Path(shard.path)):
            if not (item.is_dir(follow_symlinks=False) and KEY_RE.match(item.name)
                    and item.name.startswith(shard.name)):
                return f"{item.path} is not a cache artifact folder"
    return None


def root_layout_problem(root: Path) -> str | None:
    """None when every entry of ``root`` is one the cache creates (stage folders with the cache
    layout, the hidden temp/quarantine folders, the marker and tag files), else the first that is not."""
    for entry in sorted(_entries(root), key=lambda e: e.name):
        if entry.name in HIDDEN_ENTRIES or (entry.name == TAG_FILE and entry.is_file(follow_symlinks=False)):
            continue
        if not (entry.is_dir(follow_symlinks=False) and STAGE_RE.match(entry.name)):
            return f"'{entry.name}' is not something the cache creates"
        problem = stage_layout_problem(Path(entry.path))
        if problem is not None:
            return problem
    return None


def has_marker(root: Path) -> bool:
    """True when ``root`` carries the cache's root marker."""
    return (root / ROOT_MARKER).is_file()


def write_marker(root: Path) -> None:
    """Mark ``root`` as a cache root (and tag it for backup tools); idempotent.

    ``O_EXCL`` so a concurrent marker never truncates another's; an existing marker is fine.
    """
    for name, text in ((ROOT_MARKER, json.dumps({"created": time.time(), "by": "defacebench"}) + "\n"),
                       (TAG_FILE, TAG_TEXT)):
        try:
            fd = os.open(root / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(text)


def _how_to_mark(root: Path) -> str:
    return (f"if it really is a cache made by an older defacebench, mark it with "
            f"`touch {root / ROOT_MARKER}`")


def recognise(root: Path, *, adopt: bool = True) -> None:
    """Accept ``root`` as a cache root for maintenance (info, sweep, clear), or raise CacheError.

    A missing or empty folder holds nothing to lose and is accepted. A marked folder is accepted.
    An unmarked folder whose whole content has the cache layout (an older defacebench's cache) is
    accepted and, with ``adopt``, marked (a read-only cache simply stays unmarked).
    """
    if not root.exists() or has_marker(root):
        return
    if not root.is_dir():
        raise CacheError(f"{root}: is a file, not a cache folder; point --cache-dir at the cache folder")
    problem = root_layout_problem(root)
    if problem is not None:
        raise CacheError(f"{root}: not a defacebench cache folder (no {ROOT_MARKER} marker, and {problem}); "
                         f"refusing to touch it. Fix: point --cache-dir at the cache folder, or "
                         f"{_how_to_mark(root)}")
    if adopt and any(True for _ in _entries(root)):
        try:
            write_marker(root)
        except OSError:
            pass  # a read-only shared cache: recognised by layout again next time


def prepare_for_writes(root: Path) -> None:
    """Make ``root`` usable for new artifacts: create and mark it, or check that it is a cache.

    Why refuse a foreign folder here too: once artifacts are written into, say, a dataset root, a
    later ``cache clear`` could not tell the two apart. Raises CacheError naming the folder.
    """
    if has_marker(root):
        return
    if root.exists():
        recognise(root)  # refuses a foreign folder; adopts an older, unmarked cache
    root.mkdir(parents=True, exist_ok=True)
    if not has_marker(root):
        write_marker(root)
