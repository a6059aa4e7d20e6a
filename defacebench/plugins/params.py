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
import math
import types
import typing
from pathlib import Path
from typing import Any, Mapping, Sequence

from defacebench.contracts import Range
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
        params = dataclasses.replace(base, **changes)
    except (TypeError, ValueError) as exc:
        raise PluginsFileError(f"{where}: {exc}") from exc
    problems = range_problems(params)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise PluginsFileError(f"{where} {problems[0]}{more}")
    return params


def range_problems(params: Any, prefix: str = "") -> list[str]:
    """Why fields of ``params`` (a params dataclass instance, nested ones included) break the
    :class:`~defacebench.contracts.Range` declared on them or are not finite floats; [] when none do.

    Each problem reads ``key 'name': value is out of range: must be > 0`` (``'name'[i]`` for an
    element of a tuple field, ``'outer.inner'`` for a field of a nested params dataclass)."""
    hints = typing.get_type_hints(type(params), include_extras=True)
    return [problem for f in dataclasses.fields(params)
            for problem in _problems(getattr(params, f.name), hints.get(f.name, Any), f"{prefix}{f.name}", "")]


def _problems(value: Any, hint: Any, name: str, index: str) -> list[str]:
    ranges: list[Range] = []
    if typing.get_origin(hint) is typing.Annotated:
        hint, *extras = typing.get_args(hint)
        ranges = [e for e in extras if isinstance(e, Range)]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):  # e.g. Annotated[float, Range(gt=0)] | None
        fitting = [a for a in args if a is not type(None) and isinstance(value, _base(a))]
        return _problems(value, fitting[0], name, index) if fitting else []
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return range_problems(value, f"{name}.")
    if isinstance(value, tuple) and origin is tuple:
        items = args[:1] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
        return [p for i, (v, h) in enumerate(zip(value, items)) for p in _problems(v, h, name, f"{index}[{i}]")]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return []
    key = f"key {name!r}{index}"
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{key}: {value!r} is not a finite number"]
    return [f"{key}: {value!r} is out of range: must be {r}" for r in ranges if not r.allows(value)]


def _base(hint: Any) -> type:
    """The runtime type a hint checks (``Annotated[float, ...]`` -> float, ``tuple[...]`` -> tuple)."""
    if typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    base = typing.get_origin(hint) or hint
    return base if isinstance(base, type) else object


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


def with_views(renderer: Any, grid: tuple, extra_lights: Sequence = ()) -> Any:
    """The renderer's params with its view grid replaced by ``grid`` ((yaw, pitch, light) triples).

    A grid whose light indexes reach past the renderer's ``lights`` gets the missing lights from
    ``extra_lights`` (directions the renderer does not have yet, in order), so light 0 stays the
    renderer's own. Raises PluginError when the renderer has no ``views`` parameter (it cannot serve a
    view grid), or cannot get as many lights as the grid asks for."""
    params = renderer.params
    fields = {f.name for f in dataclasses.fields(params)} if dataclasses.is_dataclass(params) else set()
    if "views" not in fields:
        raise PluginError(f"renderer {renderer.name} has no `views` parameter, so it cannot render a view grid "
                          "(multiview and svm scenarios need one)")
    wanted = 1 + max((int(v[2]) for v in grid if len(v) > 2), default=0)
    if "lights" not in fields:
        if wanted > 1:
            raise PluginError(f"renderer {renderer.name} has no `lights` parameter: a --view-grid of {wanted} lights "
                              "needs one; use 1 light")
        current = getattr(params, "views")
        width = len(current[0]) if current and hasattr(current[0], "__len__") else 3
        # renderers whose views are (yaw, pitch) pairs take the grid's cameras under their own light
        return dataclasses.replace(params, views=tuple(tuple(v)[:width] for v in grid))
    lights = tuple(tuple(light) for light in params.lights)
    lights += tuple(light for light in map(tuple, extra_lights) if light not in lights)[:max(0, wanted - len(lights))]
    if wanted > len(lights):
        raise PluginError(f"renderer {renderer.name}: the view grid asks for {wanted} lights, but it has "
                          f"{len(params.lights)} and {len(extra_lights)} standard ones can be added; declare more "
                          f"lights in the plugins file ([renderers.{renderer.name}] lights = [...]) or ask for fewer")
    # explicit triples: a (yaw, pitch) pair would mean "under every light" and repeat each view
    views = tuple((float(v[0]), float(v[1]), int(v[2]) if len(v) > 2 else 0) for v in grid)
    return dataclasses.replace(params, views=views, lights=lights)


def first_view(renderer: Any) -> Any | None:
    """The renderer's params reduced to its first view, or None when they already ask for one view
    (or it has no ``views`` parameter): the single-view scenarios use only the first view, so only that
    one is rendered, detected and embedded. The first view of a (yaw, pitch) pair is that camera
    under light 0."""
    params = renderer.params
    if not dataclasses.is_dataclass(params) or "views" not in {f.name for f in dataclasses.fields(params)}:
        return None
    views = tuple(params.views)
    n_lights = len(getattr(params, "lights", ())) or 1
    if len(views) == 1 and (len(views[0]) > 2 or n_lights == 1):
        return None  # one view already (the default): the very same params, the same cache keys
    first = tuple(views[0])
    return dataclasses.replace(params, views=(first if len(first) > 2 or n_lights == 1 else (*first, 0),))


def view_set_params(detector: Any) -> Any | None:
    """The detector's params for the views of a many-view set, or None to use its own.

    A detector's params may define ``for_view_sets()``: the settings it wants on the multiview and
    svm scenarios' view grids, whose renders are many per scan and whose faces are large (dlib_hog
    searches them without its 2x pyramid level, ``DlibHogParams.view_set_upsample``). The returned
    params are the detector's params on those views, so they key the detections' cache entries."""
    params = getattr(detector, "params", None)
    hook = getattr(params, "for_view_sets", None)
    if not callable(hook):
        return None
    chosen = hook()
    return None if chosen == params else chosen
