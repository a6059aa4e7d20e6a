"""The verdict as text and data: the console / Markdown / HTML cells and ``defacers.csv``."""

from __future__ import annotations

import csv
import io

from tabulate import tabulate

from defacebench.report.exposure import format_p
from defacebench.report.verdict import VerdictParams, VerdictRow

VERDICT_HEADERS = ["rank", "defacer", "exposure (p max-T)", "worst-case rank-1 [95% CI] (cross-fitted)",
                   "selected max rank-1 [95% CI]", "reached by (attacker, scenario)", "chance rank-1",
                   "detectable rank-1", "worst TAR@FAR1e-2", "privacy gain", "probe detection", "defacing failures",
                   "QC", "brain Dice", "s/subject", "valid attacks", "status"]

CSV_HEADERS = ["defacer", "rank", "tied_with", "exposure", "p_exposed", "chance_rank1", "worst_rank1", "worst_rank1_lo",
               "worst_rank1_hi", "worst_rank1_selected", "worst_rank1_selected_lo", "worst_rank1_selected_hi",
               "detectable_rank1", "worst_attacker", "worst_scenario", "worst_tar_far_1e2", "privacy_gain",
               "probe_detection", "defacing_failure_rate"]


def _f(value: float | None, ci: tuple[float, float] | None = None, digits: int = 3) -> str:
    if value is None:
        return "-"
    text = f"{value:.{digits}f}"
    return f"{text} [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]" if ci else text


def _rank(v: VerdictRow) -> str:
    if v.rank is None:
        return "reference" if v.defacer == "none" else "-"
    return str(v.rank) + (f" (tied with {', '.join(v.tied_with)})" if v.tied_with else "")


def verdict_cells(v: VerdictRow) -> list[str]:
    """Display cells in :data:`VERDICT_HEADERS` order."""
    qc = " ".join(f"{k}:{n}" for k, n in sorted(v.qc.items())) or "-"
    exposure = v.exposure + (f" ({format_p(v.p_exposed)})" if v.p_exposed is not None else "")
    status = v.status + (f": {v.reason}" if v.reason else "")
    return [_rank(v), v.defacer, exposure, _f(v.worst_rank1, v.worst_rank1_ci),
            _f(v.worst_rank1_selected, v.worst_rank1_selected_ci), f"{v.worst_attacker}, {v.worst_scenario}",
            _f(v.chance_rank1), _f(v.detectable_rank1), _f(v.worst_tar_far_1e2), _f(v.privacy_gain),
            _f(v.probe_detection), _f(v.defacing_failure_rate), qc, _f(v.brain_dice),
            _f(v.seconds_per_subject, digits=1), str(v.n_attacks), status]


def verdict_markdown(verdicts: list[VerdictRow]) -> str:
    """The verdict table as GitHub Markdown (also what the console prints)."""
    return tabulate([verdict_cells(v) for v in verdicts], headers=VERDICT_HEADERS, tablefmt="github",
                    disable_numparse=True)


def verdict_csv(rows: list[VerdictRow], params: VerdictParams) -> str:
    """defacers.csv: one column per number, with the settings that make ``p_exposed`` reproducible."""
    labels = sorted({k for v in rows for k in v.qc})
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*CSV_HEADERS, *(f"qc_{k}" for k in labels), "brain_dice", "seconds_per_subject",
                     "valid_attacks", "status", "reason", "alpha", "permutations", "permutation_seed"])
    for v in rows:
        lo, hi = v.worst_rank1_ci or (None, None)
        slo, shi = v.worst_rank1_selected_ci or (None, None)
        values = [v.defacer, v.rank, " ".join(v.tied_with), v.exposure, v.p_exposed, v.chance_rank1, v.worst_rank1,
                  lo, hi, v.worst_rank1_selected, slo, shi, v.detectable_rank1, v.worst_attacker, v.worst_scenario,
                  v.worst_tar_far_1e2, v.privacy_gain, v.probe_detection, v.defacing_failure_rate,
                  *(v.qc.get(k, 0) for k in labels), v.brain_dice, v.seconds_per_subject, v.n_attacks, v.status,
                  v.reason, params.alpha, params.permutations, params.permutation_seed]
        writer.writerow(["" if x is None else x for x in values])
    return buf.getvalue()


def verdict_note(params: VerdictParams) -> str:
    """What the verdict's columns mean, in two sentences under the table."""
    return ("Worst-case rank-1: the attack chosen on half the probes, scored on the other half (cross-fitted); "
            "selected max: the highest rank-1 of any valid attack, biased upward by selection. Exposure: exposed "
            f"when the max-T permutation p < {params.alpha} ({params.describe()}); detectable rank-1: the smallest "
            "worst case this dataset can call exposed. Defacers tied by an exact McNemar test on the same probes "
            "share a rank; see docs/statistics.md.")
