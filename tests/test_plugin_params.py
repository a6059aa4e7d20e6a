"""Plugin parameters from the plugins file: ranges declared on the params dataclasses are checked
(``mm_per_px = 0`` or ``nan``, ``upsample = -3`` were accepted and the run then had no valid
attacker), and a variant of a TOML command defacer works like any other variant."""

from __future__ import annotations

import dataclasses
import math
import sys
import textwrap
from pathlib import Path

import pytest

from defacebench.contracts import KINDS
from defacebench.errors import PluginsFileError
from defacebench.plugins.registry import build_registry


def _toml(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "defacebench.toml"
    path.write_text(textwrap.dedent(body))
    return path


@pytest.mark.parametrize(("body", "message"), [
    ("[renderers.surface]\nmm_per_px = 0\n", "key 'mm_per_px': 0.0 is out of range: must be > 0"),
    ("[renderers.surface]\nmm_per_px = nan\n", "key 'mm_per_px': nan is not a finite number"),
    ("[renderers.surface]\nmm_per_px = inf\n", "key 'mm_per_px': inf is not a finite number"),
    ("[renderers.vtk_volume]\nmm_per_px = -0.5\n", "key 'mm_per_px': -0.5 is out of range: must be > 0"),
    ("[detectors.dlib_hog]\nupsample = -3\n", "key 'upsample': -3 is out of range: must be >= 0"),
    ("[detectors.dlib_hog_up]\nplugin = 'dlib_hog'\nupsample = -3\n", "[detectors.dlib_hog_up] key 'upsample'"),
    ("[detectors.mtcnn]\nthresholds = [0.6, 1.5, 0.8]\n", "key 'thresholds'[1]: 1.5 is out of range: must be >= 0 and <= 1"),
    ("[recognizers.dlib_resnet]\nnum_jitters = -1\n", "key 'num_jitters': -1 is out of range: must be >= 0"),
    ("[defacers.quickshear]\nbuffer_vox = -2\n", "key 'buffer_vox': -2.0 is out of range: must be >= 0"),
])
def test_out_of_range_parameters_are_refused_naming_file_table_key_and_range(tmp_path, body, message):
    path = _toml(tmp_path, body)
    with pytest.raises(PluginsFileError) as error:
        build_registry(path)
    assert message in str(error.value) and str(path) in str(error.value)


def test_every_built_in_default_lies_in_its_declared_range():
    """The declarations are checked on the defaults too (a range that refuses a default is wrong)."""
    from defacebench.plugins.params import range_problems

    registry = build_registry(None)
    checked = 0
    for kind in KINDS:
        for entry in registry.all_entries(kind):
            if dataclasses.is_dataclass(entry.plugin.params):
                assert range_problems(entry.plugin.params) == [], f"{kind} {entry.name}"
                checked += 1
    assert checked >= 10


def test_in_range_values_still_pass(tmp_path):
    registry = build_registry(_toml(tmp_path, "[renderers.surface]\nmm_per_px = 0.5\n[detectors.dlib_hog]\nupsample = 0\n"))
    assert registry.get("renderers", "surface").params.mm_per_px == 0.5
    assert registry.get("detectors", "dlib_hog").params.upsample == 0
    assert math.isfinite(registry.get("renderers", "surface").params.mm_per_px)


# ------------------------------------------------------------------ variants of command defacers

TOOL = textwrap.dedent("""\
    #!{python}
    import shutil, sys
    shutil.copyfile(sys.argv[-2], sys.argv[-1])
    """)


def test_a_variant_of_a_command_defacer_runs_with_its_own_settings(tmp_path):
    tool = tmp_path / "copytool"
    tool.write_text(TOOL.format(python=sys.executable))
    tool.chmod(0o755)
    path = _toml(tmp_path, f'''
        [defacers.copier]
        command = "{tool} {{input}} {{output}}"
        version = "3"

        [defacers.copier_quick]
        plugin = "copier"
        timeout = 5

        [defacers.copier_same]
        plugin = "copier"
        ''')
    registry = build_registry(path)
    base, variant = registry.get("defacers", "copier"), registry.get("defacers", "copier_quick")
    assert variant.name == "copier_quick" and base.name == "copier"
    assert variant.params.timeout == 5.0 and base.params.timeout == 3600.0
    assert variant.params.command == base.params.command and variant.version == "3"
    assert registry.entry("defacers", "copier_quick").source.startswith("variant of copier")
    assert registry.get("defacers", "copier_same").params == base.params  # only the name differs
    source = tmp_path / "in.nii.gz"
    source.write_bytes(b"volume")
    (tmp_path / "work").mkdir()
    assert variant.deface(source, tmp_path / "work").volume_path.read_bytes() == b"volume"


@pytest.mark.parametrize(("body", "message"), [
    ("[defacers.copier_v]\nplugin = 'copier'\ntimeout = -1\n", "`timeout` must be a positive"),
    ("[defacers.copier_v]\nplugin = 'copier'\ncommand = 'other {output}'\n", "never uses {input}"),
    ("[defacers.copier_v]\nplugin = 'copier'\ncolour = 'red'\n", "unknown key(s) ['colour']"),
])
def test_a_bad_command_defacer_variant_names_its_table(tmp_path, body, message):
    path = _toml(tmp_path, "[defacers.copier]\ncommand = 'copytool {input} {output}'\n" + body)
    with pytest.raises(PluginsFileError) as error:
        build_registry(path)
    assert message in str(error.value) and "[defacers.copier_v]" in str(error.value)
