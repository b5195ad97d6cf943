"""The version hint, an extended attribute of the versions' directory: a fresh store finds the next version
without a scan, and a wrong, torn, missing or planted hint costs a rescan, never an overwrite."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from atlas_tasks import FileStore, Task
from atlas_tasks._fs import ops


def _adir(store: FileStore, ws: str, task: Task) -> Path:
    return store.task_path(ws, task.id) / "artifacts"


HINT = "user.atlas-tasks.v.validation.json"


def _set_hint(path: Path, value: bytes) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.setxattr(fd, HINT, value)
    finally:
        os.close(fd)


def _save(home: Path, ws: str, task: Task, data: bytes = b"x") -> str:
    return FileStore(home).save_versioned_artifact(ws, task.id, "validation.json", data)


def test_fresh_store_continues_from_the_hint_without_scanning(
    home: Path, ws: str, task: Task, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(5):
        _save(home, ws, task)
    scans: list[str] = []
    real = ops.scandir

    def counting(fd: int, path: str) -> Iterator[os.DirEntry[str]]:
        scans.append(path)
        return real(fd, path)

    monkeypatch.setattr(ops, "scandir", counting)
    assert _save(home, ws, task) == "validation.6.json"
    assert not any(p.endswith("artifacts") for p in scans)


def test_hint_leaves_no_file(store: FileStore, ws: str, task: Task) -> None:
    store.save_versioned_artifact(ws, task.id, "validation.json", b"1")
    adir = _adir(store, ws, task)
    assert os.getxattr(adir, HINT) == b"1"
    assert sorted(os.listdir(adir)) == ["validation.1.json"]
    assert store.list_artifacts(ws, task.id) == ["validation.1.json"]
    assert store.check(ws).findings == []


@pytest.mark.parametrize("hint", [b"", b"garbage", b"99", b"0", b"-1", b"1" * 30])
def test_wrong_or_torn_hint_is_ignored(home: Path, store: FileStore, ws: str, task: Task, hint: bytes) -> None:
    for _ in range(3):
        _save(home, ws, task)
    _set_hint(_adir(store, ws, task), hint)
    assert _save(home, ws, task, b"4") == "validation.4.json"
    assert store.get_artifact(ws, task.id, "validation.3.json") == b"x"


def test_missing_hint_rescans(home: Path, store: FileStore, ws: str, task: Task) -> None:
    for _ in range(3):
        _save(home, ws, task)
    os.removexattr(_adir(store, ws, task), HINT)
    assert _save(home, ws, task) == "validation.4.json"


def test_stale_low_hint_never_overwrites(home: Path, store: FileStore, ws: str, task: Task) -> None:
    for i in range(1, 6):
        _save(home, ws, task, b"%d" % i)
    _set_hint(_adir(store, ws, task), b"2")
    assert _save(home, ws, task, b"6") == "validation.6.json"
    assert [store.get_artifact(ws, task.id, f"validation.{i}.json") for i in range(1, 7)] == [
        b"%d" % i for i in range(1, 7)
    ]


def test_hint_of_a_deleted_version_rescans(home: Path, store: FileStore, ws: str, task: Task) -> None:
    for _ in range(4):
        _save(home, ws, task)
    (_adir(store, ws, task) / "validation.4.json").unlink()
    assert _save(home, ws, task) == "validation.4.json"  # nothing higher exists: 4 is no longer below anything


def test_gap_without_hint_is_never_refilled(home: Path, store: FileStore, ws: str, task: Task) -> None:
    adir = _adir(store, ws, task)
    adir.mkdir()
    (adir / "validation.1.json").write_bytes(b"1")
    (adir / "validation.3.json").write_bytes(b"3")
    assert _save(home, ws, task) == "validation.4.json"


def test_hint_is_per_base_name(home: Path, store: FileStore, ws: str, task: Task) -> None:
    for _ in range(3):
        _save(home, ws, task)
    fresh = FileStore(home)
    assert fresh.save_versioned_artifact(ws, task.id, "validation.txt", b"t") == "validation.1.txt"
    assert _save(home, ws, task) == "validation.4.json"


def test_longest_base_name_saves_with_fresh_stores(home: Path, store: FileStore, ws: str, task: Task) -> None:
    base = "a" * 195 + ".json"
    for i in range(1, 4):
        assert FileStore(home).save_versioned_artifact(ws, task.id, base, b"x") == "a" * 195 + f".{i}.json"


def test_recreated_task_starts_again_at_one(home: Path, store: FileStore, ws: str, task: Task) -> None:
    for _ in range(3):
        _save(home, ws, task)
    store.delete(ws, task.id)
    # The id is retired by its tombstone; a tool that knows none (the Go ATLAS) may still write it again.
    (home / ".atlas-tasks" / "tombstones" / ws / f"{task.id}.json").unlink()
    again = store.create(ws, task.model_copy(update={"revision": 0}))
    assert again.id == task.id
    assert _save(home, ws, again) == "validation.1.json"
