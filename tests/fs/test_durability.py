"""The file store's write protocols: layout, modes, format, and what a failed write leaves behind."""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from atlas_tasks import FileStore, StorageError, Task
from atlas_tasks._fs import ops
from atlas_tasks.testing.conformance import sample_task


@contextmanager
def hooked(hook: ops.Hook) -> Iterator[None]:
    previous = ops.set_hook(hook)
    try:
        yield
    finally:
        ops.set_hook(previous)


def fail_on(op: str, err: int, *, times: int = 1) -> tuple[ops.Hook, list[str]]:
    """A hook that raises OSError(err) on the first ``times`` calls of ``op`` and records every call."""
    seen: list[str] = []
    left = [times]

    def hook(name: str, path: str) -> None:
        seen.append(name)
        if name == op and left[0] > 0:
            left[0] -= 1
            raise OSError(err, os.strerror(err))

    return hook, seen


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_story_layout(store: FileStore, ws: str, task: Task, home: Path) -> None:
    """A task lives at workspaces/<ws>/tasks/<id>/ with task.json, task.log and artifacts/ (story AC 1-4)."""
    store.append_log(ws, task.id, {"event": "start"})
    store.save_artifact(ws, task.id, "commit-message.md", b"msg")
    tdir = home / "workspaces" / ws / "tasks" / task.id
    assert (tdir / "task.json").is_file()
    assert (tdir / "task.log").is_file()
    assert (tdir / "artifacts" / "commit-message.md").is_file()
    assert store.task_path(ws, task.id) == tdir


def test_task_json_is_go_formatted(store: FileStore, ws: str, task: Task, home: Path) -> None:
    """task.json is 2-space indented JSON without a trailing newline, with schema_version "1.0" (AC 2, 11)."""
    raw = (home / "workspaces" / ws / "tasks" / task.id / "task.json").read_bytes()
    assert not raw.endswith(b"\n")
    assert raw.startswith(b'{\n  "id": ')
    doc = json.loads(raw)
    assert doc["schema_version"] == "1.0"
    assert doc["revision"] == 1


def test_modes_are_explicit(tmp_path: Path) -> None:
    """Directories are 0750 and files 0600 whatever the umask (security note of the story)."""
    old = os.umask(0)
    try:
        store = FileStore(tmp_path / "home")
        store.create_workspace("w")
        created = store.create("w", sample_task())
        store.append_log("w", created.id, {"event": "x"})
        store.save_versioned_artifact("w", created.id, "sdd/validation.json", b"{}")
    finally:
        os.umask(old)
    tdir = tmp_path / "home" / "workspaces" / "w" / "tasks" / created.id
    for path in [tdir, tdir / "artifacts", tdir / "artifacts" / "sdd"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o750, path
    for path in [tdir / "task.json", tdir / "task.log", tdir / "artifacts" / "sdd" / "validation.1.json"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_no_temp_files_after_operations(store: FileStore, ws: str, task: Task, home: Path) -> None:
    """After successful writes no temp file remains anywhere in the home."""
    for i in range(3):
        task = store.update(ws, task.model_copy(update={"description": f"d{i}"}))
        store.save_versioned_artifact(ws, task.id, "validation.json", b"{}")
        store.save_artifact(ws, task.id, "notes.md", b"n")
    leftovers = [p for p in files_under(home) if p.endswith(".tmp")]
    assert leftovers == []


@pytest.mark.parametrize("op", ["open", "write", "fsync", "rename"])
@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EIO, errno.EROFS])
def test_failed_update_keeps_previous_state(
    store: FileStore, ws: str, task: Task, home: Path, op: str, err: int
) -> None:
    """A fault at any step of an update raises StorageError, acknowledges nothing, and keeps the old task intact."""
    path = home / "workspaces" / ws / "tasks" / task.id / "task.json"
    before = path.read_bytes()
    task.description = "never acknowledged"
    hook, _ = fail_on(op, err)
    with hooked(hook), pytest.raises(StorageError) as info:
        store.update(ws, task)
    assert info.value.errno == err
    assert str(path.parent) in info.value.path
    assert path.read_bytes() == before
    assert store.get(ws, task.id).description == sample_task().description
    assert not [p for p in files_under(home) if p.endswith(".tmp")]


def test_failed_fsync_is_not_retried(store: FileStore, ws: str, task: Task) -> None:
    """An fsync error is final: the store raises at once instead of retrying it into a false success."""
    hook, seen = fail_on("fsync", errno.EIO, times=1)
    task.description = "x"
    with hooked(hook), pytest.raises(StorageError):
        store.update(ws, task)
    assert seen.count("fsync") == 1


