"""Where the workers of a run were busy or idle, from its task timeline.

Run ``defacebench run`` with ``DEFACEBENCH_TIMELINE=/path/tasks.csv`` (every computed task: stage,
plugin, process, start, wall and CPU seconds), then::

    python scripts/timeline.py /path/tasks.csv [--bucket 10] [--gaps 12]

prints, per worker process: busy seconds and its idle share between the first task's start and the
run's end; the largest idle gaps with the task before and after each (a stage barrier shows as a gap
before the first item of the next map); one text row per ``--bucket`` seconds showing which stage
each worker ran most (upper case busy > 80 %, lower case otherwise, ``.`` idle); and the run's own
process's work (evaluate, montage, finish) which the workers do not share.
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict


def read(path: str) -> list[dict]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["start_s"], r["wall_s"], r["cpu_s"] = float(r["start_s"]), float(r["wall_s"]), float(r["cpu_s"])
        r["end_s"] = r["start_s"] + r["wall_s"]
    return rows


PARENT_STAGES = {"evaluate", "montage", "finish"}


def split_processes(rows: list[dict]) -> tuple[dict[str, list[dict]], list[dict]]:
    """Worker pid -> its tasks (by start), and the run's own process's tasks."""
    parent_pids = {r["pid"] for r in rows if r["stage"] in PARENT_STAGES}
    workers: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if r["pid"] not in parent_pids:
            workers[r["pid"]].append(r)
    for tasks in workers.values():
        tasks.sort(key=lambda r: r["start_s"])
    return dict(workers), [r for r in rows if r["pid"] in parent_pids]


def gaps(tasks: list[dict], end: float) -> list[tuple[float, float, str, str]]:
    """(start, length, task before, task after) of every idle stretch of one worker."""
    out, t, before = [], 0.0, "start"
    for r in tasks:
        if r["start_s"] > t:
            out.append((t, r["start_s"] - t, before, f"{r['stage']} {r['plugin']}"))
        t, before = max(t, r["end_s"]), f"{r['stage']} {r['plugin']}"
    if end > t:
        out.append((t, end - t, before, "end"))
    return out


def bucket_row(tasks: list[dict], t0: float, t1: float) -> str:
    """One character: the stage run longest in [t0, t1), upper case when busy > 80 %."""
    by: dict[str, float] = defaultdict(float)
    for r in tasks:
        overlap = min(r["end_s"], t1) - max(r["start_s"], t0)
        if overlap > 0:
            by[r["stage"]] += overlap
    busy = sum(by.values())
    if busy < 0.05 * (t1 - t0):
        return "."
    letter = max(by, key=by.get)[0]
    return letter.upper() if busy > 0.8 * (t1 - t0) else letter


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("timeline")
    ap.add_argument("--bucket", type=float, default=10.0)
    ap.add_argument("--gaps", type=int, default=12)
    args = ap.parse_args()
    rows = read(args.timeline)
    workers, parent = split_processes(rows)
    end = max(r["end_s"] for r in rows)
    print(f"run span {end:.1f} s (first task to end of finish), {len(workers)} worker process(es)")
    all_gaps = []
    for pid, tasks in sorted(workers.items()):
        busy = sum(r["wall_s"] for r in tasks)
        cpu = sum(r["cpu_s"] for r in tasks)
        print(f"worker {pid}: {len(tasks)} tasks, busy {busy:.1f} s wall ({cpu:.1f} CPU s), idle {end - busy:.1f} s "
              f"({(end - busy) / end:.0%})")
        all_gaps += [(g[1], pid, *g) for g in gaps(tasks, end)]
    by_stage: dict[str, float] = defaultdict(float)
    for r in parent:
        by_stage[r["stage"]] += r["wall_s"]
    print("run's own process: " + ", ".join(f"{s} {v:.1f} s" for s, v in sorted(by_stage.items())))
    print(f"idle gaps >= 0.5 s: {sum(g[0] for g in all_gaps if g[0] >= 0.5):.1f} s in "
          f"{sum(g[0] >= 0.5 for g in all_gaps)}; largest:")
    for length, pid, start, _, before, after in sorted(all_gaps, reverse=True)[:args.gaps]:
        print(f"  {length:6.1f} s at {start:7.1f} s on {pid}: after {before} -> before {after}")
    n = int(end // args.bucket) + 1
    print(f"\none character per {args.bucket:g} s (stage initial; upper case busy > 80 %, '.' idle):")
    for pid, tasks in sorted(workers.items()):
        print(f"{pid:>8} " + "".join(bucket_row(tasks, i * args.bucket, (i + 1) * args.bucket) for i in range(n)))
    print(f"{'run':>8} " + "".join(bucket_row(parent, i * args.bucket, (i + 1) * args.bucket) for i in range(n)))


if __name__ == "__main__":
    main()
