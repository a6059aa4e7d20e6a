"""README and CI agree: .ci/run runs exactly the README's test command."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bash_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    blocks = _bash_blocks(readme)
    test_cmd = next(b for b in blocks if "pytest" in b and "setup.sh" in b)
    ci_lines = [line.strip() for line in (ROOT / ".ci/run").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert test_cmd in ci_lines


def test_readme_has_install_and_run_command():
    blocks = _bash_blocks((ROOT / "README.md").read_text())
    assert blocks[0] == "./scripts/setup.sh && .venv/bin/defacebench run"
    assert (ROOT / "scripts/setup.sh").stat().st_mode & 0o111


def test_readme_python_plugin_example_passes_its_own_conformance_checks(tmp_path):
    """The README's example defacer, exactly as printed, passes every defacer check of the SDK,
    including the one for unreadable input (issue: it raised nibabel's ImageFileError)."""
    text = (ROOT / "README.md").read_text()
    example = re.search(r"`my_defacer/my_blur.py`:\n\n```python\n(.*?)```", text, flags=re.S).group(1)
    namespace: dict = {}
    exec(compile(example, "my_blur.py", "exec"), namespace)  # the README example really runs
    from defacebench.contracts import Defacer
    from defacebench.testing import DEFACER_CHECKS

    plugin = namespace["MyBlur"]()
    assert isinstance(plugin, Defacer)
    for i, check in enumerate(DEFACER_CHECKS):
        folder = tmp_path / f"check{i}"
        folder.mkdir()
        check(plugin, folder)
    assert 15 <= len(example.strip().splitlines()) <= 35
