"""Minimal reproductions of the store bugs the reliability campaigns found; each failed before its fix.

Fixed in 5650739 (lock files opened relative to directory fds, doctor sweeps .workspace.json temp files, artifact
name and trash name lengths) and e73d8ec (fstat after fsync, for xfs's directory fsync after a shutdown).
"""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from atlas_tasks import FileStore, InvalidNameError, StorageError, Task
from atlas_tasks._fs import locks, ops

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the campaigns live in reliability/ at the repo root
from reliability.powercut import Unavailable, open_disk


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    s = FileStore(tmp_path / "home", lock_timeout=2)
    s.create_workspace("w")
    return s


@contextlib.contextmanager
def hooked(hook: ops.Hook) -> Iterator[None]:
    previous = ops.set_hook(hook)
    try:
        yield
    finally:
        ops.set_hook(previous)


def test_doctor_reports_a_workspace_json_temp_file(store: FileStore) -> None:
    """A crash inside a workspace.json replace (create, delete, status) leaves a temp file the doctor must remove."""
    leftover = store.workspace_path("w") / ".workspace.json.0123456789ab.tmp"
    leftover.write_bytes(b'{"half": ')
    report = store.check(fix=True)
    assert [f.kind for f in report.findings] == ["temp_file"]
    assert not leftover.exists()


def test_longest_plain_artifact_name_is_saved_or_refused_by_name(store: FileStore) -> None:
    """An artifact name the validator accepts (<= 255 bytes) is saved, or refused with InvalidNameError."""
    task = store.create("w", Task(description="t"))
    name = "a" * 240
    try:
        store.save_artifact("w", task.id, name, b"x")
    except InvalidNameError:
        return
    assert store.get_artifact("w", task.id, name) == b"x"


def test_longest_versioned_artifact_name_is_saved_or_refused_by_name(store: FileStore) -> None:
    """A versioned base name the validator accepts is saved, or refused with InvalidNameError."""
    task = store.create("w", Task(description="t"))
    try:
        saved = store.save_versioned_artifact("w", task.id, "a" * 250 + ".json", b"x")
    except InvalidNameError:
        return
    assert store.get_artifact("w", task.id, saved) == b"x"


def test_task_with_the_longest_names_can_be_deleted(store: FileStore) -> None:
    """A task whose workspace name and id are both at the 128-byte limit is created, so it can be deleted."""
    ws = "w" * 128
    store.create_workspace(ws)
    task = store.create(ws, Task(id="t" * 128, description="t"))
    store.delete(ws, task.id)
    assert list(store.list(ws)) == []


def test_symlinked_lock_directory_gets_no_lock_file_outside(store: FileStore, tmp_path: Path) -> None:
    """A symlink planted at .atlas-tasks/locks/<ws> after the store first used it never leads a lock outside."""
    task = store.create("w", Task(description="t"))
    outside = tmp_path / "outside"
    outside.mkdir()
    lock_dir = store.home / ".atlas-tasks" / "locks" / "w"
    shutil.rmtree(lock_dir)
    lock_dir.symlink_to(outside)
    with contextlib.suppress(StorageError):
        store.modify("w", task.id, lambda t: None)
    assert list(outside.iterdir()) == []


def test_directory_swapped_for_a_symlink_gets_no_lock_file_outside(
    store: FileStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A workspace directory swapped for a symlink just before the lock is taken never leads a lock outside.

    The swap is placed deterministically here; the N campaign wins the same race with a real swapping thread.
    """
    task = store.create("w", Task(description="t"))
    outside = tmp_path / "outside"
    ws_dir = store.workspace_path("w")
    shutil.copytree(ws_dir, outside, ignore=shutil.ignore_patterns("*.lock"))
    real_hold = locks.hold

    @contextlib.contextmanager
    def hold(path: str, *args: object, **kwargs: object) -> Iterator[None]:
        if path.endswith("task.json.lock") and not ws_dir.is_symlink():
            ws_dir.rename(tmp_path / "parked")
            ws_dir.symlink_to(outside)
        with real_hold(path, *args, **kwargs):  # type: ignore[arg-type]
            yield

    monkeypatch.setattr(locks, "hold", hold)
    with contextlib.suppress(StorageError):
        store.modify("w", task.id, lambda t: None)
    assert sorted(p.name for p in outside.rglob("*.lock")) == []


@pytest.mark.parametrize("fs", ["ext4", "xfs", "btrfs"])
def test_update_is_not_acknowledged_when_the_filesystem_shuts_down(tmp_path: Path, fs: str) -> None:
    """A filesystem that shuts down between the rename of task.json and the directory fsync: update raises, or the
    new state is on disk after remount. Never a success that the remount undoes.

    Not a power cut (there the caller dies with the disk, and T1c does not count a call that returns after the cut
    began): xfs also shuts itself down on a metadata or log I/O error, and the process lives on. Linux 6.18:
    ``xfs_dir_fsync`` -> ``xfs_log_force_inode`` forces the log only while the inode is pinned, and the shutdown
    unpinned it, so the fsync returns 0 and the rename is gone after remount (this test failed on xfs until
    e73d8ec). ext4 (``ext4_sync_file``) and btrfs check the shutdown for directories too. The store now fstat()s
    after every fsync: xfs getattr does check the shutdown (EIO), and a shutdown is final, so an fstat that
    succeeds proves none had happened before the fsync returned.
    """
    try:
        disk, _ = open_disk(tmp_path, fs)
    except Unavailable as exc:
        pytest.skip(str(exc))
    try:
        store = FileStore(disk.mnt / "home", lock_timeout=2)
        store.create_workspace("w")
        task = store.create("w", Task(description="before"))
        task_dir = str(store.task_path("w", task.id))
        renamed = []

        def cut_before_dir_fsync(op: str, path: str) -> None:
            if op == "rename" and path == f"{task_dir}/task.json":
                renamed.append(path)
            elif op == "fsync" and path == task_dir and len(renamed) == 1:
                renamed.append("cut")
                disk.cut()

        task.description = "after"
        acknowledged = False
        with hooked(cut_before_dir_fsync), contextlib.suppress(StorageError):
            store.update("w", task)
            acknowledged = True
        assert renamed == [f"{task_dir}/task.json", "cut"]
        disk.unmount()
        disk.mount()
        after = FileStore(disk.mnt / "home").get("w", task.id).description
        assert not acknowledged or after == "after", f"update returned, but the remounted disk holds {after!r}"
    finally:
        with contextlib.suppress(Unavailable):
            disk.unmount()


def test_a_lock_file_error_names_the_lock_path(store: FileStore) -> None:
    """Every error names the path it concerns (F-real's read-only remount found this with EROFS on the lock)."""
    task = store.create("w", Task(description="t"))
    lock = store.home / ".atlas-tasks" / "locks" / "w" / f"{task.id}.lock"
    lock.unlink()
    lock.symlink_to(store.home / "elsewhere.lock")  # O_NOFOLLOW: ELOOP, deterministically, even as root
    with pytest.raises(StorageError) as caught:
        store.modify("w", task.id, lambda t: None)
    assert caught.value.path == str(lock)
