"""One benchmark session, whichever surface starts it (``pytest bench/`` or ``defacebench run``).

Lifecycle: :meth:`Session.plan` (every configuration x scenario, skipped ones with their plugins'
Availability reasons) -> :meth:`Session.prepare` (dataset found or generated, the split feasible, the
regression gate able to judge; all before any computing) -> :meth:`Session.evaluate` per planned
item -> :meth:`Session.finish` (controls every attacker needs, leaderboard and verdict, manifest,
baseline, gate). Both surfaces are thin adapters over this class, so they cannot drift.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from defacebench.contracts import KINDS
from defacebench.errors import DefacebenchError
from defacebench.run.config import ConfigError, ConfigId, RunConfig, product
from defacebench.run.console import RUN_LOG, RunLog, config_line
from defacebench.run.gate import check_gate_inputs, run_gate
from defacebench.run.records import CONTROL, ConfigOutcome, result_id
from defacebench.run.rundir import make_run_dir
from defacebench.run.planning import (calibration_notice, calibration_used, check_grid, scenario_specs,
                                      second_acquisition_reason, with_seed)
from defacebench.run.scenarios import get_scenario
from defacebench.run.timing import write_timeline


@dataclass(frozen=True)
class Planned:
    """One (configuration, scenario) of the plan; ``skip`` is the reason it cannot run ("" if it can)."""

    config_id: ConfigId
    scenario: str
    skip: str = ""

    @property
    def key(self) -> str:
        return result_id(self.config_id, self.scenario)


@dataclass(frozen=True)
class Status:
    """What became of a planned item: passed, failed (with stage and error), skipped (with reason)
    or defacer_failed (with the tool's first error)."""

    status: str
    reason: str = ""

    def to_dict(self) -> dict:
        return {"status": self.status, **({"reason": self.reason} if self.reason else {})}


class DefacerFailedError(DefacebenchError):
    """A configuration's defacer failed on more than the allowed share of subjects."""


class RenderFailedError(DefacebenchError):
    """A renderer failed on more than the allowed share of defaced scans (a harness failure)."""


@dataclass
class Finish:
    """What :meth:`Session.finish` produced: whether the gate failed, the lines for the console
    (compact: fits a screen) and ``details`` (the full verdict table, in run.log and behind -v)."""

    gate_failed: bool = False
    lines: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)


