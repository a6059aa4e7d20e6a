"""The benchmark: one test per (configuration, scenario), ids ``defacer-renderer-detector-recognizer``
(plus ``-<scenario>`` for scenarios other than rescan).

Each test runs every stage the configuration needs on the dataset (``--dataset``, default the
embedded sample), writes ``<run>/<id>/{distances.csv,metrics.json,roc_prc.png,montage.png}`` and
checks the result is complete and consistent; the leaderboard, verdict and manifest are written at
session end, and ``--compare`` gates regressions. A defacer that failed on more than
``--defacer-fail-share`` of the subjects fails its tests with the tool's first error.
"""

import json

import numpy as np


def test_configuration(config, bench_session):
    outcome = bench_session.evaluate(config)
    metrics = json.loads((outcome.outdir / "metrics.json").read_text())
    extra = metrics["extra"]
    dropped = {f["subject_id"] for f in extra["failures"] if f["stage"] in ("convert", "roles")}
    excluded = extra["failed_defacing_rule"] == "excluded"
    if not bench_session.config.qc_filter and not excluded:
        expected = len(bench_session.run.roles) - len(dropped)
        assert metrics["n"] == expected, "every subject stays in the matrix (intention-to-treat)"
    assert (outcome.outdir / "distances.csv").exists()
    for key in ("rank1", "roc_auc", "detection_rate"):
        assert key in metrics, f"metrics.json lacks {key}"
    assert 0.0 <= metrics["rank1"] <= 1.0
    # every probe without an embedding is a recorded failure row, never a silent drop
    probe_missing = metrics["n"] - outcome.embeddings["probe"]
    recorded = {f.subject_id for f in outcome.failures if f.role == "probe" and f.stage != "deface"}
    assert len(recorded) >= probe_missing
    if metrics["n"] and outcome.embeddings["probe"] == 0:
        assert np.isclose(metrics["rank1"], 0.0)
