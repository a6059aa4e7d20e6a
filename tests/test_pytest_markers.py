"""The pytest plugin's ``slow`` and ``perf`` markers: a marked test is skipped unless asked for, and
only the marker counts (not a folder or test id that happens to be named ``perf``, like tests/perf/)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

TESTS = textwrap.dedent("""\
    import pytest

    def test_plain():
        pass

    @pytest.mark.perf
    def test_timed():
        pass

    @pytest.mark.slow
    def test_long():
        pass

    @pytest.mark.parametrize("mode", [pytest.param("check"), pytest.param("perf", marks=pytest.mark.perf)])
    def test_twin(mode):
        pass
    """)


def _outcomes(folder: Path, *args: str) -> dict[str, str]:
    """test id -> PASSED/SKIPPED of a pytest run in ``folder`` (plugin loaded by its entry point)."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run([sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "-p",
                          "defacebench.pytest_plugin", *args], cwd=folder, capture_output=True, text=True,
                         timeout=300, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    found = {}
    for line in out.stdout.splitlines():
        node, _, rest = line.partition(" ")
        if "::" in node and rest.split(" ")[0] in ("PASSED", "SKIPPED"):
            found[node.split("::")[-1]] = rest.split(" ")[0]
    return found


def test_markers_not_folder_names_decide_what_is_skipped(tmp_path):
    perf_dir = tmp_path / "perf"
    perf_dir.mkdir()
    (perf_dir / "test_in_perf_folder.py").write_text(TESTS)
    default = _outcomes(tmp_path)
    assert default == {"test_plain": "PASSED", "test_twin[check]": "PASSED", "test_timed": "SKIPPED",
                       "test_long": "SKIPPED", "test_twin[perf]": "SKIPPED"}, default
    asked = _outcomes(tmp_path, "--run-perf")
    assert asked["test_timed"] == asked["test_twin[perf]"] == "PASSED" and asked["test_long"] == "SKIPPED"
    selected = _outcomes(tmp_path, "-m", "perf")
    assert selected == {"test_timed": "PASSED", "test_twin[perf]": "PASSED"}, selected
