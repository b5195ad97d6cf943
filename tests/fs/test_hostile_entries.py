"""Odd entries in the store (a symlink, directory, FIFO or socket where a file belongs; a stray name under tasks/).

Each is damage confined to one task or workspace: listings report it as one error and list the rest, doctor reports
one finding and checks the rest, and readers of that very entry get a StorageError naming it, without blocking.
Every operation runs in a child process under a timeout: a FIFO used to block the reader forever.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import atlas_tasks
from atlas_tasks import FileStore, TaskStatus
from atlas_tasks.testing.conformance import sample_task

PROBE = Path(__file__).with_name("hostile_probe.py")
SRC = Path(atlas_tasks.__file__).resolve().parents[1]  # the children import the very library under test
BOUND = 60  # seconds: generous, and far below "forever"


def probe(home: Path, ws: str, op: str, arg: str = "") -> dict[str, Any]:
    """Run one operation in a child; fail (instead of hanging) if it does not finish within the bound."""
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    try:
        done = subprocess.run(
            [sys.executable, str(PROBE), str(home), ws, op, arg],
            capture_output=True,
            text=True,
            timeout=BOUND,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{op} did not finish within {BOUND} s (blocked on the planted entry)")
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def make_fifo(path: Path) -> None:
    os.mkfifo(path)


def make_socket(path: Path) -> None:
    # Bound at a short path (AF_UNIX paths are limited to 108 bytes), then moved into place; the file stays.
    short = Path(tempfile.mkdtemp(dir="/tmp")) / "s"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(short))
    short.rename(path)
    short.parent.rmdir()


def make_symlink(path: Path) -> None:
    path.symlink_to("/etc/hostname")


def make_directory(path: Path) -> None:
    path.mkdir()


PLANTS: dict[str, Callable[[Path], None]] = {
    "fifo": make_fifo,
    "socket": make_socket,
    "symlink": make_symlink,
    "directory": make_directory,
}


def plant(path: Path, kind: str) -> None:
    if path.exists() or path.is_symlink():
        path.unlink()
    PLANTS[kind](path)


@pytest.fixture
def pair(store: FileStore, ws: str) -> tuple[str, str]:
    """Two tasks in ``ws``, each with its workspace.json ref (made with task_refs="all"): (good, victim)."""
    with_refs = FileStore(store.home, task_refs="all")
    good = with_refs.create(ws, sample_task(id="task-good"))
    victim = with_refs.create(ws, sample_task(id="task-victim"))
    return good.id, victim.id


@pytest.mark.parametrize("kind", list(PLANTS))
@pytest.mark.parametrize("op", ["list", "list_limit", "summaries", "iter"])
def test_odd_task_json_is_one_error_in_each_listing(
    store: FileStore, ws: str, home: Path, pair: tuple[str, str], kind: str, op: str
) -> None:
    """A task.json that is a FIFO, socket, symlink or directory is one error (a CorruptTaskError); the rest listed."""
    good, victim = pair
    path = store.task_path(ws, victim) / "task.json"
    plant(path, kind)
    result = probe(home, ws, op)
    assert result["ok"], result
    assert result["ids"] == [good]
    assert [(e["type"], e["task_id"], e["path"]) for e in result["errors"]] == [
        ("UnsafeTaskFileError", victim, str(path))
    ]


@pytest.mark.parametrize("kind", list(PLANTS))
def test_odd_task_json_is_one_doctor_finding(
    store: FileStore, ws: str, home: Path, pair: tuple[str, str], kind: str
) -> None:
    """doctor reports an odd task.json as one unsafe_path finding, checks the other task and keeps the ref."""
    good, victim = pair
    plant(store.task_path(ws, victim) / "task.json", kind)
    result = probe(home, ws, "check_fix")
    assert result["ok"], result
    assert [(f["kind"], f["task_id"], f["fixed"]) for f in result["findings"]] == [("unsafe_path", victim, False)]
    assert result["tasks_checked"] == 1
    refs = json.loads((home / "workspaces" / ws / "workspace.json").read_text())["tasks"]
    assert {r["id"] for r in refs} == {good, victim}


@pytest.mark.parametrize("kind", ["fifo", "socket", "directory"])
def test_get_refuses_a_special_task_json_naming_it(
    store: FileStore, ws: str, home: Path, pair: tuple[str, str], kind: str
) -> None:
    """get on a task whose task.json is not a regular file raises UnsafeTaskFileError naming it, without blocking."""
    path = store.task_path(ws, pair[1]) / "task.json"
    plant(path, kind)
    result = probe(home, ws, "get", pair[1])
    assert result["raised"]["type"] == "UnsafeTaskFileError"  # a StorageError and a CorruptTaskError
    assert result["raised"]["path"] == str(path)
    assert "regular file" in result["raised"]["message"]


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_odd_task_log_is_refused_and_reported(
    store: FileStore, ws: str, home: Path, pair: tuple[str, str], kind: str
) -> None:
    """A task.log that is a FIFO or directory: read_log and append_log refuse it by name; doctor reports it once."""
    good, victim = pair
    store.append_log(ws, good, {"event": "kept"})
    path = store.task_path(ws, victim) / "task.log"
    plant(path, kind)
    for op in ("read_log", "append_log"):
        result = probe(home, ws, op, victim)
        assert (result["raised"]["type"], result["raised"]["path"]) == ("StorageError", str(path)), op
    assert probe(home, ws, "read_log", good)["lines"] == 1
    assert probe(home, ws, "list")["ids"] == [good, victim]
    found = probe(home, ws, "check")["findings"]
    assert [(f["kind"], f["task_id"], f["path"]) for f in found] == [("unsafe_path", victim, str(path))]


def test_fifo_artifact_is_refused_and_not_listed(store: FileStore, ws: str, home: Path, pair: tuple[str, str]) -> None:
    """A FIFO among the artifacts is not listed, and reading it raises StorageError naming it, without blocking."""
    victim = pair[1]
    store.save_artifact(ws, victim, "ok.txt", b"fine")
    path = store.task_path(ws, victim) / "artifacts" / "p.txt"
    make_fifo(path)
    assert probe(home, ws, "list_artifacts", victim)["names"] == ["ok.txt"]
    result = probe(home, ws, "get_artifact", f"{victim}/p.txt")
    assert (result["raised"]["type"], result["raised"]["path"]) == ("StorageError", str(path))


@pytest.mark.parametrize("kind", ["fifo", "symlink", "directory"])
def test_odd_workspace_json_is_one_listing_error(store: FileStore, ws: str, home: Path, kind: str) -> None:
    """workspace list reports a workspace.json that is not a regular file as one error and lists the others."""
    store.create_workspace("other")
    path = home / "workspaces" / ws / "workspace.json"
    plant(path, kind)
    result = probe(home, ws, "list_workspaces")
    assert result["names"] == ["other"]
    assert [(e["type"], e["workspace"]) for e in result["errors"]] == [("CorruptWorkspaceError", ws)]
    assert probe(home, ws, "check")["ok"]


@pytest.mark.parametrize("name", ["task.lock", "task.lease"])
def test_fifo_lock_or_lease_file_is_refused(store: FileStore, ws: str, home: Path, name: str) -> None:
    """A FIFO planted as a task's lock or lease file makes writes and lease calls fail by name, never block."""
    task = store.create(ws, sample_task(id="task"))
    store.acquire_lease(ws, task.id, {"pid": 1}).release()
    kind = "locks" if name.endswith(".lock") else "leases"
    path = home / ".atlas-tasks" / kind / ws / name
    plant(path, "fifo")
    ops = ["update"] if kind == "locks" else ["acquire_lease", "lease_holder"]
    for op in ops:
        result = probe(home, ws, op, task.id)
        assert (result["raised"]["type"], result["raised"]["path"]) == ("StorageError", str(path)), op


