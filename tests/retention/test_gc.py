"""Garbage collection and pins (atlas_tasks.retention): what gc deletes, what it keeps, and one collector at a time."""

from __future__ import annotations

import secrets
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atlas_tasks import FileStore
from atlas_tasks.errors import CollectorBusyError, TaskNotFoundError, TaskRunningError
from atlas_tasks.models import Task, TaskStatus, Transition, utcnow
from atlas_tasks.retention import gc, pins
from atlas_tasks.store import Store
from atlas_tasks.testing.conformance import sample_task

ALL_KINDS = ("file", "memory", "postgres")
TERMINAL = {"completed", "rejected", "abandoned"}
STATUSES = ["completed", "rejected", "abandoned", "interrupted", "validation_failed", "running", "pending"]


def finished(store: Store, ws: str, status: str, age: timedelta, **metadata: Any) -> Task:
    """A stored task that reached ``status`` ``age`` ago (created now, so created_at is never its finish time)."""
    when = utcnow() - age
    fields: dict[str, Any] = {
        "status": TaskStatus(status),
        "transitions": [Transition(from_status="running", to_status=status, timestamp=when)],
        "metadata": metadata,
    }
    if status in TERMINAL:
        fields["completed_at"] = when
    return store.create(ws, sample_task(**fields))


@dataclass
class Spec:
    status: str
    age_hours: int
    pinned: bool
    leased: bool
    fork_of: int | None


def expected(specs: list[Spec], *, older: int | None, keep_last: int | None, forked: bool) -> set[int]:
    """The indexes gc must delete, from the rules in docs/retention.md, worked out independently of the code."""
    candidates = [i for i, s in enumerate(specs) if s.status in TERMINAL and not s.pinned and not s.leased]
    candidates.sort(key=lambda i: specs[i].age_hours)  # newest first
    doomed = set()
    for rank, i in enumerate(candidates):
        if keep_last is not None and rank < keep_last:
            continue
        if older is not None and specs[i].age_hours < older:
            continue
        doomed.add(i)
    while not forked:
        kept_sources = {s.fork_of for i, s in enumerate(specs) if i not in doomed and s.fork_of is not None}
        if not doomed & kept_sources:
            break
        doomed -= kept_sources
    return doomed


spec = st.builds(
    Spec,
    status=st.sampled_from(STATUSES),
    age_hours=st.integers(0, 60 * 24),
    pinned=st.booleans(),
    leased=st.booleans(),
    fork_of=st.none() | st.integers(0, 10),
)


@pytest.mark.stores(*ALL_KINDS)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    specs=st.lists(spec, min_size=1, max_size=10),
    older=st.none() | st.sampled_from([24, 10 * 24, 30 * 24]),
    keep_last=st.none() | st.integers(0, 3),
    forked=st.booleans(),
)
def test_gc_deletes_exactly_the_eligible_tasks(
    store: Store, specs: list[Spec], older: int | None, keep_last: int | None, forked: bool
) -> None:
    """gc never deletes a non-terminal, leased or pinned task, and deletes exactly the ones the rules make eligible."""
    ws = f"ws-{secrets.token_hex(3)}"
    store.create_workspace(ws)
    ids: list[str] = []
    leases = []
    for i, s in enumerate(specs):
        # Distinct finish times (hours apart plus the index in seconds): "the N newest" is never a tie.
        meta: dict[str, Any] = {}
        if s.pinned:
            meta["pinned"] = {"at": "2026-01-01T00:00:00Z", "by": {}, "reason": "test"}
        if s.fork_of is not None and s.fork_of < i:
            meta["forked_from"] = {"task_id": ids[s.fork_of]}
        else:
            s.fork_of = None
        ids.append(finished(store, ws, s.status, timedelta(hours=s.age_hours, seconds=i), **meta).id)
        if s.leased:
            leases.append(store.acquire_lease(ws, ids[-1], {"pid": 1, "host": "runner"}))
    for i, s in enumerate(specs):
        s.age_hours = s.age_hours * 10_000 + i  # the oracle's clock: hours first, then the added seconds
    older_scaled = older * 10_000 if older is not None else None
    try:
        report = gc.collect(
            store,
            workspace=ws,
            older_than=timedelta(hours=older) if older is not None else None,
            keep_last=keep_last,
            include_forked=forked,
        )
    finally:
        for lease in leases:
            lease.release()
    want = {ids[i] for i in expected(specs, older=older_scaled, keep_last=keep_last, forked=forked)}
    assert {item.id for item in report.deleted} == want
    left = {task.id for task in store.list(ws)}
    assert left == set(ids) - want


