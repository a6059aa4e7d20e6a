"""The plugins file (``defacebench.toml``): command-line defacers as data, and plugin parameters.

A variant of a command defacer (``plugin = "mri_reface"``) takes the same keys as a command
defacer table and changes only those it names (e.g. ``timeout``); it is validated like one.

Plugin parameters and variants (validated by :mod:`defacebench.plugins.params`)::

    [renderers.surface]
    views = [[0, 0, 0], [30, 0, 0]]     # set an installed plugin's parameters

    [detectors.dlib_hog_up2]            # a variant under a new name
    plugin = "dlib_hog"
    upsample = 2

A command defacer::

    [defacers.mri_reface]
    command = "mri_reface {input} {workdir} -imType CT"
    output = "*_deFaced.nii*"          # glob inside the workdir (default: the {output} path)
    version_command = "mri_reface --version"
    timeout = 3600                     # seconds

The command is split once with ``shlex`` into an argument list *before* any substitution, and each
placeholder is replaced inside its own argument, so a path with spaces, quotes, ``;`` or ``$(...)``
stays exactly one literal argument: nothing ever goes through a shell.
"""

from __future__ import annotations

import glob
import shlex
import shutil
import string
import tomllib
from dataclasses import dataclass
from pathlib import Path

from defacebench.plugins.entries import Entry
from defacebench.contracts import KINDS, Availability, DefaceResult, check_name
from defacebench.errors import DefaceError, PluginsFileError
from defacebench.plugins.tools import check_run, require_output, run_tool, tool_version, which

PLACEHOLDERS = frozenset({"input", "output", "workdir"})
KNOWN_KEYS = frozenset({"command", "output", "version_command", "timeout", "version", "deterministic"})
DEFAULT_OUTPUT_NAME = "defaced.nii.gz"


@dataclass(frozen=True)
class CommandParams:
    """Everything that defines a command defacer; recorded in results and cache keys."""

    command: tuple[str, ...]
    output: str | None = None
    version_command: tuple[str, ...] | None = None
    timeout: float | None = 3600.0


class CommandDefacer:
    """A defacer that runs an external command declared in a TOML file."""

    def __init__(self, name: str, params: CommandParams, *, source: Path, version: str = "", deterministic: bool = True,
                 table: dict | None = None):
        self.name = check_name(name)
        self.params = params
        self.source = source
        self.deterministic = deterministic
        self._version = version
        self.table = dict(table or {})  # as declared in the plugins file: what a variant starts from

    def variant(self, name: str, changes: dict, where: str) -> "CommandDefacer":
        """A command defacer ``name`` declared like this one with ``changes`` (any key of a command
        defacer table), validated as a table of its own (``where`` names it in errors)."""
        return _parse_defacer(name, {**self.table, **changes}, self.source, where=where)

    @property
    def version(self) -> str:
        """Declared version, else the first line of ``version_command``'s output, else ``"unknown"``."""
        if not self._version:
            self._version = tool_version(self.params.version_command) if self.params.version_command else "unknown"
        return self._version

    def tool_version(self) -> str:
        """The tool's version (the declared or reported one): part of the defacings' cache keys."""
        return self.version

    def available(self) -> Availability:
        exe = self.params.command[0]
        if Path(exe).is_absolute() and Path(exe).exists() or which(exe):
            return Availability.yes()
        return Availability.no(f"{exe} not found on PATH (declared by {self.source} [defacers.{self.name}]): install it or fix `command`")

    def deface(self, volume_path: Path, workdir: Path) -> DefaceResult:
        """Run the command on a private copy of ``volume_path`` placed in ``workdir``.

        Why a copy: the path the harness gives is a shared, cached volume that every other defacer
        reads too; a tool that deletes, gzips or edits its ``{input}`` in place must not break them.
        The copy sits in the workdir under the input's own name, so a tool that writes next to its
        input (``<stem>_defaced.nii.gz``) writes into the workdir, where ``output`` finds it.
        """
        workdir = Path(workdir)
        output = workdir / DEFAULT_OUTPUT_NAME
        private = _private_copy(Path(volume_path), workdir, self.name)
        try:
            values = {"input": str(private), "output": str(output), "workdir": str(workdir)}
            argv = [arg.format_map(values) for arg in self.params.command]
            try:
                run = run_tool(argv, cwd=workdir, timeout=self.params.timeout)
            except OSError as exc:
                raise DefaceError(f"{self.name}: cannot start {argv[0]!r}: {exc}") from exc
            check_run(run, what=self.name)
            found = self._find_output(workdir, output, exclude=private)
            require_output(found, what=self.name, run=run)
        finally:
            private.unlink(missing_ok=True)
        return DefaceResult(volume_path=found, mask_path=None, tool_version=self.version, log=run.log())

    def _find_output(self, workdir: Path, default: Path, exclude: Path) -> Path:
        if self.params.output is None:
            return default
        matches = [m for m in sorted(glob.glob(glob.escape(str(workdir)) + "/" + self.params.output))
                   if Path(m) != exclude]
        if len(matches) != 1:
            return workdir / f"<{len(matches)} files match {self.params.output!r}>"
        return Path(matches[0])


