"""Reads: get, list of 10,000 tasks (full, summaries, newest 20), list_artifacts; and create in a big workspace."""

from __future__ import annotations

import inspect
import os
import time
from dataclasses import dataclass
from pathlib import Path

from atlas_tasks import FileStore, Task
from benchmarks import fixtures, floors
from benchmarks._harness import ERROR, Context, Row, fmt_time, measure

LIST_FLOOR = "raw scandir + read + json.loads of every task.json"
LIST_KEEP_FLOOR = "raw scandir + read + json.loads of every task.json, kept in a list, collector paused"


@dataclass
class BigWorkspace:
    store: FileStore
    home: Path
    workspace: str
    ids: list[str]
    tasks_dir: str


def big_workspace(ctx: Context) -> BigWorkspace:
    """The shared 10,000-task workspace (seeded once per run)."""
    big = ctx.fixtures.get("big")
    if big is None:
        home = ctx.fresh_dir("big")
        store = FileStore(home)
        started = time.perf_counter()
        ids = fixtures.seed_workspace(store, "big", ctx.scale.list_tasks, fixtures.sample_task(ctx.scale.task_bytes))
        ctx.log(f"seeded {len(ids)} tasks in {time.perf_counter() - started:.1f}s")
        big = BigWorkspace(store, home, "big", ids, str(store.workspace_path("big") / "tasks"))
        ctx.fixtures["big"] = big
    return big


