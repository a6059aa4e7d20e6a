"""The pytest side of the harness (used by the project's root ``conftest.py``).

Options, the parametrization of configurations, status bookkeeping, and what happens at session
end: leaderboard, manifest, baseline save and the regression gate. Kept here rather than in
``conftest.py`` so it is importable, testable and small.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from defacebench.run.config import ConfigId, RunConfig, parse_name_list, product
from defacebench.contracts import KINDS
from defacebench.errors import DefacebenchError


def add_options(parser: pytest.Parser) -> None:
    """Register the benchmark's command-line options."""
    group = parser.getgroup("defacebench", "defacebench benchmark")
    group.addoption("--dataset", default=None, help="dataset folder or CSV manifest (default: the embedded sample)")
    group.addoption("--results", default="results/runs", help="folder for run outputs (default results/runs)")
    for kind in KINDS:
        group.addoption(f"--{kind}", default=None, help=f"comma list restricting the {kind}")
    group.addoption("--plugins-file", default=None, help="TOML file of command defacers (default ./defacebench.toml)")
    group.addoption("--executor", default="local", choices=("local", "serial", "dask"), help="stage executor")
    group.addoption("--scheduler", default=None, help="Dask scheduler address tcp://HOST:PORT (implies dask)")
    group.addoption("--workers", type=int, default=None, help="worker processes (default: cores)")
    group.addoption("--bench-cache", default=None, help="stage cache folder (default $DEFACEBENCH_CACHE)")
    group.addoption("--scenario", default="rescan", choices=("rescan", "seed"), help="gallery source")
    group.addoption("--protocol", default="default", choices=("default", "seed"), help="evaluation protocol")
    group.addoption("--cleanup", default="mask", choices=("mask", "seed_range", "none"), help="post-defacing cleanup")
    group.addoption("--qc-filter", default=None, help="keep only subjects with this QC label (e.g. ok)")
    group.addoption("--split-seed", type=int, default=0, help="seed of the calibration/held-out split")
    group.addoption("--calibration", type=float, default=0.7, help="calibration fraction (1.0: fit on all)")
    group.addoption("--n-bootstrap", type=int, default=1000, help="bootstrap resamples for CIs")
    group.addoption("--policy", default="f1", help="threshold policy: f1, youden or far=<x>")
    group.addoption("--converter", default="dicom2nifti", choices=("dicom2nifti", "dcm2niix"))
    group.addoption("--no-images", action="store_true", help="write no pictures (renders show faces)")
    group.addoption("--run-id", default="", help="name of the run folder (default: a timestamp)")
    group.addoption("--compare", default=None, help="baseline JSON: fail on regressed configurations")
    group.addoption("--compare-fail", default="rank1:0.05,roc_auc:0.05", help="tolerances beyond the stored CI")
    group.addoption("--save-baseline", default=None, help="write this run's rows as a baseline JSON")
    group.addoption("--run-slow", action="store_true", help="also run tests marked slow")


def run_config_from_options(config: pytest.Config) -> RunConfig:
    """Build the :class:`RunConfig` from pytest options (dataset resolved later, lazily)."""
    opt = config.getoption
    plugins_file = opt("--plugins-file") or os.environ.get("DEFACEBENCH_PLUGINS_FILE")
    executor = "dask" if opt("--scheduler") else opt("--executor")
    return RunConfig(
        dataset=Path(opt("--dataset")) if opt("--dataset") else Path(),
        results=Path(opt("--results")), cache_dir=Path(opt("--bench-cache")) if opt("--bench-cache") else None,
        plugins_file=Path(plugins_file).resolve() if plugins_file else None, executor=executor,
        scheduler=opt("--scheduler"), workers=opt("--workers"), scenario=opt("--scenario"),
        protocol=opt("--protocol"), calibration=opt("--calibration"), seed=opt("--split-seed"),
        n_bootstrap=opt("--n-bootstrap"), policy=opt("--policy"), cleanup=opt("--cleanup"),
        converter=opt("--converter"), qc_filter=opt("--qc-filter"), images=not opt("--no-images"),
        run_id=opt("--run-id") or time.strftime("%Y%m%d-%H%M%S"),
        restrict=tuple((k, parse_name_list(opt(f"--{k}"))) for k in KINDS if opt(f"--{k}")),
    )


