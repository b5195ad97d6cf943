"""Runs of command steps from one event loop (issue #19): ``aio.run_task`` against the sync runner on threads.

* aio_runs: 64 tasks of three command steps each (a shell ``true``: the cost is the runner's, not the command's),
  all started at once with ``aio.run_task`` in one loop, against the same work run by ``executors.run_task`` on 8
  threads (each thread takes the next task from a queue). Reported: tasks/s of both sides, the most threads each
  side had alive beyond its baseline, and the p99 lag of a 1 ms ticker on the loop while the async runs go.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time

from atlas_tasks import FileStore, Step, Task, aio, executors
from atlas_tasks.models import TaskStatus
from benchmarks._harness import Context, Row, Stats, fmt_time
from benchmarks.bench_aio import _lag_p99, _with_ticker

KEYS = ("aio_runs",)
THREADS = 8


def _sizes(ctx: Context) -> int:
    return 64 if ctx.scale.name == "full" else 8


def _make(store: FileStore, count: int) -> list[str]:
    steps = [Step(name=f"s{i}", type="validation", commands=["true"]) for i in range(3)]
    return [store.create("ws", Task(description="bench", steps=steps)).id for _ in range(count)]


def _threads_side(store: FileStore, ids: list[str]) -> tuple[float, int]:
    """Tasks/s of the sync runner on THREADS threads, and the most threads alive beyond the baseline."""
    todo: queue.Queue[str] = queue.Queue()
    for task_id in ids:
        todo.put(task_id)
    baseline = threading.active_count()
    peak = 0
    failures: list[BaseException] = []

    def worker() -> None:
        while True:
            try:
                task_id = todo.get_nowait()
            except queue.Empty:
                return
            try:
                with store.run("ws", task_id) as live:
                    executors.run_task(live)
            except BaseException as exc:
                failures.append(exc)

    pool = [threading.Thread(target=worker) for _ in range(THREADS)]
    start = time.perf_counter()
    for t in pool:
        t.start()
    while any(t.is_alive() for t in pool):
        peak = max(peak, threading.active_count() - baseline)
        time.sleep(0.01)
    took = time.perf_counter() - start
    if failures:
        raise failures[0]
    return len(ids) / took, peak


def _async_side(store: FileStore, ids: list[str]) -> tuple[float, int, list[float]]:
    """Tasks/s of aio.run_task with every task started at once, the most threads alive beyond the baseline (the
    store's pool included), and the loop's ticker lags meanwhile."""
    peak = 0

    async def main() -> tuple[float, list[float]]:
        nonlocal peak
        baseline = threading.active_count()
        async with aio.wrap(store) as astore:
            start = time.perf_counter()
            everything = asyncio.gather(*(aio.run_task(astore, "ws", task_id) for task_id in ids))

            async def watch() -> None:
                nonlocal peak
                while not everything.done():
                    peak = max(peak, threading.active_count() - baseline)
                    await asyncio.sleep(0.01)

            watcher = asyncio.create_task(watch())
            lags = await _with_ticker(everything)
            took = time.perf_counter() - start
            await watcher
        return len(ids) / took, lags

    rate, lags = asyncio.run(main())
    return rate, peak, lags


def bench_aio_runs(ctx: Context) -> list[Row]:
    count = _sizes(ctx)
    store = FileStore(ctx.fresh_dir("aio-runs"))
    workdir = ctx.fresh_dir("aio-runs-worktree")
    store.create_workspace("ws", exist_ok=True, worktree_path=str(workdir))
    # Alternate the sides over two rounds each, so a machine that gets busier midway weighs on both.
    rates: dict[str, list[float]] = {"async": [], "threads": []}
    peaks = {"async": 0, "threads": 0}
    lags: list[float] = []
    every: list[str] = []
    for _ in range(2):
        ids = _make(store, count)
        every += ids
        rate, peak, seen = _async_side(store, ids)
        rates["async"].append(rate)
        peaks["async"] = max(peaks["async"], peak)
        lags += seen
        ids = _make(store, count)
        every += ids
        rate, peak = _threads_side(store, ids)
        rates["threads"].append(rate)
        peaks["threads"] = max(peaks["threads"], peak)
    ours, ref = max(rates["async"]), max(rates["threads"])
    row = Row(
        "aio_runs",
        f"{count} tasks of 3 command steps, all at once with aio.run_task in one loop, tasks/s",
        f"≥ {THREADS} threads with the sync runner",
        ours_text=f"{ours:,.1f} tasks/s (threads beyond baseline: {peaks['async']})",
        ref_text=f"{ref:,.1f} tasks/s ({THREADS} threads, sync runner; peak {peaks['threads']} threads)",
        ref_label=f"{THREADS} threads, executors.run_task",
        ratio=ours / ref,
        note=f"best of 2 rounds per side, alternated; ratio = async ÷ threads; the loop's 1 ms ticker meanwhile: "
        f"p99 {fmt_time(_lag_p99(lags))} over {Stats.of(lags).n} ticks",
    )
    row.met = row.ratio is not None and row.ratio >= 1.0
    row.extra.update(async_threads=peaks["async"], thread_threads=peaks["threads"])
    unfinished = [t for t in every if store.get("ws", t).status != TaskStatus.COMPLETED]
    if unfinished:
        row.status, row.met = "error", False
        row.note += f"; {len(unfinished)} task(s) did not complete"
    return [row]
