"""The documentation site builds with ``mkdocs build --strict`` (what CI checks), its generated
reference pages hold the options table and the registry, and a broken link or a page left out of
the nav fails the build (issue 24, item 1)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mkdocs")
pytest.importorskip("material")

ROOT = Path(__file__).resolve().parents[1]


def _build(config: Path, site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
                          cwd=config.parent, env=env, capture_output=True, text=True, timeout=300)


def _copy_site_sources(tmp_path: Path) -> Path:
    folder = tmp_path / "src"
    shutil.copytree(ROOT / "docs", folder / "docs")
    (folder / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "mkdocs_hooks.py", folder / "scripts")
    shutil.copy(ROOT / "mkdocs.yml", folder)
    return folder


def test_site_builds_strict_with_the_generated_references(tmp_path):
    out = _build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert out.returncode == 0, out.stdout + out.stderr
    options = (tmp_path / "site" / "reference" / "options" / "index.html").read_text()
    plugins = (tmp_path / "site" / "reference" / "plugins" / "index.html").read_text()
    from defacebench.run.options import OPTIONS

    assert all(o.flag in options for o in OPTIONS)
    for name in ("quickshear", "pydeface_ants", "surface", "dlib_hog", "dlib_resnet", "licence: MIT", "needs:"):
        assert name in plugins, name
    assert "&gt; 0" in plugins  # a declared range (mm_per_px > 0)
    for page in ("metrics", "scenarios", "plugins", "data", "scale", "statistics", "figures", "architecture"):
        assert (tmp_path / "site" / page / "index.html").is_file(), page


def test_a_broken_link_fails_the_build(tmp_path):
    src = _copy_site_sources(tmp_path)
    index = src / "docs" / "index.md"
    index.write_text(index.read_text() + "\nSee [the missing page](missing.md).\n")
    out = _build(src / "mkdocs.yml", tmp_path / "site")
    assert out.returncode != 0 and "missing.md" in out.stdout + out.stderr


def test_a_page_left_out_of_the_nav_fails_the_build(tmp_path):
    src = _copy_site_sources(tmp_path)
    (src / "docs" / "orphan.md").write_text("# Orphan\n")
    out = _build(src / "mkdocs.yml", tmp_path / "site")
    assert out.returncode != 0 and "orphan.md" in out.stdout + out.stderr


def test_reference_command_prints_the_pages_the_site_shows(capsys):
    """`defacebench reference options|plugins`: every option of the table with its RunConfig default,
    every registered plugin with licence, needs and its parameters' declared ranges."""
    from defacebench.cli import main
    from defacebench.run.options import OPTIONS

    assert main(["reference", "options"]) == 0
    options = capsys.readouterr().out
    assert all(f"| `{o.flag}` |" in options for o in OPTIONS)
    assert "| `--calibration` | `0.7` |" in options and "| `--policy` | `f1` |" in options
    assert main(["reference", "plugins"]) == 0
    plugins = capsys.readouterr().out
    assert "### `quickshear`" in plugins and "- licence: BSD-3-Clause (quickshear)" in plugins
    assert "| `mm_per_px` | `0.7` | > 0 |" in plugins  # vtk_volume's declared Range
    assert "- needs: FSL >= 6 on PATH with FSLDIR set" in plugins


def test_readme_is_short_and_its_links_and_picture_exist():
    """Issue 24: README.md <= 200 lines, usage first; every relative link (docs pages, the picture)
    points at a file of the checkout (the site build does not read the README)."""
    import re

    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    targets = re.findall(r"\]\(([^)#\s]+)\)", text)
    local = [t for t in targets if "://" not in t]
    assert "docs/img/heatmap.png" in local and "docs/index.md" in local
    assert [t for t in local if not (ROOT / t).is_file()] == []
    assert text.index("## Two commands") < text.index("## Reading the verdict") < text.index("## Adding a defacer")
