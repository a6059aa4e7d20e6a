"""Tests of ``defacebench cache info|clear`` through the subcommand's own register/run functions."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from defacebench.run.cache import Cache
from defacebench.cli import cache as cache_cli


def parse(*argv: str) -> argparse.Namespace:
    """Parse argv with a parser holding only the cache subcommand (as the CLI registers it)."""
    parser = argparse.ArgumentParser(prog="defacebench")
    cache_cli.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(list(argv))


@pytest.fixture
def filled(tmp_path: Path) -> Path:
    """A cache with two render artifacts and one deface artifact of known sizes."""
    cache = Cache(tmp_path / "cache")
    for i in range(2):
        cache.get_or_build("render", Cache.key("r", i), lambda tmp: (tmp / "v.png").write_bytes(b"x" * 2048))
    cache.get_or_build("deface", Cache.key("d"), lambda tmp: (tmp / "d.nii").write_bytes(b"y" * 5 * 2**20))
    return cache.root


def test_info_prints_counts_and_sizes(filled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("cache", "info", "--cache-dir", str(filled))
    assert args.func is cache_cli.run
    assert args.func(args) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert lines["render"][1] == "2" and lines["deface"][1] == "1" and lines["total"][1] == "3"
    assert lines["deface"][2] == "5.24MB"  # 5 MiB in SI units
    assert str(filled) in out and "temp folders: 0" in out


def test_info_json(filled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cache_cli.run(parse("cache", "info", "--cache-dir", str(filled), "--json")) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["entries"] == 3 and {s["stage"] for s in data["stages"]} == {"render", "deface"}


def test_info_uses_env_default(filled: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DEFACEBENCH_CACHE", str(filled))
    assert cache_cli.run(parse("cache", "info")) == 0
    assert f"cache: {filled}" in capsys.readouterr().out


def test_clear_needs_yes_off_a_terminal(filled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cache_cli.run(parse("cache", "clear", "--cache-dir", str(filled))) == 1
    assert "--yes" in capsys.readouterr().err
    assert Cache(filled).info().entries == 3


def test_clear_one_stage_then_all(filled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cache_cli.run(parse("cache", "clear", "--cache-dir", str(filled), "--stage", "render", "--yes")) == 0
    assert "removed 2 artifact(s)" in capsys.readouterr().out
    assert [s.stage for s in Cache(filled).info().stages] == ["deface"]
    assert cache_cli.run(parse("cache", "clear", "--cache-dir", str(filled), "--yes")) == 0
    assert "removed 1 artifact(s)" in capsys.readouterr().out
    assert Cache(filled).info().entries == 0


def test_clear_unknown_stage_names_the_known_ones(filled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cache_cli.run(parse("cache", "clear", "--cache-dir", str(filled), "--stage", "rendr", "--yes")) == 1
    err = capsys.readouterr().err
    assert "'rendr'" in err and "deface, render" in err
    assert Cache(filled).info().entries == 3
