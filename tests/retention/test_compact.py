"""Compaction (retention.compact, store.delete_artifact, store.rotate_log): nothing the task's state needs is lost."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import textwrap
import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atlas_tasks import names as N
from atlas_tasks.errors import ArtifactNotFoundError, TaskRunningError
from atlas_tasks.models import StepResult
from atlas_tasks.retention.compact import compact, plan_compaction
from atlas_tasks.store import RunLeases, Store
from atlas_tasks.store.base import CRASH_AT_ENV, BaseStore
from atlas_tasks.store.urls import open_store
from atlas_tasks.testing.conformance import sample_task

ALL_KINDS = ("file", "memory", "postgres")
PROCESS_KINDS = ("file", "postgres")  # stores another process can open too


def live_log(store: Store, ws: str, task_id: str) -> bytes:
    """The live task.log bytes (the primitive every backend has: the contract only hands out parsed entries)."""
    assert isinstance(store, BaseStore)
    return store._read_log(ws, task_id)[0]


def whole_log(store: Store, ws: str, task_id: str) -> bytes:
    """Every rotated segment, oldest first, then the live log: what the task ever logged."""
    segments = []
    for name in store.list_artifacts(ws, task_id):
        folder, _, leaf = name.rpartition("/")
        version = N.version_of(leaf, "task.log.gz") if folder == "logs" else None
        if version is not None:
            segments.append((version, gzip.decompress(store.get_artifact(ws, task_id, name))))
    return b"".join(data for _, data in sorted(segments)) + live_log(store, ws, task_id)


def fill_log(store: Store, ws: str, task_id: str, lines: int, start: int = 0) -> None:
    for i in range(start, start + lines):
        store.append_log(ws, task_id, {"event": "line", "n": i, "pad": "x" * 40})


versions_strategy = st.lists(st.integers(1, 7), min_size=1, max_size=3)  # versions saved per base name


@pytest.mark.stores(*ALL_KINDS)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(counts=versions_strategy, keep=st.integers(1, 4), data=st.data())
def test_never_drops_a_referenced_version_or_the_newest(
    store: Store, ws: str, counts: list[int], keep: int, data: st.DataObject
) -> None:
    """Over random version sets, gaps and references: exactly the unreferenced versions beyond the newest N go."""
    task = store.create(ws, sample_task())
    saved: dict[str, list[str]] = {}
    for b, count in enumerate(counts):
        base = f"sub/out{b}.json" if b % 2 else f"out{b}.json"
        saved[base] = [store.save_versioned_artifact(ws, task.id, base, f"{base} {i}") for i in range(count)]
        # Gaps: versions deleted earlier (never the newest), as a previous compaction leaves them.
        for name in data.draw(st.lists(st.sampled_from(saved[base][:-1]), unique=True)) if count > 1 else []:
            store.delete_artifact(ws, task.id, name)
            saved[base].remove(name)
    store.save_artifact(ws, task.id, "notes.md", "plain")
    everything = [name for names in saved.values() for name in names]
    refs = data.draw(st.lists(st.sampled_from(everything), unique=True))
    results = [StepResult(step_index=i, artifact_path=f"artifacts/{name}") for i, name in enumerate(refs)]
    store.modify(ws, task.id, lambda t: setattr(t, "step_results", results))

    report = compact(store, ws, task.id, keep_versions=keep)

    left = set(store.list_artifacts(ws, task.id))
    expected_gone = {n for names in saved.values() for n in names[:-keep] if n not in refs}
    assert {d.name for d in report.dropped} == expected_gone
    assert left == ({*everything, "notes.md"} - expected_gone)
    assert set(refs) <= left and {names[-1] for names in saved.values()} <= left


@pytest.mark.stores(*ALL_KINDS)
def test_dry_run_reports_exactly_what_the_real_run_does(store: Store, ws: str) -> None:
    """compact --dry-run's report equals the real run's, and the dry run changed nothing."""
    task = store.create(ws, sample_task())
    for i in range(6):
        store.save_versioned_artifact(ws, task.id, "v.json", f"{i}" * (i + 1))
    fill_log(store, ws, task.id, 200)
    before = (store.list_artifacts(ws, task.id), live_log(store, ws, task.id))
    dry = compact(store, ws, task.id, keep_versions=2, max_log_bytes=4000, dry_run=True)
    assert (store.list_artifacts(ws, task.id), live_log(store, ws, task.id)) == before
    real = compact(store, ws, task.id, keep_versions=2, max_log_bytes=4000)
    assert dry.to_json() == {**real.to_json(), "dry_run": True}
    assert real.log.segment == "logs/task.log.1.gz" and len(real.dropped) == 4 and real.bytes_freed > 0


@pytest.mark.stores(*ALL_KINDS)
def test_rotation_keeps_every_line_byte_for_byte(store: Store, ws: str) -> None:
    """Segments + live log equal the log before each rotation, byte for byte; the newest lines stay live."""
    task = store.create(ws, sample_task())
    fill_log(store, ws, task.id, 150)
    before_first = live_log(store, ws, task.id)
    first = store.rotate_log(ws, task.id, max_bytes=3000)
    assert whole_log(store, ws, task.id) == before_first
    fill_log(store, ws, task.id, 150, start=150)
    before_second = whole_log(store, ws, task.id)
    second = store.rotate_log(ws, task.id, max_bytes=3000)
    assert whole_log(store, ws, task.id) == before_second
    assert (first.segment, second.segment) == ("logs/task.log.1.gz", "logs/task.log.2.gz")
    assert 0 < len(live_log(store, ws, task.id)) <= 1500 and second.kept_bytes == len(live_log(store, ws, task.id))
    assert [e["n"] for e in store.read_log(ws, task.id)][-1] == 299


@pytest.mark.stores(*ALL_KINDS)
def test_read_log_rotated_gives_the_whole_log_in_order(store: Store, ws: str) -> None:
    """``read_log(rotated=True)`` reads the segments oldest first, then the live log: every line once, in order."""
    task = store.create(ws, sample_task())
    for start in (0, 150, 300):
        fill_log(store, ws, task.id, 150, start=start)
        store.rotate_log(ws, task.id, max_bytes=3000)
    whole = store.read_log(ws, task.id, rotated=True)
    assert [e["n"] for e in whole] == list(range(450))
    assert whole == _entries(whole_log(store, ws, task.id))
    assert len(store.read_log(ws, task.id)) < 450


def _entries(raw: bytes) -> list[dict[str, Any]]:
    import json

    return [json.loads(line) for line in raw.splitlines()]


@pytest.mark.stores(*ALL_KINDS)
def test_a_log_under_the_limit_is_left_alone(store: Store, ws: str) -> None:
    """A log at or below max_bytes is not rotated; one whole line longer than keep_bytes still stays live."""
    task = store.create(ws, sample_task())
    fill_log(store, ws, task.id, 3)
    size = len(live_log(store, ws, task.id))
    assert store.rotate_log(ws, task.id, max_bytes=size).segment == ""
    report = store.rotate_log(ws, task.id, max_bytes=size - 1, keep_bytes=1)
    assert report.lines_moved == 2 and report.kept_lines == 1
    assert [e["n"] for e in store.read_log(ws, task.id)] == [2]


@pytest.mark.stores(*ALL_KINDS)
def test_delete_artifact_of_a_missing_name_raises(store: Store, ws: str) -> None:
    """delete_artifact of an artifact that is not there raises ArtifactNotFoundError and changes nothing."""
    task = store.create(ws, sample_task())
    store.save_artifact(ws, task.id, "keep.txt", "k")
    with pytest.raises(ArtifactNotFoundError):
        store.delete_artifact(ws, task.id, "gone.txt")
    assert store.list_artifacts(ws, task.id) == ["keep.txt"]


@pytest.mark.stores(*ALL_KINDS)
def test_a_deleted_version_number_is_not_handed_out_again(store: Store, ws: str) -> None:
    """After compaction drops old versions, the next save gets the highest number + 1, never a freed one."""
    task = store.create(ws, sample_task())
    for i in range(5):
        store.save_versioned_artifact(ws, task.id, "v.json", str(i))
    compact(store, ws, task.id, keep_versions=1)
    assert store.save_versioned_artifact(ws, task.id, "v.json", "next") == "v.6.json"


@pytest.mark.stores(*ALL_KINDS)
def test_compaction_is_refused_while_a_runner_holds_the_task(store: Store, ws: str) -> None:
    """A live lease holder makes compact and its plan raise TaskRunningError; nothing is dropped."""
    assert isinstance(store, RunLeases)
    task = store.create(ws, sample_task())
    for i in range(4):
        store.save_versioned_artifact(ws, task.id, "v.json", str(i))
    lease = store.acquire_lease(ws, task.id, {"pid": 1, "host": "elsewhere"})
    try:
        with pytest.raises(TaskRunningError):
            compact(store, ws, task.id, keep_versions=1)
        with pytest.raises(TaskRunningError):
            plan_compaction(store, ws, task.id, keep_versions=1)
    finally:
        lease.release()
    assert len(store.list_artifacts(ws, task.id)) == 4


_APPEND = textwrap.dedent(
    """
    import sys
    from atlas_tasks.store.urls import open_store
    store = open_store(sys.argv[1])
    ws, task_id, count = sys.argv[2], sys.argv[3], int(sys.argv[4])
    print("ready", flush=True)
    for i in range(count):
        store.append_log(ws, task_id, {"event": "child", "n": i, "pad": "y" * 60})
    """
)


@pytest.mark.stores(*PROCESS_KINDS)
def test_lines_appended_by_another_process_during_rotation_are_kept(store: Store, ws: str) -> None:
    """Another process appends while this one rotates again and again: every line is kept exactly once, in order."""
    task = store.create(ws, sample_task())
    fill_log(store, ws, task.id, 50)
    count = 1500
    args = [sys.executable, "-c", _APPEND, store.url, ws, task.id, str(count)]
    rotations = 0
    with subprocess.Popen(args, stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        while child.poll() is None:
            rotations += bool(store.rotate_log(ws, task.id, max_bytes=2000, keep_bytes=200).segment)
        assert child.wait(timeout=120) == 0
    entries = _entries(whole_log(store, ws, task.id))
    assert [e["n"] for e in entries if e["event"] == "line"] == list(range(50))
    assert [e["n"] for e in entries if e["event"] == "child"] == list(range(count))
    assert rotations > 3


@pytest.mark.stores("memory")
def test_lines_appended_by_another_thread_during_rotation_are_kept(store: Store, ws: str) -> None:
    """The memory store's version of the test above: a thread appends while rotations run; every line stays, once."""
    task = store.create(ws, sample_task())
    count = 3000

    def append() -> None:
        for i in range(count):
            store.append_log(ws, task.id, {"event": "child", "n": i, "pad": "y" * 60})

    appender = threading.Thread(target=append)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # hand the GIL over often, so appends land between a rotation's read and its drop
    try:
        appender.start()
        rotations = 0
        while appender.is_alive():
            rotations += bool(store.rotate_log(ws, task.id, max_bytes=2000, keep_bytes=200).segment)
        appender.join()
    finally:
        sys.setswitchinterval(switch)
    assert [e["n"] for e in _entries(whole_log(store, ws, task.id))] == list(range(count))
    assert rotations > 3


