"""Running external command-line tools (defacers, converters) without a shell.

Every external call goes through :func:`run_tool`: the argument list is passed as is (no shell, so
paths with spaces, quotes, ``;`` or ``$(...)`` stay literal), stdout and stderr are captured, a
timeout kills the whole process group, and the result is a :class:`ToolRun` whose :meth:`ToolRun.log`
is what failure rows and results record.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from defacebench.errors import DefaceError


@dataclass(frozen=True)
class ToolRun:
    """The record of one external command: exact argv, exit code, captured output, wall time."""

    argv: tuple[str, ...]
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False

    @property
    def command_line(self) -> str:
        """The argv as one shell-quoted line, for logs (it is never executed through a shell)."""
        return shlex.join(self.argv)

    def log(self) -> str:
        """A multi-line log: command line, exit code (or timeout), stdout and stderr."""
        status = "timed out" if self.timed_out else f"exit code {self.returncode}"
        return (
            f"$ {self.command_line}\n[{status}, {self.seconds:.1f} s]\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )

    def tail(self, lines: int = 5) -> str:
        """The last lines of stderr (or stdout when stderr is empty): the tool's own message."""
        text = (self.stderr or self.stdout).strip().splitlines()
        return "\n".join(text[-lines:])


def run_tool(
    argv: Sequence[str | os.PathLike],
    *,
    cwd: Path | None = None,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
) -> ToolRun:
    """Run ``argv`` without a shell and return its :class:`ToolRun`; never raises on a bad exit.

    On timeout the process group is killed (tools such as FSL scripts spawn children) and the run is
    returned with ``timed_out=True``. A missing executable raises ``FileNotFoundError``.
    """
    args = tuple(os.fspath(a) for a in argv)
    full_env = None if env is None else {**os.environ, **env}
    start = time.monotonic()
    proc = subprocess.Popen(
        args, cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, text=True, errors="replace", start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
        return ToolRun(args, proc.returncode, out, err, time.monotonic() - start)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = proc.communicate()
        return ToolRun(args, proc.returncode, out, err, time.monotonic() - start, timed_out=True)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def check_run(run: ToolRun, *, what: str) -> ToolRun:
    """Raise :class:`DefaceError` carrying the tool's message when ``run`` failed, else return it."""
    if run.timed_out:
        raise DefaceError(f"{what}: timed out after {run.seconds:.0f} s: {run.command_line}", log=run.log())
    if run.returncode != 0:
        raise DefaceError(
            f"{what}: exit code {run.returncode} from {run.command_line}: {run.tail()}", log=run.log()
        )
    return run


def tool_version(argv: Sequence[str], *, timeout: float = 30) -> str:
    """First non-empty output line of a version command, or ``"unknown"`` if it cannot run."""
    try:
        run = run_tool(argv, timeout=timeout)
    except OSError:
        return "unknown"
    for line in (run.stdout + "\n" + run.stderr).splitlines():
        if line.strip():
            return line.strip()
    return "unknown"


def which(executable: str) -> str | None:
    """Path of ``executable`` on PATH, or None."""
    return shutil.which(executable)


def require_output(path: Path, *, what: str, run: ToolRun | None = None) -> Path:
    """Raise :class:`DefaceError` when a tool's expected output file is missing or empty."""
    log = run.log() if run else ""
    if not path.exists():
        raise DefaceError(f"{what}: expected output {path} was not written", log=log)
    if path.stat().st_size == 0:
        raise DefaceError(f"{what}: output {path} is empty", log=log)
    return path
