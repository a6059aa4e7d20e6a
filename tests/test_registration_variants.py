"""scripts/registration_variants.py: variants are RegistrationParams fields, tuples included; a
comparison needs a reference and a second variant."""

from __future__ import annotations

from dataclasses import replace

import pytest

from defacebench.anatomy.registration import RegistrationParams
from tests.script_helpers import load_script


@pytest.fixture(scope="module")
def variants():
    return load_script("registration_variants")


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
