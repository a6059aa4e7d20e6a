"""Decisions the plan takes before any work, from the options, the plugins and the dataset's shape.

* A scenario spec the user gave whose attacker glob matches none of the run's attackers is an error
  naming the spec and the attackers there are (a typo such as ``multiview@surfce-*`` used to drop
  the scenario silently). The default specs only narrow: a run restricted to other attackers simply
  has no many-view items.
* A dataset with too few subjects holding a second acquisition cannot run the scenarios whose
  gallery is the other scan (``rescan``, ``multiview``, ``svm``, ``aware``): their items are skipped
  with that reason, and ``seed`` (gallery = the same scan, undefaced) runs in their place, as the
  README promises for one session per subject.
* A view grid a renderer cannot serve (no ``views`` parameter, more lights than it can get) is an
  error naming ``--view-grid`` and the renderer, before any rendering.
* A calibration fraction the subject count cannot honour (each side keeps >= 2 subjects) is said
  and recorded with the fraction actually used.
"""

from __future__ import annotations

from defacebench.errors import DefacebenchError, EvaluationError
from defacebench.run.config import DEFAULT_SCENARIOS, ConfigError
from defacebench.run.scenarios import ScenarioError, ScenarioSpec, get_scenario

SEED = "seed"


def scenario_specs(config, configs) -> list[ScenarioSpec]:
    """The run's scenario specs, each checked to match at least one of ``configs``' attackers when the
    user gave it (``--scenarios``); raises :class:`ScenarioError` naming the spec otherwise."""
    specs = [ScenarioSpec.parse(text) for text in config.scenarios]
    if tuple(config.scenarios) == DEFAULT_SCENARIOS:
        return specs
    for text, spec in zip(config.scenarios, specs):
        if not any(spec.covers(*cid.attacker) for cid in configs):
            kinds = ("renderers", "detectors", "recognizers")
            names = "; ".join(f"{kind}: {', '.join(sorted({cid.attacker[i] for cid in configs}))}"
                              for i, kind in enumerate(kinds))
            raise ScenarioError(f"--scenarios {text}: the attacker pattern {spec.attackers!r} matches none of this "
                                f"run's attackers (renderer-detector-recognizer; {names}); fix the pattern or "
                                f"restrict with --renderers/--detectors/--recognizers")
    return specs


def second_acquisition_reason(dataset, calibration: float, scenario: str) -> str:
    """Why ``scenario`` cannot run on ``dataset`` for lack of second acquisitions ("" when it can)."""
    from defacebench.metrics.split import check_split_feasible

    if dataset is None or not get_scenario(scenario).needs_other_acquisition:
        return ""
    n = len(dataset.subjects)
    paired = sum(len(s.acquisitions) >= 2 for s in dataset.subjects)
    try:
        check_split_feasible(paired, calibration)
        return ""
    except EvaluationError:
        pass
    have = ("the dataset has one acquisition per subject" if paired == 0 else
            f"only {paired} of {n} subjects have a second acquisition, too few for --calibration {calibration:g}")
    return (f"{have}: scenario {scenario} needs a second one (its gallery is the subject's other scan); "
            f"{SEED} runs instead (gallery = the undefaced render of the same scan)")


def with_seed(specs: list[ScenarioSpec], reasons: dict[str, str]) -> list[ScenarioSpec]:
    """``specs`` plus ``seed`` for every attacker when a scenario was skipped for lack of second
    acquisitions and the run does not ask for ``seed`` already."""
    if any(reasons.values()) and not any(spec.name == SEED for spec in specs):
        return [*specs, ScenarioSpec(SEED)]
    return specs


def check_grid(config, registry, planned) -> None:
    """Raise ConfigError when a renderer of a runnable many-view item cannot serve the view grid."""
    from defacebench.plugins.params import with_views
    from defacebench.run.viewgrid import STANDARD_LIGHTS, grid

    renderers = sorted({p.config_id.renderer for p in planned
                        if not p.skip and get_scenario(p.scenario).views == "grid"})
    if not renderers:
        return
    views = grid(*config.view_grid)
    for name in renderers:
        try:
            with_views(registry.get("renderers", name), views, STANDARD_LIGHTS)
        except DefacebenchError as exc:
            ymax, ystep, pmax, pstep, lights = config.view_grid
            raise ConfigError(f"--view-grid {ymax:g}:{ystep:g},{pmax:g}:{pstep:g},{lights}: {exc}") from None


def calibration_used(n_subjects: int, calibration: float) -> dict | None:
    """The split sizes ``calibration`` gives on ``n_subjects`` (the manifest's ``calibration``), or None
    when no split can be made (the split check says why)."""
    from defacebench.metrics.split import make_split

    if n_subjects < 1:
        return None
    try:
        split = make_split([str(i) for i in range(n_subjects)], calibration=calibration, seed=0)
    except EvaluationError:
        return None
    n_cal = len(split.calibration_ids)
    used = 1.0 if split.fit_on_all else round(n_cal / n_subjects, 4)
    return {"requested": calibration, "used": used, "calibration_subjects": n_cal,
            "heldout_subjects": len(split.heldout_ids)}


def calibration_notice(n_subjects: int, record: dict | None) -> str:
    """The line to print when the fraction used differs from the one asked for ("" otherwise)."""
    if record is None or record["used"] == record["requested"] or record["requested"] == 1.0:
        return ""
    if abs(record["calibration_subjects"] - record["requested"] * n_subjects) < 0.5 + 1e-9:
        return ""  # only rounding to whole subjects: not worth a line
    return (f"defacebench: --calibration {record['requested']:g} on {n_subjects} subjects: each side keeps >= 2, "
            f"so {record['calibration_subjects']} calibrate, {record['heldout_subjects']} held out (fraction "
            f"{record['used']:g}, recorded in manifest.json)")
