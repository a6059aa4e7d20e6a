"""Registry: discovery of built-ins, duplicate and unknown names, broken entry points."""

import sys
from pathlib import Path

import pytest

from defacebench.contracts import KINDS, Availability
from defacebench.errors import DuplicatePluginError, PluginLoadError, UnknownPluginError
from defacebench.plugins.registry import build_registry


def test_builtin_control_is_registered_first():
    registry = build_registry()
    assert registry.names("defacers")[0] == "none"
    entry = registry.entry("defacers", "none")
    assert entry.source.startswith("built-in (defacebench ")
    assert registry.get("defacers", "none").available() == Availability(True, "")


def test_every_kind_has_builtins_or_load_problems():
    registry = build_registry()
    for kind in KINDS:
        found = set(registry.names(kind)) | {p.name for p in registry.problems if p.kind == kind}
        assert found, f"no {kind} registered"


def test_unknown_name_lists_installed():
    registry = build_registry()
    with pytest.raises(UnknownPluginError) as err:
        registry.get("defacers", "no_such_tool")
    assert "no_such_tool" in str(err.value) and "none" in str(err.value)


def test_unknown_kind_is_an_error():
    with pytest.raises(UnknownPluginError, match="kinds: defacers"):
        build_registry().names("colorizers")


def test_duplicate_between_entry_point_and_toml_names_both(tmp_path):
    toml = tmp_path / "defacebench.toml"
    toml.write_text('[defacers.none]\ncommand = "cp {input} {output}"\n')
    with pytest.raises(DuplicatePluginError) as err:
        build_registry(toml)
    text = str(err.value)
    assert "built-in (defacebench" in text and str(toml) in text and "'none'" in text


def _write_dist(site: Path, dist: str, group: str, name: str, target: str, module: str, code: str) -> None:
    """A minimal installed distribution (dist-info with entry_points.txt) plus its module."""
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{name} = {target}\n")
    (site / f"{module}.py").write_text(code)


GOOD = '''
from dataclasses import dataclass
from defacebench.contracts import Availability, DefaceResult
@dataclass(frozen=True)
class P: pass
class Copy:
    name = "{name}"; version = "1"; deterministic = True
    def __init__(self): self.params = P()
    def available(self): return Availability.yes()
    def tool_version(self): return ""
    def deface(self, volume_path, workdir): raise NotImplementedError
'''


def test_broken_entry_point_is_reported_and_others_load(tmp_path, monkeypatch):
    site = tmp_path / "site"
    _write_dist(site, "broken-plugin", "defacebench.defacers", "broken", "broken_mod:Thing", "broken_mod",
                "import this_module_does_not_exist\n")
    _write_dist(site, "good-plugin", "defacebench.defacers", "good_copy", "good_mod:Copy", "good_mod",
                GOOD.format(name="good_copy"))
    monkeypatch.syspath_prepend(str(site))
    registry = build_registry()
    assert "good_copy" in registry.names("defacers")
    assert registry.entry("defacers", "good_copy").source == "entry point of good-plugin 1.0"
    problem = next(p for p in registry.problems if p.name == "broken")
    assert "broken-plugin 1.0" in problem.source
    assert "this_module_does_not_exist" in problem.error
    with pytest.raises(PluginLoadError, match="this_module_does_not_exist"):
        registry.get("defacers", "broken")
    sys.modules.pop("good_mod", None)


def test_two_distributions_with_one_name(tmp_path, monkeypatch):
    site = tmp_path / "site"
    for dist, mod in (("first-dist", "first_mod"), ("second-dist", "second_mod")):
        _write_dist(site, dist, "defacebench.defacers", "twin", f"{mod}:Copy", mod, GOOD.format(name="twin"))
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(DuplicatePluginError) as err:
        build_registry()
    assert "first-dist 1.0" in str(err.value) and "second-dist 1.0" in str(err.value)


def test_hyphenated_name_is_rejected(tmp_path, monkeypatch):
    site = tmp_path / "site"
    _write_dist(site, "hyphen-dist", "defacebench.defacers", "bad-name", "hyph_mod:Copy", "hyph_mod",
                GOOD.format(name="bad-name"))
    monkeypatch.syspath_prepend(str(site))
    registry = build_registry()
    problem = next(p for p in registry.problems if p.name == "bad-name")
    assert "no '-'" in problem.error


OPT_IN = {("detectors", "dlib_cnn"), ("detectors", "deepface_dlib"), ("recognizers", "deepface_dlib")}


def _plan_skips(**config) -> dict[str, str]:
    from defacebench.run.config import RunConfig
    from defacebench.run.session import Session

    base = {"defacers": ("none",), "renderers": ("surface",), "scenarios": ("rescan",)}
    return {p.key: p.skip for p in Session(RunConfig(**{**base, **config})).plan()}


def test_opt_in_plugins_are_left_out_of_the_default_product_with_their_reason(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./defacebench.toml
    registry = build_registry()
    left_out = registry.left_out_reasons("default", {})
    assert OPT_IN <= set(left_out), "the redundant wrappers and the slow CNN detector are opt-in"
    assert ("detectors", "dlib_hog") not in left_out and ("recognizers", "dlib_resnet") not in left_out
    assert "dlib_hog" in left_out[("detectors", "deepface_dlib")]
    assert ("detectors", "deepface_opencv") not in left_out, "other boxes than opencv_haar's: not redundant"
    assert registry.left_out_reasons("all", {}) == {}
    skips = _plan_skips(detectors=("dlib_hog", "dlib_cnn"), recognizers=("dlib_resnet",))
    assert skips["none-surface-dlib_cnn-dlib_resnet"] == ""  # named explicitly: it runs
    skips = _plan_skips(recognizers=("dlib_resnet",))
    assert "is opt-in" in skips["none-surface-dlib_cnn-dlib_resnet"]
    assert "--plugin-set all" in skips["none-surface-dlib_cnn-dlib_resnet"]
    assert skips["none-surface-dlib_hog-dlib_resnet"] == ""
    skips = _plan_skips(recognizers=("dlib_resnet",), plugin_set="all")
    assert skips["none-surface-dlib_cnn-dlib_resnet"] == ""


def test_an_opt_in_plugin_configured_in_the_plugins_file_runs_by_default(tmp_path):
    toml = tmp_path / "defacebench.toml"
    toml.write_text("[detectors.dlib_cnn_small]\nplugin = 'dlib_cnn'\nmax_side_px = 400\n")
    registry = build_registry(toml)
    left_out = registry.left_out_reasons("default", {})
    assert ("detectors", "dlib_cnn") in left_out and ("detectors", "dlib_cnn_small") not in left_out