def bench_get(ctx: Context) -> Row:
    big = big_workspace(ctx)
    task_id = big.ids[len(big.ids) // 2]
    path = f"{big.tasks_dir}/{task_id}/task.json"
    size = os.path.getsize(path)
    store = big.store

    def ours() -> None:
        store.get(big.workspace, task_id)

    def floor() -> None:
        floors.read_json(path)

    s = ctx.scale
    stats = measure(
        {"ours": ours, "floor": floor},
        rounds=s.rounds(3000),
        warmup=s.warmup(50),
        min_rounds=s.rounds(200),
        budget=s.budget(6),
    )
    row = Row(
        "get",
        f"get of a {size / 1000:.1f} KB task, full typed model",
        "≤ 100 µs and ≤ 3× floor",
        ours=stats["ours"],
        ref=stats["floor"],
        ref_label="raw read + json.loads",
    )
    row.ratio = row.ours.median / row.ref.median  # type: ignore[union-attr]
    row.met = row.ours.median <= 100e-6 and row.ratio <= 3  # type: ignore[union-attr]
    ctx.maybe_profile(row, ours, calls=s.rounds(2000))
    return row


def _check_listing(tasks: list[Task], big: BigWorkspace, expected: int) -> str:
    if len(tasks) != expected:
        return f"returned {len(tasks)} tasks, expected {expected}"
    if expected and tasks[0].id != big.ids[-1]:
        return f"not newest first: first is {tasks[0].id}, expected {big.ids[-1]}"
    return ""


def bench_list(ctx: Context) -> Row:
    big = big_workspace(ctx)
    n = len(big.ids)
    result: dict[str, list[Task]] = {}

    def ours() -> None:
        result["tasks"] = big.store.list(big.workspace)

    def floor() -> None:
        # Kept like ours (the previous round's documents are freed inside the next round on both sides).
        result["floor"] = floors.load_all_tasks(big.tasks_dir)

    def discarding() -> None:
        floors.read_all_tasks(big.tasks_dir)

    s = ctx.scale
    stats = measure(
        {"ours": ours, "floor": floor, "discarding": discarding},
        rounds=s.rounds(9),
        warmup=s.warmup(1),
        min_rounds=3,
        budget=s.budget(30),
    )
    row = Row(
        "list",
        f"list {n:,} tasks, full typed models, newest first — the floor keeps its documents as a listing must "
        f"(the same reading discarding each document: {fmt_time(stats['discarding'].median)}, "
        f"{stats['ours'].median / stats['discarding'].median:.2f}×)",
        "≤ 1.5× floor (Go ATLAS ~2.5×)",
        ours=stats["ours"],
        ref=stats["floor"],
        ref_label=LIST_KEEP_FLOOR,
    )
    row.ratio = row.ours.median / row.ref.median  # type: ignore[union-attr]
    row.met = row.ratio <= 1.5
    wrong = _check_listing(result["tasks"], big, n)
    if wrong:
        row.status, row.met, row.note = ERROR, False, wrong
    ctx.maybe_profile(row, ours, calls=1, force=True)
    return row


def bench_list_summaries(ctx: Context) -> Row:
    big = big_workspace(ctx)
    n = len(big.ids)
    row = Row(
        "list_summaries",
        f"list summaries of {n:,} tasks (id, status, times, description)",
        "≤ 0.2 s",
        ref_label=LIST_FLOOR,
    )
    list_summaries = getattr(big.store, "list_summaries", None)
    if list_summaries is None:
        return row.missing("FileStore.list_summaries(workspace) -> list[TaskSummary]")
    result: dict[str, list[object]] = {}

    def ours() -> None:
        summaries = list_summaries(big.workspace)
        # Touch every field the row promises, so a lazy result is paid for here.
        touched = [(x.id, x.status, x.created_at, x.updated_at, x.description) for x in summaries]
        result["summaries"] = summaries
        result["touched"] = touched

    def floor() -> None:
        floors.read_all_tasks(big.tasks_dir)

    s = ctx.scale
    stats = measure(
        {"ours": ours, "floor": floor}, rounds=s.rounds(9), warmup=s.warmup(1), min_rounds=3, budget=s.budget(10)
    )
    row.ours, row.ref = stats["ours"], stats["floor"]
    row.ratio = row.ours.median / row.ref.median
    row.met = row.ours.median <= 0.2
    got = result["summaries"]
    if len(got) != n or (n and got[0].id != big.ids[-1]):  # type: ignore[attr-defined]
        row.status, row.met = ERROR, False
        row.note = f"returned {len(got)} summaries (expected {n}, newest first)"
    ctx.maybe_profile(row, ours, calls=1)
    return row


def bench_list_newest(ctx: Context) -> Row:
    big = big_workspace(ctx)
    n = len(big.ids)
    row = Row(
        "list_newest",
        f"list newest 20 of {n:,} tasks",
        "≤ 20 ms",
        ref_label="raw scandir + sort + read/json.loads of 20",
    )
    if "limit" not in inspect.signature(big.store.list).parameters:
        return row.missing("FileStore.list(workspace, *, limit=20)")
    result: dict[str, list[Task]] = {}

    def ours() -> None:
        result["tasks"] = big.store.list(big.workspace, limit=20)  # type: ignore[call-arg]

    def floor() -> None:
        floors.newest_n(big.tasks_dir, 20)

    s = ctx.scale
    stats = measure(
        {"ours": ours, "floor": floor},
        rounds=s.rounds(100),
        warmup=s.warmup(1),
        min_rounds=3,
        budget=s.budget(5),
    )
    row.ours, row.ref = stats["ours"], stats["floor"]
    row.ratio = row.ours.median / row.ref.median
    row.met = row.ours.median <= 0.020
    got = result["tasks"]
    expected = big.ids[::-1][:20]
    if [t.id for t in got] != expected:
        row.status, row.met = ERROR, False
        row.note = f"returned {[t.id for t in got][:3]}…, expected the 20 newest ({expected[:3]}…)"
    ctx.maybe_profile(row, ours, calls=s.rounds(20))
    return row


def bench_list_artifacts(ctx: Context) -> Row:
    s = ctx.scale
    home = ctx.fresh_dir("artifacts")
    store = FileStore(home)
    store.create_workspace("ws")
    task = store.create("ws", fixtures.sample_task(2_000))
    directory = store.task_path("ws", task.id) / "artifacts"
    fixtures.seed_artifacts(directory, s.artifact_files)
    result: dict[str, list[str]] = {}

    def ours() -> None:
        result["names"] = store.list_artifacts("ws", task.id)

    def floor() -> None:
        floors.scandir_sorted(str(directory))

    stats = measure(
        {"ours": ours, "floor": floor},
        rounds=s.rounds(300),
        warmup=s.warmup(5),
        min_rounds=s.rounds(30),
        budget=s.budget(6),
    )
    row = Row(
        "list_artifacts",
        f"list_artifacts with {s.artifact_files:,} files",
        "≤ 2× floor",
        ours=stats["ours"],
        ref=stats["floor"],
        ref_label="raw os.scandir + sort",
    )
    row.ratio = row.ours.median / row.ref.median  # type: ignore[union-attr]
    row.met = row.ratio <= 2
    if len(result["names"]) != s.artifact_files:
        row.status, row.met = ERROR, False
        row.note = f"returned {len(result['names'])} names"
    ctx.maybe_profile(row, ours, calls=s.rounds(200))
    return row


# -- 100,000 tasks -------------------------------------------------------------------------------------------------

#: One task in this many of the 100,000-task workspace is mid-run (running, no live runner: a crashed run); the
#: rest are completed, as in a workspace used for a year.
HUGE_ACTIVE_EVERY = 100
HUGE_LIST_FLOOR = "raw scandir + stat of every task.json (what checking a cache against the disk costs)"


def huge_workspace(ctx: Context) -> BigWorkspace:
    """The shared 100,000-task workspace of ~2-4 KB tasks (seeded once per run; the setup time is logged and kept)."""
    huge = ctx.fixtures.get("huge")
    if huge is None:
        home = ctx.fresh_dir("huge")
        store = FileStore(home)
        started = time.perf_counter()
        ids = fixtures.seed_workspace(
            store,
            "huge",
            ctx.scale.iter_large,
            fixtures.small_task(),
            finished=fixtures.finished_task(),
            active_every=HUGE_ACTIVE_EVERY,
        )
        seconds = time.perf_counter() - started
        ctx.log(f"seeded {len(ids):,} tasks in {seconds:.1f}s (workspace 'huge')")
        huge = BigWorkspace(store, home, "huge", ids, str(store.workspace_path("huge") / "tasks"))
        ctx.fixtures["huge"] = huge
        ctx.fixtures["huge_seconds"] = seconds
    return huge


def stat_all_tasks(tasks_dir: str) -> int:
    """scandir of the tasks directory, then a stat of every task.json: the least a validated cache listing does."""
    fd = os.open(tasks_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        count = 0
        for entry in os.scandir(fd):
            if not entry.name.startswith("."):
                os.stat(f"{entry.name}/task.json", dir_fd=fd, follow_symlinks=False)
                count += 1
        return count
    finally:
        os.close(fd)


def bench_list_summaries_huge(ctx: Context) -> Row:
    huge = huge_workspace(ctx)
    n = len(huge.ids)
    row = Row(
        "list_summaries_100k",
        f"list summaries of {n:,} tasks (id, status, times, description), the cache warm in this process",
        "≤ 1 s",
        ref_label=HUGE_LIST_FLOOR,
    )
    result: dict[str, list[object]] = {}

    def ours() -> None:
        summaries = huge.store.list_summaries(huge.workspace)
        touched = [(x.id, x.status, x.created_at, x.updated_at, x.description) for x in summaries]
        result["summaries"] = summaries
        result["touched"] = touched

    def floor() -> None:
        stat_all_tasks(huge.tasks_dir)

    s = ctx.scale
    stats = measure(
        {"ours": ours, "floor": floor}, rounds=s.rounds(5), warmup=s.warmup(1), min_rounds=3, budget=s.budget(15)
    )
    row.ours, row.ref = stats["ours"], stats["floor"]
    row.ratio = row.ours.median / row.ref.median
    row.met = row.ours.median <= 1.0
    got = result["summaries"]
    if len(got) != n or (n and got[0].id != huge.ids[-1]):  # type: ignore[attr-defined]
        row.status, row.met = ERROR, False
        row.note = f"returned {len(got)} summaries (expected {n}, newest first)"
    else:
        # A fresh store (another process) pays for decoding the cache file once: shown beside the row.
        started = time.perf_counter()
        FileStore(huge.home).list_summaries(huge.workspace)
        cold = time.perf_counter() - started
        seeded = ctx.fixtures.get("huge_seconds")
        row.note = f"a fresh FileStore's first call {fmt_time(cold)}" + (
            f"; workspace seeded in {seeded:.1f} s" if seeded is not None else ""
        )
    ctx.maybe_profile(row, ours, calls=1)
    return row


def bench_list_newest_huge(ctx: Context) -> Row:
    huge = huge_workspace(ctx)
    n = len(huge.ids)
    row = Row(
        "list_newest_100k",
        f"list newest 20 of {n:,} tasks",
        "≤ 20 ms",
        ref_label="raw scandir + sort + read/json.loads of 20",
    )
    result: dict[str, list[Task]] = {}

    def ours() -> None:
        result["tasks"] = huge.store.list(huge.workspace, limit=20)

    def floor() -> None:
        floors.newest_n(huge.tasks_dir, 20)

    s = ctx.scale
    stats = measure(
        {"ours": ours, "floor": floor}, rounds=s.rounds(60), warmup=s.warmup(2), min_rounds=3, budget=s.budget(6)
    )
    row.ours, row.ref = stats["ours"], stats["floor"]
    row.ratio = row.ours.median / row.ref.median
    row.met = row.ours.median <= 0.020
    got = result["tasks"]
    expected = huge.ids[::-1][:20]
    if [t.id for t in got] != expected:
        row.status, row.met = ERROR, False
        row.note = f"returned {[t.id for t in got][:3]}…, expected the 20 newest ({expected[:3]}…)"
    else:
        started = time.perf_counter()
        FileStore(huge.home).list(huge.workspace, limit=20)
        row.note = f"a fresh FileStore's first call {fmt_time(time.perf_counter() - started)}"
    ctx.maybe_profile(row, ours, calls=s.rounds(20))
    return row
