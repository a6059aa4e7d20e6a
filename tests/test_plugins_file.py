"""TOML command defacers: parsing errors, no shell, literal arguments, output discovery."""

import json
import sys
import textwrap
from pathlib import Path

import pytest

from defacebench.errors import DefaceError, DuplicatePluginError, PluginsFileError
from defacebench.plugins.toml import load_plugins_file
from defacebench.plugins.registry import build_registry

# A stand-in tool that records its argv and copies its input to the output path it is given.
TOOL = textwrap.dedent("""\
    #!{python}
    import json, shutil, sys, pathlib
    args = sys.argv[1:]
    pathlib.Path(args[-1]).parent.joinpath("argv.json").write_text(json.dumps(args))
    if args[0] == "--fail":
        sys.stderr.write("stand-in: refusing this volume\\n"); sys.exit(3)
    shutil.copyfile(args[-2], args[-1])
    """)


@pytest.fixture()
def tool(tmp_path) -> Path:
    path = tmp_path / "bin" / "copytool"
    path.parent.mkdir()
    path.write_text(TOOL.format(python=sys.executable))
    path.chmod(0o755)
    return path


def _toml(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "defacebench.toml"
    path.write_text(textwrap.dedent(body))
    return path


def test_placeholders_are_single_literal_arguments(tmp_path, tool):
    toml = _toml(tmp_path, f'''
        [defacers.copy_tool]
        command = "{tool} --mode 'a b' {{input}} {{output}}"
        ''')
    defacer = build_registry(toml).get("defacers", "copy_tool")
    weird = tmp_path / "in dir; $(touch PWNED) 'q\"" / "head $(id).nii.gz"
    weird.parent.mkdir()
    weird.write_bytes(b"volume bytes")
    work = tmp_path / "work"
    work.mkdir()
    result = defacer.deface(weird, work)
    argv = json.loads((work / "argv.json").read_text())
    # the tool gets a private copy of its input (same name, in its workdir), removed afterwards
    assert argv == ["--mode", "a b", str(work / weird.name), str(work / "defaced.nii.gz")]
    assert not (work / weird.name).exists() and weird.read_bytes() == b"volume bytes"
    assert result.volume_path.read_bytes() == b"volume bytes"
    assert not any(p.name == "PWNED" for p in tmp_path.rglob("*")), "something went through a shell"
    assert f"$ {tool}" in result.log


def test_output_glob_and_failure_message(tmp_path, tool):
    toml = _toml(tmp_path, f'''
        [defacers.globbed]
        command = ["{tool}", "{{input}}", "{{workdir}}/sub_defaced.nii"]
        output = "*_defaced.nii"
        [defacers.failing]
        command = "{tool} --fail {{input}} {{output}}"
        ''')
    registry = build_registry(toml)
    src = tmp_path / "x.nii"
    src.write_bytes(b"data")
    work = tmp_path / "w1"
    work.mkdir()
    assert registry.get("defacers", "globbed").deface(src, work).volume_path == work / "sub_defaced.nii"
    work2 = tmp_path / "w2"
    work2.mkdir()
    with pytest.raises(DefaceError, match="exit code 3.*refusing this volume") as err:
        registry.get("defacers", "failing").deface(src, work2)
    assert "--- stderr ---" in err.value.log


def test_timeout_is_a_deface_error(tmp_path):
    toml = _toml(tmp_path, f'''
        [defacers.sleeper]
        command = ["{sys.executable}", "-c", "import time; time.sleep(30)", "{{input}}"]
        timeout = 0.5
        ''')
    work = tmp_path / "w"
    work.mkdir()
    (tmp_path / "in.nii").write_bytes(b"volume")
    with pytest.raises(DefaceError, match="timed out"):
        build_registry(toml).get("defacers", "sleeper").deface(tmp_path / "in.nii", work)


def test_toml_defacer_is_listed_with_its_source(tmp_path, tool):
    toml = _toml(tmp_path, f'[defacers.listed]\ncommand = "{tool} {{input}} {{output}}"\nversion = "2.1"\n')
    entry = build_registry(toml).entry("defacers", "listed")
    assert entry.source == f"TOML {toml}"
    assert entry.plugin.version == "2.1"
    assert entry.plugin.available().ok


def test_missing_tool_is_unavailable_with_reason(tmp_path):
    toml = _toml(tmp_path, '[defacers.ghost]\ncommand = "no_such_binary_xyz {input} {output}"\n')
    avail = build_registry(toml).get("defacers", "ghost").available()
    assert not avail.ok and "no_such_binary_xyz not found on PATH" in avail.reason and str(toml) in avail.reason


@pytest.mark.parametrize(("body", "message"), [
    ("[defacers.a]\noutput = '*.nii'\n", "missing `command`"),
    ("[defacers.a]\ncommand = 'tool {input} {outptu}'\n", "unknown placeholder(s) {outptu}"),
    ("[defacers.a]\ncommand = 'tool {output}'\n", "never uses {input}"),
    ("[defacers.a]\ncommand = 'tool {input}'\ntimeout = -1\n", "`timeout` must be a positive"),
    ("[defacers.a]\ncommand = 'tool {input}'\ncolour = 'red'\n", "unknown key(s) ['colour']"),
    ("[defacers.bad-name]\ncommand = 'tool {input}'\n", "no '-'"),
    ("[renderers.x]\ncommand = 'tool {input}'\n", "no installed renderer named 'x'"),
    ("[defacers.a\ncommand = 'x'\n", "not valid TOML"),
    ("[colours.x]\nred = 1\n", "unknown table(s) ['colours']"),
    ("[renderers.surface]\nsize = 3\n", "[renderers.surface]: unknown key(s) size"),
    ("[renderers.surface]\nmm_per_px = 'big'\n", "key 'mm_per_px': expected float, got str 'big'"),
    ("[detectors.dlib_hog_up2]\nplugin = 'dlib_hogg'\nupsample = 2\n", "no installed detector named 'dlib_hogg'"),
    ("[detectors.dlib_hog_up2]\nplugin = 'dlib_hog'\nupsample = 2.5\n", "key 'upsample': expected int"),
    ("[detectors.dlib_hog]\nplugin = 'dlib_hog'\n", "two detectors named 'dlib_hog'"),
])
def test_bad_plugins_file_names_file_key_and_fix(tmp_path, body, message):
    path = tmp_path / "defacebench.toml"
    path.write_text(body)
    with pytest.raises((PluginsFileError, DuplicatePluginError)) as err:
        build_registry(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_plugins_file_sets_params_and_declares_variants(tmp_path):
    """[renderers.surface] sets an installed plugin's params (typed, tuples); a variant is a new name
    with the base plugin's class and the given params; both record where the params came from."""
    path = _toml(tmp_path, "[renderers.surface]\nviews = [[0, 0], [30, 0]]\nmm_per_px = 0.5\n\n"
                           "[detectors.dlib_hog_up2]\nplugin = 'dlib_hog'\nupsample = 2\n")
    registry = build_registry(path)
    surface = registry.get("renderers", "surface")
    assert surface.params.views == ((0, 0), (30, 0)) and surface.params.mm_per_px == 0.5
    variant, base = registry.get("detectors", "dlib_hog_up2"), registry.get("detectors", "dlib_hog")
    assert type(variant) is type(base) and variant.name == "dlib_hog_up2" and base.name == "dlib_hog"
    assert variant.params.upsample == 2 and base.params.upsample != 2
    assert "params from" in registry.entry("detectors", "dlib_hog_up2").source and str(path) in \
        registry.entry("renderers", "surface").source