class Session:
    """Registry, plan, the lazily started run, statuses and the end of the run."""

    def __init__(self, config: RunConfig) -> None:
        from defacebench.plugins.registry import default_plugins_file

        plugins_file = config.plugins_file or default_plugins_file()
        self.config = dataclasses.replace(config, plugins_file=Path(plugins_file).resolve() if plugins_file else None)
        self._registry = None
        self._run = None
        self.statuses: dict[str, Status] = {}
        self.outcomes: dict[str, ConfigOutcome] = {}
        self.extra_outcomes: dict[str, ConfigOutcome] = {}
        self.messages: list[str] = []
        self.notices: list[str] = []  # decisions taken before the work, printed with the summary
        self.calibration: dict | None = None  # the split sizes the calibration fraction gives (manifest)
        self._dataset = None  # discovered once for planning, handed to the run
        self.log = RunLog()  # <run folder>/run.log: per-configuration lines, full tables, VTK's messages
        self.config_lines: list[str] = []  # one per recorded configuration (printed with -v)
        self._ahead = None  # the run-ahead threads (defacebench.run.prefetch), when started

    @property
    def registry(self):
        if self._registry is None:
            from defacebench.plugins.registry import load_registry

            self._registry = load_registry(self.config.plugins_file)
        return self._registry

    # ---------------------------------------------------------------- plan and prepare

    def plan(self) -> list[Planned]:
        """Every configuration x scenario, skipped with the plugins' reasons where one cannot run."""
        registry = self.registry
        names = {kind: registry.names(kind) for kind in KINDS}
        for problem in registry.problems:  # broken plugins still get (skipped) ids
            names[problem.kind] = sorted(set(names[problem.kind]) | {problem.name}, key=lambda n: (n != CONTROL, n))
        configs = product(names, self.config.restrict)
        specs = scenario_specs(self.config, configs)
        dataset = self._planning_dataset()
        lacking = {s.name: second_acquisition_reason(dataset, self.config.calibration, s.name) for s in specs}
        specs = with_seed(specs, lacking)
        reasons = registry.unavailable_reasons({(k, n) for cid in configs for k, n in zip(KINDS, cid.parts)})
        left_out = registry.left_out_reasons(self.config.plugin_set, self.config.restrict)
        planned = []
        for spec in specs:
            for cid in configs:
                if not spec.covers(*cid.attacker):
                    continue  # this scenario runs only for the attackers its spec names
                why = [lacking.get(spec.name, "")]
                why += [reasons[(k, n)] or left_out.get((k, n), "") for k, n in zip(KINDS, cid.parts)]
                planned.append(Planned(cid, spec.name, "; ".join(w for w in why if w)))
        check_grid(self.config, registry, planned)
        return planned

    def _planning_dataset(self):
        """The dataset the plan depends on (a second acquisition per subject or not), discovered once;
        None for the embedded sample (scan and rescan for every subject) or when discovery fails
        (:meth:`prepare` then reports why)."""
        if self._dataset is None and self.config.dataset is not None:
            from defacebench.data.dataset import discover

            try:
                self._dataset = discover(Path(self.config.dataset))
            except DefacebenchError:
                return None
        return self._dataset

    def prepare(self) -> None:
        """Find (or generate) the dataset and check, before any computing, that it can be evaluated
        as asked and that the regression gate can judge this run."""
        run = self.run
        run.cache.prepare()  # a read-only or foreign cache folder fails now, in one line
        n = len(run.dataset.subjects)
        if n == 0:
            details = "; ".join(f"{f.path}: {f.reason}" for f in run.dataset.failures[:3])
            raise ConfigError(f"{run.config.dataset}: no subject found{(': ' + details) if details else ''}; "
                              "see docs/data.md ('Your own data') for the layouts defacebench reads")
        from defacebench.metrics.split import check_split_feasible

        check_split_feasible(n, self.config.calibration, where=str(run.config.dataset))
        self.calibration = calibration_used(n, self.config.calibration)
        notice = calibration_notice(n, self.calibration)
        if notice and notice not in self.notices:
            self.notices.append(notice)
        if self.config.compare:
            check_gate_inputs(self.config, run, [p.key for p in self.plan()])

    @property
    def run(self):
        """The run (started on first use: dataset resolved, generating the sample if needed)."""
        if self._run is None:
            from defacebench.run.pipeline import BenchmarkRun

            if self.config.dataset is None:
                from defacebench.data.sample import sample_dataset

                self.config = dataclasses.replace(self.config, dataset=sample_dataset(n_subjects=self.config.sample_subjects),
                                                  sample_subjects=None)
            self._run = BenchmarkRun(self.config, run_dir=make_run_dir(self.config.results, self.config.run_id),
                                     dataset=self._dataset)
            self._route_logs(self._run.run_dir)
        return self._run

    def _route_logs(self, run_dir: Path) -> None:
        """run.log in the run folder; VTK's messages into it, from this process and from the workers
        (they inherit the environment), and EGL when there is no display."""
        from defacebench.util.vtklog import ENV_LOG, prefer_egl

        self.log.attach(run_dir)
        os.environ[ENV_LOG] = str(run_dir / RUN_LOG)
        prefer_egl()

    @property
    def started(self) -> bool:
        return self._run is not None

    # ---------------------------------------------------------------- evaluate and record

    def evaluate(self, item: Planned) -> ConfigOutcome:
        """Evaluate one planned item (its outcome is kept for the leaderboard); a defacer that failed
        on too many subjects raises :class:`DefacerFailedError` with its first error."""
        from defacebench.run.evaluation import evaluate_config

        scenario = get_scenario(item.scenario)
        outcome = evaluate_config(self.run, item.config_id, scenario, self.run.run_dir / item.key,
                                  grid=self._grid(scenario))
        self.outcomes[item.key] = outcome
        if outcome.status == "defacer_failed":
            share = outcome.row.defacing_failure_rate or 0.0
            raise DefacerFailedError(
                f"{item.config_id.defacer} failed on {share:.0%} of subjects (allowed {self.config.defacer_fail_share:.0%}; "
                f"scored as the --failed-defacing rule {self.config.failed_defacing!r} says): {outcome.first_error}")
        if outcome.status == "render_failed":
            raise RenderFailedError(f"{item.config_id.renderer} failed to render more than "
                                    f"{self.config.defacer_fail_share:.0%} of the defaced scans: {outcome.first_error}")
        return outcome

    def run_ahead(self, items: list[Planned]) -> None:
        """Start computing the stages of ``items`` (in the order they will be evaluated) from
        background threads, so the workers never wait for the run between stage maps
        (:mod:`defacebench.run.prefetch`); the evaluation of each item then reads the memo."""
        from defacebench.run.prefetch import RunAhead, ordered_needs, run_ahead_threads, wanted

        runnable = [p for p in items if not p.skip]
        if not runnable or not wanted(self.config):
            return
        scenarios = {p.scenario: get_scenario(p.scenario) for p in runnable}
        needs = ordered_needs((p.config_id.defacer, scenarios[p.scenario].probe_source(p.config_id.defacer),
                               *p.config_id.attacker, self._grid(scenarios[p.scenario])) for p in runnable)
        run = self.run
        workers = self.config.workers or os.cpu_count() or 1
        defacers = len({p.config_id.defacer for p in runnable})
        self._ahead = RunAhead(run, needs, run_ahead_threads(defacers, workers)).start()

    def abort(self) -> None:
        """End the run-ahead quickly after an error: the workers stop first, so its maps end."""
        if self._ahead is not None and self._run is not None:
            self._run.close()
        self._stop_ahead()

    def _stop_ahead(self) -> None:
        if self._ahead is not None:
            self._ahead.close()
            self._ahead = None

    def run_item(self, item: Planned) -> tuple[Status, ConfigOutcome | None]:
        """Evaluate one planned item as ``defacebench run`` does and record what became of it:
        skipped (its reason), passed, defacer_failed or failed (the error); the outcome when passed."""
        outcome = None
        if item.skip:
            status = Status("skipped", item.skip)
        else:
            try:
                outcome = self.evaluate(item)
                status = Status("passed")
            except DefacerFailedError as exc:
                status = Status("defacer_failed", str(exc))
            except DefacebenchError as exc:
                status = Status("failed", f"{type(exc).__name__}: {exc}")
        self.record(item.key, status)
        return status, outcome

    def _grid(self, scenario):
        from defacebench.run.viewgrid import grid

        return grid(*self.config.view_grid) if scenario.views == "grid" else None

    def record(self, key: str, status: Status) -> None:
        self.statuses[key] = status
        self._log_config(config_line(key, status, self.outcomes.get(key)))

    def _log_config(self, line: str) -> None:
        self.config_lines.append(line)
        self.log.write([line])

    # ---------------------------------------------------------------- finish

    def finish(self) -> Finish:
        """Controls for every attacker used, leaderboard and verdict, manifest, baseline, gate."""
        done = Finish()
        if not self.statuses and not self.outcomes:
            return done
        from defacebench.run.manifest import build_manifest, write_manifest

        self._stop_ahead()
        run = self._run
        rows = []
        began = time.time()
        if run is not None:
            self._ensure_controls()
            rows = [o.row for o in [*self.outcomes.values(), *self.extra_outcomes.values()]]
        if rows:
            from defacebench.report import write_leaderboard
            from defacebench.report.verdict import VerdictParams
            from defacebench.report.verdict_console import verdict_compact, verdict_sentences
            from defacebench.report.verdict_table import verdict_markdown

            verdicts = write_leaderboard(run.run_dir, rows, images=self.config.images,
                                         params=VerdictParams.from_settings(self.config.to_dict()),
                                         statuses={k: s.to_dict() for k, s in self.statuses.items()})
            done.lines.append("Verdict per defacer (exposure over every valid attack, corrected for selection; "
                              "every column in leaderboard.md, explained in docs/statistics.md):")
            done.lines += ["", *verdict_compact(verdicts).splitlines(), "", *verdict_sentences(verdicts)]
            done.details = ["Verdict per defacer, every column:", *verdict_markdown(verdicts).splitlines()]
            done.gate_failed = run_gate(self.config, run, rows, done.lines)
        if run is not None:
            write_manifest(run.run_dir / "manifest.json", build_manifest(self))
            done.lines.insert(0, run.times.summary())
            done.lines[1:1] = self.notices + _input_notices(run)
            done.lines += _failure_lines(self.outcomes.values(), self.config.failed_defacing)
            self._closing_lines(done)
            run.close()
            run.times.spans.append(("finish", "", os.getpid(), began, time.time() - began, 0.0))
            write_timeline(run.times)
        return done

    def _closing_lines(self, done: Finish) -> None:
        """Where to look next (the report, the run folder), and everything into run.log: the full
        verdict, the full leaderboard and what the console showed."""
        run_dir = self._run.run_dir
        if (run_dir / "leaderboard.html").is_file():
            done.lines.append(f"defacebench: report {run_dir / 'leaderboard.html'}")
        done.lines.append(f"defacebench: run outputs in {run_dir} (per-configuration lines and the full "
                          f"leaderboard in {RUN_LOG}; -v prints them)")
        board = run_dir / "leaderboard.md"
        self.log.write(["", *done.details, "", *(board.read_text().splitlines() if board.is_file() else []),
                        "", *done.lines])

    def _ensure_controls(self) -> None:
        """Evaluate the control of every attacker and scenario used, also when ``-k`` deselected its
        test, so privacy gain and attacker validity are always defined."""
        needed = {(o.config_id.attacker, o.scenario) for o in self.outcomes.values()}
        for (renderer, detector, recognizer), scenario in sorted(needed):
            item = Planned(ConfigId(CONTROL, renderer, detector, recognizer), scenario)
            if item.key in self.outcomes:
                continue
            try:
                self.extra_outcomes[item.key] = self.evaluate(item)
                self.outcomes.pop(item.key, None)
                self._log_config(config_line(item.key, Status("passed"), self.extra_outcomes[item.key]) +
                                 " (control evaluated for the attackers used)")
            except DefacebenchError as exc:
                self.messages.append(f"defacebench: control {item.key} could not be evaluated: {exc}")