def _fill(store: Store, ws: str) -> list[str]:
    """Old finished tasks with logs and artifacts, plus one young, one pinned and one running task."""
    ids = []
    for n in range(4):
        task = finished(store, ws, "completed", timedelta(days=40 + n))
        store.append_log(ws, task.id, {"level": "info", "msg": f"line {n}"})
        store.save_artifact(ws, task.id, "out.txt", "x" * (100 * (n + 1)))
        ids.append(task.id)
    finished(store, ws, "completed", timedelta(days=1))
    finished(store, ws, "abandoned", timedelta(days=90), pinned={"at": "x", "by": {}, "reason": "keep"})
    finished(store, ws, "interrupted", timedelta(days=90))
    return ids


@pytest.mark.stores(*ALL_KINDS)
def test_dry_run_report_is_the_real_runs_report(store: Store, ws: str) -> None:
    """A dry run deletes nothing and reports the same ids, bytes and skips as the real run that follows it."""
    ids = _fill(store, ws)
    now = utcnow()
    dry = gc.collect(store, workspace=ws, older_than=timedelta(days=30), now=now, dry_run=True)
    assert len(store.list(ws)) == 7
    real = gc.collect(store, workspace=ws, older_than=timedelta(days=30), now=now)
    assert dry.dry_run and not real.dry_run
    assert {**real.document(), "dry_run": True} == dry.document()
    assert sorted(i.id for i in real.deleted) == sorted(ids)
    assert real.bytes_freed > 100 + 200 + 300 + 400
    assert {s.reason for s in real.skipped} == {"recent", "pinned"}
    for task_id in ids:
        with pytest.raises(TaskNotFoundError):
            store.get(ws, task_id)


@pytest.mark.stores(*ALL_KINDS)
def test_a_task_pinned_after_the_plan_is_kept(store: Store, ws: str) -> None:
    """The collector reads each task again under its lease: a pin written after the plan keeps it."""
    task = finished(store, ws, "completed", timedelta(days=40))
    planned = gc.plan(store, workspace=ws, older_than=timedelta(days=30))
    pins.pin(store, ws, task.id, "just in time")
    report = gc.collect(store, planned)
    assert report.deleted == [] and [s.reason for s in report.skipped] == ["pinned"]
    assert store.get(ws, task.id).id == task.id


@pytest.mark.stores(*ALL_KINDS)
def test_a_runner_that_starts_after_the_plan_keeps_its_task(store: Store, ws: str) -> None:
    """The collector takes each task's run lease before deleting: a runner holding it since the plan keeps it."""
    task = finished(store, ws, "completed", timedelta(days=40))
    planned = gc.plan(store, workspace=ws, older_than=timedelta(days=30))
    lease = store.acquire_lease(ws, task.id, {"pid": 99, "host": "late-runner"})
    try:
        report = gc.collect(store, planned)
    finally:
        lease.release()
    assert report.deleted == [] and [(s.reason, s.detail) for s in report.skipped] == [
        ("running", "pid 99 on late-runner")
    ]
    assert store.get(ws, task.id).id == task.id


@pytest.mark.stores(*ALL_KINDS)
def test_pin_and_unpin_keep_a_record_and_refuse_a_running_task(store: Store, ws: str) -> None:
    """pin writes {at, by, reason}, unpin removes it, and both are refused while a live runner holds the task."""
    task = finished(store, ws, "completed", timedelta(days=1))
    pinned = pins.pin(store, ws, task.id, "audit")
    record = pins.pin_of(pinned)
    assert record is not None and record["reason"] == "audit" and record["at"] and record["by"]
    assert pins.pin_of(pins.unpin(store, ws, task.id)) is None
    lease = store.acquire_lease(ws, task.id, {"pid": 42, "host": "elsewhere"})
    try:
        with pytest.raises(TaskRunningError, match="pid 42 on elsewhere"):
            pins.pin(store, ws, task.id)
    finally:
        lease.release()
    assert pins.pin_of(store.get(ws, task.id)) is None


@pytest.mark.stores(*ALL_KINDS)
def test_a_second_collector_in_this_process_is_told_who_collects(store: Store, ws: str) -> None:
    """While one collector holds the store's lock, another gets CollectorBusyError naming it."""
    lock = store.collector_lock({"pid": 4242, "host": "collector-host", "since": "then"})  # type: ignore[attr-defined]
    try:
        with pytest.raises(CollectorBusyError) as caught:
            gc.collect(store, workspace=ws, keep_last=0)
        assert caught.value.holder.get("host") in ("collector-host", "collector-h")  # postgres: from its session
    finally:
        lock.release()
    gc.collect(store, workspace=ws, keep_last=0)  # released: the next one runs


