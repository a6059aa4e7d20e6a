"""Every registered built-in plugin against its contract (defacebench.testing).

Plugins that cannot run here are skipped with their Availability reason; plugins that failed to
load are failures, since a built-in must at least import.
"""

import pytest

from defacebench.contracts import KINDS
from defacebench.plugins.registry import build_registry
from defacebench.testing import iter_checks, run_check

REGISTRY = build_registry()


def _params():
    params = []
    for kind in KINDS:
        for entry in REGISTRY.all_entries(kind):
            for check in iter_checks(entry.plugin, kind):
                params.append(pytest.param(entry.plugin, check, id=f"{kind}-{entry.name}-{check.__name__}"))
    return params


@pytest.mark.parametrize(("plugin", "check"), _params())
def test_builtin_plugin_conforms(plugin, check, tmp_path):
    run_check(check, plugin, tmp_path)


@pytest.mark.parametrize("problem", REGISTRY.problems, ids=lambda p: f"{p.kind}-{p.name}")
def test_builtin_plugins_load(problem):
    pytest.fail(f"built-in {problem.kind[:-1]} {problem.name} failed to load ({problem.source}): {problem.error}")
