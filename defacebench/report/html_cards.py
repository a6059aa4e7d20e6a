"""One report card per defacer in ``leaderboard.html``: what it is, how every attack fared, what the
worst attack saw, what the defacing cost, and what failed.

A card holds, in this order: the class and one sentence that says it in words; the rank-1 of every
attack with its exact interval on a 0..1 bar against chance, the corrected threshold and the
cross-fitted worst case (the worst attacks first, the rest folded); the montage of the attack that
reached the selected maximum (a lazily loaded thumbnail that opens the full montage); QC label
counts, brain Dice and the share of the face removed; and the failures: subjects that failed a
stage (grouped by stage and message) and configurations that did not run to a result, with their
reasons. Results whose attacker is invalid, or that failed, are listed but marked as not counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from defacebench.report.exposure import format_p
from defacebench.report.html_parts import NO_RESULT, anchor, badge, bar, defacer_class, esc, link, num, thumbnail
from defacebench.report.rows import CONTROL, LeaderboardRow, fmt_value
from defacebench.report.thumbs import Thumb
from defacebench.report.verdict import AttackerValidity, VerdictRow

SHOWN_ATTACKS = 8  # the worst ones; the rest fold under a <details>
SHOWN_SUBJECTS = 12
QC_LABELS = {"ok": "face removed, head and brain kept", "face_intact": "most of the face still there",
             "brain_damaged": "brain changed (or its mask's Dice below the limit)",
             "head_removed": "most of the head removed", "failed": "the defacer produced no volume",
             "control": "not defaced (the control)"}


@dataclass(frozen=True)
class Attack:
    """One line of a card's attack table; ``counted`` False for results outside the verdict."""

    label: str
    rank1: float | None
    ci: tuple[float, float] | None
    p: float | None = None
    note: str = ""
    counted: bool = True


def _label(row: LeaderboardRow) -> str:
    return f"{row.renderer}-{row.detector}-{row.recognizer}, {row.scenario}"


def attacks_of(v: VerdictRow | None, rows: list[LeaderboardRow], validity: Mapping[tuple, AttackerValidity]) -> list[Attack]:
    """Every attack of a defacer: the verdict's (each fusion a scenario chose from, with its
    uncorrected p) worst first, then the results it did not count, with the reason."""
    selected = f"{v.worst_attacker}, {v.worst_scenario}" if v is not None else ""
    valid = [r for r in rows if validity[r.attacker].valid and r.rank1 is not None]
    if v is not None and v.details is not None and v.details.attacks:
        counted = [Attack(a.label, a.rank1, a.interval, a.p) for a in v.details.attacks]
    else:
        counted = [Attack(_label(r) + ("" if r.fusion == "single" else f" ({r.fusion})"), r.rank1, r.rank1_ci)
                   for r in valid]
    counted = [Attack(a.label, a.rank1, a.ci, a.p, "selected max" if a.label == selected else "") for a in counted]
    others, kept = [], {id(r) for r in valid}
    for r in rows:
        if id(r) in kept:
            continue
        check = validity[r.attacker]
        why = (f"attacker invalid: control rank-1 {fmt_value(check.control_rank1)} below the floor; not counted"
               if not check.valid else f"{r.status}: not counted")
        others.append(Attack(_label(r), r.rank1, r.rank1_ci, note=why, counted=False))
    return (sorted(counted, key=lambda a: (-a.rank1, a.label)) + sorted(others, key=lambda a: a.label))


def _attack_rows(attacks: list[Attack], v: VerdictRow | None) -> str:
    chance = v.chance_rank1 if v else None
    threshold = v.detectable_rank1 if v else None
    worst = v.worst_rank1 if v else None
    out = []
    for a in attacks:
        attacker, _, scenario = a.label.partition(", ")
        cls = "" if a.counted else ' class="muted"'
        out.append(f'<tr{cls}><td class="nowrap">{esc(attacker)}</td><td class="nowrap">{esc(scenario)}</td>'
                   f'<td class="num">{num(a.rank1, a.ci)}</td>'
                   f"<td>{bar(a.rank1, a.ci, chance=chance, threshold=threshold, worst=worst)}</td>"
                   f'<td class="num">{esc(format_p(a.p))}</td><td title="{esc(a.note)}">{esc(a.note.split(":")[0])}</td>'
                   "</tr>")
    return "\n".join(out)