def test_stray_entries_under_tasks_are_findings(store: FileStore, ws: str, home: Path, pair: tuple[str, str]) -> None:
    """A directory with an invalid id and a stray file under tasks/ are findings; doctor checks the tasks too."""
    tasks = home / "workspaces" / ws / "tasks"
    (tasks / "bad id").mkdir()
    (tasks / "task-file").write_text("stray")
    result = probe(home, ws, "check")
    assert result["ok"], result
    found = sorted((f["kind"], f["path"]) for f in result["findings"])
    assert found == [("corrupt_task", str(tasks / "bad id")), ("unsafe_path", str(tasks / "task-file"))]
    assert result["tasks_checked"] == 2
    listed = probe(home, ws, "list")
    assert listed["ids"] == sorted(pair)
    assert len(listed["errors"]) == 2


def test_symlinked_task_directory_is_reported_and_keeps_its_ref(
    store: FileStore, ws: str, home: Path, pair: tuple[str, str], tmp_path: Path
) -> None:
    """doctor --fix reports a task directory replaced by a symlink (unsafe_path) and does not drop its ref."""
    good, victim = pair
    task_dir = store.task_path(ws, victim)
    moved = tmp_path / "moved"
    task_dir.rename(moved)
    task_dir.symlink_to(moved)
    result = probe(home, ws, "check_fix")
    assert [(f["kind"], f["task_id"], f["path"]) for f in result["findings"]] == [
        ("unsafe_path", victim, str(task_dir))
    ]
    refs = json.loads((home / "workspaces" / ws / "workspace.json").read_text())["tasks"]
    assert {r["id"] for r in refs} == {good, victim}


