"""The summary cache behind list_summaries() and list(limit=) is never trusted over the tasks themselves."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from atlas_tasks import FileStore, Task, TaskStatus

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def _store(tmp_path: Path, n: int = 5) -> tuple[FileStore, list[str]]:
    store = FileStore(tmp_path / "home", id_style="uuid")
    store.create_workspace("ws")
    ids = [store.create("ws", Task(description=f"t{i}", created_at=T0 + timedelta(minutes=i))).id for i in range(n)]
    return store, ids


def _cache_file(store: FileStore) -> Path:
    return store.home / ".atlas-tasks" / "summaries" / "ws.json"


def test_summaries_follow_updates_made_after_the_cache_was_written(tmp_path: Path) -> None:
    store, ids = _store(tmp_path)
    assert [s.id for s in store.list_summaries("ws")] == ids[::-1]
    assert _cache_file(store).exists()
    task = store.get("ws", ids[2])
    task.transition(TaskStatus.RUNNING, "go")
    task.description = "changed"
    store.update("ws", task)
    by_id = {s.id: s for s in store.list_summaries("ws")}
    assert by_id[ids[2]].status == "running"
    assert by_id[ids[2]].description == "changed"
    assert by_id[ids[2]].revision == 2


def test_a_task_rewritten_behind_the_store_is_read_again(tmp_path: Path) -> None:
    store, ids = _store(tmp_path)
    store.list_summaries("ws")
    path = store.task_path("ws", ids[0]) / "task.json"
    doc = json.loads(path.read_bytes())
    doc["description"] = "written by Go"
    tmp = path.with_name(".go.tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)  # as the Go ATLAS writes: a new file renamed over the old one
    fresh = FileStore(store.home)
    assert {s.id: s.description for s in fresh.list_summaries("ws")}[ids[0]] == "written by Go"


def test_newest_first_with_limit_sees_new_and_deleted_tasks(tmp_path: Path) -> None:
    store, ids = _store(tmp_path)
    assert [t.id for t in store.list("ws", limit=2)] == [ids[4], ids[3]]
    newer = store.create("ws", Task(description="newest", created_at=T0 + timedelta(hours=1))).id
    store.delete("ws", ids[4])
    assert [t.id for t in store.list("ws", limit=2)] == [newer, ids[3]]
    assert [t.id for t in store.list("ws", limit=10)] == [t.id for t in store.list("ws")]


def test_an_update_that_moves_created_at_reorders_the_newest(tmp_path: Path) -> None:
    store, ids = _store(tmp_path)
    store.list("ws", limit=1)
    task = store.get("ws", ids[0])
    task.created_at = T0 + timedelta(days=1)
    store.update("ws", task)
    assert [t.id for t in store.list("ws", limit=1)] == [ids[0]]


def test_created_at_moved_behind_the_store_is_noticed_among_the_newest(tmp_path: Path) -> None:
    store, ids = _store(tmp_path)
    store.list("ws", limit=2)
    path = store.task_path("ws", ids[4]) / "task.json"
    doc = json.loads(path.read_bytes())
    doc["created_at"] = "2024-01-01T00:00:00Z"  # now the oldest
    path.write_text(json.dumps(doc))
    assert [t.id for t in store.list("ws", limit=2)] == [ids[3], ids[2]]


def test_a_damaged_cache_file_is_ignored(tmp_path: Path) -> None:
    store, ids = _store(tmp_path)
    store.list_summaries("ws")
    for garbage in (b"", b"{not json", b'{"version": 1, "tasks": {"x": [1]}}', b"[]"):
        _cache_file(store).write_bytes(garbage)
        fresh = FileStore(store.home)
        assert [s.id for s in fresh.list_summaries("ws")] == ids[::-1]
        assert [t.id for t in fresh.list("ws", limit=3)] == ids[::-1][:3]


def test_unreadable_tasks_are_reported_every_time(tmp_path: Path) -> None:
    store, ids = _store(tmp_path)
    (store.task_path("ws", ids[1]) / "task.json").write_text("{broken")
    for _ in range(2):
        summaries = store.list_summaries("ws")
        assert len(summaries) == 4
        assert len(summaries.errors) == 1
        newest = store.list("ws", limit=10)
        assert len(newest) == 4
        assert len(newest.errors) == 1


def test_reindex_rebuilds_the_cache(tmp_path: Path) -> None:
    store, ids = _store(tmp_path)
    store.reindex("ws")
    assert _cache_file(store).exists()
    assert set(json.loads(_cache_file(store).read_bytes())["tasks"]) == set(ids)


def test_a_task_recreated_under_the_same_id_is_ordered_by_its_new_created_at(tmp_path: Path) -> None:
    store, ids = _store(tmp_path)
    assert [t.id for t in store.list("ws", limit=1)] == [ids[4]]
    store.delete("ws", ids[0])
    # The id is retired by its tombstone; a tool that knows none (the Go ATLAS) may still write it again.
    (tmp_path / "home" / ".atlas-tasks" / "tombstones" / "ws" / f"{ids[0]}.json").unlink()
    store.create("ws", Task(id=ids[0], description="again", created_at=T0 + timedelta(days=2)))
    newest = store.list("ws", limit=1)
    assert [(t.id, t.description) for t in newest] == [(ids[0], "again")]


def test_delete_forgets_the_task_in_the_cache(tmp_path: Path) -> None:
    """A deleted task's entry leaves the cache at once: its directory's inode, which validates the entry, may be
    reused by a task created again under the same id (seen as a rare wrong order in the test above)."""
    store, ids = _store(tmp_path)
    store.list("ws", limit=1)
    assert ids[0] in store._summaries.load("ws")
    store.delete("ws", ids[0])
    assert ids[0] not in store._summaries.load("ws")
    assert ids[0] not in FileStore(tmp_path / "home")._summaries.load("ws")  # the file too, for other processes
