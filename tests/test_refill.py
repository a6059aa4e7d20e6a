"""The ``refill`` attacker: depth maps, the removed region, both reconstructors, the write-back, and the
leave-subject-out rule (synthetic heads: small, non-cubic grids, non-identity affines, seconds)."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from defacebench.attacks.depthmap import MapParams, depth_map
from defacebench.attacks.refill import (Population, RefillError, RefillParams, population_ids, reconstruct,
                                        removed_region, write_back)
from defacebench.contracts import Volume

MAPS = MapParams(pixel_mm=4.0, half_width_mm=88.0, height_mm=160.0, length_mm=212.0)
AIR = -1000.0


def head(width: float, nose: float, *, shift=(3.0, -5.0, 2.0), horn: bool = False) -> Volume:
    """A CT head: an ellipsoid of half-width ``width`` (x) with a nose ``nose`` mm long on its face;
    ``horn``: a bump on the cheek that nobody else has (a target-specific feature)."""
    zooms = np.array([3.6, 4.0, 4.4])
    shape = (52, 60, 44)
    affine = np.diag([*zooms, 1.0])
    affine[:3, 3] = -zooms * (np.array(shape) - 1) / 2 + np.array(shift)
    ijk = np.indices(shape).reshape(3, -1).T
    x, y, z = (ijk * zooms + affine[:3, 3] - np.array(shift)).T
    b, c = 90.0, 75.0
    inside = (x / width) ** 2 + (y / b) ** 2 + (z / c) ** 2 <= 1.0
    face_y = b * np.sqrt(max(0.0, 1 - (20.0 / c) ** 2))
    nose_voxels = (np.abs(x) < 9) & (np.abs(z + 20) < 12) & (y > face_y - 6) & (y < face_y + nose)
    data = np.where(inside | nose_voxels, 40.0, AIR)
    if horn:
        data = np.where((np.abs(x - 28) < 9) & (np.abs(z + 30) < 9) & (y > face_y - 20) & (y < face_y + 22), 40.0, data)
    return Volume(data.reshape(shape).astype(np.float32), affine, "ct")


def deface(volume: Volume) -> Volume:
    """A face removal: everything in front of a coronal plane, below the forehead, becomes air."""
    ijk = np.indices(volume.data.shape).reshape(3, -1)
    x, y, z = volume.affine[:3, :3] @ ijk + volume.affine[:3, 3:4]
    cut = (y > 55.0 + volume.affine[1, 3] + (volume.data.shape[1] - 1) * volume.affine[1, 1] / 2) & \
        (z < 5.0 + volume.affine[2, 3] + (volume.data.shape[2] - 1) * volume.affine[2, 2] / 2)
    return replace(volume, data=np.where(cut.reshape(volume.data.shape), AIR, volume.data).astype(np.float32))


def nose_of(width: float) -> float:
    """The planted shape: nose length a known function of skull width."""
    return 8.0 + 0.9 * (width - 58.0)


def population(widths, *, extra=None) -> Population:
    heads = [head(w, nose_of(w)) for w in widths] + ([extra] if extra is not None else [])
    ids = tuple(f"p{i}" for i in range(len(heads)))
    return Population(ids, tuple(depth_map(h, MAPS) for h in heads), tuple(depth_map(deface(h), MAPS) for h in heads))


@pytest.fixture(scope="module")
def crowd() -> Population:
    return population(np.linspace(58.0, 80.0, 10))


def _nose_error(method: str, crowd: Population, width: float) -> float:
    target = head(width, nose_of(width))
    truth = depth_map(target, MAPS)
    defaced = depth_map(deface(target), MAPS)
    region, depth = reconstruct(defaced, crowd, RefillParams(method=method, maps=MAPS))
    assert region.any()
    tip = np.nanargmax(np.where(region, truth.depth, np.nan))
    return abs(depth.flat[tip] - truth.depth.flat[tip])


@pytest.mark.parametrize("width", [60.0, 78.0])
def test_learned_recovers_the_planted_nose_better_than_the_template(crowd, width):
    learned, template = _nose_error("learned", crowd, width), _nose_error("template", crowd, width)
    assert learned < 4.0 and learned < template - 2.0, (learned, template)


def test_undefaced_target_has_no_removed_region(crowd):
    control = Population(crowd.ids, crowd.undefaced, crowd.undefaced)  # the control: the tool removes nothing
    target = depth_map(head(70.0, nose_of(70.0)), MAPS)
    assert not removed_region(target, control, RefillParams(maps=MAPS)).any()
    assert not reconstruct(target, control, RefillParams(method="template", maps=MAPS))[0].any()


def test_removed_region_comes_from_what_the_attacker_sees(crowd):
    target = head(70.0, nose_of(70.0))
    region = removed_region(depth_map(deface(target), MAPS), crowd, RefillParams(maps=MAPS))
    truth, defaced = depth_map(target, MAPS).depth, depth_map(deface(target), MAPS).depth
    lost = np.nan_to_num(truth) - np.nan_to_num(defaced) > 8.0
    assert region[lost].mean() > 0.8 and not region[~np.isfinite(truth)].any()


def test_leave_subject_out_ids():
    assert population_ids(["a", "b", "c"], "b") == ("a", "c")
    assert "b" not in population_ids(["b", "b", "a"], "b")


def test_a_feature_only_the_target_has_is_not_recovered(crowd):
    """Leave-subject-out, shown by what the reconstruction can know: the target's horn lies in the
    removed region; a population without the target cannot bring it back, a leaked one could."""
    target = head(70.0, nose_of(70.0), horn=True)
    truth, defaced = depth_map(target, MAPS), depth_map(deface(target), MAPS)
    plain = depth_map(head(70.0, nose_of(70.0)), MAPS)
    horn = (truth.depth - plain.depth) > 10.0
    for method in ("template", "learned"):
        region, depth = reconstruct(defaced, crowd, RefillParams(method=method, maps=MAPS))
        assert region[horn].all()
        assert np.nanmax(depth[horn] - plain.depth[horn]) < 6.0, method
    leaked = population(np.linspace(58.0, 80.0, 10), extra=target)
    _, depth = reconstruct(defaced, leaked, RefillParams(method="learned", maps=MAPS))
    assert np.nanmedian(depth[horn] - plain.depth[horn]) > 10.0  # the test could fail: a leak shows


def test_write_back_makes_the_reconstructed_skin(crowd):
    target = head(66.0, nose_of(66.0), shift=(-4.0, 6.0, -3.0))
    defaced = deface(target)
    dmap = depth_map(defaced, MAPS)
    region, depth = reconstruct(dmap, crowd, RefillParams(method="learned", maps=MAPS))
    refilled = write_back(defaced, dmap, depth, MAPS)
    again = depth_map(refilled, MAPS).depth
    assert np.nanmedian(np.abs(again[region] - depth[region])) <= MAPS.pixel_mm
    changed = refilled.data != defaced.data
    assert changed.any() and (defaced.data[changed] == AIR).all()  # only air became tissue
    assert np.all(refilled.data[changed] == dmap.tissue)


def test_population_too_small_and_unknown_method(crowd):
    small = Population(crowd.ids[:1], crowd.undefaced[:1], crowd.defaced[:1])
    with pytest.raises(RefillError, match="at least 2"):
        reconstruct(crowd.defaced[0], small, RefillParams(maps=MAPS))
    with pytest.raises(RefillError, match="unknown"):
        RefillParams(method="diffusion")


def test_refill_stage_never_gives_a_subject_its_own_scans(monkeypatch):
    """The pipeline's tasks: each probe's population holds other subjects only, never its own hashes."""
    from defacebench.run import refill_stage
    from defacebench.run.records import Converted, Defaced, SubjectRoles

    roles, vols, done = [], {}, {}
    for s in ("s1", "s2", "s3", "s4"):
        probe, other = SimpleNamespace(acq_id=f"{s}-scan"), SimpleNamespace(acq_id=f"{s}-rescan")
        roles.append(SubjectRoles(s, probe, other))
        for a in (probe, other):
            vols[a.acq_id] = Converted(f"/v/{a.acq_id}", f"h-{a.acq_id}")
        done[probe.acq_id] = Defaced("tool", True, path=f"/d/{s}", hash=f"d-{s}")
    seen = []

    def fake_map(fn, tasks, stage, plugin):
        if plugin == "maps":
            return [f"map-{t.volume_hash}" for t in tasks]
        seen.extend(tasks)
        return [{"path": t.target_path, "hash": t.target_hash} for t in tasks]

    run = SimpleNamespace(roles=roles, env=None, volumes=lambda: vols, defacings=lambda d: done, _map=fake_map)
    out = refill_stage.refill_all(run, "tool", "learned")
    assert len(seen) == 4 and set(out) == {f"{s}-scan" for s in ("s1", "s2", "s3", "s4")}
    for task in seen:
        subject = task.target_path.rsplit("/", 1)[1]
        own = {f"h-{subject}-scan", f"h-{subject}-rescan", f"d-{subject}"}
        ids = {p[0] for p in task.population}
        hashes = {p[1] for p in task.population} | set(task.defaced_hashes)
        assert subject not in ids and not hashes & own and len(ids) == 3
