"""Keep VTK's messages out of the user's terminal: into the run's log, and EGL without a display.

Why: VTK prints its warnings straight to stderr from whichever process renders (the pool's
workers included), e.g. ``vtkXOpenGLRenderWindow ... bad X server connection. DISPLAY=`` each time
a worker opens its first window on a machine without X. Those lines are noise to a user and bury the
verdict. :func:`route_vtk_output` (called by the VTK renderers before their first window, once per
process) sends VTK's output window and its logger to the file named by ``$DEFACEBENCH_VTK_LOG``,
which a session sets to its ``run.log`` before the workers start, so they inherit it; without it
(a renderer used on its own) the file is ``defacebench-vtk.log`` in the temporary folder.
:func:`prefer_egl` asks VTK for its EGL window when there is no display, so it does not try X first.
"""

from __future__ import annotations

import os
import tempfile
from functools import lru_cache
from pathlib import Path

ENV_LOG = "DEFACEBENCH_VTK_LOG"
_WINDOW_VAR = "VTK_DEFAULT_OPENGL_WINDOW"  # VTK >= 9.4 reads it when a render window is created


def prefer_egl() -> None:
    """Without DISPLAY (or WAYLAND_DISPLAY), make VTK open its EGL window directly (offscreen,
    Mesa) instead of failing on X first; an explicit choice in the environment is kept."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get(_WINDOW_VAR)):
        os.environ[_WINDOW_VAR] = "vtkEGLRenderWindow"


def vtk_log_path() -> Path:
    """Where VTK's messages go: ``$DEFACEBENCH_VTK_LOG`` or a file in the temporary folder."""
    return Path(os.environ.get(ENV_LOG) or Path(tempfile.gettempdir()) / "defacebench-vtk.log")


def route_vtk_output() -> Path:
    """Send VTK's output window (warnings, errors) to :func:`vtk_log_path` (appended: workers and
    the main process share the run's log) and nothing to stderr. Once per process and log path."""
    prefer_egl()
    return _route(vtk_log_path())


@lru_cache(maxsize=8)
def _route(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    from vtkmodules.vtkCommonCore import vtkFileOutputWindow, vtkLogger, vtkOutputWindow

    window = vtkFileOutputWindow()
    window.SetFileName(str(path))
    window.SetAppend(1)
    window.SetFlush(1)
    vtkOutputWindow.SetInstance(window)
    # the logger repeats what the output window gets, on stderr; the window's copy is the one kept
    vtkLogger.SetStderrVerbosity(vtkLogger.VERBOSITY_OFF)
    return path
