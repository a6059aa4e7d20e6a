"""The refill scenarios through a real run: quickshear on the 4-subject sample, the surface renderer,
dlib's detector and ResNet. The control's refill is the undefaced probe (nothing removed, nothing
reconstructed: the attacker is valid), quickshear's probes are refilled and rendered (a third image
in the montage), the refill stage is timed in the manifest, and the verdict counts both attackers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from defacebench.report.montage import THUMB_PX
from defacebench.run.config import RunConfig
from session_helpers import ATTACKER, run_session

pytest.importorskip("dlib")
pytestmark = pytest.mark.slow  # a cold run of two defacers and three scenarios: about a CPU minute


@pytest.fixture(scope="module")
def refill_run(sample_dataset, tmp_path_factory):
    base = tmp_path_factory.mktemp("refill")
    config = RunConfig(dataset=sample_dataset, results=base / "runs", run_id="r", cache_dir=base / "cache",
                       defacers=("none", "quickshear"), **ATTACKER, calibration=1.0, n_bootstrap=20,
                       scenarios=("rescan", "refill_template", "refill_learned"), executor="serial")
    session, finish = run_session(config)
    assert all(s.status == "passed" for s in session.statuses.values()), session.statuses
    return session, finish


def test_refill_rows_validity_montage_and_timing(refill_run):
    session, finish = refill_run
    outcomes = {**session.outcomes, **session.extra_outcomes}
    base = "surface-dlib_hog-dlib_resnet"
    for method in ("template", "learned"):
        control = outcomes[f"none-{base}-refill_{method}"]
        assert control.row.rank1 == outcomes[f"none-{base}"].row.rank1  # the undefaced probe, unchanged
        tested = outcomes[f"quickshear-{base}-refill_{method}"]
        metrics = json.loads((tested.outdir / "metrics.json").read_text())
        extra = metrics["extra"]
        assert extra["refill"]["method"] == method and extra["scenario"] == f"refill_{method}"
        montage = np.asarray(Image.open(tested.outdir / "montage.png"))
        assert montage.shape[1] == 3 * THUMB_PX
    run = session.run
    refilled = run.refilled("quickshear", "learned")
    defaced = run.defacings("quickshear")
    changed = [a for a, d in refilled.items() if d.ok and d.hash != defaced[a].hash]
    assert changed  # quickshear removed faces and the attacker put something back
    assert all(d.hash == run.volumes()[a].hash for a, d in run.refilled("none", "learned").items())
    timing = json.loads((run.run_dir / "manifest.json").read_text())
    stages = json.dumps(timing)
    assert '"refill"' in stages and '"learned"' in stages and '"template"' in stages
    assert any(line.startswith("stages") and "refill" in line for line in finish.lines)
    verdict = (run.run_dir / "defacers.csv").read_text()
    assert "quickshear" in verdict
