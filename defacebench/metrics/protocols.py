"""Evaluation protocols as data: what is split how, where curves are computed, how thresholds are fitted.

Two protocols exist: ``default`` (DESIGN.md section 6: a seeded random subject-level split, exact
thresholds from the sorted scores, threshold-free metrics on every subject) and ``seed`` (the
original study's computation, FIELD.md 1.7-1.8: split by id order, the 100-point grid, every
threshold-free metric on the fitting subjects). Code asks a protocol's fields, never its name, so a
third protocol is one more record here.
"""

from __future__ import annotations

from dataclasses import dataclass

from defacebench.errors import EvaluationError


@dataclass(frozen=True)
class EvalProtocol:
    """How one protocol evaluates a distance matrix.

    ``split``: ``random`` (seeded, by sorted id set) or ``file_order`` (the first ids fit).
    ``curves_on``: ``all`` subjects or only the ``calibration`` subjects feed the threshold-free
    metrics. ``grid_fit``: thresholds, ROC AUC and AUPRC come from the study's 100-point grid.
    ``policies``: the threshold policies the protocol accepts (empty: any valid policy).
    """

    name: str
    split: str
    curves_on: str
    grid_fit: bool
    policies: tuple[str, ...] = ()
    description: str = ""

    def check_policy(self, policy: str) -> None:
        """Raise EvaluationError when this protocol fixes its policy and ``policy`` is another."""
        if self.policies and policy not in self.policies:
            raise EvaluationError(
                f"policy {policy!r} with protocol {self.name!r}: the {self.name} protocol fixes the policy to "
                f"{', '.join(self.policies)} (its Youden threshold is reported too); use --protocol default "
                "for other policies"
            )


PROTOCOLS: dict[str, EvalProtocol] = {
    "default": EvalProtocol("default", split="random", curves_on="all", grid_fit=False,
                            description="seeded random subject split; exact thresholds; curves on all subjects"),
    "seed": EvalProtocol("seed", split="file_order", curves_on="calibration", grid_fit=True, policies=("f1",),
                         description="the original study: id-order split, 100-point grid, curves on the fitting ids"),
}


def get_protocol(name: str) -> EvalProtocol:
    """The protocol called ``name``; an unknown name is an error listing the known ones."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise EvaluationError(f"protocol {name!r} is unknown: use one of {', '.join(PROTOCOLS)}") from None