def _attack_table(attacks: list[Attack], v: VerdictRow | None) -> str:
    if not attacks:
        return "<p>No attack produced a result.</p>"
    head = ("<thead><tr><th>attacker (renderer-detector-recognizer)</th><th>scenario</th><th>rank-1 [95% CI]</th>"
            "<th>on 0..1</th><th>p uncorr.</th><th></th></tr></thead>")
    shown, rest = attacks[:SHOWN_ATTACKS], attacks[SHOWN_ATTACKS:]
    lines = []
    if v is not None:
        lines.append(f'<p class="small">dashed: chance {num(v.chance_rank1)}; dotted red: detectable rank-1 '
                     f"{num(v.detectable_rank1)}; solid: cross-fitted worst case {num(v.worst_rank1)}.</p>")
    lines.append(f'<div class="scroll"><table class="attacks">{head}<tbody>\n{_attack_rows(shown, v)}\n</tbody>'
                 "</table></div>")
    if rest:
        lines.append(f'<details><summary>{len(rest)} more attack(s)</summary><div class="scroll"><table '
                     f'class="attacks">{head}<tbody>\n{_attack_rows(rest, v)}\n</tbody></table></div></details>')
    return "\n".join(lines)


def summary(v: VerdictRow | None) -> str:
    """The card's verdict in one sentence (escaped)."""
    if v is None:
        return "No configuration of this defacer produced a result; its failures are below."
    p, n = format_p(v.p_exposed), v.n_attacks
    reached = (f"the strongest of {n} valid attack(s), {esc(v.worst_attacker)} in scenario {esc(v.worst_scenario)}, "
               f"re-identifies a share {num(v.worst_rank1_selected, v.worst_rank1_selected_ci)} of the "
               f"{'' if v.defacer == CONTROL else 'defaced '}scans "
               f"(selected maximum); cross-fitted worst case {num(v.worst_rank1, v.worst_rank1_ci)}, chance "
               f"{num(v.chance_rank1)}")
    if v.defacer == CONTROL:
        return (f"The reference: no defacing. Without defacing, {reached} (p_exposed {p}). Attackers whose control "
                "rank-1 is below the floor are invalid and judge no defacer.")
    if v.status in ("anatomy_destroyed", "defacer_failed"):
        return (f"Not usable ({esc(v.status)}): {esc(v.reason)}. Not ranked; for the record, {reached} "
                f"({esc(v.exposure)}, p_exposed {p}).")
    if v.status != "ok":
        return f"Untestable ({esc(v.status)}): {esc(v.reason)}."
    if v.exposure == "exposed":
        return f"Exposed: {reached}; p_exposed {p} after correcting for choosing among {n} attacks."
    if v.exposure == "not_shown_exposed":
        return (f"Not shown exposed: no attack beats chance after correcting for {n} attack(s) (p_exposed {p}); "
                f"{reached}. At this number of subjects only a worst case of {num(v.detectable_rank1)} or more "
                "would be detected.")
    return "Untestable: no valid attack with per-subject results, so nothing can be said about its exposure."


def _qc(v: VerdictRow | None, rows: list[LeaderboardRow]) -> str:
    if not rows:
        return "<p>No QC recorded.</p>"
    anatomy = max(rows, key=lambda r: r.n)  # the defacing is the same under every attacker
    qc = dict(v.qc) if v is not None else dict(anatomy.qc)
    total = sum(qc.values())
    order = [k for k in QC_LABELS if k in qc] + sorted(k for k in qc if k not in QC_LABELS)
    stack = "".join(f'<span class="q-{esc(k)}" style="width:{100 * qc[k] / total:.1f}%" '
                    f'title="{esc(k)}: {qc[k]}"></span>' for k in order if qc[k]) if total else ""
    labels = " &middot; ".join(f'<span class="qk q-{esc(k)}" title="{esc(QC_LABELS.get(k, k))}"></span>'
                               f"{esc(k)} {qc[k]}" for k in order) or "none recorded"
    figures = [("brain Dice (median)", num(anatomy.brain_dice)),
               ("face region removed (median share)", num(anatomy.face_removed)),
               ("defacing failure rate", num(anatomy.defacing_failure_rate)),
               ("seconds per subject (median)", esc("-" if anatomy.seconds_per_subject is None
                                                    else f"{anatomy.seconds_per_subject:.1f}"))]
    if v is not None:
        figures += [("probe detection under the worst attack", num(v.probe_detection)),
                    ("privacy gain under the worst attack", num(v.privacy_gain)),
                    ("worst TAR at FAR 1e-2", num(v.worst_tar_far_1e2))]
    dl = "".join(f"<dt>{esc(k)}</dt><dd>{val}</dd>" for k, val in figures)
    return f'<div class="stack">{stack}</div><p class="small">QC labels: {labels}</p><dl class="figures">{dl}</dl>'


def _subjects(ids: set[str]) -> str:
    shown = sorted(ids)[:SHOWN_SUBJECTS]
    more = len(ids) - len(shown)
    return esc(", ".join(shown)) + (f" and {more} more" if more > 0 else "")


