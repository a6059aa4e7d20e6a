"""Registers the harness's pytest plugin for `pytest bench/` in this checkout.

The installed package registers the same module through its ``pytest11`` entry point (named after
the module, so pytest loads it once); this line covers runs with plugin autoloading disabled.
"""

pytest_plugins = ["defacebench.pytest_plugin"]