_HOLD = textwrap.dedent(
    """
    import sys, time
    from atlas_tasks import FileStore
    lock = FileStore(sys.argv[1]).collector_lock({"pid": "child", "host": "child-host"})
    print("held", flush=True)
    time.sleep(120)
    """
)


@pytest.mark.stores("file")
def test_two_collector_processes_one_runs_and_the_other_is_busy(store: FileStore, ws: str) -> None:
    """A collector in another process holds the lock: this one gets CollectorBusyError; after a kill -9 it runs."""
    with subprocess.Popen([sys.executable, "-c", _HOLD, str(store.home)], stdout=subprocess.PIPE, text=True) as child:
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "held"
            with pytest.raises(CollectorBusyError, match="child-host"):
                gc.collect(store, workspace=ws, keep_last=0)
        finally:
            child.kill()
            child.wait(timeout=30)
    gc.collect(store, workspace=ws, keep_last=0)


_COLLECT = textwrap.dedent(
    """
    import sys
    from datetime import timedelta
    from atlas_tasks import FileStore
    from atlas_tasks.retention import gc
    def tick(done, total, item):
        print(done, flush=True)
        sys.stdin.readline()  # the test decides when the next task is deleted (and kills us between two)
    store = FileStore(sys.argv[1])
    store.delete_batch = 1  # one task per batch: progress is reported between two deletes
    gc.collect(store, workspace=sys.argv[2], older_than=timedelta(days=30), progress=tick)
    """
)


@pytest.mark.stores("file")
def test_a_killed_collector_leaves_tasks_whole_or_gone_and_the_next_gc_finishes(store: FileStore, ws: str) -> None:
    """SIGKILL between deletes: every task reads whole or is gone, and the next gc deletes the rest."""
    ids = _fill(store, ws)
    args = [sys.executable, "-c", _COLLECT, str(store.home), ws]
    with subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout is not None and child.stdout.readline().strip() == "1"
        child.kill()
        child.wait(timeout=30)
    fresh = FileStore(store.home)
    present = [t for t in ids if t in {task.id for task in fresh.list(ws)}]
    assert len(present) == len(ids) - 1
    for task_id in present:
        assert fresh.get(ws, task_id).id == task_id and fresh.get_artifact(ws, task_id, "out.txt")
    report = gc.collect(fresh, workspace=ws, older_than=timedelta(days=30))
    assert sorted(i.id for i in report.deleted) == sorted(present)


_COLLECT_FREELY = textwrap.dedent(
    """
    import sys
    from datetime import timedelta
    from atlas_tasks import FileStore
    from atlas_tasks.retention import gc
    def tick(done, total, item):
        if done == 1:
            print("deleting", flush=True)  # the test kills us from here on, wherever the next delete stands
    gc.collect(FileStore(sys.argv[1]), workspace=sys.argv[2], older_than=timedelta(days=30), progress=tick)
    """
)


@pytest.mark.stores("file")
def test_a_collector_killed_anywhere_leaves_no_torn_task_and_doctor_fix_cleans_up(store: FileStore, ws: str) -> None:
    """SIGKILL while deletes run: tasks read whole or are gone, doctor --fix leaves a clean store, gc finishes."""
    ids = [finished(store, ws, "completed", timedelta(days=40)).id for _ in range(40)]
    for task_id in ids:
        store.save_artifact(ws, task_id, "out.txt", "y" * 5000)
    args = [sys.executable, "-c", _COLLECT_FREELY, str(store.home), ws]
    with subprocess.Popen(args, stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout is not None and child.stdout.readline().strip() == "deleting"
        child.kill()
        child.wait(timeout=30)
    fresh = FileStore(store.home)
    listed = fresh.list(ws)
    assert listed.errors == []
    for task in listed:
        assert fresh.get_artifact(ws, task.id, "out.txt") == b"y" * 5000
    fresh.check(fix=True)
    assert fresh.check().ok
    report = gc.collect(fresh, workspace=ws, older_than=timedelta(days=30))
    assert len(report.deleted) == len(listed) and fresh.list(ws) == []
    assert not any((store.home / ".atlas-tasks" / "trash").iterdir())
