"""Registry records: a loaded plugin (:class:`Entry`) and one that failed to load (:class:`LoadProblem`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    """One registered plugin instance and where it came from (``source``, e.g.
    ``"built-in (defacebench 0.1.0)"``, ``"entry point of my-defacer 1.0"``, ``"TOML /x/defacebench.toml"``).
    ``configured``: the plugins file set its parameters or declared it (a user who did so wants it
    run, so an opt-in plugin configured there joins the default product)."""

    kind: str
    name: str
    plugin: object
    source: str
    configured: bool = False


@dataclass(frozen=True)
class LoadProblem:
    """A plugin that could not be loaded: its kind, name, source and the error message."""

    kind: str
    name: str
    source: str
    error: str
