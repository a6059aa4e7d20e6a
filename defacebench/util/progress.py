"""When and how defacebench shows progress bars.

Why one module: every stage map shows a bar with count and ETA on a terminal, and must stay silent
in CI logs, pytest captures and redirected output (a bar there is thousands of garbage lines). One
policy, used everywhere, keeps that decision in one place. ``DEFACEBENCH_PROGRESS=1`` / ``=0``
forces bars on or off (e.g. to watch a batch job's log with ``tail -f``).
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import IO, Any, Iterator

ENV_VAR = "DEFACEBENCH_PROGRESS"


def progress_enabled(stream: IO[str] | None = None) -> bool:
    """True when bars should be drawn: forced by $DEFACEBENCH_PROGRESS, else stream is a TTY."""
    forced = os.environ.get(ENV_VAR, "").strip().lower()
    if forced in {"1", "true", "yes", "on"}:
        return True
    if forced in {"0", "false", "no", "off"}:
        return False
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced stream (pytest capture, daemons)
        return False


def progress_bar(total: int, desc: str, *, unit: str = "item", stream: IO[str] | None = None) -> Any:
    """A tqdm bar (count, rate, ETA) on stderr; a disabled no-op bar when not on a terminal; while
    a :class:`StageBoard` is active, that board's bar of the stage ``desc`` names."""
    from tqdm.auto import tqdm  # tqdm picks a notebook widget under Jupyter, text otherwise

    if _BOARD is not None:
        return _BOARD.stage(desc, total)
    stream = sys.stderr if stream is None else stream
    return tqdm(total=total, desc=desc, unit=unit, file=stream, dynamic_ncols=True,
                disable=not progress_enabled(stream), leave=True)


class StageBoard:
    """The bars of one run on a terminal: one per stage (convert, deface, ... as they first appear),
    each counting the items computed in that stage with rate and ETA, under one bar of finished
    configurations. While a board is active (:meth:`activate`), :func:`progress_bar` adds to the
    stage's bar instead of drawing a new bar per call, so a run of a hundred configurations shows a
    handful of lines, not hundreds. Off a terminal the bars are disabled and :meth:`write` prints
    plain lines: CI logs get the same information without bars."""

    def __init__(self, configurations: int, *, stream: IO[str] | None = None) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.enabled = progress_enabled(self.stream)
        self._stages: dict[str, Any] = {}
        self._count = 0
        self.configurations = self._bar("configurations", configurations, unit="config")

    def _bar(self, desc: str, total: int, *, unit: str = "item") -> Any:
        """A bar on the next line below the existing ones (tqdm ``position``)."""
        from tqdm.auto import tqdm

        self._count += 1
        return tqdm(total=total, desc=f"{desc:<14}", unit=unit, file=self.stream, dynamic_ncols=True,
                    disable=not self.enabled, leave=True, position=self._count - 1)

    def stage(self, desc: str, total: int) -> "_StagePart":
        """``total`` more items for the stage named by the first word of ``desc`` ("render surface")."""
        name = desc.split()[0] if desc.split() else "work"
        bar = self._stages.get(name)
        if bar is None:
            bar = self._stages[name] = self._bar(name, 0)
        bar.total += total
        bar.refresh()
        return _StagePart(bar)

    def config_done(self) -> None:
        self.configurations.update(1)

    def write(self, line: str, *, err: bool = False) -> None:
        """A line on stdout (stderr with ``err``) that the bars redraw below."""
        from tqdm.auto import tqdm

        stream = sys.stderr if err else sys.stdout
        if self.enabled:
            tqdm.write(line, file=stream)
        else:
            print(line, file=stream, flush=True)

    def close(self) -> None:
        for bar in [self.configurations, *self._stages.values()]:
            bar.close()

    @contextmanager
    def activate(self) -> Iterator["StageBoard"]:
        """Route :func:`progress_bar` to this board until the block ends; the bars close then."""
        global _BOARD
        previous, _BOARD = _BOARD, self
        try:
            yield self
        finally:
            _BOARD = previous
            self.close()


class _StagePart:
    """One :func:`progress_bar` call's share of a stage bar (the bar outlives it)."""

    def __init__(self, bar: Any) -> None:
        self._bar = bar

    def update(self, n: int = 1) -> None:
        self._bar.update(n)

    def __enter__(self) -> "_StagePart":
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None


_BOARD: StageBoard | None = None
