"""The file store's ``task_refs`` modes: which workspace.json task refs a create, delete, update and import keep."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from atlas_tasks import FileStore, Task, TaskStatus
from atlas_tasks.ids import TIMESTAMP_ID_RE, UUID_ID_RE
from atlas_tasks.retention.bundle import export_tasks, import_bundle
from atlas_tasks.store.urls import file_url_path, open_store
from atlas_tasks.testing.conformance import sample_task


def ws_file(store: FileStore, ws: str = "ws") -> Path:
    return store.workspace_path(ws) / "workspace.json"


def ref_ids(store: FileStore, ws: str = "ws") -> list[str]:
    return [r["id"] for r in json.loads(ws_file(store, ws).read_bytes())["tasks"]]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    store = FileStore(tmp_path / "home")
    store.create_workspace("ws")
    return tmp_path / "home"


def test_default_create_adds_no_ref_and_leaves_workspace_json_alone(home: Path) -> None:
    """By default a create writes nothing to workspace.json (as the current Go ATLAS): the file is byte-identical."""
    store = FileStore(home)
    before = ws_file(store).read_bytes()
    store.create("ws", sample_task())
    assert ws_file(store).read_bytes() == before


def test_all_mode_create_adds_its_ref(home: Path) -> None:
    """With task_refs="all" every create adds its ref."""
    store = FileStore(home, task_refs="all")
    ids = [store.create("ws", sample_task()).id for _ in range(2)]
    assert ref_ids(store) == ids


def test_delete_drops_an_existing_ref_by_default(home: Path) -> None:
    """A task that has a ref (made by a store keeping all, or the story-era Go) loses it when deleted by default."""
    kept, doomed = (FileStore(home, task_refs="all").create("ws", sample_task()).id for _ in range(2))
    FileStore(home).delete("ws", doomed)
    assert ref_ids(FileStore(home)) == [kept]


def test_delete_many_drops_existing_refs_by_default(home: Path) -> None:
    """delete_many by default drops the refs of the tasks it deletes and keeps the others."""
    ids = [FileStore(home, task_refs="all").create("ws", sample_task()).id for _ in range(4)]
    assert FileStore(home).delete_many("ws", ids[:3]) == {}
    assert ref_ids(FileStore(home)) == ids[3:]


def test_terminal_status_refreshes_an_existing_ref_by_default(home: Path) -> None:
    """By default a task with a ref that reaches a terminal status gets its ref's status and completed_at updated."""
    task = FileStore(home, task_refs="all").create("ws", sample_task())
    store = FileStore(home)
    store.modify("ws", task.id, lambda t: t.transition(TaskStatus.ABANDONED))
    (ref,) = json.loads(ws_file(store).read_bytes())["tasks"]
    assert ref["status"] == "abandoned" and ref["completed_at"]


def test_terminal_status_adds_no_ref_by_default(home: Path) -> None:
    """By default a task without a ref reaching a terminal status leaves workspace.json as it was."""
    store = FileStore(home)
    task = store.create("ws", sample_task())
    before = ws_file(store).read_bytes()
    store.modify("ws", task.id, lambda t: t.transition(TaskStatus.ABANDONED))
    assert ws_file(store).read_bytes() == before


def test_terminal_status_adds_the_missing_ref_in_all_mode(home: Path) -> None:
    """With task_refs="all" a task without a ref gets one when it reaches a terminal status (as before)."""
    task = FileStore(home).create("ws", sample_task())
    store = FileStore(home, task_refs="all")
    store.modify("ws", task.id, lambda t: t.transition(TaskStatus.ABANDONED))
    assert ref_ids(store) == [task.id]


@pytest.mark.parametrize(("mode", "refs"), [("existing", 0), ("all", 1)])
def test_import_adds_a_ref_only_in_all_mode(tmp_path: Path, home: Path, mode: str, refs: int) -> None:
    """An imported task gets a ref as a created one does: only with task_refs="all"."""
    src = FileStore(home)
    task = src.create("ws", sample_task())
    export_tasks(src, "ws", [task.id], tmp_path / "b.tar")
    dst = FileStore(tmp_path / "dst", task_refs=mode)  # type: ignore[arg-type]
    import_bundle(dst, tmp_path / "b.tar")
    assert ref_ids(dst) == [task.id] * refs


def test_a_bad_mode_is_refused(tmp_path: Path) -> None:
    """An unknown task_refs value is a ValueError naming the choices."""
    with pytest.raises(ValueError, match="'existing' or 'all'"):
        FileStore(tmp_path, task_refs="some")  # type: ignore[arg-type]


def test_url_query_opens_all_mode_and_the_store_url_keeps_it(tmp_path: Path) -> None:
    """file:///…?task_refs=all opens a store in that mode; its url names the mode, so it reopens the same."""
    store = open_store(f"file://{tmp_path}?task_refs=all")
    assert isinstance(store, FileStore) and store.task_refs == "all"
    assert store.url.endswith("?task_refs=all")
    again = open_store(store.url)
    assert isinstance(again, FileStore) and again.task_refs == "all" and again.home == store.home
    assert FileStore(tmp_path).url == f"file://{tmp_path}"
    assert file_url_path(store.url) == str(tmp_path)


@pytest.mark.parametrize(
    "query", ["task_refs=some", "other=1", "task_refs=all&task_refs=all", "task_refs=all&x=1"], ids=str
)
def test_url_with_another_query_is_refused(tmp_path: Path, query: str) -> None:
    """A file URL's only query is one task_refs=existing|all: anything else is a ValueError, no store opened."""
    with pytest.raises(ValueError, match="task_refs"):
        open_store(f"file://{tmp_path}?{query}")


def test_url_mode_and_a_different_keyword_conflict(tmp_path: Path) -> None:
    """A URL saying task_refs=all with a caller's task_refs="existing" is a ValueError, not a silent pick."""
    with pytest.raises(ValueError, match="task_refs"):
        open_store(f"file://{tmp_path}?task_refs=all", task_refs="existing")


def test_timestamp_verdict_is_kept_for_style_recheck_seconds(home: Path) -> None:
    """A store that found no uuid id keeps making timestamp ids until style_recheck passes, then follows Go's uuid."""
    store = FileStore(home)
    assert TIMESTAMP_ID_RE.fullmatch(store.create("ws", Task(description="first")).id)
    go_task = home / "workspaces" / "ws" / "tasks" / "task-b7e4a2d9-1c3f-4a8e-9b5d-2e7f6c0d8a41"
    go_task.mkdir()  # the current Go ATLAS starts a task here
    assert TIMESTAMP_ID_RE.fullmatch(store.create("ws", Task(description="cached")).id)
    store.style_recheck = 0.0
    assert UUID_ID_RE.fullmatch(store.create("ws", Task(description="rechecked")).id)