class BenchSession:
    """Per-pytest-session state: registry, the lazily started run, statuses, session-end outputs."""

    def __init__(self, config: pytest.Config) -> None:
        self.pytest_config = config
        self.run_config = run_config_from_options(config)
        self._registry = None
        self._run = None
        self.statuses: dict[str, dict] = {}
        self.messages: list[str] = []

    @property
    def registry(self):
        if self._registry is None:
            from defacebench.plugins.registry import load_registry

            self._registry = load_registry(self.run_config.plugins_file)
        return self._registry

    def run(self):
        """Start the run on first use: resolve the dataset (generating the sample if needed)."""
        if self._run is None:
            from defacebench.run.pipeline import BenchmarkRun

            cfg = self.run_config
            if cfg.dataset == Path():
                from defacebench.data.sample import sample_dataset

                cfg = _replace(cfg, dataset=sample_dataset())
                self.run_config = cfg
            self._run = BenchmarkRun(cfg)
        return self._run

    def record(self, cid: ConfigId, report: pytest.TestReport, call: pytest.CallInfo) -> None:
        """Keep the configuration's status: passed, failed with the error, skipped with the reason."""
        key = str(cid)
        if report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            self.statuses[key] = {"status": "skipped", "reason": reason.removeprefix("Skipped: ")}
        elif report.failed:
            error = call.excinfo.exconly() if call.excinfo else report.longreprtext.splitlines()[-1]
            self.statuses[key] = {"status": "failed", "stage": report.when, "error": error}
        elif report.when == "call":
            self.statuses[key] = {"status": "passed"}

    def finish(self) -> bool:
        """Write leaderboard, manifest and baseline; return True when the regression gate fails."""
        if not self.statuses:
            return False
        from defacebench.run.manifest import build_manifest, write_manifest

        run = self._run
        run_dir = run.run_dir if run else Path(self.run_config.results) / self.run_config.run_id
        failed = False
        rows = [o.row for o in run.outcomes.values()] if run else []
        if rows:
            from defacebench.report import write_leaderboard

            write_leaderboard(run_dir, rows)
            failed = self._gate(rows)
        manifest = build_manifest(run_config=self.run_config, registry=self.registry, statuses=self.statuses, run=run)
        write_manifest(run_dir / "manifest.json", manifest)
        self.messages.append(f"defacebench: run outputs in {run_dir}")
        if run is not None:
            run.close()
        return failed

    def _gate(self, rows) -> bool:
        from defacebench.report import compare_baseline, parse_tolerances, save_baseline
        from defacebench.report.baseline import format_regressions

        opt = self.pytest_config.getoption
        if opt("--save-baseline"):
            save_baseline(Path(opt("--save-baseline")), rows)
            self.messages.append(f"defacebench: baseline written to {opt('--save-baseline')}")
        if not opt("--compare"):
            return False
        regressions = compare_baseline(rows, Path(opt("--compare")), tolerances=parse_tolerances(opt("--compare-fail")))
        self.messages.append(f"defacebench ({opt('--compare')}): {format_regressions(regressions)}")
        return bool(regressions)

    def summary_lines(self) -> list[str]:
        return list(self.messages)


def _replace(cfg: RunConfig, **changes) -> RunConfig:
    import dataclasses

    return dataclasses.replace(cfg, **changes)


def config_params(state: BenchSession) -> list:
    """One ``pytest.param`` per configuration, skipped with the Availability reason when a plugin
    cannot run here (or failed to load)."""
    registry = state.registry
    names = {kind: registry.names(kind) for kind in KINDS}
    for problem in registry.problems:  # broken plugins still get (skipped) ids
        names[problem.kind] = sorted(set(names[problem.kind]) | {problem.name}, key=lambda n: (n != "none", n))
    try:
        configs = product(names, dict(state.run_config.restrict))
    except DefacebenchError as exc:
        raise pytest.UsageError(str(exc)) from exc
    reasons = registry.unavailable_reasons()
    params = []
    for cid in configs:
        why = [reasons[(kind, name)] for kind, name in zip(KINDS, cid.parts) if reasons[(kind, name)]]
        marks = [pytest.mark.skip(reason="; ".join(why))] if why else []
        params.append(pytest.param(cid, id=str(cid), marks=marks))
    return params


def skip_slow(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``@pytest.mark.slow`` tests unless ``--run-slow``."""
    if config.getoption("--run-slow"):
        return
    marker = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(marker)