def test_directory_fsynced_after_rename(store: FileStore, ws: str, task: Task) -> None:
    """Every rename of task.json is followed by an fsync of its directory before update returns."""
    calls: list[tuple[str, str]] = []
    with hooked(lambda op, path: calls.append((op, path))):
        store.update(ws, task)
    renames = [i for i, (op, _) in enumerate(calls) if op == "rename"]
    assert renames, calls
    last = renames[-1]
    task_dir = calls[last][1].rsplit("/", 1)[0]
    assert ("fsync", task_dir) in calls[last + 1 :]


def test_create_fsyncs_new_directory_entries(store: FileStore, ws: str) -> None:
    """create fsyncs the tasks directory after reserving the id, so a power cut cannot drop the new task."""
    calls: list[tuple[str, str]] = []
    with hooked(lambda op, path: calls.append((op, path))):
        created = store.create(ws, sample_task())
    tasks_dir = str(store.workspace_path(ws) / "tasks")
    mkdir_at = calls.index(("mkdir", f"{tasks_dir}/{created.id}"))
    assert ("fsync", tasks_dir) in calls[mkdir_at:]


def test_failed_create_leaves_no_task(store: FileStore, ws: str, home: Path) -> None:
    """A create that fails mid-way removes its reserved directory: no orphan, nothing listed."""
    hook, _ = fail_on("write", errno.ENOSPC)
    with hooked(hook), pytest.raises(StorageError):
        store.create(ws, sample_task())
    assert list(store.list(ws)) == []
    assert store.list(ws).errors == []
    assert list((home / "workspaces" / ws / "tasks").iterdir()) == []


def test_failed_append_writes_nothing(store: FileStore, ws: str, task: Task) -> None:
    """A failed log append raises StorageError and leaves the earlier lines intact."""
    store.append_log(ws, task.id, {"event": "kept"})
    hook, _ = fail_on("fdatasync", errno.EIO)
    with hooked(hook), pytest.raises(StorageError):
        store.append_log(ws, task.id, {"event": "unacknowledged"})
    assert store.read_log(ws, task.id)[0]["event"] == "kept"


def test_failed_versioned_save_claims_no_version(store: FileStore, ws: str, task: Task) -> None:
    """A failed versioned save leaves no version behind, and the next save takes the number it would have."""
    hook, _ = fail_on("fsync", errno.ENOSPC)
    with hooked(hook), pytest.raises(StorageError):
        store.save_versioned_artifact(ws, task.id, "validation.json", b"lost")
    assert store.list_artifacts(ws, task.id) == []
    assert store.save_versioned_artifact(ws, task.id, "validation.json", b"ok") == "validation.1.json"


def test_storage_error_is_an_oserror(store: FileStore, ws: str, task: Task) -> None:
    """StorageError is also an OSError carrying errno, so generic handlers keep working."""
    hook, _ = fail_on("write", errno.ENOSPC)
    with hooked(hook), pytest.raises(OSError, match="No space left") as info:
        store.save_artifact(ws, task.id, "big.bin", b"x" * 100)
    assert info.value.errno == errno.ENOSPC
    assert "No space left" in str(info.value)


def test_delete_many_makes_every_tombstone_durable_before_moving_any_task(store: FileStore, ws: str) -> None:
    """A group delete fsyncs the tombstone directory after the last tombstone and before the first rename, then
    the tasks directory and the trash once before removing any tree: n tasks, n + 3 fsyncs (not 4 n)."""
    store.delete(ws, store.create(ws, sample_task()).id)  # the trash and tombstone directories exist from now on
    ids = [store.create(ws, sample_task()).id for _ in range(6)]
    calls: list[tuple[str, str]] = []
    with hooked(lambda op, path: calls.append((op, path))):
        assert store.delete_many(ws, ids) == {}
    stones = str(store.home / ".atlas-tasks" / "tombstones" / ws)
    tasks_dir = str(store.workspace_path(ws) / "tasks")
    stone_renames = [i for i, (op, path) in enumerate(calls) if op == "rename" and path.startswith(stones + "/")]
    task_renames = [i for i, (op, path) in enumerate(calls) if op == "rename" and path.startswith(tasks_dir + "/")]
    removals = [i for i, (op, _) in enumerate(calls) if op == "rmtree"]
    assert len(stone_renames) == len(task_renames) == len(removals) == len(ids)
    stones_synced = calls.index(("fsync", stones))
    assert max(stone_renames) < stones_synced < min(task_renames)
    tasks_synced = calls.index(("fsync", tasks_dir))
    assert max(task_renames) < tasks_synced < min(removals)
    assert [op for op, _ in calls].count("fsync") == len(ids) + 3