def _failure_lines(outcomes, rule: str) -> list[str]:
    """Console lines for what a user must not miss: subjects dropped before defacing (once per
    scenario) and failed defacings (once per defacer and scenario, naming the rule in force)."""
    dropped: dict[str, set] = {}
    failed: dict[tuple[str, str], set] = {}
    for o in outcomes:
        for f in o.failures:
            if f.stage in ("convert", "roles", "discover"):
                dropped.setdefault(o.scenario, set()).add((f.subject_id, f.stage))
            elif f.stage == "deface":
                failed.setdefault((o.config_id.defacer, o.scenario), set()).add(f.subject_id)
    lines = [f"defacebench: scenario {s}: {len(v)} subject(s) dropped before defacing "
             f"({', '.join(sorted(f'{sid} ({stage})' for sid, stage in v))}); see metrics.json failures"
             for s, v in sorted(dropped.items())]
    how = {"exposed": "scored with the undefaced scan", "excluded": "left out of the matrix",
           "nonmatch": "scored as non-matches"}[rule]
    lines += [f"defacebench: {d} failed on {len(v)} subject(s) in scenario {s}: {how} (--failed-defacing {rule})"
              for (d, s), v in sorted(failed.items())]
    return lines


def _input_notices(run) -> list[str]:
    """Decisions taken on the inputs that a user must see: series chosen among several in one
    folder, conversion warnings (e.g. coarse voxels), and cache artifacts found corrupt and rebuilt
    during this run."""
    from defacebench.data.convert import conversion_notices

    volumes = [v.record for v in run.volumes().values() if v.ok]
    lines = [f"defacebench: {line}" for r in volumes for line in conversion_notices(r)
             if line != ((r.get("modality_decision") or {}).get("warning") if isinstance(r, dict) else None)]
    lines += _modality_notice(run.config.modality, volumes)
    lines += [f"defacebench: {p}: the harness's own output folder, inside the dataset; not read as a subject"
              for p in run.dataset.ignored]
    corrupt = run.cache.corruption_summary(since=run.started_at)
    return lines + ([f"defacebench: {corrupt}"] if corrupt else [])


def _modality_notice(choice: str, records) -> list[str]:
    """One line when ``--modality`` overrode what the intensities of some acquisitions say (each
    acquisition's warning stays in its conversion record)."""
    decisions = [r.get("modality_decision") or {} for r in records]
    forced = [d for d in decisions if d.get("warning")]
    if not forced:
        return []
    looks = "/".join(sorted({str(d.get("intensity") or "?").upper() for d in forced}))
    return [f"defacebench: --modality {choice} forced on {len(forced)} acquisition(s) whose intensities look like "
            f"{looks} (e.g. {forced[0]['warning']}); check --modality"]
