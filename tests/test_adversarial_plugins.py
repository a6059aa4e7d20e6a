"""Adversarial cases of TOML command defacers (issue 11, item 6 and the TOML part of item 12).

6. A tool that deletes or edits its ``{input}`` must not break any other defacer: it gets a
   private copy, so the shared cached volume stays byte-identical (real stages, real subprocesses).
12. An unbalanced quote in ``command`` is a PluginsFileError naming file, table and key.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from adversarial_helpers import tiny_ct
from defacebench.errors import PluginsFileError
from defacebench.plugins.registry import build_registry

EATER = "import os, shutil, sys; shutil.copyfile(sys.argv[1], sys.argv[2]); os.remove(sys.argv[1])"
EDITOR = ("import shutil, sys; shutil.copyfile(sys.argv[1], sys.argv[2]); "
          "open(sys.argv[1], 'r+b').write(b'garbage' * 64)")
COPIER = "import shutil, sys; shutil.copyfile(sys.argv[1], sys.argv[2])"


def plugins_file(tmp_path: Path) -> Path:
    path = tmp_path / "defacebench.toml"
    body = "".join(f'[defacers.{name}]\ncommand = ["{sys.executable}", "-c", "{code}", "{{input}}", "{{output}}"]\n'
                   for name, code in (("eater", EATER), ("editor", EDITOR), ("copier", COPIER)))
    path.write_text(body)
    return path


def test_a_tool_that_deletes_or_edits_its_input_breaks_no_other_defacer(tmp_path):
    from defacebench.anatomy.cleanup import CleanupParams
    from defacebench.anatomy.qc import QCParams
    from defacebench.data.convert import ConversionParams
    from defacebench.data.dataset import Acquisition
    from defacebench.run.cache import file_hash
    from defacebench.run.stages import ConvertTask, DefaceTask, StageEnv, convert_task, deface_task

    data, affine = tiny_ct()
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "s1.nii.gz")
    env = StageEnv(str(tmp_path / "cache"), str(plugins_file(tmp_path)))
    volume = convert_task(ConvertTask(env, Acquisition("s1", "", tmp_path / "s1.nii.gz", "nifti"), ConversionParams()))
    shared = Path(volume.path)
    before = shared.read_bytes()
    results = {}
    for name in ("eater", "editor", "copier"):
        task = DefaceTask(env, volume.path, volume.hash, name, CleanupParams(policy="none"))
        results[name] = deface_task(task)
    assert shared.read_bytes() == before and file_hash(shared) == volume.hash
    assert {n: r.ok for n, r in results.items()} == {"eater": True, "editor": True, "copier": True}
    copied = nib.load(results["copier"].path)
    assert np.allclose(np.asarray(copied.dataobj), np.asarray(nib.load(shared).dataobj))


def test_a_tool_writing_next_to_its_input_writes_into_its_workdir(tmp_path):
    """pydeface-style tools write ``<input stem>_defaced`` next to their input: that is the workdir now."""
    path = tmp_path / "defacebench.toml"
    code = "import shutil, sys; shutil.copyfile(sys.argv[1], sys.argv[1].replace('.nii', '_defaced.nii'))"
    path.write_text(f'[defacers.nextto]\ncommand = ["{sys.executable}", "-c", "{code}", "{{input}}"]\n'
                    'output = "*_defaced.nii"\n')
    src = tmp_path / "shared" / "volume.nii"
    src.parent.mkdir()
    src.write_bytes(b"volume bytes")
    work = tmp_path / "work"
    work.mkdir()
    result = build_registry(path).get("defacers", "nextto").deface(src, work)
    assert result.volume_path == work / "volume_defaced.nii" and result.volume_path.read_bytes() == b"volume bytes"
    assert sorted(p.name for p in src.parent.iterdir()) == ["volume.nii"]  # nothing written next to the shared file


@pytest.mark.parametrize("command", ["tool --name 'unclosed {input} {output}", 'tool "a {input}', "tool {input} \\"])
def test_an_unbalanced_quote_in_command_names_file_table_and_key(tmp_path, command):
    path = tmp_path / "defacebench.toml"
    path.write_text(textwrap.dedent(f"""\
        [defacers.quoted]
        command = '''{command}'''
        """))
    with pytest.raises(PluginsFileError) as err:
        build_registry(path)
    message = str(err.value)
    assert "\n" not in message
    assert f"{path} [defacers.quoted]" in message and "`command`" in message
    assert "close the quote" in message
