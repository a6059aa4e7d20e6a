"""scripts/unit_costs.py (issue 23 item 3): a child measures a unit on real sample volumes and
prints one JSON object naming the code it imported; unknown units are refused by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.script_helpers import SCRIPTS, load_script

SCRIPT = SCRIPTS / "unit_costs.py"


@pytest.fixture(scope="module")
def unit_costs():
    return load_script("unit_costs")


def test_child_measures_the_brain_mask_per_volume(unit_costs, sample_dataset, capsys):
    assert unit_costs.main(["--child", "--dataset", str(sample_dataset), "--n", "1", "--units", "quickshear_mask"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert Path(out["code"]) == SCRIPT.parents[1]
    cost = out["cpu_s_per_unit"]["quickshear_mask"]
    assert 0.0 < cost < 60.0


def test_unknown_unit_is_refused_by_name(unit_costs, sample_dataset, capsys):
    with pytest.raises(SystemExit):
        unit_costs.main(["--dataset", str(sample_dataset), "--units", "quickshear_mask,warp_drive"])
    assert "warp_drive" in capsys.readouterr().err


def test_missing_subjects_name_the_file(unit_costs, sample_dataset):
    with pytest.raises(SystemExit, match="does not exist"):
        unit_costs.main(["--child", "--dataset", str(sample_dataset), "--n", "99", "--units", "quickshear_mask"])