def test_recover_goes_on_past_an_odd_entry(store: FileStore, ws: str, home: Path, pair: tuple[str, str]) -> None:
    """recover marks the crashed good task interrupted although another task's task.json is a FIFO."""
    good, victim = pair
    assert store.get(ws, good).status == TaskStatus.RUNNING  # and no runner holds its lease: a crashed run
    plant(store.task_path(ws, victim) / "task.json", "fifo")
    assert probe(home, ws, "recover") == {"ok": True, "ids": [good]}
    assert store.get(ws, good).status == TaskStatus.INTERRUPTED


@pytest.mark.parametrize("kind", ["fifo", "symlink", "directory"])
def test_dashboard_front_pages_answer_with_the_good_task(
    store: FileStore, ws: str, home: Path, pair: tuple[str, str], kind: str
) -> None:
    """The dashboard's listings answer 200 and show the good task when another task.json is odd."""
    good, victim = pair
    plant(store.task_path(ws, victim) / "task.json", kind)
    pages = probe(home, ws, "web", good)["pages"]
    assert {url: page["status"] for url, page in pages.items()} == dict.fromkeys(pages, 200), pages
    # "/" is the overview of workspaces; every task listing names the good task.
    assert all(page["has"] for url, page in pages.items() if url != "/"), pages


def test_cli_doctor_goes_on_past_a_fifo_lease(store: FileStore, ws: str, home: Path, pair: tuple[str, str]) -> None:
    """`doctor` reports a running task whose lease file is a FIFO and still finds the other crashed run."""
    good, victim = pair
    store.acquire_lease(ws, victim, {"pid": 1}).release()
    plant(home / ".atlas-tasks" / "leases" / ws / f"{victim}.lease", "fifo")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-m", "atlas_tasks", "--home", str(home), "doctor", "--json"],
        capture_output=True,
        text=True,
        timeout=BOUND,
        env=env,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    found = sorted((f["kind"], f["task_id"]) for f in json.loads(done.stdout)["findings"])
    assert found == [("interrupted_run", good), ("unreadable", victim)]
