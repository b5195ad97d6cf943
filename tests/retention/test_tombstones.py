"""Tombstones beyond the conformance suite: a delete killed half-way, bundles meeting retired ids, the PG upgrade.

The store-level rules (create refused, generated ids skip, restore lifts, another task refused) are in
:class:`atlas_tasks.testing.TombstoneTests`, run on every backend by tests/conformance.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

import atlas_tasks
from atlas_tasks import BundleError, FileStore, TaskIdRetiredError
from atlas_tasks._codec import encode_task
from atlas_tasks.backends.file._tombstones import CRASH_ENV
from atlas_tasks.retention.bundle import _fresh_ids, export_tasks, import_bundle
from atlas_tasks.store import Store
from atlas_tasks.testing.conformance import sample_task

#: The atlas_tasks the test imported: the child deletes with the very same code.
SRC = Path(atlas_tasks.__file__).resolve().parents[1]

_DELETE = """
import sys
from atlas_tasks import FileStore
FileStore(sys.argv[1]).delete(sys.argv[2], sys.argv[3], reason="test")
"""


def _task_with_files(store: Store, ws: str) -> str:
    store.create_workspace(ws, exist_ok=True)
    task = store.create(ws, sample_task())
    store.append_log(ws, task.id, {"event": "started"})
    store.save_artifact(ws, task.id, "out/report.md", "# report\n")
    return task.id


def _delete_in_child(home: Path, ws: str, task_id: str, crash: str | None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    if crash:
        env[CRASH_ENV] = crash
    return subprocess.run(
        [sys.executable, "-c", _DELETE, str(home), ws, task_id], env=env, capture_output=True, text=True, timeout=120
    )


def _killed_delete(tmp_path: Path) -> tuple[FileStore, str]:
    """A file store whose one task's delete was SIGKILLed right after the tombstone was written."""
    store = FileStore(tmp_path / "home")
    task_id = _task_with_files(store, "w")
    killed = _delete_in_child(tmp_path / "home", "w", task_id, crash="tombstoned")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    return store, task_id


def test_delete_killed_after_its_tombstone_leaves_the_whole_task(tmp_path: Path) -> None:
    """A delete SIGKILLed between tombstone and removal leaves the tombstone and the whole task."""
    store, task_id = _killed_delete(tmp_path)
    stone = store.tombstone("w", task_id)
    assert stone is not None and stone.info["reason"] == "test"
    assert store.get("w", task_id).id == task_id
    assert [e["event"] for e in store.read_log("w", task_id)] == ["started"]
    assert store.get_artifact("w", task_id, "out/report.md") == b"# report\n"


def test_deleting_again_finishes_a_killed_delete(tmp_path: Path) -> None:
    """After a killed delete, deleting again removes the task and keeps its id retired."""
    store, task_id = _killed_delete(tmp_path)
    store.delete("w", task_id)
    assert store.list("w") == [] and not store.task_path("w", task_id).exists()
    assert store.tombstone("w", task_id) is not None
    assert [r.id for r in store.get_workspace("w").tasks] == []


def test_doctor_fix_finishes_a_killed_delete(tmp_path: Path) -> None:
    """``check`` reports the task a killed delete left as unfinished_delete; with fix it finishes the delete."""
    store, task_id = _killed_delete(tmp_path)
    kinds = [(f.kind, f.task_id) for f in store.check("w").findings]
    assert kinds == [("unfinished_delete", task_id)]
    fixed = store.check("w", fix=True)
    assert fixed.ok and [f.kind for f in fixed.findings] == ["unfinished_delete"]
    assert store.list("w") == [] and store.tombstone("w", task_id) is not None
    assert store.check("w").findings == []


def test_doctor_leaves_another_task_under_a_retired_id(tmp_path: Path) -> None:
    """A different task written under a tombstoned id by a tool that ignores tombstones is reported, never deleted."""
    store = FileStore(tmp_path / "home")
    task_id = _task_with_files(store, "w")
    store.delete("w", task_id)
    go_written = tmp_path / "home" / "workspaces" / "w" / "tasks" / task_id
    go_written.mkdir()
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    other = sample_task(id=task_id, created_at=long_ago, updated_at=long_ago)
    (go_written / "task.json").write_bytes(encode_task(other))
    report = store.check("w", fix=True)
    assert ("retired_id_in_use", task_id, False) in [(f.kind, f.task_id, f.fixed) for f in report.findings]
    assert store.get("w", task_id).created_at == other.created_at


