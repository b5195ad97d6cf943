"""Garbage collection: gc of 10,000 finished tasks against ``rm -rf`` of an identical tree (the floor)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from datetime import timedelta
from pathlib import Path

from atlas_tasks import FileStore
from atlas_tasks.models import TaskStatus
from atlas_tasks.retention import gc
from benchmarks import fixtures
from benchmarks._harness import Context, Row, Stats

WS = "ws"
TARGET = 3.0
LOG_LINES = 4
#: Seconds of collection after which no further repetition is run (the row says how many were).
LONG = 60.0


def _seed(ctx: Context, count: int) -> tuple[Path, int]:
    """A home of ``count`` tasks finished long ago, each with a small log and one or two artifacts; its bytes.

    Written directly (a fixture: the store's own encoding of one task, copied with ids and times changed), so
    building 10,000 takes seconds; it is built once and copied for every measurement.
    """
    home = ctx.fresh_dir("gc-template")
    store = FileStore(home)
    task = fixtures.small_task()
    task.status = TaskStatus.COMPLETED
    task.completed_at = fixtures.BASE_TIME - timedelta(days=60)
    ids = fixtures.seed_workspace(store, WS, count, task)
    tasks = store.workspace_path(WS) / "tasks"
    total = 0
    for i, task_id in enumerate(ids):
        folder = tasks / task_id
        log = b"".join(
            b'{"ts":"2025-01-01T00:00:00Z","level":"info","event":"step %d","task_id":"%s","message":"%s"}\n'
            % (n, task_id.encode(), b"m" * 120)
            for n in range(LOG_LINES)
        )
        (folder / "task.log").write_bytes(log)
        (folder / "artifacts").mkdir()
        (folder / "artifacts" / "report.md").write_bytes(b"r" * 1500)
        if i % 2:
            (folder / "artifacts" / "diff.patch").write_bytes(b"d" * 2500)
        total += sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    return home, total


def _copy(template: Path, ctx: Context, name: str) -> Path:
    """A fresh copy of the template home, flushed to disk so that neither side pays for the other's writeback."""
    target = ctx.fresh_dir(name) / "home"
    shutil.copytree(template, target, symlinks=True)
    os.sync()
    return target


def bench_gc(ctx: Context) -> Row:
    """gc (plan, collector lock, a run lease per task, rename into the trash with two fsyncs, removal, workspace ref
    and summary-cache updates) of N finished tasks, against ``rm -rf`` of an identical tasks directory."""
    count = ctx.scale.list_tasks
    template, total = _seed(ctx, count)
    reps = 3 if ctx.scale.name == "full" else 1
    ours: list[float] = []
    floor: list[float] = []
    deleted = 0
    for rep in range(reps):
        if sum(ours) > LONG:  # one collection took minutes: more would only lengthen `make bench`
            reps = rep
            break
        for side in ("gc", "floor") if rep % 2 == 0 else ("floor", "gc"):
            home = _copy(template, ctx, f"gc-{side}-{rep}")
            if side == "gc":
                store = FileStore(home)
                t0 = time.perf_counter()
                report = gc.collect(store, older_than=timedelta(days=30))
                ours.append(time.perf_counter() - t0)
                deleted = len(report.deleted)
            else:
                tasks = home / "workspaces" / WS / "tasks"
                t0 = time.perf_counter()
                subprocess.run(["rm", "-rf", str(tasks)], check=True)  # the floor the issue names
                floor.append(time.perf_counter() - t0)
            shutil.rmtree(home.parent, ignore_errors=True)
    shutil.rmtree(template, ignore_errors=True)
    row = Row(
        "gc",
        f"gc of {count:,} finished tasks (file store; each a small log and 1-2 artifacts, {total / count / 1000:.1f} "
        "KB)",
        f"≤ {TARGET:g}× floor",
        ours=Stats.of(ours),
        ref=Stats.of(floor),
        ref_label="rm -rf of the same tree",
    )
    assert row.ours is not None and row.ref is not None
    row.ratio = row.ours.median / row.ref.median
    row.met = row.ratio <= TARGET and deleted == count
    row.note = (
        f"{deleted:,} deleted, {count / row.ours.median:,.0f} tasks/s, {total / row.ours.median / 1e6:.1f} MB/s freed "
        f"(rm -rf: {count / row.ref.median:,.0f} tasks/s, {total / row.ref.median / 1e6:.1f} MB/s); median of {reps}"
    )
    row.extra |= {"tasks": count, "bytes": total, "deleted": deleted}
    return row
