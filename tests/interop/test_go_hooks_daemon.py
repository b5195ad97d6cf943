"""The Go ATLAS's hook files and daemon socket, as its current commit writes and speaks them (atlas-go.md §7)."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_go_daemon import FakeDaemon

from atlas_tasks import go_daemon
from atlas_tasks.go_hooks import is_hook_only, read_hook

TASK = "task-b7e4a2d9-1c3f-4a8e-9b5d-2e7f6c0d8a41"

HOOK = {
    "version": "1.0",
    "schema_version": "1.0",
    "task_id": TASK,
    "workspace_id": "api",
    "created_at": "2026-12-01T10:00:00Z",
    "updated_at": "2026-12-01T10:05:00Z",
    "state": "step_running",
    "current_step": {"step_name": "implement", "step_index": 1, "attempt": 2, "max_attempts": 3},
    "history": [],
    "recovery": {"crash_type": "timeout", "recommended_action": "retry_step", "reason": "stale"},
    "checkpoints": [
        {"checkpoint_id": f"ckpt-{i:08x}", "step_name": "implement", "git_commit": f"{i:040x}"} for i in range(8)
    ],
    "receipts": [],
}


def hook_dir(home: Path) -> Path:
    path = home / "workspaces" / "api" / "tasks" / TASK
    path.mkdir(parents=True)
    return path


def test_hook_summary_read_from_the_legacy_tree(tmp_path: Path) -> None:
    """read_hook gives the hook's state, step, recovery advice and the newest checkpoints, as Go wrote them."""
    (hook_dir(tmp_path) / "hook.json").write_text(json.dumps(HOOK))
    hook = read_hook(tmp_path, "api", TASK)
    assert hook is not None
    assert hook["state"] == "step_running"
    assert hook["current_step"]["step_name"] == "implement"
    assert hook["recovery"]["recommended_action"] == "retry_step"
    assert hook["checkpoint_count"] == 8
    assert [c["checkpoint_id"] for c in hook["checkpoints"]] == [f"ckpt-{i:08x}" for i in range(3, 8)]


def test_no_hook_is_none(tmp_path: Path) -> None:
    """A task without hook files (or a home without the task) has no hook."""
    hook_dir(tmp_path)
    assert read_hook(tmp_path, "api", TASK) is None
    assert read_hook(tmp_path / "elsewhere", "api", TASK) is None


@pytest.mark.parametrize("damage", ["garbage", "deep", "array", "fifo", "symlink"])
def test_damaged_hook_is_reported_not_raised(tmp_path: Path, damage: str) -> None:
    """A hook.json that is not JSON, nests too deep, is not an object, is a FIFO or a symlink is an error entry."""
    target = hook_dir(tmp_path) / "hook.json"
    if damage == "garbage":
        target.write_bytes(b"{not json")
    elif damage == "deep":
        target.write_text("[" * 5000 + "]" * 5000)
    elif damage == "array":
        target.write_text("[1, 2]")
    elif damage == "fifo":
        os.mkfifo(target)  # a blocking open would hang here forever
    else:
        (tmp_path / "outside.json").write_text(json.dumps(HOOK))
        target.symlink_to(tmp_path / "outside.json")
    hook = read_hook(tmp_path, "api", TASK)
    assert hook is not None and hook["error"]
    assert "state" not in hook


def test_hook_is_never_written(tmp_path: Path) -> None:
    """Reading a hook leaves the Go files byte-identical, with the same modification time."""
    directory = hook_dir(tmp_path)
    (directory / "hook.json").write_text(json.dumps(HOOK))
    before = (directory / "hook.json").stat()
    read_hook(tmp_path, "api", TASK)
    after = (directory / "hook.json").stat()
    assert (before.st_mtime_ns, before.st_size, before.st_ino) == (after.st_mtime_ns, after.st_size, after.st_ino)
    assert sorted(p.name for p in directory.iterdir()) == ["hook.json"]


def test_hook_only_directories_are_recognised() -> None:
    """Only a directory with Go hook files and nothing else (temp files aside) counts as hook-only."""
    assert is_hook_only(["hook.json", "HOOK.md", "hook.json.lock"])
    assert is_hook_only(["hook.json.lock", ".tmp-123"])
    assert not is_hook_only([])
    assert not is_hook_only([".tmp-123"])
    assert not is_hook_only(["hook.json", "task.json"])
    assert not is_hook_only(["hook.json", "artifacts"])


@pytest.fixture
def daemon_home(tmp_path: Path) -> Iterator[tuple[Path, FakeDaemon]]:
    statuses = {
        TASK: {"task_id": TASK, "status": "running", "current_step": 1, "total_steps": 4},
        "task-done": {"task_id": "task-done", "status": "completed", "current_step": 4, "total_steps": 4},
    }
    daemon = FakeDaemon(tmp_path / go_daemon.SOCKET_NAME, statuses)
    yield tmp_path, daemon
    daemon.close()


def test_daemon_running_task_has_a_holder(daemon_home: tuple[Path, FakeDaemon]) -> None:
    """A task the daemon reports running gets a holder naming the daemon's socket; it asked task.status."""
    home, daemon = daemon_home
    holder = go_daemon.running_holder(home, TASK)
    assert holder is not None and holder["daemon"] == str(home / "daemon.sock")
    assert daemon.requests[-1]["method"] == "task.status"
    assert daemon.requests[-1]["params"] == {"task_id": TASK}


def test_daemon_finished_or_unknown_task_has_no_holder(daemon_home: tuple[Path, FakeDaemon]) -> None:
    """A task the daemon reports completed, or does not know, is not held by it."""
    home, _ = daemon_home
    assert go_daemon.running_holder(home, "task-done") is None
    assert go_daemon.running_holder(home, "task-unknown") is None


def test_no_daemon_means_no_holder(tmp_path: Path) -> None:
    """Without a socket, or with a stale socket file nobody listens on, nothing is held."""
    assert go_daemon.running_holder(tmp_path, TASK) is None
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(tmp_path / "daemon.sock"))
    stale.close()  # the file stays, nobody listens: connect is refused
    assert go_daemon.running_holder(tmp_path, TASK) is None


def test_silent_daemon_times_out_as_absent(tmp_path: Path) -> None:
    """A daemon that accepts but never answers counts as absent once the short timeout passes."""
    daemon = FakeDaemon(tmp_path / "daemon.sock", {}, silent=True)
    try:
        assert go_daemon.task_status(tmp_path / "daemon.sock", TASK, timeout=0.2) is None
    finally:
        daemon.close()


def test_socket_path_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """$ATLAS_GO_DAEMON_SOCKET names the socket when the Go config moved it."""
    monkeypatch.setenv(go_daemon.SOCKET_ENV, str(tmp_path / "elsewhere.sock"))
    assert go_daemon.socket_path(tmp_path / "home") == tmp_path / "elsewhere.sock"
