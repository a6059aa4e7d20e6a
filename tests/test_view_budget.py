"""Views: a grid with several lights renders them, a run renders only the views its scenarios use, and
a views list with duplicates is a short error (a 10,000-entry list once gave a 247 kB line)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from defacebench.data.images import read_image
from defacebench.errors import PluginError, PluginsFileError
from defacebench.plugins.params import with_views
from defacebench.plugins.registry import build_registry
from defacebench.run.config import RunConfig
from defacebench.run.records import CONTROL
from defacebench.run.viewgrid import grid, parse_grid
from session_helpers import ATTACKER, sample_nifti, small_copy


def _surface():
    from recognizers.render.surface import SurfaceRenderer

    return SurfaceRenderer()


@pytest.fixture(scope="module")
def one_subject_run(sample_dataset, tmp_path_factory):
    """A run over one real acquisition whose surface renderer is configured with three views."""
    pytest.importorskip("dlib")
    from defacebench.run.pipeline import BenchmarkRun

    tmp = tmp_path_factory.mktemp("views")
    small_copy(sample_nifti(sample_dataset, "001", "scan"), tmp / "data" / "001.nii.gz")
    toml = tmp / "defacebench.toml"
    toml.write_text("[renderers.surface]\nviews = [[15, 0], [0, 0], [-15, 0]]\n")
    config = RunConfig(dataset=tmp / "data", cache_dir=tmp / "cache", plugins_file=toml, defacers=("none",),
                       **ATTACKER, scenarios=("seed",), executor="serial")
    run = BenchmarkRun(config, run_dir=tmp / "run")
    yield run
    run.close()


# ------------------------------------------------------------------ several lights

def test_a_view_grid_with_several_lights_renders_each_light(one_subject_run):
    """`--view-grid 0:0,0:0,2`: one camera under two lights is two different images (it failed with
    "light < 1" in every render: the renderer has one light)."""
    rendered = one_subject_run.rendered(CONTROL, "surface", grid(*parse_grid("0:0,0:0,2")))["001"]
    assert rendered.ok, getattr(rendered, "error", "")
    first, second = (read_image(Path(v.path)) for v in rendered.views)
    assert np.abs(first.astype(int) - second.astype(int)).mean() > 1.0


def test_the_published_grid_of_the_help_text_gives_81_views_under_9_lights():
    from defacebench.run.viewgrid import STANDARD_LIGHTS

    renderer = _surface()
    published = type(renderer)(params=with_views(renderer, grid(*parse_grid("30:30,15:15,9")), STANDARD_LIGHTS))
    assert len(published.specs) == 81 and len({s.light_dir for s in published.specs}) == 9
    assert published.params.lights[0] == renderer.params.lights[0], "light 0 stays the single-view scenarios' light"
    with pytest.raises(PluginError, match="surface.*lights"):
        with_views(renderer, grid(0.0, 0.0, 0.0, 0.0, len(STANDARD_LIGHTS) + 2), STANDARD_LIGHTS)


# ------------------------------------------------------------------ only the views a scenario uses

def test_a_single_view_scenario_renders_only_the_first_view(one_subject_run):
    """A renderer configured with three views serves `seed`/`rescan` with its first view only."""
    views = one_subject_run.rendered(CONTROL, "surface")["001"].views
    assert [v.view_id for v in views] == ["yaw+15_pitch+0_light0"]


# ------------------------------------------------------------------ duplicates: a short message

def test_a_views_list_with_duplicates_names_the_first_ones_and_the_count(tmp_path):
    from recognizers.render.surface import SurfaceParams, SurfaceRenderer

    views = ((0.0, 0.0, 0),) * 5000 + ((15.0, 0.0, 0),) * 5000
    with pytest.raises(PluginError) as error:
        SurfaceRenderer(SurfaceParams(views=views))
    message = str(error.value)
    assert len(message) < 400, f"{len(message)} characters"
    assert "yaw+0_pitch+0_light0" in message and "yaw+15_pitch+0_light0" in message and "9998" in message
    toml = tmp_path / "defacebench.toml"
    toml.write_text("[renderers.surface]\nviews = [" + ", ".join(["[0, 0, 0]"] * 10_000) + "]\n")
    with pytest.raises(PluginsFileError) as from_file:
        build_registry(toml)
    assert len(str(from_file.value)) < 600 and "9999" in str(from_file.value)
