"""Locks: readers never wait, writers exclude each other (and the Go ATLAS), across real processes."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from atlas_tasks import FileStore, LockTimeoutError, Task


@contextmanager
def foreign_flock(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on ``path`` through a separate open file description (as another process would)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def our_lock(home: Path, ws: str, task_id: str) -> Path:
    return home / ".atlas-tasks" / "locks" / ws / f"{task_id}.lock"


def test_reads_do_not_wait_for_writers(store: FileStore, ws: str, task: Task, home: Path) -> None:
    """get, list, read_log and artifact reads answer at once while a writer holds the task's lock."""
    with foreign_flock(our_lock(home, ws, task.id)), foreign_flock(store.task_path(ws, task.id) / "task.json.lock"):
        started = time.monotonic()
        assert store.get(ws, task.id).id == task.id
        assert [t.id for t in store.list(ws)] == [task.id]
        assert list(store.read_log(ws, task.id)) == []
        assert store.list_artifacts(ws, task.id) == []
        assert time.monotonic() - started < 2.0  # the Go original waited 5 s and then dropped the task


def test_writer_times_out_with_clear_error(home: Path, ws: str, task: Task) -> None:
    """A writer that cannot get the lock in time raises LockTimeoutError naming the task and the lock file."""
    store = FileStore(home, lock_timeout=0.2)
    with foreign_flock(our_lock(home, ws, task.id)), pytest.raises(LockTimeoutError) as info:
        store.update(ws, task)
    assert task.id in str(info.value) and ws in str(info.value)
    assert isinstance(info.value, TimeoutError)


def test_go_lock_is_respected(home: Path, ws: str, task: Task) -> None:
    """A Go writer holding task.json.lock blocks our writers; with go_locks=False it is ignored."""
    go_lock = FileStore(home).task_path(ws, task.id) / "task.json.lock"
    with foreign_flock(go_lock):
        with pytest.raises(LockTimeoutError):
            FileStore(home, lock_timeout=0.2).append_log(ws, task.id, {"event": "x"})
        FileStore(home, lock_timeout=0.2, go_locks=False).append_log(ws, task.id, {"event": "x"})


def test_lock_file_survives_delete(store: FileStore, ws: str, task: Task, home: Path) -> None:
    """Our lock file lives outside the task directory, so deleting a task never deletes a lock others may hold."""
    store.update(ws, task)
    lock = our_lock(home, ws, task.id)
    assert lock.exists()
    store.delete(ws, task.id)
    assert lock.exists()


def test_edit_is_reentrant_in_one_thread(store: FileStore, ws: str, task: Task) -> None:
    """Inside edit(), the same thread can still append to the task's log (the lock is re-entrant)."""
    with store.edit(ws, task.id) as editing:
        store.append_log(ws, task.id, {"event": "inside edit"})
        editing.description = "edited"
    assert store.get(ws, task.id).description == "edited"
    assert store.read_log(ws, task.id)[0]["event"] == "inside edit"


WORKER = textwrap.dedent(
    """
    import sys
    from atlas_tasks import FileStore
    home, ws, task_id, n, rounds = sys.argv[1:6]
    store = FileStore(home, lock_timeout=60)
    def bump(t):
        t.metadata["count"] = t.metadata.get("count", 0) + 1
    for k in range(int(rounds)):
        store.modify(ws, task_id, bump)
        store.append_log(ws, task_id, {"event": "tick", "proc": int(n), "k": k})
        name = store.save_versioned_artifact(ws, task_id, "validation.json", f"{n}:{k}")
        print(name, flush=True)
    """
)


def test_processes_lose_no_update(store: FileStore, ws: str, task: Task, home: Path) -> None:
    """Four processes doing read-modify-write, appends and versioned saves lose nothing and share no version."""
    procs, rounds = 4, 15
    children = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(home), ws, task.id, str(n), str(rounds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(procs)
    ]
    names: list[str] = []
    for child in children:
        out, _ = child.communicate(timeout=120)
        assert child.returncode == 0
        names.extend(out.split())
    final = store.get(ws, task.id)
    assert final.metadata["count"] == procs * rounds
    assert final.revision == 1 + procs * rounds
    assert len(store.read_log(ws, task.id)) == procs * rounds
    assert sorted(names) == sorted(f"validation.{i}.json" for i in range(1, procs * rounds + 1))
    payloads = {store.get_artifact(ws, task.id, name) for name in names}
    assert len(payloads) == procs * rounds
