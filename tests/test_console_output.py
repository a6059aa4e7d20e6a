"""The console's pieces: verdict sentences per exposure class, the compact table, the per-defacer
status line, run.log and the stage board (issue 24, item 3)."""

import io

from defacebench.report.verdict import VerdictRow
from defacebench.report.verdict_console import verdict_compact, verdict_sentences
from defacebench.run.config import ConfigId
from defacebench.run.console import DefacerTally, RunLog, config_line
from defacebench.run.session import Planned, Status
from defacebench.util import progress


def _v(defacer, exposure, rank=None, tied=(), status="ok", p=None, worst=None):
    return VerdictRow(defacer=defacer, n_attacks=3, worst_rank1=worst, worst_rank1_ci=(0.0, 0.5) if worst else None,
                      worst_attacker="surface-dlib_hog-dlib_resnet", worst_scenario="rescan", worst_tar_far_1e2=None,
                      privacy_gain=None, probe_detection=None, defacing_failure_rate=None, exposure=exposure,
                      rank=rank, tied_with=tied, status=status, p_exposed=p, worst_rank1_selected=worst)


def test_sentences_list_each_class_in_rank_order_with_ties_and_leave_out_the_control():
    lines = verdict_sentences([_v("none", "exposed", worst=1.0), _v("b", "exposed", 1, ("a",), p=0.01, worst=0.3),
                               _v("a", "exposed", 1, ("b",), p=0.0001, worst=0.4), _v("c", "not_shown_exposed", 3),
                               _v("x", "untestable", status="defacer_failed")])
    assert lines == ["exposed: a (worst-case rank-1 0.400, p <0.001; tied with b), "
                     "b (worst-case rank-1 0.300, p 0.010; tied with a).",
                     "not shown exposed: c.", "untestable: x (defacer_failed)."]


def test_sentences_say_when_a_class_is_empty_and_when_only_the_control_ran():
    assert verdict_sentences([_v("none", "exposed"), _v("q", "not_shown_exposed", 1, p=0.7, worst=0.0)]) == \
        ["exposed: no defacer.", "not shown exposed: q (worst-case rank-1 0.000, p 0.700)."]
    assert verdict_sentences([_v("none", "exposed")]) == ["No defacer tested besides the control none: nothing to judge."]
    assert verdict_sentences([]) == ["No defacer tested besides the control none: nothing to judge."]


def test_compact_table_keeps_the_verdict_columns_only():
    text = verdict_compact([_v("q", "not_shown_exposed", 1, p=0.7, worst=0.25)])
    header = "\n".join(text.splitlines()[:3])  # the worst-case header takes three lines
    assert "exposure (p max-T)" in header and "(cross-fitted)" in header and "selected max rank-1" in header
    assert "privacy gain" not in text and "s/subject" not in text
    assert "0.250 [0.000, 0.500]" in text and len(text.splitlines()) == 5


class _Row:
    n, rank1, roc_auc, detection_rate = 4, 0.25, 0.5, 1.0


class _Outcome:
    row, seconds = _Row(), 1.5


def _item(defacer, scenario="rescan"):
    return Planned(ConfigId(defacer, "surface", "dlib_hog", "dlib_resnet"), scenario)


def test_a_defacer_status_line_comes_when_its_last_configuration_finishes():
    plan = [_item("q"), _item("none"), _item("q", "aware")]
    tally = DefacerTally(plan)
    assert tally.add(plan[0], Status("passed"), _Outcome()) is None
    assert tally.add(plan[1], Status("passed"), _Outcome()).startswith("none: 1 configuration(s) done (1 passed)")
    line = tally.add(plan[2], Status("skipped", "why"), None)
    assert line == "q: 2 configuration(s) done (1 passed, 1 skipped); highest rank-1 0.250 " \
                   "(q-surface-dlib_hog-dlib_resnet)"


def test_config_lines_and_run_log_keep_lines_written_before_the_run_folder(tmp_path):
    assert config_line("k", Status("passed"), _Outcome()) == "k: n=4 rank1=0.250 roc_auc=0.500 detection=1.00 (1.5 s)"
    assert config_line("k", Status("skipped", "no FSL"), None) == "k: skipped: no FSL"
    log = RunLog()
    log.write(["early"])
    log.attach(tmp_path / "run")
    log.write(["late"])
    assert (tmp_path / "run" / "run.log").read_text() == "early\nlate\n"


def test_stage_board_gathers_every_call_of_a_stage_in_one_bar(monkeypatch):
    monkeypatch.setenv(progress.ENV_VAR, "1")
    stream = io.StringIO()
    board = progress.StageBoard(3, stream=stream)
    with board.activate():
        for _ in range(2):
            with progress.progress_bar(2, "render surface") as bar:
                bar.update(2)
        with progress.progress_bar(1, "detect dlib_hog") as bar:
            bar.update(1)
        board.config_done()
        assert set(board._stages) == {"render", "detect"} and board._stages["render"].n == 4
        assert board._stages["render"].total == 4
    assert progress._BOARD is None  # the board is no longer active after its block
    assert "render" in stream.getvalue() and "configurations" in stream.getvalue()


def test_without_a_terminal_the_board_draws_nothing_and_writes_plain_lines(monkeypatch, capsys):
    monkeypatch.setenv(progress.ENV_VAR, "0")
    stream = io.StringIO()
    board = progress.StageBoard(1, stream=stream)
    with board.activate():
        with progress.progress_bar(5, "embed faceres") as bar:
            bar.update(5)
        board.write("q: done")
    assert stream.getvalue() == "" and capsys.readouterr().out == "q: done\n"


def test_vtk_warnings_go_to_the_log_file_and_never_to_stderr(tmp_path):
    """The X11 warning VTK gives when it tries X without a display lands in $DEFACEBENCH_VTK_LOG;
    with the routing's own choice (EGL without a display) there is nothing to warn about at all."""
    import os
    import subprocess
    import sys

    import pytest

    pytest.importorskip("vtkmodules")
    script = (
        "import os\n"
        "from defacebench.util.vtklog import route_vtk_output\n"
        "path = route_vtk_output()\n"
        "chosen = os.environ.get('VTK_DEFAULT_OPENGL_WINDOW')\n"
        "os.environ.pop('VTK_DEFAULT_OPENGL_WINDOW', None)  # make VTK try X first: a warning to route\n"
        "from vtkmodules.vtkRenderingCore import vtkRenderWindow, vtkRenderer\n"
        "import vtkmodules.vtkRenderingOpenGL2\n"
        "w = vtkRenderWindow(); w.SetOffScreenRendering(1); w.SetSize(16, 16)\n"
        "w.AddRenderer(vtkRenderer()); w.Render()\n"
        "print(chosen, w.GetClassName(), path)\n")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "VTK_DEFAULT_OPENGL_WINDOW")}
    log = tmp_path / "run.log"
    out = subprocess.run([sys.executable, "-c", script], env={**env, "DEFACEBENCH_VTK_LOG": str(log)},
                         capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        pytest.skip(f"no offscreen OpenGL here: {out.stderr[-300:]}")
    assert out.stdout.split()[:2] == ["vtkEGLRenderWindow", "vtkEGLRenderWindow"] and out.stdout.split()[2] == str(log)
    assert out.stderr == ""
    assert "bad X server connection" in log.read_text()
