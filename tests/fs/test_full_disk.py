"""On a full disk (a real 1 MiB tmpfs, root only): failed writes leave nothing half-made and name their path (#16)."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from atlas_tasks import FileStore, StorageError
from atlas_tasks.testing.conformance import sample_task


@pytest.fixture
def full(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs; the test fills it with :func:`fill` when its setup is done."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"mount -t tmpfs refused: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, check=False)


def fill(mnt: Path) -> None:
    """Write a filler file until the tmpfs is full (ENOSPC)."""
    with (mnt / "filler").open("wb", buffering=0) as f, pytest.raises(OSError, match="No space left") as info:
        while True:
            f.write(b"\0" * 4096)
    assert info.value.errno == errno.ENOSPC


def test_failed_workspace_create_leaves_no_workspace(full: Path) -> None:
    """workspace create failing with ENOSPC leaves no workspace directory, so the workspace does not "exist"."""
    store = FileStore(full / "home", lock_timeout=5)
    store.create_workspace("ws")
    fill(full)
    with pytest.raises(StorageError) as info:
        store.create_workspace("ws2", metadata={"pad": "x" * 8192})
    assert info.value.errno == errno.ENOSPC
    assert not (full / "home" / "workspaces" / "ws2").exists()
    assert [w.name for w in store.list_workspaces()] == ["ws"]


def test_lease_on_a_full_disk_names_the_lease_file(full: Path) -> None:
    """acquire_lease failing with ENOSPC names the lease file, not "?"."""
    store = FileStore(full / "home", lock_timeout=5)
    store.create_workspace("ws")
    task = store.create("ws", sample_task())
    store.acquire_lease("ws", task.id, {"pid": 1}).release()
    fill(full)
    with pytest.raises(StorageError) as info:
        store.acquire_lease("ws", task.id, {"pid": 1, "pad": "x" * 8192})
    assert info.value.errno == errno.ENOSPC
    assert info.value.path == str(full / "home" / ".atlas-tasks" / "leases" / "ws" / f"{task.id}.lease")


# -- since FileStore became a BaseStore, each primitive translates its own OSErrors: none escapes bare ----------------
def _grow_and_update(store: FileStore, task_id: str) -> None:
    task = store.get("ws", task_id)
    task.metadata["pad"] = "x" * 65536
    store.update("ws", task)


def _grow_in_edit(store: FileStore, task_id: str) -> None:
    with store.edit("ws", task_id) as task:
        task.metadata["pad"] = "x" * 65536


@pytest.mark.parametrize(
    "call",
    [
        _grow_and_update,
        _grow_in_edit,
        lambda s, t: s.append_log("ws", t, {"pad": "x" * 65536}),
        lambda s, t: s.save_artifact("ws", t, "big.bin", b"x" * 65536),
        lambda s, t: s.save_versioned_artifact("ws", t, "big.bin", b"x" * 65536),
    ],
    ids=["update", "edit", "append_log", "save_artifact", "save_versioned_artifact"],
)
def test_writes_on_a_full_disk_raise_storage_errors(full: Path, call: Callable[[FileStore, str], None]) -> None:
    """Each write failing with ENOSPC raises a StorageError naming a path in the task, and the task is unchanged."""
    store = FileStore(full / "home", lock_timeout=5)
    store.create_workspace("ws")
    task_id = store.create("ws", sample_task()).id
    store.modify("ws", task_id, lambda t: None)  # every lock file exists before the disk fills
    fill(full)
    with pytest.raises(StorageError) as info:
        call(store, task_id)
    assert info.value.errno == errno.ENOSPC
    assert info.value.path.startswith(str(store.task_path("ws", task_id)))
    assert store.get("ws", task_id).revision == 2
