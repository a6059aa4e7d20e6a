"""The ``bench`` fixture: one test body, run as a CI check and as a performance test.

A test that asks for ``bench`` instead of pytest-benchmark's ``benchmark`` is collected twice:

- ``[check]`` runs the measured call once, with no timing, and keeps every non-timing assertion; it
  carries no marker, so ``pytest tests`` (CI) runs it. Only tests whose body is cheap (seconds) ask
  for ``bench``.
- ``[perf]`` is marked ``perf`` (skipped unless ``--run-perf`` or ``-m perf``) and hands the body
  pytest-benchmark's fixture; add ``--benchmark-enable`` to get the benchmark table.

A test body tells the two apart by ``bench.measuring`` (timing bounds are asserted only when
measuring: a CI machine shared with other jobs says nothing about speed).
"""

from __future__ import annotations

from typing import Any, Callable

import pytest


class Once:
    """Stand-in for pytest-benchmark's fixture in ``[check]`` items: calls the target once."""

    measuring = False
    stats = None

    def __init__(self) -> None:
        self.extra_info: dict[str, Any] = {}

    def __call__(self, target: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return target(*args, **kwargs)

    def pedantic(self, target: Callable[..., Any], args: tuple = (), kwargs: dict | None = None,
                 setup: Callable[[], Any] | None = None, rounds: int = 1, iterations: int = 1,
                 warmup_rounds: int = 0) -> Any:
        """pytest-benchmark's signature; one call, with ``setup``'s (args, kwargs) when it returns them."""
        if setup is not None:
            made = setup()
            if made is not None:
                args, kwargs = made
        return target(*args, **(kwargs or {}))


@pytest.fixture(params=[pytest.param("check", id="check"), pytest.param("perf", id="perf", marks=pytest.mark.perf)])
def bench(request: pytest.FixtureRequest) -> Any:
    """:class:`Once` for ``[check]``; pytest-benchmark's ``benchmark`` (``measuring`` True) for ``[perf]``."""
    if request.param == "check":
        return Once()
    fixture = request.getfixturevalue("benchmark")
    fixture.measuring = True
    return fixture
