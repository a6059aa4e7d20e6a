"""The benchmark pipeline: from a dataset to one evaluated distance matrix per configuration.

:class:`BenchmarkRun` owns one run (one results folder). Every stage goes through the executor
over per-item tasks (:mod:`defacebench.run.stages`) and is memoised in-process on top of the disk
cache, so configurations that share a defacer, a renderer or a detector share that work: each image
is rendered, detected and embedded once per run, and N subjects cost 2N recognizer passes.

Roles (DESIGN.md section 6): the probe of a subject is its acquisition named ``scan`` when it has
one, else its first acquisition in natural order; in the ``rescan`` scenario the gallery is the
subject's next other acquisition, undefaced (the ``none`` control), which removes the same-scan
confound; in the ``seed`` scenario (and for a subject with one acquisition) the gallery is the
undefaced probe scan itself. Identification uses the first view of each render.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from defacebench.run.config import ConfigId, RunConfig
from defacebench.run.evaluation import evaluate_config
from defacebench.run.records import CONTROL, ConfigOutcome, Failure, SubjectRoles
from defacebench.errors import DefacebenchError
from defacebench.run.stages import (ConvertTask, DefaceTask, DetectTask, EmbedItem, EmbedTask, RenderTask, StageEnv, convert_task,
                     deface_task, detect_task, embed_task, render_task)

def choose_roles(subject, scenario: str) -> SubjectRoles:
    """Apply the documented probe/gallery rule to one subject."""
    acqs = list(subject.acquisitions)
    named = [a for a in acqs if a.session == "scan"]
    probe = named[0] if named else acqs[0]
    others = [a for a in acqs if a is not probe]
    if scenario == "rescan" and others:
        return SubjectRoles(subject.subject_id, probe, others[0], "rescan")
    return SubjectRoles(subject.subject_id, probe, probe, "seed")


class BenchmarkRun:
    """One benchmark run: shared stage results, per-configuration evaluation, run outputs."""

    def __init__(self, config: RunConfig, *, executor=None) -> None:
        from defacebench.run.cache import Cache, default_cache_dir

        self.config = config
        self.cache_root = Path(config.cache_dir) if config.cache_dir else default_cache_dir()
        self.cache = Cache(self.cache_root)
        self.env = StageEnv(str(self.cache_root), str(config.plugins_file) if config.plugins_file else None)
        self.run_dir = Path(config.results) / (config.run_id or time.strftime("%Y%m%d-%H%M%S"))
        self._executor = executor
        self._own_executor = executor is None
        self._memo: dict = {}
        self.embeddings_computed = 0
        self.outcomes: dict[str, ConfigOutcome] = {}

    # -------------------------------------------------------------------- set-up and tear-down

    @property
    def executor(self):
        if self._executor is None:
            from defacebench.run.executors import make_executor

            self._executor = make_executor(self.config.executor, scheduler=self.config.scheduler,
                                           workers=self.config.workers)
            self._executor.__enter__()
        return self._executor

    def close(self) -> None:
        if self._executor is not None and self._own_executor:
            self._executor.__exit__(None, None, None)
            self._executor = None

    @property
    def started(self) -> bool:
        """True once the dataset has been read (a session that only skipped never reads it)."""
        return "dataset" in self._memo

    def split_if_made(self):
        """The run's split, or None when no configuration needed it yet."""
        return self._memo.get("split")

    def executor_description(self) -> dict | None:
        """The executor's ``describe()``, or None when every stage came from the cache."""
        return self._executor.describe() if self._executor is not None else None

    def plugin(self, kind: str, name: str):
        return self.env.plugin(kind, name)

    def _once(self, key, compute):
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def _map(self, fn, tasks: list, desc: str) -> list:
        """Answer cached items in-process; only misses go to the executor (which then starts)."""
        from defacebench.run.executors import Outcome
        from defacebench.run.stages import NotCached, lookup_only

        results: list = [None] * len(tasks)
        todo = []
        with lookup_only():
            for i, task in enumerate(tasks):
                try:
                    results[i] = Outcome(True, fn(task))
                except NotCached:
                    todo.append(i)
                except Exception:  # noqa: BLE001 - the executor reruns it and records the real failure
                    todo.append(i)
        if todo:
            for i, outcome in zip(todo, self.executor.map(fn, [tasks[i] for i in todo], desc=desc)):
                results[i] = outcome
        return results

    # -------------------------------------------------------------------- dataset and roles

    @property
    def dataset(self):
        from defacebench.data.dataset import discover

        return self._once("dataset", lambda: discover(Path(self.config.dataset)))

    @property
    def roles(self) -> list[SubjectRoles]:
        return self._once("roles", lambda: [choose_roles(s, self.config.scenario) for s in self.dataset.subjects])

    def volumes(self) -> dict[str, dict]:
        """acq_id -> converted volume ``{path, hash, record}`` or ``{error}`` for every acquisition needed."""
        def compute():
            from defacebench.data.convert import ConversionParams

            params = ConversionParams(converter=self.config.converter)
            acqs = {r.probe.acq_id: r.probe for r in self.roles} | {r.gallery.acq_id: r.gallery for r in self.roles}
            ids = sorted(acqs)
            tasks = [ConvertTask(self.env, acqs[i], params) for i in ids]
            return dict(zip(ids, _values(self._map(convert_task, tasks, "convert"))))
        return self._once("volumes", compute)

    @property
    def subjects(self) -> list[SubjectRoles]:
        """Subjects whose probe and gallery acquisitions converted: the same set for every configuration."""
        vols = self.volumes()
        return [r for r in self.roles if "path" in vols[r.probe.acq_id] and "path" in vols[r.gallery.acq_id]]

    def dataset_failures(self) -> list[Failure]:
        vols = self.volumes()
        rows = [Failure(f.subject_id or "?", "discover", "-", f.reason) for f in self.dataset.failures]
        for r in self.roles:
            for role, acq in (("probe", r.probe), ("gallery", r.gallery)):
                if "error" in vols[acq.acq_id]:
                    rows.append(Failure(r.subject_id, "convert", role, vols[acq.acq_id]["error"]))
        return rows

    @property
    def split(self):
        from defacebench.metrics import make_split

        ids = [r.subject_id for r in self.subjects]
        return self._once("split", lambda: make_split(ids, calibration=self.config.calibration, seed=self.config.seed))

    # -------------------------------------------------------------------- shared stages

    def defaced(self, defacer: str, role: str) -> dict[str, dict]:
        """subject_id -> deface result (``status`` ok/failed, ``path``, ``qc``) for the role's acquisitions."""
        def compute():
            from defacebench.anatomy.cleanup import CleanupParams
            from defacebench.anatomy.qc import QCParams

            vols = self.volumes()
            cleanup = CleanupParams(policy=self.config.cleanup)
            acq = {r.subject_id: getattr(r, role) for r in self.subjects}
            ids = list(acq)
            tasks = [DefaceTask(self.env, vols[acq[s].acq_id]["path"], vols[acq[s].acq_id]["hash"], defacer,
                                cleanup, QCParams()) for s in ids]
            return dict(zip(ids, _values(self._map(deface_task, tasks, f"deface {defacer} ({role})"))))
        return self._once(("deface", defacer, role), compute)

    def rendered(self, defacer: str, role: str, renderer: str) -> dict[str, dict]:
        """subject_id -> the first rendered view ``{path, hash, view_id}`` or ``{error}``."""
        def compute():
            done = self.defaced(defacer, role)
            ok = [s for s, d in done.items() if d.get("status") == "ok"]
            tasks = [RenderTask(self.env, done[s]["path"], done[s]["hash"], renderer) for s in ok]
            out = {s: {"error": f"defacing failed: {d.get('error', 'unknown')}"} for s, d in done.items()
                   if d.get("status") != "ok"}
            for s, views in zip(ok, _values(self._map(render_task, tasks, f"render {renderer}"))):
                out[s] = views if "error" in views else views[0]
            return out
        return self._once(("render", defacer, role, renderer), compute)

    def detected(self, defacer: str, role: str, renderer: str, detector: str) -> dict[str, dict]:
        """subject_id -> ``{best, faces}`` or ``{error}``; ``best`` None means no face: an outcome."""
        def compute():
            views = self.rendered(defacer, role, renderer)
            ok = [s for s, v in views.items() if "path" in v]
            tasks = [DetectTask(self.env, views[s]["path"], views[s]["hash"], detector) for s in ok]
            out = {s: v for s, v in views.items() if "path" not in v}
            out.update(zip(ok, _values(self._map(detect_task, tasks, f"detect {detector}"))))
            return out
        return self._once(("detect", defacer, role, renderer, detector), compute)

    def embedded(self, defacer: str, role: str, renderer: str, detector: str, recognizer: str) -> dict[str, np.ndarray]:
        """subject_id -> embedding for every subject whose image has a kept face (others absent)."""
        def compute():
            views = self.rendered(defacer, role, renderer)
            faces = self.detected(defacer, role, renderer, detector)
            ids = [s for s, f in faces.items() if f.get("best") is not None]
            items = [EmbedItem(views[s]["path"], views[s]["hash"], faces[s]["best"]) for s in ids]
            chunks = _chunks(list(zip(ids, items)), self._workers())
            tasks = [EmbedTask(self.env, recognizer, tuple(it for _, it in chunk)) for chunk in chunks]
            out: dict[str, np.ndarray] = {}
            for chunk, result in zip(chunks, self._map(embed_task, tasks, f"embed {recognizer}")):
                if not result.ok:
                    raise DefacebenchError(f"{recognizer} failed to embed: {result.error}")
                self.embeddings_computed += result.value["computed"]
                out.update({s: v for (s, _), v in zip(chunk, result.value["vectors"])})
            return out
        return self._once(("embed", defacer, role, renderer, detector, recognizer), compute)

    def _workers(self) -> int:
        import os

        return max(1, self.config.workers or os.cpu_count() or 1)

    # -------------------------------------------------------------------- one configuration

    def run_config(self, cid: ConfigId) -> ConfigOutcome:
        """Evaluate one configuration and write its artifacts under ``run_dir/<config id>/``."""
        start = time.monotonic()
        outcome = evaluate_config(self, cid)
        outcome.seconds = time.monotonic() - start
        self.outcomes[str(cid)] = outcome
        return outcome


def _values(outcomes) -> list[dict]:
    """Executor outcomes -> stage values, a failed item becoming ``{"error": message}``."""
    return [o.value if o.ok else {"error": o.error, "log": o.log} for o in outcomes]


def _chunks(items: list, n: int) -> list[list]:
    if not items:
        return []
    size = -(-len(items) // n)
    return [items[i:i + size] for i in range(0, len(items), size)]
