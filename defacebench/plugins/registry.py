"""Plugin discovery: entry-point groups ``defacebench.<kind>`` plus command defacers from a TOML file.

The registry is loaded once per process (:func:`load_registry`). Loading never stops at a broken
plugin: an entry point that fails to import becomes a :class:`LoadProblem` (shown by
``defacebench list`` and turned into a skipped pytest id), so the other plugins keep working. Two
plugins of one kind with one name are an error naming both sources, because silently picking one
would make results depend on install order.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Iterable

from defacebench.plugins.entries import Entry, LoadProblem
from defacebench.plugins.params import instantiate, params_from_table
from defacebench.plugins.toml import CommandDefacer, ParamSetting, load_plugins_file
from defacebench.contracts import KINDS, PROTOCOLS, check_name, opt_in_reason
from defacebench.errors import DuplicatePluginError, PluginError, PluginLoadError, PluginsFileError, UnknownPluginError

GROUP_PREFIX = "defacebench."
PLUGINS_FILE_ENV = "DEFACEBENCH_PLUGINS_FILE"
DEFAULT_PLUGINS_FILE = "defacebench.toml"


@dataclass(frozen=True)
class Registry:
    """All plugins of all kinds: ``entries[kind][name]`` and the load problems met on the way."""

    entries: dict = field(default_factory=dict)
    problems: tuple[LoadProblem, ...] = ()

    def names(self, kind: str) -> list[str]:
        """Names of the loaded plugins of ``kind``, sorted, control ``none`` first."""
        _check_kind(kind)
        return sorted(self.entries.get(kind, {}), key=lambda n: (n != "none", n))

    def get(self, kind: str, name: str) -> object:
        """The plugin instance; unknown names raise an error listing the installed ones."""
        return self.entry(kind, name).plugin

    def entry(self, kind: str, name: str) -> Entry:
        _check_kind(kind)
        found = self.entries.get(kind, {})
        if name in found:
            return found[name]
        broken = [p for p in self.problems if p.kind == kind and p.name == name]
        if broken:
            raise PluginLoadError(f"{kind[:-1]} {name!r} failed to load ({broken[0].source}): {broken[0].error}")
        raise UnknownPluginError(
            f"unknown {kind[:-1]} {name!r}; installed: {', '.join(self.names(kind)) or '(none)'}"
        )

    def all_entries(self, kind: str) -> list[Entry]:
        return [self.entries[kind][n] for n in self.names(kind)]


    def unavailable_reasons(self, only: set[tuple[str, str]] | None = None) -> dict[tuple[str, str], str]:
        """(kind, name) -> why the plugin cannot run here ("" when it can), for every plugin (or those
        in ``only``: availability probes can be slow) including those that failed to load, so a
        configuration is skipped with its reason."""
        reasons = {(p.kind, p.name): f"{p.kind[:-1]} {p.name} failed to load ({p.source}): {p.error}"
                   for p in self.problems}
        for kind, found in self.entries.items():
            for name, entry in found.items():
                if only is not None and (kind, name) not in only:
                    continue
                avail = entry.plugin.available()
                reasons[(kind, name)] = "" if avail.ok else f"{kind[:-1]} {name}: {avail.reason}"
        return reasons

    def left_out_reasons(self, plugin_set: str, named: dict[str, tuple[str, ...]]) -> dict[tuple[str, str], str]:
        """(kind, name) -> why a loaded opt-in plugin is left out of this run ("" absent): nothing is
        left out with ``plugin_set == "all"``, nor a plugin ``named[kind]`` asks for explicitly or the
        plugins file configures."""
        if plugin_set == "all":
            return {}
        reasons = {}
        for kind, found in self.entries.items():
            for name, entry in found.items():
                why = opt_in_reason(entry.plugin)
                if why and not entry.configured and name not in named.get(kind, ()):
                    reasons[(kind, name)] = (f"{kind[:-1]} {name} is opt-in ({why}): name it in --{kind} "
                                             "or pass --plugin-set all")
        return reasons


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise UnknownPluginError(f"unknown plugin kind {kind!r}; kinds: {', '.join(KINDS)}")


def _distribution_of(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "unknown distribution"
    return f"{dist.metadata['Name']} {dist.version}"


def _instantiate(obj: object, kind: str) -> object:
    """Entry points name a class or zero-argument factory; a ready instance is accepted too."""
    if isinstance(obj, type) or (callable(obj) and not isinstance(obj, PROTOCOLS[kind])):
        plugin = obj()
    else:
        plugin = obj
    check_name(getattr(plugin, "name", None))
    if not isinstance(plugin, PROTOCOLS[kind]):
        raise TypeError(
            f"{type(plugin).__name__} does not implement the {kind[:-1]} protocol "
            f"(needs {', '.join(_protocol_members(kind))})"
        )
    return plugin


def _protocol_members(kind: str) -> list[str]:
    proto = PROTOCOLS[kind]
    names = set()
    for klass in proto.__mro__:
        names |= {n for n in vars(klass) if not n.startswith("_")} | set(getattr(klass, "__annotations__", {}))
    return sorted(names)


def _load_entry_points(kind: str) -> Iterable[Entry | LoadProblem]:
    for ep in metadata.entry_points(group=GROUP_PREFIX + kind):
        dist = _distribution_of(ep)
        source = f"built-in ({dist})" if dist.startswith("defacebench ") else f"entry point of {dist}"
        try:
            plugin = _instantiate(ep.load(), kind)
        except Exception as exc:  # noqa: BLE001 - any import error of a third-party plugin is reported, not raised
            yield LoadProblem(kind, ep.name, f"{source}: {ep.value}", f"{type(exc).__name__}: {exc}")
            continue
        if plugin.name != ep.name:
            yield LoadProblem(kind, ep.name, source, f"entry point name {ep.name!r} != plugin.name {plugin.name!r}")
            continue
        yield Entry(kind, ep.name, plugin, source)


def build_registry(plugins_file: Path | None = None) -> Registry:
    """Discover every plugin, then apply the plugins file (command defacers, parameters, variants).

    Raises :class:`DuplicatePluginError` naming both sources of a name clash and
    :class:`PluginsFileError` naming the file, table and key of a bad parameter."""
    entries: dict[str, dict[str, Entry]] = {k: {} for k in KINDS}
    problems: list[LoadProblem] = []
    found: list[Entry | LoadProblem] = [item for kind in KINDS for item in _load_entry_points(kind)]
    path = plugins_file if plugins_file is not None else default_plugins_file()
    declared = load_plugins_file(path) if path is not None else None
    found.extend(declared.entries if declared else ())
    for item in found:
        if isinstance(item, LoadProblem):
            problems.append(item)
            continue
        _add(entries, item)
    for setting in declared.settings if declared else ():
        _apply_setting(entries, problems, setting)
    return Registry(entries, tuple(problems))


def _add(entries: dict[str, dict[str, Entry]], item: Entry) -> None:
    existing = entries[item.kind].get(item.name)
    if existing is not None:
        raise DuplicatePluginError(
            f"two {item.kind} named {item.name!r}: {existing.source} and {item.source}; "
            "rename one (plugin names must be unique within a kind)"
        )
    entries[item.kind][item.name] = item


def _apply_setting(entries: dict[str, dict[str, Entry]], problems: list[LoadProblem], setting: ParamSetting) -> None:
    """Re-instantiate an installed plugin with the table's parameters, or add a variant of one."""
    base_name = setting.base or setting.name
    base = entries[setting.kind].get(base_name)
    if base is None:
        if any(p.kind == setting.kind and p.name == base_name for p in problems):
            return  # the plugin failed to load: its configurations are skipped with that error already
        installed = ", ".join(sorted(entries[setting.kind])) or "(none)"
        raise PluginsFileError(f"{setting.where}: no installed {setting.kind[:-1]} named {base_name!r} "
                               f"(installed: {installed}); to declare a variant add plugin = \"<installed name>\"")
    if isinstance(base.plugin, CommandDefacer):
        plugin = _command_setting(base.plugin, setting)
    else:
        params = params_from_table(base.plugin.params, setting.table, setting.where)
        try:
            plugin = instantiate(base.plugin, params, name=setting.name if setting.base else None)
        except PluginError as exc:
            raise PluginsFileError(f"{setting.where}: {exc}") from exc
    source = f"{base.source}, params from {setting.where}"
    if setting.base is None:
        entries[setting.kind][setting.name] = Entry(setting.kind, setting.name, plugin, source, configured=True)
    else:
        _add(entries, Entry(setting.kind, setting.name, plugin, f"variant of {base_name}: {source}", configured=True))


