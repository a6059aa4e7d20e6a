"""The regression gate of a session: refuse to judge what cannot be compared, before any computing;
save the baseline and compare against it at the end.

A baseline is comparable only when it was measured on the same dataset (content fingerprint and
subject count), with the same split settings and the same versions of the plugins of the compared
configurations, and when it shares at least one configuration with the run's plan. Anything else is
a :class:`GateError` naming the baseline file, what differs and the fix.
"""

from __future__ import annotations

from defacebench.contracts import KINDS
from defacebench.errors import RegressionError


class GateError(RegressionError):
    """The baseline cannot judge this run (other dataset, split, plugin versions, nothing in common)."""


def split_settings(config) -> dict:
    return {"protocol": config.protocol, "calibration": config.calibration, "seed": config.seed,
            "policy": config.policy, "failed_defacing": config.failed_defacing}


def dataset_record(run) -> dict:
    return {"fingerprint": run.dataset.fingerprint(), "subjects": len(run.dataset.subjects)}


def plugin_versions(registry) -> dict[str, dict[str, str]]:
    return {kind: {e.name: str(e.plugin.version) for e in registry.all_entries(kind)} for kind in KINDS}


def check_gate_inputs(config, run, planned_keys: list[str]) -> None:
    """Raise GateError when the baseline given by ``--compare`` cannot judge this run."""
    from defacebench.plugins.registry import load_registry
    from defacebench.report.baseline import load_baseline

    check_comparable(load_baseline(config.compare), dataset=dataset_record(run), split=split_settings(config),
                     versions=plugin_versions(load_registry(config.plugins_file)), keys=planned_keys)


def check_comparable(baseline, *, dataset: dict, split: dict, versions: dict, keys: list[str]) -> None:
    """Raise GateError naming the baseline file and what differs from this run."""
    where, fix = baseline.path, "re-create it on this dataset with --save-baseline PATH"
    if baseline.dataset.get("fingerprint") != dataset["fingerprint"]:
        raise GateError(f"{where}: measured on another dataset ({baseline.dataset.get('subjects')} subjects, "
                        f"fingerprint {str(baseline.dataset.get('fingerprint'))[:12]}) than this run "
                        f"({dataset['subjects']} subjects, {dataset['fingerprint'][:12]}); {fix}")
    differs = {k: (baseline.split.get(k), v) for k, v in split.items() if baseline.split.get(k) != v}
    if differs:
        text = ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in differs.items())
        raise GateError(f"{where}: measured with other evaluation settings ({text}); {fix}")
    common = sorted(set(keys) & set(baseline.configs))
    if not common:
        raise GateError(f"{where}: shares no configuration with this run; {fix} or select its configurations")
    used = {(kind, name) for key in common for kind, name in zip(KINDS, key.split("-")[:4])}
    changed = sorted(f"{kind[:-1]} {name} {baseline.plugins.get(kind, {}).get(name)} -> {versions[kind][name]}"
                     for kind, name in used if name in versions.get(kind, {})
                     and baseline.plugins.get(kind, {}).get(name) not in (None, versions[kind][name]))
    if changed:
        raise GateError(f"{where}: measured with other plugin versions ({'; '.join(changed)}); {fix}")


def provenance_from_manifest(manifest: dict) -> dict:
    """dataset, split and versions of a finished run, read from its manifest.json (for `report`)."""
    run = manifest.get("run") or {}
    dataset = manifest.get("dataset") or {}
    return {"dataset": {"fingerprint": dataset.get("fingerprint"), "subjects": len(dataset.get("subjects") or [])},
            "split": {k: run.get(k) for k in ("protocol", "calibration", "seed", "policy", "failed_defacing")},
            "versions": {kind: {p["name"]: p.get("version") for p in manifest.get("plugins", {}).get(kind, [])
                                if "version" in p} for kind in KINDS}}


def run_gate(config, run, rows, lines: list[str]) -> bool:
    """Save the baseline when asked; compare when asked (every figure marked in ``gate.csv`` of the
    run folder, the changed ones printed); return True when the gate fails."""
    from defacebench.plugins.registry import load_registry
    from defacebench.report import compare_figures, format_comparison, gate_failed, save_baseline
    from defacebench.report.compare import write_gate_csv

    if config.save_baseline:
        save_baseline(config.save_baseline, rows, dataset=dataset_record(run), split=split_settings(config),
                      plugins=plugin_versions(load_registry(config.plugins_file)))
        lines.append(f"defacebench: baseline written to {config.save_baseline}")
    if not config.compare:
        return False
    figures = compare_figures(rows, config.compare, tolerances=dict(config.compare_fail), rule=config.compare_rule,
                              alpha=config.alpha)
    write_gate_csv(run.run_dir / "gate.csv", figures)
    lines.append(f"defacebench ({config.compare}, rule {config.compare_rule}): {format_comparison(figures)}")
    return gate_failed(figures)
