"""Lock descriptors kept open between writes (locks.hold(keep=True)) exclude exactly as freshly opened ones do."""

from __future__ import annotations

import fcntl
import gc
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from atlas_tasks import FileStore, LockTimeoutError, Task


@contextmanager
def foreign_flock(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on ``path`` through a new open file description (as another process would)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def our_lock(home: Path, ws: str, task_id: str) -> Path:
    return home / ".atlas-tasks" / "locks" / ws / f"{task_id}.lock"


def test_replaced_lock_file_is_locked_not_the_kept_one(home: Path, ws: str, task: Task) -> None:
    """After the lock file is removed and made again, a writer locks the new file, so its holder still excludes it."""
    store = FileStore(home, lock_timeout=0.3)
    task = store.update(ws, task)  # this thread now keeps the lock's descriptor
    lock = our_lock(home, ws, task.id)
    lock.unlink()
    with foreign_flock(lock), pytest.raises(LockTimeoutError):
        store.update(ws, task)
    assert store.update(ws, task).revision == task.revision + 1  # and once it is free, the new file serves


def test_replaced_go_lock_file_is_locked_not_the_kept_one(home: Path, ws: str, task: Task) -> None:
    """The same for the Go ATLAS's task.json.lock, which Go removes with its task."""
    store = FileStore(home, lock_timeout=0.3)
    task = store.update(ws, task)
    go_lock = store.task_path(ws, task.id) / "task.json.lock"
    go_lock.unlink()
    with foreign_flock(go_lock), pytest.raises(LockTimeoutError):
        store.append_log(ws, task.id, {"event": "x"})


def test_threads_never_share_a_kept_descriptor(home: Path, ws: str, task: Task) -> None:
    """While one thread holds a task's lock through its kept descriptor, another thread of the process waits."""
    store = FileStore(home, lock_timeout=0.3)
    task = store.update(ws, task)
    outcome: list[BaseException | None] = []

    def other() -> None:
        try:
            store.append_log(ws, task.id, {"event": "from another thread"})
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    other_thread = threading.Thread(target=other)
    other_thread.start()  # it writes once first, so it keeps descriptors of its own
    other_thread.join()
    assert outcome == [None]
    with store.edit(ws, task.id):
        worker = threading.Thread(target=other)
        worker.start()
        worker.join(timeout=30)
    assert isinstance(outcome[1], LockTimeoutError)


def test_forked_child_never_uses_its_parents_kept_descriptor(home: Path, ws: str, task: Task) -> None:
    """A child forked after the parent kept a descriptor waits for the parent's lock like any other process."""
    store = FileStore(home, lock_timeout=0.3)
    task = store.update(ws, task)  # the parent keeps the descriptors now
    go, done = os.pipe(), os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: wait until the parent holds the lock, then try to write
        code = 3
        try:
            os.read(go[0], 1)
            try:
                store.update(ws, task)
                code = 1  # got in beside the parent: the exclusion is broken
            except LockTimeoutError:
                code = 0
        finally:
            os.write(done[1], b"x")
            os._exit(code)
    with store.edit(ws, task.id):  # taken through the kept descriptor the child inherited
        os.write(go[1], b"x")
        os.read(done[0], 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def _open_paths() -> set[str]:
    paths = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            paths.add(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue  # the descriptor listdir itself used, closed by now
    return paths


def test_store_no_longer_used_keeps_no_descriptor(tmp_path: Path) -> None:
    """Kept descriptors go with their store: once it is collected no lock file of the home is open (unmountable)."""
    home = tmp_path / "home"
    store = FileStore(home)
    store.create_workspace("ws")
    task = store.create("ws", Task(description="x"))
    store.append_log("ws", task.id, {"event": "x"})
    lock = str(our_lock(home, "ws", task.id))
    assert lock in _open_paths()  # kept while the store lives
    del store
    gc.collect()
    assert not {path for path in _open_paths() if path.startswith(str(home))}


def test_close_releases_kept_descriptors_and_store_stays_usable(tmp_path: Path) -> None:
    """FileStore.close() closes every lock file the store kept open; the next write opens them again."""
    home = tmp_path / "home"
    store = FileStore(home)
    store.create_workspace("ws")
    task = store.update("ws", store.create("ws", Task(description="x")))
    assert any(path.startswith(str(home)) for path in _open_paths())
    store.close()
    assert not {path for path in _open_paths() if path.startswith(str(home))}
    assert store.update("ws", task).revision == task.revision + 1