def _command_setting(base: CommandDefacer, setting: ParamSetting) -> CommandDefacer:
    """A variant of a command defacer: the same table with the setting's keys changed. A table that
    sets keys of a command defacer under its own name is its declaration, so only variants get here."""
    if setting.base is None:
        raise PluginsFileError(f"{setting.where}: {base.name} is declared by {base.source}; change it there, or "
                               f"declare a variant under a new name with plugin = \"{base.name}\"")
    return base.variant(setting.name, setting.table, setting.where)


def default_plugins_file() -> Path | None:
    """``$DEFACEBENCH_PLUGINS_FILE`` if set, else ``./defacebench.toml`` if it exists."""
    env = os.environ.get(PLUGINS_FILE_ENV)
    if env:
        return Path(env)
    local = Path.cwd() / DEFAULT_PLUGINS_FILE
    return local if local.is_file() else None


@functools.lru_cache(maxsize=8)
def _cached_registry(plugins_file: str | None, cwd: str) -> Registry:
    return build_registry(Path(plugins_file) if plugins_file else None)


def load_registry(plugins_file: Path | None = None) -> Registry:
    """The process-wide registry (built once per plugins file and working directory)."""
    chosen = plugins_file if plugins_file is not None else default_plugins_file()
    return _cached_registry(str(chosen) if chosen else None, os.getcwd())


def get_plugin(kind: str, name: str, *, plugins_file: Path | None = None) -> object:
    """Shortcut: the plugin instance ``name`` of ``kind`` from the process-wide registry."""
    return load_registry(plugins_file).get(kind, name)
