"""Metrics of a distance matrix: identification, verification, fitted thresholds, bootstrap CIs.

Public API (the pipeline and the CLI use these)::

    from defacebench.metrics import DistanceMatrix, evaluate_matrix, make_split, Split, Threshold
"""

from __future__ import annotations

from defacebench.metrics.bootstrap import BootstrapParams, bootstrap_cis
from defacebench.metrics.distance import DistanceMatrix
from defacebench.metrics.evaluate import Evaluation, evaluate_matrix
from defacebench.metrics.protocols import PROTOCOLS, EvalProtocol, get_protocol
from defacebench.metrics.split import Split, file_order_split, make_kfold, make_split
from defacebench.metrics.thresholds import Counts, Threshold, apply_threshold, fit_threshold

__all__ = [
    "PROTOCOLS", "BootstrapParams", "EvalProtocol", "get_protocol", "Counts", "DistanceMatrix", "Evaluation", "Split", "Threshold",
    "apply_threshold", "bootstrap_cis", "evaluate_matrix", "file_order_split", "fit_threshold",
    "make_kfold", "make_split",
]
