"""Reads of task.json leave its access time alone (O_NOATIME), so a read dirties no inode for the next commit."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from atlas_tasks import FileStore, Task
from atlas_tasks._fs import ops


@pytest.mark.skipif(not getattr(os, "O_NOATIME", 0), reason="no O_NOATIME on this platform")
def test_get_and_update_leave_atime_alone(store: FileStore, ws: str, task: Task) -> None:
    path = store.task_path(ws, task.id) / "task.json"
    os.utime(path, (1_000_000, path.stat().st_mtime))  # atime older than mtime: relatime would update it
    store.get(ws, task.id)
    assert path.stat().st_atime == 1_000_000


def test_noatime_refused_falls_back_to_a_plain_open(
    store: FileStore, ws: str, task: Task, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def no_noatime(name: str, flags: int, *args: object, **kwargs: object) -> int:
        if flags & getattr(os, "O_NOATIME", 0):
            raise PermissionError(1, "Operation not permitted", name)  # EPERM: not the file's owner
        return real_open(name, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", no_noatime)
    assert store.get(ws, task.id).id == task.id


def test_edit_result_matches_what_get_reads(store: FileStore, ws: str, task: Task) -> None:
    with store.edit(ws, task.id) as work:
        work.description = "edited"
    again = store.get(ws, task.id)
    assert (work.revision, work.updated_at, work.description) == (again.revision, again.updated_at, "edited")
    assert ops.READ_FLAGS & os.O_NOFOLLOW  # the no-atime open keeps the plain read flags (no symlink followed)


def test_modify_returns_the_saved_revision(store: FileStore, ws: str, task: Task, home: Path) -> None:
    saved = store.modify(ws, task.id, lambda t: t.metadata.__setitem__("k", 1))
    assert saved.revision == task.revision + 1
    assert FileStore(home).get(ws, task.id).metadata["k"] == 1
