"""The benchmark: one test per configuration ``defacer-renderer-detector-recognizer``.

Each test runs every stage the configuration needs on the dataset (``--dataset``, default the
embedded sample), writes ``<run>/<config id>/{distances.csv,metrics.json,roc_prc.png,montage.png}``
and checks the result is complete and consistent; the leaderboard and manifest are written at
session end, and ``--compare`` gates regressions.
"""

import json

import numpy as np


def test_configuration(config, benchmark_run):
    outcome = benchmark_run.run_config(config)
    metrics = json.loads((outcome.outdir / "metrics.json").read_text())
    n = len(benchmark_run.subjects) if not benchmark_run.config.qc_filter else metrics["n"]
    assert metrics["n"] == n, "every subject stays in the matrix (intention-to-treat)"
    assert (outcome.outdir / "distances.csv").exists()
    for key in ("rank1", "roc_auc", "detection_rate"):
        assert key in metrics, f"metrics.json lacks {key}"
    assert 0.0 <= metrics["rank1"] <= 1.0
    # every probe that has no embedding must be a recorded failure row, never a silent drop
    probe_missing = n - outcome.embeddings["probe"]
    probe_failures = {f.subject_id for f in outcome.failures if f.role == "probe"}
    assert len(probe_failures) == probe_missing
    if n and outcome.embeddings["probe"] == 0:
        assert np.isclose(metrics["rank1"], 0.0)
