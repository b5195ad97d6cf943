"""An OSError raised by the caller's own ``with store.edit(...)`` block is the caller's: never turned into a
StorageError (the file store translates only the OS errors of its own primitives)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from atlas_tasks import FileStore
from atlas_tasks.testing.conformance import sample_task


def test_os_error_raised_inside_edit_passes_through(tmp_path: Path) -> None:
    """An OSError raised by the caller's own edit block reaches the caller as itself, and nothing is saved."""
    store = FileStore(tmp_path / "home")
    store.create_workspace("ws")
    task_id = store.create("ws", sample_task()).id
    with pytest.raises(OSError, match="own file") as info, store.edit("ws", task_id) as task:
        task.metadata["x"] = 1
        raise FileNotFoundError(errno.ENOENT, "the caller's own file", "/nowhere")
    assert type(info.value) is FileNotFoundError
    assert store.get("ws", task_id).revision == 1
