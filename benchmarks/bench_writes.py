"""Durable writes: update, create, append_log, save_versioned_artifact (each against its raw floor)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from atlas_tasks import FileStore
from benchmarks import fixtures, floors
from benchmarks._harness import Context, Row, Stats, measure

UPDATE_FLOOR = "raw write+fsync+rename+dir-fsync"


def _store(ctx: Context, name: str) -> tuple[FileStore, Path]:
    home = ctx.fresh_dir(name)
    store = FileStore(home)
    store.create_workspace("ws")
    floor_dir = home / "floor"
    floor_dir.mkdir()
    return store, floor_dir


def bench_update(ctx: Context) -> Row:
    """Durable update of a ~10 KB task: lock, revision check, JSON encode, temp+fsync+rename+dir fsync."""
    store, floor_dir = _store(ctx, "update")
    task = store.create("ws", fixtures.sample_task(ctx.scale.task_bytes))
    path = store.task_path("ws", task.id) / "task.json"
    state = {"task": task, "round": 0}

    def mutate() -> None:
        state["round"] += 1  # type: ignore[operator]
        state["task"].metadata["round"] = state["round"]  # type: ignore[union-attr]

    def ours() -> None:
        state["task"] = store.update("ws", state["task"])  # type: ignore[arg-type]

    mutate()
    ours()
    data = path.read_bytes()  # the very bytes the store writes

    def floor() -> None:
        floors.durable_replace(str(floor_dir), "task.json", data)

    s = ctx.scale
    stats = measure(
        {"ours": ours, "floor": floor},
        rounds=s.rounds(400),
        warmup=s.warmup(5),
        min_rounds=s.rounds(30),
        budget=s.budget(12),
        setup=mutate,
    )
    row = Row(
        "update",
        f"durable update of a {len(data) / 1000:.1f} KB task (dir fsync, lock, revision check, JSON encode)",
        "≤ 1.3× floor",
        ours=stats["ours"],
        ref=stats["floor"],
        ref_label=UPDATE_FLOOR,
    )
    row.ratio = row.ours.median / row.ref.median  # type: ignore[union-attr]
    row.met = row.ratio <= 1.3

    def profiled() -> None:
        mutate()
        ours()

    ctx.maybe_profile(row, profiled, calls=s.rounds(200))
    return row


def bench_create(ctx: Context) -> Row:
    """create: id reservation (mkdir), task.json written durably, tasks dir fsynced (no workspace.json ref: the
    default ``task_refs="existing"``)."""
    store, floor_dir = _store(ctx, "create")
    template = fixtures.sample_task(ctx.scale.task_bytes)
    first = store.create("ws", template)
    data = (store.task_path("ws", first.id) / "task.json").read_bytes()

    def ours() -> None:
        store.create("ws", template)

    def floor() -> None:
        floors.durable_replace(str(floor_dir), "task.json", data)

    s = ctx.scale
    stats = measure(
        {"ours": ours, "floor": floor},
        rounds=s.rounds(250),
        warmup=s.warmup(3),
        min_rounds=s.rounds(30),
        budget=s.budget(10),
    )
    count = len(stats["ours"].samples) + 4
    row = Row(
        "create",
        "create (id reservation, task.json and the tasks directory made durable)",
        "≤ 2.5× floor",
        ours=stats["ours"],
        ref=stats["floor"],
        ref_label=UPDATE_FLOOR,
        note=f"workspace grows from 1 to {count} tasks during the row",
    )
    row.ratio = row.ours.median / row.ref.median  # type: ignore[union-attr]
    row.met = row.ratio <= 2.5
    ctx.maybe_profile(row, ours, calls=s.rounds(100))
    return row


def bench_create_big(ctx: Context) -> Row:
    """create in a workspace of 100,000 tasks against create in an empty workspace of the same store, interleaved.

    The big workspace is seeded directly (fixtures.seed_workspace: task directories and a workspace.json listing
    every task, as a home the story-era Go or an older atlas-tasks wrote looks) with timestamp ids, the form whose
    id-style check used to read the whole tasks directory.
    """
    s = ctx.scale
    home = ctx.fresh_dir("create-big")
    store = FileStore(home)
    count = s.iter_large
    started = time.perf_counter()
    fixtures.seed_workspace(store, "big", count, fixtures.seed_task())
    seeded = time.perf_counter() - started
    ctx.log(f"seeded {count:,} tasks in {seeded:.1f}s")
    refs_bytes = (store.workspace_path("big") / "workspace.json").stat().st_size
    store.create_workspace("empty")
    template = fixtures.sample_task(s.task_bytes)
    store = FileStore(home)  # fresh: nothing cached from the seeding

    def big() -> None:
        store.create("big", template)

    def empty() -> None:
        store.create("empty", template)

    stats = measure(
        {"big": big, "empty": empty},
        rounds=s.rounds(150),
        warmup=s.warmup(3),
        min_rounds=s.rounds(30),
        budget=s.budget(10),
    )
    row = Row(
        "create_big",
        f"create in a workspace of {count:,} tasks, vs create in an empty workspace",
        "≤ 1.5× empty workspace",
        ours=stats["big"],
        ref=stats["empty"],
        ref_label="create in an empty workspace, same store",
        note=f"workspace.json lists all {count:,} (a {refs_bytes / 1e6:.1f} MB legacy refs array); seeded in "
        f"{seeded:.0f} s",
    )
    row.ratio = row.ours.median / row.ref.median  # type: ignore[union-attr]
    row.met = row.ratio <= 1.5
    ctx.maybe_profile(row, big, calls=s.rounds(50))
    return row


def bench_append_log(ctx: Context) -> Row:
    """append_log of one line against open(O_APPEND) + write + fdatasync + close."""
    store, floor_dir = _store(ctx, "append")
    task = store.create("ws", fixtures.sample_task(ctx.scale.task_bytes))
    entry = {"event": "step completed", "step_name": "analyze", "level": "info", "files": 3}
    line = (
        json.dumps(
            {**entry, "ts": "2025-01-01T00:00:00.123456Z", "workspace_name": "ws", "task_id": task.id},
            separators=(",", ":"),
        )
        + "\n"
    ).encode()
    floor_path = str(floor_dir / "task.log")

    def ours() -> None:
        store.append_log("ws", task.id, entry)

    def floor() -> None:
        floors.durable_append(floor_path, line)

    s = ctx.scale
    stats = measure(
        {"ours": ours, "floor": floor},
        rounds=s.rounds(400),
        warmup=s.warmup(5),
        min_rounds=s.rounds(30),
        budget=s.budget(8),
    )
    row = Row(
        "append_log",
        f"append_log of one line ({len(line)} B)",
        "≤ 1.15× floor",
        ours=stats["ours"],
        ref=stats["floor"],
        ref_label="raw O_APPEND write+fdatasync",
    )
    row.ratio = row.ours.median / row.ref.median  # type: ignore[union-attr]
    row.met = row.ratio <= 1.15
    ctx.maybe_profile(row, ours, calls=s.rounds(200))
    return row


def bench_versioned_artifact(ctx: Context) -> list[Row]:
    """save_versioned_artifact at version ~1000 against the same call at version 1.

    Both sides open a fresh FileStore per save (the per-process "next version" cache is cold, as in a resumed run
    or a CLI call): the worst case. A second row shows the warm case (one process saving version after version).
    """
    s = ctx.scale
    home = ctx.fresh_dir("versions")
    store = FileStore(home)
    store.create_workspace("ws")
    template = fixtures.sample_task(2_000)
    deep = store.create("ws", template)
    payload = json.dumps({"success": False, "output": "FAILED test_rounding " * 80}).encode()
    warm: list[float] = []
    started = time.perf_counter()
    for _ in range(s.versions - 1):
        t0 = time.perf_counter()
        store.save_versioned_artifact("ws", deep.id, "validation.json", payload)
        warm.append(time.perf_counter() - t0)
    ctx.log(f"seeded {s.versions - 1} versions in {time.perf_counter() - started:.1f}s")
    rounds = s.rounds(120)
    fresh_tasks = [store.create("ws", template).id for _ in range(rounds + 4)]
    pool = iter(fresh_tasks)

    def at_deep() -> None:
        FileStore(home).save_versioned_artifact("ws", deep.id, "validation.json", payload)

    def at_first() -> None:
        FileStore(home).save_versioned_artifact("ws", next(pool), "validation.json", payload)

    stats = measure(
        {"deep": at_deep, "first": at_first},
        rounds=rounds,
        warmup=s.warmup(2),
        min_rounds=s.rounds(20),
        budget=s.budget(8),
    )
    n_first = len(stats["deep"].samples)
    row = Row(
        "versioned",
        f"save_versioned_artifact at version {s.versions}+ (fresh store per save)",
        "≤ 1.2× version 1",
        ours=stats["deep"],
        ref=stats["first"],
        ref_label="same call at version 1",
        note=f"versions {s.versions}–{s.versions + n_first + 2}",
    )
    row.ratio = row.ours.median / row.ref.median  # type: ignore[union-attr]
    row.met = row.ratio <= 1.2
    ctx.maybe_profile(row, at_deep, calls=s.rounds(60))

    k = max(1, min(50, len(warm) // 4))
    early, late = Stats.of(warm[:k]), Stats.of(warm[-k:])
    warm_row = Row(
        "versioned_warm",
        f"save_versioned_artifact, one long-lived store: versions {len(warm) - k + 1}–{len(warm)} vs 1–{k}",
        "≤ 1.2× version 1",
        ours=late,
        ref=early,
        ref_label=f"same process, versions 1–{k}",
        note="sequential (not interleaved): read with the noise of the machine in mind",
    )
    warm_row.ratio = late.median / early.median
    warm_row.met = warm_row.ratio <= 1.2
    return [row, warm_row]
