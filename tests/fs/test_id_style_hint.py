"""The id-style hint (``.atlas-tasks/ids/<ws>/style``): a new process trusts a recent scan, never a stale one."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from atlas_tasks import FileStore, Task
from atlas_tasks.ids import TIMESTAMP_ID_RE, UUID_ID_RE

GO_TASK = "task-b7e4a2d9-1c3f-4a8e-9b5d-2e7f6c0d8a41"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    FileStore(tmp_path).create_workspace("ws")
    return tmp_path


def _hint(home: Path) -> Path:
    return home / ".atlas-tasks" / "ids" / "ws" / "style"


def _go_starts_a_task(home: Path) -> None:
    (home / "workspaces" / "ws" / "tasks" / GO_TASK).mkdir(parents=True)  # the current Go ATLAS's uuid id


def test_a_new_store_trusts_a_recent_timestamp_scan(home: Path) -> None:
    """A fresh store (a new CLI process) uses another store's scan from seconds ago instead of scanning again."""
    FileStore(home).create("ws", Task(description="first"))
    assert _hint(home).read_bytes().startswith(b"timestamp ")
    _go_starts_a_task(home)
    # The hint still stands (its minute is not over): no scan, so the uuid task is not seen yet.
    assert TIMESTAMP_ID_RE.fullmatch(FileStore(home).create("ws", Task(description="second")).id)


def test_without_the_hint_a_new_store_scans(home: Path) -> None:
    """The negative control of the test above: with the hint gone, the fresh store scans and sees Go's uuid id."""
    FileStore(home).create("ws", Task(description="first"))
    _go_starts_a_task(home)
    _hint(home).unlink()
    assert UUID_ID_RE.fullmatch(FileStore(home).create("ws", Task(description="second")).id)


def test_an_expired_hint_is_scanned_again(home: Path) -> None:
    """A timestamp hint older than style_recheck is ignored: the store scans and follows Go's uuid ids."""
    FileStore(home).create("ws", Task(description="first"))
    _go_starts_a_task(home)
    store = FileStore(home)
    store.style_recheck = 0.0
    assert UUID_ID_RE.fullmatch(store.create("ws", Task(description="second")).id)
    assert _hint(home).read_bytes().startswith(b"uuid ")


@pytest.mark.parametrize(
    "content",
    [b"", b"timestamp", b"timestamp notatime\n", b"uuid\n", b"banana 1\n", b"timestamp 1.0 extra\n", b"uuid ../x\n"],
    ids=repr,
)
def test_a_torn_or_odd_hint_is_ignored(home: Path, content: bytes) -> None:
    """Whatever the hint file holds that is not a whole hint, the store scans (and sees Go's uuid task)."""
    FileStore(home).create("ws", Task(description="first"))
    _go_starts_a_task(home)
    _hint(home).write_bytes(content)
    assert UUID_ID_RE.fullmatch(FileStore(home).create("ws", Task(description="second")).id)


def test_a_hint_from_the_future_is_ignored(home: Path) -> None:
    """A timestamp hint written by a clock ahead of ours (a negative age) does not stand."""
    FileStore(home).create("ws", Task(description="first"))
    _go_starts_a_task(home)
    assert _hint(home).read_bytes().startswith(b"timestamp ")
    _hint(home).write_bytes(b"timestamp %.3f\n" % (time.time() + 3600))
    assert UUID_ID_RE.fullmatch(FileStore(home).create("ws", Task(description="second")).id)


def test_a_uuid_hint_whose_task_is_gone_is_ignored(home: Path) -> None:
    """A workspace removed and made again under the same name lacks the uuid task the hint names: it is scanned."""
    store = FileStore(home)
    _go_starts_a_task(home)
    assert UUID_ID_RE.fullmatch(store.create("ws", Task(description="uuid era")).id)
    assert _hint(home).read_bytes().startswith(b"uuid ")
    tasks = home / "workspaces" / "ws" / "tasks"
    subprocess.run(["rm", "-rf", str(tasks)], check=True)
    tasks.mkdir()
    assert TIMESTAMP_ID_RE.fullmatch(FileStore(home).create("ws", Task(description="fresh")).id)


def test_a_symlinked_hint_directory_is_not_followed(home: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """A symlink planted at .atlas-tasks/ids/ws is neither read nor written through: the store scans instead."""
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (elsewhere / "style").write_bytes(b"timestamp %.3f\n" % time.time())
    (home / ".atlas-tasks" / "ids").mkdir(parents=True)
    (home / ".atlas-tasks" / "ids" / "ws").symlink_to(elsewhere)
    _go_starts_a_task(home)
    assert UUID_ID_RE.fullmatch(FileStore(home).create("ws", Task(description="scanned")).id)
    assert (elsewhere / "style").read_bytes().startswith(b"timestamp ")
    assert not (elsewhere / "style").read_bytes().startswith(b"uuid")


def test_cli_creates_leave_a_hint_the_next_one_uses(home: Path) -> None:
    """Two `atlas-tasks new` processes: the first scans and leaves the hint, the second trusts it."""
    cli = [sys.executable, "-m", "atlas_tasks", "--home", str(home)]
    new = ["new", "ws", "--template", "bugfix"]
    subprocess.run([*cli, *new, "--description", "first"], check=True, capture_output=True)
    assert _hint(home).read_bytes().startswith(b"timestamp ")
    _go_starts_a_task(home)
    out = subprocess.run([*cli, *new, "--description", "second", "--json"], check=True, capture_output=True, text=True)
    assert TIMESTAMP_ID_RE.search(out.stdout), out.stdout


def test_a_uuid_hint_stands_while_its_task_is_there(home: Path) -> None:
    """A uuid hint whose task exists makes a fresh store use uuid ids, even past style_recheck (no scan needed)."""
    _go_starts_a_task(home)
    FileStore(home).create("ws", Task(description="scanned"))
    assert _hint(home).read_bytes() == f"uuid {GO_TASK}\n".encode()
    store = FileStore(home)
    store.style_recheck = 0.0
    assert UUID_ID_RE.fullmatch(store.create("ws", Task(description="hinted")).id)
