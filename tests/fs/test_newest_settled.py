"""Listings that skip work while nothing changed (newest-N without a scan, summaries handed back) still see every
change."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from atlas_tasks import FileStore, Task
from atlas_tasks._fs import ops
from atlas_tasks.backends.file import _summary_cache

T0 = datetime(2025, 3, 1, tzinfo=UTC)
#: A clock this far ahead makes every stamp on disk look settled (an injected fake clock).
AHEAD_NS = 60 * 1_000_000_000


def _store(home: Path, n: int = 5) -> tuple[FileStore, list[str]]:
    store = FileStore(home, id_style="uuid")
    store.create_workspace("ws")
    ids = [store.create("ws", Task(description=f"t{i}", created_at=T0 + timedelta(minutes=i))).id for i in range(n)]
    return store, ids


def _settled(store: FileStore) -> FileStore:
    """The store, its clock set a minute ahead: the tasks directory's last change looks long past."""
    store._summaries.clock = lambda: time.time_ns() + AHEAD_NS
    return store


@contextmanager
def _scans() -> Iterator[list[str]]:
    seen: list[str] = []
    previous = ops.set_hook(lambda op, path: seen.append(path) if op == "scandir" else None)
    try:
        yield seen
    finally:
        ops.set_hook(previous)


def _newest(store: FileStore, n: int = 2) -> list[str]:
    return [t.id for t in store.list("ws", limit=n)]


def test_a_settled_workspace_is_not_listed_again(tmp_path: Path) -> None:
    """Once its order is known, a newest-N listing of an unchanged, settled workspace lists no directory."""
    store, ids = _store(tmp_path / "home")
    _settled(store)
    assert _newest(store) == [ids[4], ids[3]]
    with _scans() as seen:
        assert _newest(store) == [ids[4], ids[3]]
    assert not [path for path in seen if path.endswith("/tasks")]


def test_a_task_created_by_another_store_is_listed_at_once(tmp_path: Path) -> None:
    """A task another process creates changes the tasks directory's stamp: the next newest-N listing shows it."""
    store, ids = _store(tmp_path / "home")
    _settled(store)
    assert _newest(store) == [ids[4], ids[3]]
    other = FileStore(tmp_path / "home", id_style="uuid")
    newer = other.create("ws", Task(description="newer", created_at=T0 + timedelta(hours=1))).id
    assert _newest(store) == [newer, ids[4]]


def test_a_task_deleted_by_another_store_leaves_the_listing(tmp_path: Path) -> None:
    """A task another process deletes is gone from the next newest-N listing."""
    store, ids = _store(tmp_path / "home")
    _settled(store)
    assert _newest(store) == [ids[4], ids[3]]
    FileStore(tmp_path / "home").delete("ws", ids[4])
    assert _newest(store) == [ids[3], ids[2]]


def test_a_task_directory_moved_in_by_hand_is_listed(tmp_path: Path) -> None:
    """A task directory renamed into tasks/ (a restore, the Go ATLAS) is seen by the next newest-N listing."""
    store, ids = _store(tmp_path / "home")
    _settled(store)
    assert _newest(store) == [ids[4], ids[3]]
    source = store.task_path("ws", ids[0]) / "task.json"
    doc = json.loads(source.read_bytes())
    doc["id"], doc["created_at"] = "task-restored", "2025-04-01T00:00:00Z"
    staging = tmp_path / "home" / "workspaces" / "ws" / "staging"
    staging.mkdir()
    (staging / "task.json").write_text(json.dumps(doc))
    os.rename(staging, store.task_path("ws", "task-restored"))
    assert _newest(store) == ["task-restored", ids[4]]


def test_a_stamp_is_trusted_only_once_settled() -> None:
    """A directory changed within the last two seconds gives no stamp (a change in the same clock tick would not
    show in it); an older one does."""
    st = os.stat(".")
    changed = max(st.st_ctime_ns, st.st_mtime_ns)
    assert _summary_cache.settled_dir_stamp(st, changed + 1_000_000) is None
    assert _summary_cache.settled_dir_stamp(st, changed + _summary_cache.SETTLED_AFTER_NS - 1) is None
    stamp = _summary_cache.settled_dir_stamp(st, changed + _summary_cache.SETTLED_AFTER_NS + 1)
    assert stamp == (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)


def test_tasks_written_right_after_a_listing_are_always_seen(tmp_path: Path) -> None:
    """With the real clock, a task directory written by hand just after a listing (no fsync: often within the same
    clock tick as the listing's stamp) is in the next listing, every time."""
    store, ids = _store(tmp_path / "home", n=1)
    doc = json.loads((store.task_path("ws", ids[0]) / "task.json").read_bytes())
    for i in range(100):
        _newest(store, 1)
        task_id = f"task-hand-{i:03d}"
        doc["id"], doc["created_at"] = task_id, f"2025-04-01T00:{i // 60:02d}:{i % 60:02d}Z"
        store.task_path("ws", task_id).mkdir()
        (store.task_path("ws", task_id) / "task.json").write_text(json.dumps(doc))
        assert _newest(store, 1) == [task_id], f"round {i}"


def _summaries(store: FileStore) -> dict[str, tuple[str, str]]:
    return {s.id: (s.status, s.description) for s in store.list_summaries("ws")}


def test_a_repeated_summary_listing_still_sees_another_stores_update(tmp_path: Path) -> None:
    """After two listings (the second handed back from memory), an update through another store shows in the next."""
    store, ids = _store(tmp_path / "home")
    first = _summaries(store)
    assert _summaries(store) == first
    FileStore(tmp_path / "home").modify("ws", ids[2], lambda t: setattr(t, "description", "elsewhere"))
    assert _summaries(store)[ids[2]] == ("pending", "elsewhere")


def test_a_repeated_summary_listing_sees_tasks_written_behind_the_store(tmp_path: Path) -> None:
    """A task.json replaced by rename and a task directory added by hand (the Go ATLAS's ways) show after warm
    listings."""
    store, ids = _store(tmp_path / "home")
    _summaries(store)
    _summaries(store)
    path = store.task_path("ws", ids[0]) / "task.json"
    doc = json.loads(path.read_bytes())
    doc["description"] = "written by Go"
    (path.parent / ".go.tmp").write_text(json.dumps(doc))
    os.replace(path.parent / ".go.tmp", path)
    doc["id"] = "task-by-hand"
    store.task_path("ws", "task-by-hand").mkdir()
    (store.task_path("ws", "task-by-hand") / "task.json").write_text(json.dumps(doc))
    seen = _summaries(store)
    assert seen[ids[0]][1] == "written by Go" and "task-by-hand" in seen and len(seen) == 6


def test_the_cache_file_is_kept_newest_first(tmp_path: Path) -> None:
    """The cache file's entries are in listing order, so a fresh process sorts an already sorted list."""
    store, ids = _store(tmp_path / "home")
    store.reindex("ws")
    cache = store.home / ".atlas-tasks" / "summaries" / "ws.json"
    assert list(json.loads(cache.read_bytes())["tasks"]) == ids[::-1]
    assert [s.id for s in FileStore(tmp_path / "home").list_summaries("ws")] == ids[::-1]


def test_a_repeated_summary_listing_sees_a_task_directory_removed_by_hand(tmp_path: Path) -> None:
    """A task directory removed behind the store (no cache update) is gone from the next warm listing."""
    store, ids = _store(tmp_path / "home")
    _summaries(store)
    _summaries(store)
    shutil.rmtree(store.task_path("ws", ids[1]))
    assert set(_summaries(store)) == set(ids) - {ids[1]}
