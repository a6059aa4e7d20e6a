"""``defacebench reference options|plugins``: the options and plugin references as Markdown.

Why generated: the options live in one table (:mod:`defacebench.run.options`) and the plugins in the
registry; a hand-written reference would drift from both. The documentation site's build hook
(``scripts/mkdocs_hooks.py``) writes the same text into ``reference/options.md`` and
``reference/plugins.md``, so the site, this command and ``--help`` / ``defacebench list`` agree.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any

from defacebench.contracts import KINDS, Range, opt_in_reason

PAGES = ("options", "plugins")


def register(subparsers) -> None:
    parser = subparsers.add_parser("reference", help="print the options or plugin reference (Markdown)",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("page", choices=PAGES, help="options: every run option; plugins: every plugin")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print(reference(args.page, plugins_file=getattr(args, "global_plugins_file", None)), end="")
    return 0


def reference(page: str, *, plugins_file: str | None = None) -> str:
    """The Markdown page ``page`` (one of :data:`PAGES`)."""
    if page == "options":
        return options_markdown()
    from pathlib import Path

    from defacebench.plugins.registry import load_registry

    return plugins_markdown(load_registry(Path(plugins_file) if plugins_file else None))


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def options_markdown() -> str:
    """Every run option of the one table: flag, default (the RunConfig field's), accepted values, help."""
    from defacebench.run.config import RunConfig
    from defacebench.run.options import OPTIONS

    defaults = {f.name: f.default for f in dataclasses.fields(RunConfig)}
    lines = ["# Options reference", "",
             "Generated from the options table (`defacebench/run/options.py`) by `defacebench reference options`. "
             "`defacebench run` and `pytest bench/` take exactly these options; `defacebench run -v` also prints "
             "one line per configuration and the full leaderboard. What is checked before a run, and what a run "
             "decides on its own: [Run options](../run-options.md).", "",
             "| option | default | values | what it does |", "|---|---|---|---|"]
    for option in OPTIONS:
        default = defaults.get(option.field, dataclasses.MISSING)
        shown = "(on)" if option.switch else _default_text(default)
        values = ", ".join(option.choices) if option.choices else ("-" if option.switch else (option.metavar or "value"))
        lines.append(f"| `{option.flag}` | {_cell(shown)} | {_cell(values)} | {_cell(option.help)} |")
    return "\n".join(lines) + "\n"


def _default_text(value: Any) -> str:
    if value is dataclasses.MISSING or value is None or value == () or value == "":
        return "-"
    if isinstance(value, tuple):
        return "`" + ",".join(":".join(map(str, v)) if isinstance(v, tuple) else str(v) for v in value) + "`"
    return f"`{value}`"


def plugins_markdown(registry) -> str:
    """Every plugin of every kind: version, source, default or opt-in, licence, what it needs, and
    its parameters with defaults and accepted ranges (settable in ``defacebench.toml``)."""
    lines = ["# Plugin reference", "",
             "Generated from the plugin registry by `defacebench reference plugins` (built-in plugins and "
             "whatever else is installed where the site is built). Availability on a given machine: "
             "`defacebench list`. Parameters are set, or variants declared, in `defacebench.toml` "
             "([Plugins](../plugins.md)).", ""]
    for kind in KINDS:
        lines += [f"## {kind}", ""]
        for entry in registry.all_entries(kind):
            lines += _plugin_section(entry)
    return "\n".join(lines).rstrip() + "\n"


def _plugin_section(entry) -> list[str]:
    plugin = entry.plugin
    opt_in = opt_in_reason(plugin)
    facts = [f"version `{plugin.version}`", f"source `{entry.source}`",
             f"opt-in: {opt_in}" if opt_in else "runs by default"]
    lines = [f"### `{entry.name}`", "", (plugin.__doc__ or type(plugin).__doc__ or "").strip().split("\n\n")[0]
             .replace("\n", " "), "", "- " + "; ".join(facts)]
    for label, attr in (("licence", "licence"), ("needs", "needs"), ("modalities", "modality_notes")):
        value = getattr(plugin, attr, "")
        if isinstance(value, str) and value:
            lines.append(f"- {label}: {value}")
    for label, attr in (("licence", "licence"), ("needs", "needs")):
        if not getattr(plugin, attr, ""):
            lines.append(f"- {label}: not declared by the plugin")
    params = getattr(plugin, "params", None)
    if dataclasses.is_dataclass(params) and not isinstance(params, type) and dataclasses.fields(params):
        lines += ["", "| parameter | default | accepted |", "|---|---|---|"]
        lines += [f"| `{name}` | `{_cell(value)}` | {_cell(accepted)} |" for name, value, accepted in _params(params)]
    return lines + [""]


def _params(params) -> list[tuple[str, Any, str]]:
    """(name, default, accepted values) of each field of a params dataclass instance."""
    hints = typing.get_type_hints(type(params), include_extras=True)
    out = []
    for f in dataclasses.fields(params):
        hint = hints.get(f.name, Any)
        ranges = [str(r) for r in _ranges(hint)]
        out.append((f.name, getattr(params, f.name), ", ".join(ranges) or _type_name(hint)))
    return out


def _ranges(hint: Any) -> list[Range]:
    """The Range declared on a hint, also inside Optional / tuple element hints."""
    if typing.get_origin(hint) is typing.Annotated:
        return [e for e in typing.get_args(hint)[1:] if isinstance(e, Range)]
    return [r for arg in typing.get_args(hint) for r in _ranges(arg)]


def _type_name(hint: Any) -> str:
    text = getattr(hint, "__name__", None) if not typing.get_args(hint) else None
    return text or str(hint).replace("typing.", "")
