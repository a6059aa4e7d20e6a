"""The benchmark pipeline: shared, memoised stage results for every configuration of one run.

:class:`BenchmarkRun` owns one run (one results folder). Every stage goes through the executor over
per-item tasks (:mod:`defacebench.run.stages`) and is memoised in-process on top of the disk cache,
so configurations that share a defacer, a renderer or a detector share that work: each image is
rendered, detected and embedded once per run, and N subjects cost 2N recognizer passes per view.

Roles: the probe of a subject is its acquisition named ``scan`` when it has one, else its first in
natural order; its ``other`` acquisition is the next one (the rescan). Stage maps are keyed by
acquisition id, so the gallery and probe sides of every scenario share them.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

from defacebench.errors import DefacebenchError
from defacebench.run.config import RunConfig
from defacebench.run.records import (CONTROL, Converted, Defaced, Detected, Embedded, Failed, Rendered,
                                     SubjectRoles, face_to_json)
from defacebench.run.stage_base import NotCached, StageEnv, Timed, lookup_only, timed_call
from defacebench.run.stages import (ConvertTask, DefaceTask, DetectTask, EmbedItem, EmbedTask, QCTask, RenderTask,
                                    convert_task, deface_task, detect_task, embed_task, qc_task, render_task)
from defacebench.run.timing import StageTimes


def choose_roles(subject) -> SubjectRoles:
    """Apply the documented probe/other rule to one subject."""
    acqs = list(subject.acquisitions)
    named = [a for a in acqs if a.session == "scan"]
    probe = named[0] if named else acqs[0]
    others = [a for a in acqs if a is not probe]
    return SubjectRoles(subject.subject_id, probe, others[0] if others else None)


class BenchmarkRun:
    """One benchmark run: dataset, roles and the shared stage maps (keyed by acquisition id)."""

    def __init__(self, config: RunConfig, *, run_dir: Path, executor=None, dataset=None) -> None:
        from defacebench.run.cache import Cache, default_cache_dir

        self.config = config
        self.cache_root = Path(config.cache_dir) if config.cache_dir else default_cache_dir()
        self.cache = Cache(self.cache_root)
        self.env = StageEnv(str(self.cache_root), str(config.plugins_file) if config.plugins_file else None)
        self.run_dir = run_dir
        self.times = StageTimes()
        self.started_at = time.time()
        self._executor = executor
        self._own_executor = executor is None
        self._memo: dict = {} if dataset is None else {"dataset": dataset}  # a dataset the planner discovered
        self.embeddings_computed = 0
        # stage maps may be computed from several threads (defacebench.run.prefetch): one lock per
        # memo key so each is computed once, one for the executor and the counters
        self._locks: dict = {}
        self._guard = threading.RLock()

    # -------------------------------------------------------------------- set-up and tear-down

    @property
    def executor(self):
        with self._guard:
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

    def executor_description(self) -> dict | None:
        """The executor's ``describe()``, or None when every stage came from the cache."""
        return self._executor.describe() if self._executor is not None else None

    def plugin(self, kind: str, name: str):
        return self.env.plugin(kind, name)

    def _once(self, key, compute):
        """The memoised value of ``key``, computed once even when several threads ask at once (the
        later ones wait); a compute that raises stores nothing, so the next caller computes again."""
        if key in self._memo:
            return self._memo[key]
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._memo:
                self._memo[key] = compute()
        return self._memo[key]

    def _map(self, fn: Callable, tasks: list, stage: str, plugin: str) -> list:
        """Run ``fn`` over ``tasks``: cached items answered in-process, misses through the executor
        (which then starts). Returns values, a failed item as :class:`Failed`; records the cost."""
        results: list = [None] * len(tasks)
        todo = []
        with lookup_only():
            for i, task in enumerate(tasks):
                try:
                    results[i] = self._account(stage, plugin, timed_call(fn, task))
                except NotCached:
                    todo.append(i)
                except Exception:  # noqa: BLE001 - the executor reruns it and records the real failure
                    todo.append(i)
        if todo:
            outcomes = self.executor.map(functools.partial(timed_call, fn), [tasks[i] for i in todo],
                                         desc=f"{stage} {plugin}")
            for i, outcome in zip(todo, outcomes):
                results[i] = self._account(stage, plugin, outcome.value) if outcome.ok else \
                    Failed(stage, outcome.error, outcome.log)
        return results

    def _account(self, stage: str, plugin: str, timed: Timed):
        with self._guard:
            self.times.add(stage, plugin, computed=timed.computed, cpu_s=timed.cpu_s, wall_s=timed.wall_s,
                           started=timed.started, pid=timed.pid)
        return timed.value

    # -------------------------------------------------------------------- dataset and roles

    @property
    def dataset(self):
        from defacebench.data.dataset import discover

        return self._once("dataset", lambda: discover(Path(self.config.dataset)))

    @property
    def roles(self) -> list[SubjectRoles]:
        return self._once("roles", lambda: [choose_roles(s) for s in self.dataset.subjects])

    def acquisitions(self) -> dict:
        """acq_id -> Acquisition of every probe and other acquisition."""
        acqs = {r.probe.acq_id: r.probe for r in self.roles}
        acqs.update({r.other.acq_id: r.other for r in self.roles if r.other is not None})
        return acqs

    def volumes(self) -> dict[str, Converted | Failed]:
        """acq_id -> converted volume (or the conversion failure) of every acquisition."""
        def compute():
            from defacebench.data.convert import ConversionParams

            params = ConversionParams(converter=self.config.converter, modality=self.config.modality)
            acqs = self.acquisitions()
            ids = sorted(acqs)
            tasks = [ConvertTask(self.env, acqs[i], params) for i in ids]
            return dict(zip(ids, self._map(convert_task, tasks, "convert", self.config.converter)))
        return self._once("volumes", compute)

    # -------------------------------------------------------------------- shared stages (by acquisition)

    def defacings(self, defacer: str) -> dict[str, Defaced | Failed]:
        """acq_id -> defacing (QC filled for tested defacers) of every acquisition this defacer needs."""
        def compute():
            from defacebench.anatomy.cleanup import CleanupParams
            from defacebench.anatomy.qc import QCParams

            needed = self._acquisitions_defaced_by(defacer)
            vols = {a: v for a, v in self.volumes().items() if v.ok and a in needed}
            ids = sorted(vols)
            cleanup = CleanupParams(policy=self.config.cleanup)
            tasks = [DefaceTask(self.env, vols[a].path, vols[a].hash, defacer, cleanup) for a in ids]
            done = self._map(deface_task, tasks, "deface", defacer)
            if defacer == CONTROL:
                return dict(zip(ids, done))
            qc_ids = [a for a, d in zip(ids, done) if isinstance(d, Defaced)]
            by_id = dict(zip(ids, done))
            qc_tasks = [QCTask(self.env, vols[a].path, vols[a].hash, by_id[a], QCParams()) for a in qc_ids]
            for a, assessed in zip(qc_ids, self._map(qc_task, qc_tasks, "qc", defacer)):
                if isinstance(assessed, Defaced):  # a QC crash leaves the defacing without figures, not failed
                    by_id[a] = assessed
            return by_id
        return self._once(("deface", defacer), compute)

    def _acquisitions_defaced_by(self, defacer: str) -> set[str]:
        """The control copies every acquisition (galleries and exposed probes need them); a tested
        defacer defaces the probe scans, and the other acquisitions only for an attacker that
        defaces its gallery too (the ``aware`` scenario)."""
        from defacebench.run.scenarios import get_scenario

        probes = {r.probe.acq_id for r in self.roles}
        if defacer == CONTROL or any(get_scenario(s).defaced_gallery for s in self.config.scenarios):
            return probes | {r.other.acq_id for r in self.roles if r.other is not None}
        return probes

    def refilled(self, defacer: str, method: str) -> dict:
        """acq_id -> the probe refilled by the ``refill`` attacker (:mod:`defacebench.run.refill_stage`)."""
        from defacebench.run.refill_stage import refill_all

        return self._once(("refill", defacer, method), lambda: refill_all(self, defacer, method))

    def sources(self, source: str) -> dict:
        """The volumes a render stage reads: a defacer's defacings, or for ``defacer+method`` the
        probes that attacker refilled (the render, detect and embed maps are keyed by this name)."""
        defacer, _, method = source.partition("+")
        return self.refilled(defacer, method) if method else self.defacings(defacer)

    def rendered(self, defacer: str, renderer: str, grid: tuple | None = None) -> dict[str, Rendered | Failed]:
        """acq_id -> every view of the (defaced) acquisition; ``grid`` overrides the renderer's views.
        ``defacer`` may be a refill source (``defacer+method``, see :meth:`sources`)."""
        def compute():
            done = self.sources(defacer)
            ok = sorted(a for a, d in done.items() if d.ok)
            params = self._grid_params(renderer, grid)
            tasks = [RenderTask(self.env, done[a].path, done[a].hash, renderer, params) for a in ok]
            out = {a: d if isinstance(d, Failed) else Failed("deface", getattr(d, "error", ""))
                   for a, d in done.items() if not d.ok}
            out.update(zip(ok, self._map(render_task, tasks, "render", renderer)))
            return out
        return self._once(("render", defacer, renderer, grid), compute)

    def _grid_params(self, renderer: str, grid: tuple | None):
        """The renderer's params for this render: the grid's views (and lights), or, for the
        single-view scenarios, its first view only (a renderer configured with many views would
        otherwise render them all for nothing); None keeps its registered params."""
        from defacebench.plugins.params import first_view, with_views
        from defacebench.run.viewgrid import STANDARD_LIGHTS

        plugin = self.plugin("renderers", renderer)
        return first_view(plugin) if grid is None else with_views(plugin, grid, STANDARD_LIGHTS)

    def detected(self, defacer: str, renderer: str, detector: str, grid: tuple | None = None) -> dict:
        """acq_id -> one :class:`Detected` (or Failed) per view, or the upstream Failed."""
        def compute():
            from defacebench.plugins.params import view_set_params

            views = self.rendered(defacer, renderer, grid)
            items = [(a, i, v) for a, r in sorted(views.items()) if r.ok for i, v in enumerate(r.views)]
            # a view grid's renders are searched with the detector's view-set params (dlib_hog: no 2x level)
            params = None if grid is None else view_set_params(self.plugin("detectors", detector))
            tasks = [DetectTask(self.env, v.path, v.hash, detector, params) for _, _, v in items]
            out: dict = {a: r for a, r in views.items() if not r.ok}
            per: dict[str, list] = {a: [None] * len(r.views) for a, r in views.items() if r.ok}
            for (a, i, _), found in zip(items, self._map(detect_task, tasks, "detect", detector)):
                per[a][i] = found
            out.update({a: tuple(v) for a, v in per.items()})
            return out
        return self._once(("detect", defacer, renderer, detector, grid), compute)

    def embedded(self, defacer: str, renderer: str, detector: str, recognizer: str,
                 grid: tuple | None = None) -> dict[str, Embedded | Failed]:
        """acq_id -> (n_views, d) embeddings, NaN rows for views without a kept face."""
        def compute():
            views = self.rendered(defacer, renderer, grid)
            found = self.detected(defacer, renderer, detector, grid)
            keep = [(a, i, v, f.best) for a, r in sorted(views.items()) if r.ok
                    for i, (v, f) in enumerate(zip(r.views, found[a])) if isinstance(f, Detected) and f.best]
            chunks = _chunks(keep, max(1, self.config.workers or os.cpu_count() or 1))
            tasks = [EmbedTask(self.env, recognizer, tuple(EmbedItem(v.path, v.hash, face_to_json(b))
                                                           for _, _, v, b in chunk)) for chunk in chunks]
            vectors: dict[tuple[str, int], np.ndarray] = {}
            for chunk, batch in zip(chunks, self._map(embed_task, tasks, "embed", recognizer)):
                if isinstance(batch, Failed):
                    raise EmbeddingError(f"{recognizer} failed to embed: {batch.error}")
                with self._guard:
                    self.embeddings_computed += batch.computed
                vectors.update({(a, i): vec for (a, i, _, _), vec in zip(chunk, batch.vectors)})
            return _assemble(views, vectors)
        return self._once(("embed", defacer, renderer, detector, recognizer, grid), compute)


class EmbeddingError(DefacebenchError):
    """A recognizer failed on a batch: the configuration cannot be evaluated (not a subject failure)."""


def _assemble(views: dict, vectors: dict[tuple[str, int], np.ndarray]) -> dict[str, Embedded | Failed]:
    width = next((v.shape[-1] for v in vectors.values()), 1)
    out: dict[str, Embedded | Failed] = {}
    for a, r in views.items():
        if not r.ok:
            out[a] = r
            continue
        rows = np.full((len(r.views), width), np.nan)
        for i in range(len(r.views)):
            if (a, i) in vectors:
                rows[i] = vectors[(a, i)]
        out[a] = Embedded(tuple(v.view_id for v in r.views), rows)
    return out


def _chunks(items: list, n: int) -> list[list]:
    if not items:
        return []
    size = -(-len(items) // n)
    return [items[i:i + size] for i in range(0, len(items), size)]
