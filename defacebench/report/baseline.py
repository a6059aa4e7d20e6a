"""Regression gate: store a baseline of the leaderboard and compare a new run against it.

A configuration regresses on a metric (``rank1`` or ``roc_auc``, higher = the attacker pipeline
works better) when its new value is **below the baseline's 95 % bootstrap CI lower bound minus the
tolerance**: ``new < ci_lo - tolerance``. The CI absorbs sampling noise, the tolerance absorbs
small numeric drift. A configuration whose metric became undefined (failed) while the baseline has
a value also regresses. Configurations absent from either side are not compared (adding a plugin
never fails the gate), but the gate refuses to judge at all (:mod:`defacebench.run.gate`) when the
baseline was measured on another dataset, split or plugin version, or shares no configuration.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from defacebench.errors import RegressionError
from defacebench.report.artifacts import write_json
from defacebench.report.rows import LeaderboardRow

GATED = ("rank1", "roc_auc")
DEFAULT_TOLERANCES: Mapping[str, float] = {"rank1": 0.05, "roc_auc": 0.05}


class ToleranceError(RegressionError, ValueError):
    """A ``--compare-fail`` tolerance string is malformed."""


class BaselineError(RegressionError):
    """A baseline file is missing or malformed."""


@dataclass(frozen=True)
class Regression:
    """One configuration's metric that fell beyond its baseline CI minus tolerance."""

    config_id: str
    metric: str
    old: float
    new: float  # NaN when the configuration no longer produces the metric (it failed)
    ci: tuple[float, float]
    tolerance: float = 0.0

    def __str__(self) -> str:
        new = "missing" if math.isnan(self.new) else f"{self.new:.4f}"
        old = f"{self.old:.4f}"
        return (f"{self.config_id}: {self.metric} {old} -> {new} (baseline CI [{self.ci[0]:.4f}, "
                f"{self.ci[1]:.4f}], tolerance {self.tolerance})")


def parse_tolerances(text: str) -> dict[str, float]:
    """Parse ``"rank1:0.05,roc_auc:0.05"`` into a dict; only gated metrics, non-negative values."""
    out: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition(":")
        try:
            tol = float(value)
        except ValueError:
            tol = -1.0
        if not sep or name.strip() not in GATED or tol < 0:
            raise ToleranceError(
                f"tolerance {item!r} is malformed: write metric:value pairs such as "
                f"'rank1:0.05,roc_auc:0.05' with metric in {GATED} and value >= 0"
            )
        out[name.strip()] = tol
    if not out:
        raise ToleranceError(f"no tolerance given in {text!r}: e.g. 'rank1:0.05,roc_auc:0.05'")
    return out


BASELINE_VERSION = 2


@dataclass(frozen=True)
class Baseline:
    """A stored baseline: what it was measured on (dataset fingerprint, subject count, split settings,
    plugin versions) and the gated metrics with CIs per result id."""

    path: Path
    configs: Mapping[str, Mapping[str, Any]]
    dataset: Mapping[str, Any]
    split: Mapping[str, Any]
    plugins: Mapping[str, Mapping[str, str]]


def save_baseline(path: Path, rows: list[LeaderboardRow], *, dataset: Mapping[str, Any], split: Mapping[str, Any],
                  plugins: Mapping[str, Mapping[str, str]]) -> None:
    """Write the gated metrics and CIs of every row with what they were measured on."""
    configs = {}
    for row in rows:
        configs[row.key] = {
            "rank1": row.rank1, "rank1_ci": list(row.rank1_ci) if row.rank1_ci else None,
            "roc_auc": row.roc_auc, "roc_auc_ci": list(row.roc_auc_ci) if row.roc_auc_ci else None,
            "n": row.n, "status": row.status,
        }
    write_json(Path(path), {"version": BASELINE_VERSION, "rule": "regression when new < ci_lo - tolerance",
                            "dataset": dict(dataset), "split": dict(split), "plugins": dict(plugins),
                            "configs": configs})


def load_baseline(path: Path) -> Baseline:
    """Read and validate a baseline; anything it cannot judge with is a BaselineError naming the file,
    the entry and the fix."""
    path = Path(path)
    fix = "re-create it with --save-baseline PATH"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(f"{path}: cannot read the baseline ({exc}); {fix}") from exc
    except ValueError as exc:
        raise BaselineError(f"{path}: not JSON ({exc}); {fix}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("configs"), dict):
        raise BaselineError(f"{path}: not a defacebench baseline (no `configs` object); {fix}")
    if data.get("version") != BASELINE_VERSION or not isinstance(data.get("dataset"), dict):
        raise BaselineError(f"{path}: baseline format {data.get('version')!r} records no dataset fingerprint "
                            f"(this defacebench writes version {BASELINE_VERSION}); {fix}")
    if not data["configs"]:
        raise BaselineError(f"{path}: the baseline holds no configuration; {fix}")
    for key, entry in data["configs"].items():
        _check_entry(path, key, entry)
    return Baseline(path, data["configs"], data["dataset"], data.get("split") or {}, data.get("plugins") or {})


def _check_entry(path: Path, key: str, entry: Any) -> None:
    if not isinstance(entry, dict):
        raise BaselineError(f"{path}: configs.{key} is not an object; re-create the baseline with --save-baseline PATH")
    for metric in GATED:
        value, ci = entry.get(metric), entry.get(f"{metric}_ci")
        if value is None and ci is None:
            continue
        if not _finite_fraction(value):
            raise BaselineError(f"{path}: configs.{key}.{metric} = {value!r} is not a number in [0, 1]; "
                                "re-create the baseline with --save-baseline PATH")
        if not (isinstance(ci, list) and len(ci) == 2 and all(_finite_fraction(v) for v in ci) and ci[0] <= ci[1]):
            raise BaselineError(f"{path}: configs.{key}.{metric}_ci = {ci!r} is not an interval [lo, hi] in [0, 1]; "
                                "re-create the baseline with --save-baseline PATH")


def _finite_fraction(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and 0 <= value <= 1


def compare_baseline(
    rows: list[LeaderboardRow],
    baseline_path: Path,
    *,
    tolerances: Mapping[str, float] = DEFAULT_TOLERANCES,
) -> list[Regression]:
    """Every (configuration, metric) whose new value < baseline CI lower bound - tolerance."""
    baseline = load_baseline(baseline_path).configs
    out = []
    for row in rows:
        stored = baseline.get(row.key)
        if stored is None:
            continue
        for metric, tol in tolerances.items():
            old, ci = stored.get(metric), stored.get(f"{metric}_ci")
            if old is None or not ci:
                continue
            new = getattr(row, metric)
            new = math.nan if new is None else float(new)
            if math.isnan(new) or new < ci[0] - tol:
                out.append(Regression(row.key, metric, float(old), new, (float(ci[0]), float(ci[1])), tol))
    return out


def format_regressions(regressions: list[Regression]) -> str:
    """A readable multi-line report, one regression per line."""
    if not regressions:
        return "no regression against the baseline"
    lines = [f"{len(regressions)} regression(s) against the baseline:"]
    lines += [f"  {r}" for r in regressions]
    return "\n".join(lines)
