"""The ``refill`` stages: depth maps of every volume the attacker uses, then one reconstruction per probe.

For each probe subject the population is every *other* subject's probe scan, undefaced (its
converted volume) and defaced by the tool under test (the defacings the run makes anyway, so the
attack costs no extra defacing). The subject's own acquisitions, both sessions, never enter
(:func:`defacebench.attacks.refill.population_ids`). Depth maps are cached per volume (each one is
computed once and shared by every fold of the leave-subject-out); a reconstruction is cached by the
target's hash, the population's hashes and the params. A probe with no removed region is its own
defaced volume (no copy: its render comes from the cache).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

from defacebench.attacks.refill import RefillParams, population_ids
from defacebench.run.records import Failed
from defacebench.run.stage_base import STAGE_VERSION, StageEnv, get_or_build, read_json, write_json

REFILL_VERSION = "1"


@dataclass(frozen=True)
class MapTask:
    env: StageEnv
    volume_path: str
    volume_hash: str
    params: RefillParams


def map_task(task: MapTask) -> str:
    """The volume's depth map (cached); returns the path of its ``.npz``."""
    from defacebench.attacks.depthmap import depth_map

    cache = task.env.cache()
    key = cache.key("refill_map", STAGE_VERSION, REFILL_VERSION, task.volume_hash, asdict(task.params.maps))

    def build(tmp: Path) -> None:
        from defacebench.data.volume import load_volume

        depth_map(load_volume(Path(task.volume_path)), task.params.maps).save(tmp / "map.npz")

    return str(get_or_build(cache, "refill_map", key, build) / "map.npz")


@dataclass(frozen=True)
class RefillTask:
    env: StageEnv
    target_path: str
    target_hash: str
    target_map: str
    population: tuple[tuple[str, str, str, str], ...]  # (subject id, undefaced hash, undefaced map, defaced map)
    defaced_hashes: tuple[str, ...]
    params: RefillParams


def refill_task(task: RefillTask) -> dict:
    """Reconstruct one probe (cached): ``{"path", "hash", "region_px"}`` of the refilled volume."""
    from defacebench.run.cache import file_hash

    cache = task.env.cache()
    key = cache.key("refill", STAGE_VERSION, REFILL_VERSION, task.target_hash, asdict(task.params),
                    [p[:2] for p in task.population], list(task.defaced_hashes))

    def build(tmp: Path) -> None:
        from defacebench.attacks.depthmap import DepthMap
        from defacebench.attacks.refill import Population, reconstruct, write_back
        from defacebench.data.volume import load_volume, save_volume

        target = DepthMap.load(Path(task.target_map))
        population = Population(tuple(p[0] for p in task.population),
                                tuple(DepthMap.load(Path(p[2])) for p in task.population),
                                tuple(DepthMap.load(Path(p[3])) for p in task.population))
        region, depth = reconstruct(target, population, task.params)
        record = {"region_px": int(region.sum()), "population": list(population.ids)}
        if region.any():
            save_volume(write_back(load_volume(Path(task.target_path)), target, depth, task.params.maps),
                        tmp / "refilled.nii.gz")
        write_json(tmp / "record.json", record)

    folder = get_or_build(cache, "refill", key, build)
    record = read_json(folder / "record.json")
    volume = folder / "refilled.nii.gz"
    if volume.exists():
        return {**record, "path": str(volume), "hash": file_hash(volume)}
    return {**record, "path": task.target_path, "hash": task.target_hash}


def refill_all(run, defacer: str, method: str) -> dict:
    """acq_id -> the refilled probe (a :class:`Defaced` whose path is the refilled volume), the
    probe's failed defacing as it was, or Failed("refill") when the reconstruction failed."""
    params = RefillParams(method=method)
    vols, done = run.volumes(), run.defacings(defacer)
    usable = [r for r in run.roles if vols[r.probe.acq_id].ok and getattr(done.get(r.probe.acq_id), "ok", False)]
    needed = {}
    for r in usable:
        for record in (vols[r.probe.acq_id], done[r.probe.acq_id]):
            needed[record.hash] = record.path
    hashes = sorted(needed)
    tasks = [MapTask(run.env, needed[h], h, params) for h in hashes]
    maps = dict(zip(hashes, run._map(map_task, tasks, "refill", "maps")))
    out = {r.probe.acq_id: done[r.probe.acq_id] for r in run.roles if r.probe.acq_id in done}
    by_id = {r.subject_id: r for r in usable}
    ready, targets = [], []
    for r in usable:
        d = done[r.probe.acq_id]
        pop = [by_id[s] for s in population_ids(list(by_id), r.subject_id)]
        pop = [p for p in pop if isinstance(maps[vols[p.probe.acq_id].hash], str)
               and isinstance(maps[done[p.probe.acq_id].hash], str)]
        if not isinstance(maps[d.hash], str):
            out[r.probe.acq_id] = Failed("refill", maps[d.hash].error)
            continue
        rows = tuple((p.subject_id, vols[p.probe.acq_id].hash, maps[vols[p.probe.acq_id].hash],
                      maps[done[p.probe.acq_id].hash]) for p in pop)
        ready.append(RefillTask(run.env, d.path, d.hash, maps[d.hash], rows,
                                tuple(done[p.probe.acq_id].hash for p in pop), params))
        targets.append(r.probe.acq_id)
    for acq, result in zip(targets, run._map(refill_task, ready, "refill", method)):
        out[acq] = result if isinstance(result, Failed) else replace(out[acq], path=result["path"], hash=result["hash"])
    return out


def refill_params(method: str) -> dict:
    """The params a refill scenario records in its results."""
    return asdict(RefillParams(method=method))