_COMPACT = textwrap.dedent(
    """
    import sys
    from atlas_tasks.retention.compact import compact
    from atlas_tasks.store.urls import open_store
    compact(open_store(sys.argv[1]), sys.argv[2], sys.argv[3], keep_versions=2, max_log_bytes=3000)
    """
)


@pytest.mark.stores(*PROCESS_KINDS)
@pytest.mark.parametrize("point", ["compact:version-dropped", "rotate_log:segment-saved", "compact:log-rotated"])
def test_a_compaction_killed_at_each_write_point_loses_nothing_and_the_next_finishes(
    store: Store, ws: str, point: str
) -> None:
    """SIGKILL at a write point: the task reads whole with every line and kept version; a second compact finishes."""
    task = store.create(ws, sample_task())
    names = [store.save_versioned_artifact(ws, task.id, "v.json", str(i)) for i in range(5)]
    store.modify(ws, task.id, lambda t: setattr(t, "step_results", [StepResult(artifact_path=f"artifacts/{names[0]}")]))
    fill_log(store, ws, task.id, 120)
    original = live_log(store, ws, task.id)
    env = {**os.environ, CRASH_AT_ENV: point}
    done = subprocess.run([sys.executable, "-c", _COMPACT, store.url, ws, task.id], env=env, timeout=120, check=False)
    assert done.returncode == -9  # killed at the point, not finished
    fresh = open_store(store.url)
    assert fresh.get(ws, task.id).id == task.id
    # Every line still there: the live log untouched (a segment may already hold its head), or fully rotated.
    assert live_log(fresh, ws, task.id) == original or whole_log(fresh, ws, task.id) == original
    # A rotation cut short after its segment was saved leaves those lines in both: the whole log takes them once.
    assert list(fresh.read_log(ws, task.id, rotated=True)) == _entries(original)
    assert {names[0], names[3], names[4]} <= set(fresh.list_artifacts(ws, task.id))

    compact(fresh, ws, task.id, keep_versions=2, max_log_bytes=3000)
    assert whole_log(fresh, ws, task.id) == original  # each line exactly once: no segment was archived twice
    assert set(fresh.list_artifacts(ws, task.id)) == {names[0], names[3], names[4], "logs/task.log.1.gz"}
    assert len(live_log(fresh, ws, task.id)) <= 1500
    assert list(fresh.read_log(ws, task.id, rotated=True)) == _entries(original)
