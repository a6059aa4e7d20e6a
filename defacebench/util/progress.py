"""When and how defacebench shows progress bars.

Why one module: every stage map shows a bar with count and ETA on a terminal, and must stay silent
in CI logs, pytest captures and redirected output (a bar there is thousands of garbage lines). One
policy, used everywhere, keeps that decision in one place. ``DEFACEBENCH_PROGRESS=1`` / ``=0``
forces bars on or off (e.g. to watch a batch job's log with ``tail -f``).
"""

from __future__ import annotations

import os
import sys
from typing import IO, Any

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
    """A tqdm bar (count, rate, ETA) on stderr; a disabled no-op bar when not on a terminal."""
    from tqdm.auto import tqdm  # tqdm picks a notebook widget under Jupyter, text otherwise

    stream = sys.stderr if stream is None else stream
    return tqdm(total=total, desc=desc, unit=unit, file=stream, dynamic_ncols=True,
                disable=not progress_enabled(stream), leave=True)
