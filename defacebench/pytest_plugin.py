"""The pytest side of the harness: a thin adapter over :class:`defacebench.run.session.Session`.

Registered through the ``pytest11`` entry point (so ``pytest --dataset ... --compare ...`` works from
any folder once the package is installed) and by the checkout's root ``conftest.py``. Every test
that asks for the ``config`` fixture is parametrized over the session's plan, with ids
``defacer-renderer-detector-recognizer`` (plus ``-<scenario>`` for scenarios other than rescan); an
item whose plugin cannot run is skipped with that plugin's Availability reason. The options are the
one table of :mod:`defacebench.run.options`, the same as ``defacebench run``'s.
"""

from __future__ import annotations

import pytest

from defacebench.errors import DefacebenchError
from defacebench.run.options import add_to_pytest, run_config
from defacebench.run.session import DefacerFailedError, Session, Status

_STATE = pytest.StashKey[Session]()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_to_pytest(parser)
    group = parser.getgroup("defacebench")
    group.addoption("--run-slow", action="store_true", help="also run tests marked slow")
    group.addoption("--run-perf", action="store_true", help="also run the harness's own performance tests (perf)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: long benchmarks and large-N runs; skipped unless --run-slow")
    config.addinivalue_line("markers", "perf: the harness's own performance tests; skipped unless --run-perf or -m perf")
    config.addinivalue_line("markers", "chromium: needs headless Chromium (Debian package chromium)")
    try:
        config.stash[_STATE] = Session(run_config(config.getoption))
    except DefacebenchError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "config" not in metafunc.fixturenames:
        return
    try:
        plan = metafunc.config.stash[_STATE].plan()
    except DefacebenchError as exc:
        raise pytest.UsageError(str(exc)) from None
    params = [pytest.param(item, id=item.key, marks=[pytest.mark.skip(reason=item.skip)] if item.skip else [])
              for item in plan]
    metafunc.parametrize("config", params)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _skip_unless(config, items, "slow", "--run-slow")
    _skip_unless(config, items, "perf", "--run-perf")


def _skip_unless(config: pytest.Config, items: list[pytest.Item], marker: str, flag: str) -> None:
    if config.getoption(flag) or marker in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason=f"{marker}: run with {flag}")
    for item in items:
        # the marker itself, not item.keywords: those also hold folder names (tests/perf/) and ids
        if item.get_closest_marker(marker) is not None:
            item.add_marker(skip)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Check the dataset, the split and the regression gate before any test runs."""
    runnable = [i for i in session.items if "config" in getattr(getattr(i, "callspec", None), "params", {})
                and not i.get_closest_marker("skip")]
    if not runnable or session.config.option.collectonly:
        return
    try:
        session.config.stash[_STATE].prepare()
    except DefacebenchError as exc:
        raise pytest.UsageError(f"defacebench: {exc}") from None


@pytest.fixture(scope="session")
def bench_session(pytestconfig: pytest.Config) -> Session:
    """The session's :class:`~defacebench.run.session.Session` (its run starts on first use)."""
    return pytestconfig.stash[_STATE]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "config" in params:
        _record(item.config.stash[_STATE], params["config"].key, report, call)
    return report


def _record(state: Session, key: str, report: pytest.TestReport, call: pytest.CallInfo) -> None:
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        state.record(key, Status("skipped", reason.removeprefix("Skipped: ")))
    elif report.failed:
        error = call.excinfo.exconly() if call.excinfo else report.longreprtext.splitlines()[-1]
        failed_defacer = call.excinfo is not None and call.excinfo.errisinstance(DefacerFailedError)
        state.record(key, Status("defacer_failed" if failed_defacer else "failed", f"{report.when}: {error}"))
    elif report.when == "call":
        state.record(key, Status("passed"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(_STATE, None)
    if state is None or not state.started:
        return
    result = state.finish()
    if session.config.getoption("verbose") > 0:  # -v: every configuration's line and the full verdict too
        state.messages.extend([*state.config_lines, "", *result.details, ""])
    state.messages.extend(result.lines)
    if result.gate_failed and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is not None:
        for line in state.messages:
            terminalreporter.write_line(line)
