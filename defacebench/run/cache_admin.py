"""Upkeep of a cache root: what it holds (``info``), removing abandoned builds (``sweep``) and
emptying it (``clear``); the commands behind ``defacebench cache``.

Every function first checks that the folder is a cache root (:func:`cache_root.recognise`), so
pointed at a dataset or a home folder they refuse with the fix instead of deleting it, and they
only ever delete what the cache created: stage folders with the cache's own layout, and the
hidden temp and quarantine folders.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from defacebench.errors import CacheError
from defacebench.run import cache_root
from defacebench.run.cache_root import QUARANTINE_DIRNAME, STAGE_RE, TEMP_DIRNAME

COMPLETE_MARKER = ".complete.json"
STALE_AFTER_S = 3600.0


@dataclasses.dataclass(frozen=True)
class StageInfo:
    """Complete artifacts of one stage: how many and how many bytes (markers included)."""

    stage: str
    entries: int
    bytes: int


@dataclasses.dataclass(frozen=True)
class CacheInfo:
    """What a cache folder holds, for ``defacebench cache info`` and the run manifest."""

    root: Path
    stages: tuple[StageInfo, ...]
    temp_dirs: int
    stale_temp_dirs: int
    temp_bytes: int
    quarantined: int = 0
    quarantine_bytes: int = 0

    @property
    def entries(self) -> int:
        """Total complete artifacts over all stages."""
        return sum(s.entries for s in self.stages)

    @property
    def bytes(self) -> int:
        """Total bytes of complete artifacts over all stages."""
        return sum(s.bytes for s in self.stages)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (root as a string)."""
        d = dataclasses.asdict(self)
        d["root"] = str(self.root)
        d["entries"], d["bytes"] = self.entries, self.bytes
        return d


def tree_bytes(path: Path) -> int:
    """Total size of the regular files under ``path`` (0 if it vanished meanwhile)."""
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except FileNotFoundError:
                pass  # removed by a concurrent clear
    return total


def remove_tree(path: Path) -> None:
    """Remove a folder, tolerating a concurrent remover."""
    shutil.rmtree(path, ignore_errors=True)


def is_stale(path: Path, now: float, max_age_s: float) -> bool:
    """True when nothing in a temp folder was modified for ``max_age_s`` seconds.

    The newest mtime in the whole tree counts, so a long build that keeps writing (a slow defacer
    working in a subfolder) is not mistaken for an abandoned one.
    """
    newest = 0.0
    for dirpath, _dirs, files in os.walk(path):
        for name in [".", *files]:
            try:
                newest = max(newest, os.lstat(os.path.join(dirpath, name)).st_mtime)
            except FileNotFoundError:
                pass
    return newest > 0.0 and now - newest > max_age_s


def marker_names(folder: Path, stage: str, key: str) -> bool:
    """Cheap completeness test for counting: a readable marker naming this stage and key (no hashing)."""
    try:
        meta = json.loads((folder / COMPLETE_MARKER).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("key") == key and meta.get("stage") == stage


def stages(root: Path) -> list[str]:
    """Names of the stage folders of ``root`` (only folders with the cache layout), sorted."""
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.is_symlink() and STAGE_RE.match(p.name)
                  and cache_root.stage_layout_problem(p) is None)


def _artifacts(stage_dir: Path) -> list[Path]:
    """Artifact-level folders of one stage folder."""
    return [a for shard in stage_dir.iterdir() if shard.is_dir() for a in shard.iterdir() if a.is_dir()]


def stage_info(stage_dir: Path, stage: str) -> StageInfo:
    """Count the complete artifacts of one stage folder and their bytes."""
    done = [a for a in _artifacts(stage_dir) if marker_names(a, stage, a.name)]
    return StageInfo(stage=stage, entries=len(done), bytes=sum(tree_bytes(a) for a in done))


def _subdirs(folder: Path, prefix: str = "") -> list[Path]:
    """Sub-folders of ``folder`` whose name starts with ``prefix``, sorted (none if it is missing)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and p.name.startswith(prefix))


def info(root: Path, *, stale_after_s: float = STALE_AFTER_S) -> CacheInfo:
    """Per-stage entry counts and sizes, temp folders (and how many are stale), quarantined artifacts."""
    cache_root.recognise(root)
    temps = _subdirs(root / TEMP_DIRNAME)
    quarantined = _subdirs(root / QUARANTINE_DIRNAME)
    now = time.time()
    return CacheInfo(
        root=root,
        stages=tuple(stage_info(root / s, s) for s in stages(root)),
        temp_dirs=len(temps),
        stale_temp_dirs=sum(is_stale(p, now, stale_after_s) for p in temps),
        temp_bytes=sum(tree_bytes(p) for p in temps),
        quarantined=len(quarantined),
        quarantine_bytes=sum(tree_bytes(p) for p in quarantined),
    )


def sweep(root: Path, *, stage: str | None = None, stale_after_s: float = STALE_AFTER_S) -> int:
    """Remove temp folders untouched for ``stale_after_s`` (abandoned by killed builds); returns how many.

    Younger temp folders are left alone: they may belong to a build still running elsewhere.
    """
    cache_root.recognise(root)
    now = time.time()
    removed = 0
    for p in _subdirs(root / TEMP_DIRNAME, f"{stage}." if stage is not None else ""):
        if is_stale(p, now, stale_after_s):
            remove_tree(p)
            removed += 1
    return removed


def clear(root: Path, stage: str | None = None, *, stale_after_s: float = STALE_AFTER_S) -> int:
    """Delete every artifact (or those of one stage) and sweep stale temp folders.

    Returns the number of complete artifacts removed, counted in what was actually moved away.
    Each stage folder is first renamed aside so a concurrent reader sees either the whole stage or
    none of it. Clearing every stage also empties the quarantine.
    """
    cache_root.recognise(root)
    if stage is not None and not STAGE_RE.match(stage):
        raise CacheError(f"cache stage name {stage!r} is invalid; see `defacebench cache info`")
    removed = 0
    present = stages(root)
    for name in [stage] if stage is not None else present:
        if name not in present:
            continue
        trash = root / TEMP_DIRNAME / f"trash.{uuid.uuid4().hex}"
        trash.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(root / name, trash)
        except FileNotFoundError:
            continue
        removed += stage_info(trash, name).entries
        remove_tree(trash)
    if stage is None:
        remove_tree(root / QUARANTINE_DIRNAME)
    sweep(root, stage=stage, stale_after_s=stale_after_s)
    return removed