def _failures(rows: list[LeaderboardRow], configs: list[tuple[str, str, str]]) -> str:
    """Per-subject failures grouped by (stage, side, message), then configurations without a result."""
    groups: dict[tuple[str, str, str], tuple[set, set]] = {}
    for r in rows:
        for f in r.failures:
            subjects, keys = groups.setdefault((f.stage, f.role, f.error), (set(), set()))
            subjects.add(f.subject_id)
            keys.add(r.key)
    parts = []
    first = next((r.first_error for r in rows if r.first_error), "")
    if first:
        parts.append(f"<p>The defacer's first error: <code>{esc(first[:500])}</code></p>")
    if groups:
        lines = "".join(f"<tr><td>{esc(stage)}</td><td>{esc(role)}</td><td>{esc(error[:300])}</td>"
                        f"<td class=\"num\">{len(subjects)}</td><td>{_subjects(subjects)}</td>"
                        f"<td class=\"num\">{len(keys)}</td></tr>"
                        for (stage, role, error), (subjects, keys) in sorted(groups.items()))
        parts.append('<table class="failures"><thead><tr><th>stage</th><th>side</th><th>message</th><th>subjects</th>'
                     f"<th>which</th><th>in results</th></tr></thead><tbody>{lines}</tbody></table>")
        if any(stage == "detect" for stage, _, _ in groups):
            parts.append('<p class="small">A face the detector does not find (stage detect) is scored as a miss, '
                         "not a failure; the other stages count in the failure rate.</p>")
    if configs:
        lines = "".join(f"<tr><td>{esc(key)}</td><td>{esc(status)}</td><td>{_reason(reason)}</td></tr>"
                        for key, status, reason in configs)
        parts.append('<table class="failures configs"><thead><tr><th>configuration</th><th>status</th>'
                     f"<th>reason</th></tr></thead><tbody>{lines}</tbody></table>")
    return "\n".join(parts) or "<p>No failure recorded.</p>"


def _reason(reason: str) -> str:
    if len(reason) <= 300:
        return esc(reason)
    return f"<details><summary>{esc(reason[:300])}&hellip;</summary><pre>{esc(reason)}</pre></details>"


def _montage(v: VerdictRow | None, thumbs: Mapping[tuple[str, str], Thumb], run_dir: Path) -> str:
    row = v.details.selected_row if v is not None and v.details is not None else None
    if row is None:
        return ""
    caption = (f"{row.key}: original (left) and defaced (right) render of each subject, with the face the "
               "detector kept")
    picture = thumbnail(thumbs.get((row.key, "card")), link(row.montage, run_dir), caption, "card")
    if picture == "-":
        return ""
    return (f"<h4>What the worst attack saw: {esc(row.key)}</h4>\n<div class=\"montage\">{picture}</div>"
            '<p class="small">Original (left) and defaced (right) render of each subject with the face box the '
            "detector kept; click for the full montage.</p>")


def card(defacer: str, v: VerdictRow | None, rows: list[LeaderboardRow], validity: Mapping[tuple, AttackerValidity],
         configs: list[tuple[str, str, str]], thumbs: Mapping[tuple[str, str], Thumb], run_dir: Path) -> str:
    """One defacer's report card."""
    name = defacer_class(v) if v is not None else NO_RESULT
    rank = ""
    if v is not None and v.rank is not None:
        rank = f"rank {v.rank}" + (f" (tied with {', '.join(v.tied_with)})" if v.tied_with else "")
    elif defacer == CONTROL:
        rank = "reference"
    side = _montage(v, thumbs, run_dir) + "<h4>QC and anatomy</h4>" + _qc(v, rows)
    return (f'<section class="card k-{esc(name)}" id="{anchor(defacer)}" data-defacer="{esc(defacer)}">\n'
            f'<h3>{esc(defacer)} {badge(name)} <span class="rank">{esc(rank)}</span></h3>\n'
            f'<p class="summary">{summary(v)}</p>\n'
            f'<div class="cols"><div class="col"><h4>Rank-1 of every attack</h4>\n'
            f"{_attack_table(attacks_of(v, rows, validity), v)}</div>\n<div class=\"col side\">{side}</div></div>\n"
            f"<h4>Failures</h4>\n{_failures(rows, configs)}\n"
            + (f'<p><a href="#board" data-show-defacer="{esc(defacer)}">All {len(rows)} result(s) of '
               f"{esc(defacer)} in the leaderboard</a></p>\n" if rows else "") + "</section>")


def cards_section(defacers: list[str], verdicts: Mapping[str, VerdictRow], rows: list[LeaderboardRow],
                  validity: Mapping[tuple, AttackerValidity], configs: Mapping[str, list[tuple[str, str, str]]],
                  thumbs: Mapping[tuple[str, str], Thumb], run_dir: Path) -> str:
    """Every defacer's card, in ``defacers`` order."""
    by_defacer: dict[str, list[LeaderboardRow]] = {}
    for row in rows:
        by_defacer.setdefault(row.defacer, []).append(row)
    cards = "\n".join(card(d, verdicts.get(d), by_defacer.get(d, []), validity, configs.get(d, []), thumbs, run_dir)
                      for d in defacers)
    return f'<section id="defacers">\n<h2>Report card per defacer</h2>\n{cards}\n</section>\n'
