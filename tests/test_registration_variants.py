"""scripts/registration_variants.py: variants are RegistrationParams fields, tuples included; a
comparison needs a reference and a second variant."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from defacebench.anatomy.registration import RegistrationParams

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "registration_variants.py"


@pytest.fixture(scope="module")
def variants():
    spec = importlib.util.spec_from_file_location("registration_variants", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["registration_variants"] = module
    spec.loader.exec_module(module)
    return module


def test_fields_with_tuples_parse_into_params(variants):
    name, fields = variants.parse_variant(
        "ml:fine_sampling_rate=0.3,iterations=(100, 100, 50),shrink_factors=(4,2,1),random_seed=1")
    assert name == "ml"
    params = replace(RegistrationParams(), **fields)
    assert (params.fine_sampling_rate, params.iterations, params.shrink_factors, params.random_seed) == (
        0.3, (100, 100, 50), (4, 2, 1), 1)
    assert variants.parse_variant("today:") == ("today", {})


def test_one_variant_is_refused(variants, tmp_path, capsys):
    with pytest.raises(SystemExit):
        variants.main(["--dataset", str(tmp_path), "today:"])
    assert "at least two variants" in capsys.readouterr().err
