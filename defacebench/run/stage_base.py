"""What every stage shares: where it finds the cache and plugins, cache-only lookups, cost accounting.

Stages run in whatever process the executor picks (local pool, Dask worker), so a task carries a
:class:`StageEnv` (cache root, plugins file) from which the worker rebuilds its registry. Each call
is wrapped by :func:`timed_call`, which measures CPU and wall seconds and whether anything was
computed, so the manifest can say where a run's time went.
"""

from __future__ import annotations

import json
import os
import resource
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any, Callable

from defacebench.run.cache import Cache

STAGE_VERSION = "2"  # bump when a stage's artifact layout or semantics change

_LOCAL = threading.local()


class NotCached(LookupError):
    """Raised in :func:`lookup_only` mode when a stage would have to compute something."""


@contextmanager
def lookup_only():
    """Within this block stages only read the cache and raise :class:`NotCached` on a miss, so the
    pipeline answers warm items in-process and sends only the misses to the executor."""
    previous = getattr(_LOCAL, "lookup", False)
    _LOCAL.lookup = True
    try:
        yield
    finally:
        _LOCAL.lookup = previous


def get_or_build(cache: Cache, stage: str, key: str, build: Callable[[Path], None]) -> Path:
    """``cache.get_or_build`` that counts builds, unless in lookup-only mode (a miss raises NotCached)."""
    if getattr(_LOCAL, "lookup", False):
        found = cache.get(stage, key)
        if found is None:
            raise NotCached(stage)
        return found

    def counting(tmp: Path) -> None:
        _LOCAL.built = getattr(_LOCAL, "built", 0) + 1
        build(tmp)

    return cache.get_or_build(stage, key, counting)


def in_lookup_mode() -> bool:
    return getattr(_LOCAL, "lookup", False)


@dataclass(frozen=True)
class Timed:
    """A stage value with its cost: ``computed`` is False when everything came from the cache."""

    value: Any
    computed: bool
    cpu_s: float
    wall_s: float
    started: float = 0.0  # epoch seconds when the call began (the run's task timeline)
    pid: int = 0  # the process that ran it (a pool worker, or the run's own process)


def _cpu_seconds() -> float:
    """CPU seconds of this process and of its finished children (external tools run as children)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def timed_call(fn: Callable[[Any], Any], task: Any) -> Timed:
    """Call ``fn(task)`` and measure it (a top-level function, so a partial of it pickles)."""
    built_before = getattr(_LOCAL, "built", 0)
    started, cpu0, wall0 = time.time(), _cpu_seconds(), time.perf_counter()
    value = fn(task)
    return Timed(value, getattr(_LOCAL, "built", 0) > built_before, _cpu_seconds() - cpu0,
                 time.perf_counter() - wall0, started, os.getpid())


@dataclass(frozen=True)
class StageEnv:
    """Where stages find the cache and the plugins (a worker rebuilds its registry from this)."""

    cache_root: str
    plugins_file: str | None = None

    def cache(self) -> Cache:
        return Cache(Path(self.cache_root))

    def plugin(self, kind: str, name: str):
        from defacebench.plugins.registry import load_registry

        return load_registry(Path(self.plugins_file) if self.plugins_file else None).get(kind, name)


def plugin_identity(plugin) -> dict:
    """What keys a plugin's artifacts: name, version, the external tool's version and params."""
    params = asdict(plugin.params) if is_dataclass(plugin.params) else repr(plugin.params)
    return {"name": plugin.name, "version": str(plugin.version), "tool_version": tool_version(plugin),
            "params": json.loads(json.dumps(params, sort_keys=True, default=str)),
            "params_type": type(plugin.params).__qualname__}


_TOOL_VERSIONS: dict[tuple[str, int], str] = {}


def tool_version(plugin) -> str:
    """The external tool's version of a defacer (``Defacer.tool_version()``), asked once per process:
    upgrading the tool must recompute its defacings. Other kinds have none."""
    getter = getattr(plugin, "tool_version", None)
    if not callable(getter):
        return ""
    key = (plugin.name, id(plugin))
    if key not in _TOOL_VERSIONS:
        _TOOL_VERSIONS[key] = str(getter())
    return _TOOL_VERSIONS[key]


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def write_json(path: Path, obj: Any) -> None:
    Path(path).write_text(json.dumps(obj, indent=1, sort_keys=True, default=str))
