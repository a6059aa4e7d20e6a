"""The conformance suite itself catches contract violations (each check can fail)."""

import dataclasses
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from defacebench.contracts import Availability, DefaceResult, NoParams
from defacebench.testing import (check_defacer_deterministic, check_defacer_geometry, check_defacer_input_untouched,
                                 check_params_frozen_dataclass, conformance_volume, parametrize_with_checks)
from defacers.controls import NoneDefacer


class _Base:
    version = "1"
    deterministic = True

    def __init__(self):
        self.params = NoParams()

    def available(self):
        return Availability.yes()

    def tool_version(self):
        return ""


class WritesNextToInput(_Base):
    name = "writes_next"

    def deface(self, volume_path, workdir):
        side = Path(volume_path).with_name("side.nii.gz")
        shutil.copyfile(volume_path, side)
        out = Path(workdir) / "out.nii.gz"
        shutil.copyfile(volume_path, out)
        return DefaceResult(out)


class Crops(_Base):
    name = "crops"

    def deface(self, volume_path, workdir):
        img = nib.load(str(volume_path))
        out = Path(workdir) / "out.nii.gz"
        nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[1:], img.affine), str(out))
        return DefaceResult(out)


class Noisy(_Base):
    name = "noisy"

    def deface(self, volume_path, workdir):
        img = nib.load(str(volume_path))
        data = np.asarray(img.dataobj) + np.random.default_rng().normal(size=img.shape)
        out = Path(workdir) / "out.nii.gz"
        nib.save(nib.Nifti1Image(data.astype(np.float32), img.affine), str(out))
        return DefaceResult(out)


@dataclasses.dataclass
class MutableParams:
    x: int = 1


def test_conformance_volume_is_small_oblique_head():
    vol = conformance_volume()
    assert len(set(vol.data.shape)) == 3, "non-cubic"
    assert not np.allclose(vol.affine[:3, :3], np.diag(np.diag(vol.affine[:3, :3]))), "oblique"
    assert (vol.data > -500).mean() > 0.1


@pytest.mark.parametrize(("plugin", "check", "message"), [
    (WritesNextToInput(), check_defacer_input_untouched, "wrote next to its input"),
    (Crops(), check_defacer_geometry, "shape"),
    (Noisy(), check_defacer_deterministic, "two runs differ"),
])
def test_checks_catch_violations(plugin, check, message, tmp_path):
    with pytest.raises(AssertionError, match=message):
        check(plugin, tmp_path)


def test_mutable_params_are_caught(tmp_path):
    plugin = NoneDefacer()
    plugin.params = MutableParams()
    with pytest.raises(AssertionError, match="frozen"):
        check_params_frozen_dataclass(plugin, tmp_path)


@parametrize_with_checks([NoneDefacer()])
def test_plugin_author_usage(plugin, check, tmp_path):
    check(plugin, tmp_path)