def test_delete_in_another_process_retires_the_id_here(tmp_path: Path) -> None:
    """A tombstone written by one process is honoured by another store object of the same home."""
    store = FileStore(tmp_path / "home")
    task_id = _task_with_files(store, "w")
    done = _delete_in_child(tmp_path / "home", "w", task_id, crash=None)
    assert done.returncode == 0, done.stderr
    with pytest.raises(TaskIdRetiredError):
        store.create("w", sample_task(id=task_id))


@pytest.mark.stores("file", "memory", "postgres")
def test_bundle_restores_a_deleted_task_under_its_own_id(store: Store, tmp_path: Path) -> None:
    """Exporting a task, deleting it and importing the bundle brings it back under its id (the archive case)."""
    task_id = _task_with_files(store, "w")
    export_tasks(store, "w", [task_id], tmp_path / "a.tar")
    store.delete("w", task_id)
    report = import_bundle(store, tmp_path / "a.tar")
    assert report.tasks == [{"original_id": task_id, "id": task_id}]
    assert store.get_artifact("w", task_id, "out/report.md") == b"# report\n"
    assert store.tombstone("w", task_id) is None  # type: ignore[attr-defined]


@pytest.mark.stores("file", "memory", "postgres")
def test_bundle_of_another_task_under_a_retired_id_is_refused(store: Store, tmp_path: Path) -> None:
    """A bundle whose task reuses a deleted id (another created_at) is refused whole, suggesting --as-new-id."""
    other = FileStore(tmp_path / "elsewhere")
    task_id = _task_with_files(store, "w")
    other.create_workspace("w")
    other.create("w", sample_task(id=task_id, description="a different task, same id"))
    export_tasks(other, "w", [task_id], tmp_path / "other.tar")
    store.delete("w", task_id)
    with pytest.raises(BundleError) as info:
        import_bundle(store, tmp_path / "other.tar")
    assert "--as-new-id" in str(info.value) and "retired" in str(info.value)
    assert store.list("w") == []
    report = import_bundle(store, tmp_path / "other.tar", as_new_id=True)
    assert report.tasks[0]["id"] != task_id


def test_fresh_ids_skip_retired_candidates() -> None:
    """The ids ``--as-new-id`` tries skip what the target has tombstoned (here: every id without a counter)."""
    retired = {"calls": 0}

    def is_retired(task_id: str) -> bool:
        retired["calls"] += 1
        return task_id.count("-") == 2  # task-YYYYMMDD-HHMMSS, the first candidate of every second

    first = list(itertools.islice(_fresh_ids("task-20260101-000000", is_retired), 3))
    assert all(tid.count("-") == 3 for tid in first)
    assert retired["calls"] >= 4


def test_doctor_sweeps_a_tombstone_write_cut_short(tmp_path: Path) -> None:
    """The temp file of a tombstone write killed before its rename is reported as temp_file and removed by fix."""
    store = FileStore(tmp_path / "home")
    task_id = _task_with_files(store, "w")
    stones = tmp_path / "home" / ".atlas-tasks" / "tombstones" / "w"
    stones.mkdir(parents=True)
    leftover = stones / f".{task_id}.json.0123456789ab.tmp"
    leftover.write_bytes(b'{"deleted_at": "2026-')  # what a write killed half-way leaves
    assert [(f.kind, f.path) for f in store.check("w").findings] == [("temp_file", str(leftover))]
    assert store.check("w", fix=True).ok and not leftover.exists()
    assert store.tombstone("w", task_id) is None and store.get("w", task_id).id == task_id


_DELETE_MANY = """
import sys
from atlas_tasks import FileStore
FileStore(sys.argv[1]).delete_many(sys.argv[2], sys.argv[3:], reason="test")
"""


def test_delete_many_killed_after_its_tombstones_leaves_every_task_whole(tmp_path: Path) -> None:
    """delete_many SIGKILLed once its group's tombstones are durable leaves each task whole, each with its tombstone."""
    store = FileStore(tmp_path / "home")
    ids = [_task_with_files(store, "w") for _ in range(5)]
    env = {**os.environ, "PYTHONPATH": str(SRC), CRASH_ENV: "tombstoned"}
    killed = subprocess.run(
        [sys.executable, "-c", _DELETE_MANY, str(tmp_path / "home"), "w", *ids],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    for task_id in ids:
        assert store.tombstone("w", task_id) is not None
        assert store.get("w", task_id).id == task_id
        assert store.get_artifact("w", task_id, "out/report.md") == b"# report\n"
    assert sorted(f.task_id for f in store.check("w").findings) == sorted(ids)
    assert store.delete_many("w", ids) == {}
    assert store.list("w") == [] and all(store.tombstone("w", t) is not None for t in ids)