def _private_copy(volume_path: Path, workdir: Path, name: str) -> Path:
    """Copy the input into ``workdir`` (a real copy: a hard link would share the bytes)."""
    target = workdir / volume_path.name
    if target.name == DEFAULT_OUTPUT_NAME or target.exists():
        target = workdir / f"input_{volume_path.name}"
    try:
        shutil.copyfile(volume_path, target)
    except FileNotFoundError as exc:
        raise DefaceError(f"{name}: input volume {volume_path} not found; check the path given to deface()") from exc
    except OSError as exc:
        raise DefaceError(f"{name}: cannot copy the input {volume_path} into {workdir} ({exc.strerror}); "
                          "check the free space and permissions of the work folder") from exc
    return target


def _placeholders(arg: str, *, where: str) -> set[str]:
    try:
        return {field for _, field, _, _ in string.Formatter().parse(arg) if field is not None}
    except ValueError as exc:
        raise PluginsFileError(f"{where}: bad braces in {arg!r} ({exc}); write literal braces as {{{{ and }}}}") from exc


def _split(value: object, *, where: str, key: str) -> tuple[str, ...]:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    if isinstance(value, str) and value.strip():
        try:
            return tuple(shlex.split(value))
        except ValueError as exc:  # shlex: "No closing quotation" / "No escaped character"
            raise PluginsFileError(f"{where}: `{key}` = {value!r} cannot be split into arguments ({exc}); "
                                   "close the quote, or give the command as a list of strings") from exc
    raise PluginsFileError(f"{where}: `{key}` must be a non-empty string or a list of strings")


def _parse_defacer(name: str, table: dict, path: Path, where: str = "") -> CommandDefacer:
    where = where or f"{path} [defacers.{name}]"
    unknown = set(table) - KNOWN_KEYS
    if unknown:
        raise PluginsFileError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(KNOWN_KEYS)}")
    if "command" not in table:
        raise PluginsFileError(f'{where}: missing `command`; add e.g. command = "mytool {{input}} {{output}}"')
    command = _split(table["command"], where=where, key="command")
    used = set().union(*(_placeholders(a, where=where) for a in command))
    bad = used - PLACEHOLDERS
    if bad:
        raise PluginsFileError(
            f"{where}: unknown placeholder(s) {', '.join('{' + b + '}' for b in sorted(bad))} in `command`; "
            "use only {input}, {output}, {workdir}"
        )
    if "input" not in used:
        raise PluginsFileError(f"{where}: `command` never uses {{input}}; the tool must be given the volume")
    timeout = table.get("timeout", 3600.0)
    if not isinstance(timeout, (int, float)) or timeout <= 0:
        raise PluginsFileError(f"{where}: `timeout` must be a positive number of seconds, got {timeout!r}")
    version_cmd = table.get("version_command")
    params = CommandParams(
        command=command,
        output=table.get("output"),
        version_command=_split(version_cmd, where=where, key="version_command") if version_cmd else None,
        timeout=float(timeout),
    )
    try:
        return CommandDefacer(name, params, source=path, version=str(table.get("version", "")),
                              deterministic=bool(table.get("deterministic", True)), table=table)
    except ValueError as exc:
        raise PluginsFileError(f"{where}: {exc}") from exc


@dataclass(frozen=True)
class ParamSetting:
    """A TOML table that sets an installed plugin's parameters (``base`` None) or declares a variant
    ``name`` of the plugin ``base``; ``table`` holds the parameter values, ``where`` file and table."""

    kind: str
    name: str
    base: str | None
    table: dict
    where: str


@dataclass(frozen=True)
class PluginsFile:
    """What a plugins file declares: command defacers (registry entries) and parameter settings."""

    entries: tuple[Entry, ...] = ()
    settings: tuple[ParamSetting, ...] = ()


def load_plugins_file(path: Path) -> PluginsFile:
    """Parse ``path``; a malformed file raises :class:`PluginsFileError` naming the file and table.

    ``[defacers.<name>]`` with ``command`` declares a command defacer; any ``[<kind>.<name>]`` with
    ``plugin = "<installed name>"`` declares a variant; any other ``[<kind>.<name>]`` sets the
    parameters of the installed plugin ``<name>``."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise PluginsFileError(f"{path}: plugins file not found; fix --plugins-file or create it") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PluginsFileError(f"{path}: not valid TOML: {exc}") from exc
    unknown = set(data) - set(KINDS)
    if unknown:
        raise PluginsFileError(f"{path}: unknown table(s) {sorted(unknown)}; use [{'|'.join(KINDS)}.<name>]")
    entries, settings = [], []
    for kind in KINDS:
        for name, table in data.get(kind, {}).items():
            where = f"{path} [{kind}.{name}]"
            if not isinstance(table, dict):
                raise PluginsFileError(f"{path}: {kind}.{name} must be a table ([{kind}.{name}])")
            if kind == "defacers" and "plugin" not in table and ("command" in table or set(table) & (KNOWN_KEYS - {"version"})):
                entries.append(Entry("defacers", name, _parse_defacer(name, table, path), f"TOML {path}"))
                continue
            base = table.get("plugin")
            if base is not None and not isinstance(base, str):
                raise PluginsFileError(f"{where}: `plugin` must name an installed {kind[:-1]}, got {base!r}")
            _check_variant_name(name, where)
            settings.append(ParamSetting(kind, name, base, {k: v for k, v in table.items() if k != "plugin"}, where))
    return PluginsFile(tuple(entries), tuple(settings))


def _check_variant_name(name: str, where: str) -> None:
    try:
        check_name(name)
    except ValueError as exc:
        raise PluginsFileError(f"{where}: {exc}") from exc
