"""Plugin parameters set from a TOML table, validated against the plugin's params dataclass.

``defacebench.toml`` may set any plugin's parameters (``[renderers.surface] views = [[0, 0, 0]]``)
or declare a variant under a new name (``[detectors.dlib_hog_up2] plugin = "dlib_hog"`` plus
``upsample = 2``). A table's values are converted to the field types of the plugin's params
dataclass (TOML arrays become tuples, nested tables nested dataclasses); an unknown key or a value of
the wrong type is a :class:`~defacebench.errors.PluginsFileError` naming the file, table and key.
Because params are part of every cache key, changed parameters recompute exactly what they affect.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Mapping

from defacebench.errors import PluginError, PluginsFileError

_SCALARS = (bool, int, float, str)


def params_from_table(base: Any, table: Mapping[str, Any], where: str) -> Any:
    """``base`` (a frozen params dataclass instance) with the fields of ``table`` replaced.

    ``where`` names the file and table for error messages, e.g. ``"/x/defacebench.toml [renderers.surface]"``."""
    if not dataclasses.is_dataclass(base) or isinstance(base, type):
        raise PluginsFileError(f"{where}: this plugin has no params dataclass, so it takes no parameters")
    hints = typing.get_type_hints(type(base))
    names = {f.name for f in dataclasses.fields(base)}
    unknown = sorted(set(table) - names)
    if unknown:
        raise PluginsFileError(f"{where}: unknown key(s) {', '.join(unknown)}; "
                               f"{type(base).__name__} has {', '.join(sorted(names)) or 'no fields'}")
    changes = {key: _convert(value, hints.get(key, Any), getattr(base, key), f"{where} key {key!r}")
               for key, value in table.items()}
    try:
        return dataclasses.replace(base, **changes)
    except (TypeError, ValueError) as exc:
        raise PluginsFileError(f"{where}: {exc}") from exc


def _convert(value: Any, hint: Any, current: Any, where: str) -> Any:
    """``value`` (as TOML gives it) as an instance of ``hint``; raises PluginsFileError saying why not."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return _freeze(value)
    if origin in (typing.Union, types.UnionType):
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(value, option, current, where)
            except PluginsFileError:
                continue
        raise PluginsFileError(f"{where}: {value!r} is not a {_name(hint)}")
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise PluginsFileError(f"{where}: expected a table of {hint.__name__} fields, got {value!r}")
        base = current if dataclasses.is_dataclass(current) else hint()
        return params_from_table(base, value, where)
    if origin is tuple:
        return _tuple(value, args, where)
    if hint is Path:
        if not isinstance(value, str):
            raise PluginsFileError(f"{where}: expected a path string, got {value!r}")
        return Path(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in _SCALARS:
        if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
            return value
        raise PluginsFileError(f"{where}: expected {hint.__name__}, got {type(value).__name__} {value!r}")
    if origin is typing.Literal:
        if value in args:
            return value
        raise PluginsFileError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
    raise PluginsFileError(f"{where}: fields of type {_name(hint)} cannot be set from TOML")


def _tuple(value: Any, args: tuple, where: str) -> tuple:
    if not isinstance(value, list):
        raise PluginsFileError(f"{where}: expected an array, got {value!r}")
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_convert(v, args[0], None, f"{where}[{i}]") for i, v in enumerate(value))
    if args and len(args) != len(value):
        raise PluginsFileError(f"{where}: expected an array of {len(args)} values, got {len(value)}")
    return tuple(_convert(v, a, None, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args or [Any] * len(value))))


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def instantiate(plugin: Any, params: Any, *, name: str | None = None) -> Any:
    """A new instance of ``plugin``'s class with ``params`` (and, for a variant, another ``name``).

    Plugins take their params as the ``params`` constructor keyword (the SDK's convention)."""
    try:
        clone = type(plugin)(params=params)
    except TypeError as exc:
        raise PluginError(f"{plugin.name}: its class does not take `params=` ({exc}); plugins with parameters "
                          "must accept them as the `params` constructor keyword") from exc
    if name is not None and name != clone.name:
        try:
            clone.name = name
        except AttributeError as exc:
            raise PluginError(f"{plugin.name}: cannot declare a variant named {name!r}: `name` is read-only") from exc
    return clone


def with_views(renderer: Any, grid: tuple) -> Any:
    """The renderer's params with its view grid replaced by ``grid`` ((yaw, pitch, light) triples).

    Raises PluginError when the renderer has no ``views`` parameter: it cannot serve a view grid."""
    params = renderer.params
    if not dataclasses.is_dataclass(params) or "views" not in {f.name for f in dataclasses.fields(params)}:
        raise PluginError(f"renderer {renderer.name} has no `views` parameter, so it cannot render a view grid "
                          "(multiview and svm scenarios need one)")
    current = getattr(params, "views")
    width = len(current[0]) if current and hasattr(current[0], "__len__") else 3
    # renderers whose views are (yaw, pitch) pairs take the grid's cameras under their own light
    return dataclasses.replace(params, views=tuple(tuple(v)[:width] for v in grid))
