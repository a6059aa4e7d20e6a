"""pytest integration: benchmark options, one test per configuration, run outputs at session end.

Every test that asks for the ``config`` fixture is parametrized over the product of the plugin
registries, with ids ``defacer-renderer-detector-recognizer``; a configuration with an unavailable
plugin is a skipped test whose reason is that plugin's Availability reason. At session end the run's
``manifest.json`` records every configuration's status and the leaderboard is written; with
``--compare`` the regression gate fails the session on regressed configurations.
"""

from __future__ import annotations

import pytest

from defacebench.pytest_plugin import BenchSession, add_options, config_params, skip_slow

_STATE = pytest.StashKey[BenchSession]()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_STATE] = BenchSession(config)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "config" in metafunc.fixturenames:
        metafunc.parametrize("config", config_params(metafunc.config.stash[_STATE]))


@pytest.fixture(scope="session")
def benchmark_run(pytestconfig: pytest.Config):
    """The session's :class:`defacebench.run.pipeline.BenchmarkRun` (dataset prepared on first use)."""
    state = pytestconfig.stash[_STATE]
    yield state.run()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "config" in callspec.params:
        item.config.stash[_STATE].record(callspec.params["config"], report, call)
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(_STATE, None)
    if state is not None and state.finish() and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is not None:
        for line in state.summary_lines():
            terminalreporter.write_line(line)



def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_slow(config, items)
