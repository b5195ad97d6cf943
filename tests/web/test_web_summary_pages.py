"""Listing pages built from summaries: the same page as a full listing gives, reading only what the page shows."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient
from web_data import BASE_URL, FAST, T0

from atlas_tasks import FileStore, Step, Task
from atlas_tasks.store import Store
from atlas_tasks.web import _views, create_app
from atlas_tasks.web._index import PagedIndex, StoreTaskIndex, index_for

STORE_KINDS = ("memory", "file")

#: (statuses, query, page, per_page) of the pages compared.
PAGES = [
    ((), "", 1, 50),
    ((), "", 2, 4),
    (("crashed",), "", 1, 50),
    (("interrupted",), "", 1, 50),
    (("running",), "", 1, 50),
    (("completed", "pending"), "", 1, 3),
    ((), "refund", 1, 50),
    ((), "ELSEWHERE", 1, 50),
    (("crashed",), "commit", 1, 50),
    ((), "", 99, 5),
]


def _mixed(store: Store, filled: dict[str, str]) -> None:
    """More tasks in ``ws``: finished, pending and two more crashed runs, created over a few hours."""
    for i in range(12):
        status = ("completed", "pending", "running")[i % 3]
        steps = [Step(name="work", type="ai", status="running" if status == "running" else "pending")]
        store.create(
            "ws",
            Task(
                id=f"task-mixed-{i:02d}",
                template="refund" if i % 4 == 0 else "bugfix",
                description=f"mixed {i}",
                status=status,
                steps=steps,
                created_at=T0 + timedelta(hours=2, minutes=i),
            ),
        )


def _shape(page: _views.ListPage) -> dict[str, Any]:
    return {
        "rows": [(row.workspace, row.task.id, row.crashed) for row in page.rows],
        "counts": {status: n for status, n in page.counts.items() if n},
        "numbers": (page.searched, page.matched, page.total, page.page, page.pages),
        "errors": sorted(str(error["task_id"]) for error in page.errors),
    }


@pytest.mark.parametrize("workspace", ["ws", None])
def test_summary_pages_match_the_full_listing(store: Store, filled: dict[str, str], workspace: str | None) -> None:
    """Rows, crash flags, per-status counts, totals and paging equal those of the page built from full tasks."""
    _mixed(store, filled)
    broken: set[str] = set()
    if isinstance(store, FileStore):
        (store.task_path("ws", "task-mixed-05") / "task.json").write_text("{broken")
        broken.add("task-mixed-05")
    paged = index_for(store)
    assert isinstance(paged, PagedIndex)
    plain = StoreTaskIndex(store)
    for statuses, query, page, per_page in PAGES:
        options: dict[str, Any] = {"statuses": statuses, "query": query, "page": page, "per_page": per_page}
        expected = _views.task_list_page(plain, store, workspace, **options)
        got = _views.task_list_page(paged, store, workspace, **options)
        assert _shape(got) == _shape(expected), options
    crashed_only = _views.task_list_page(paged, store, "ws", statuses=["crashed"])
    running = {"task-mixed-02", "task-mixed-08", "task-mixed-11"} | ({"task-mixed-05"} - broken)
    assert {row.task.id for row in crashed_only.rows} == {filled["crashed"], *running}


class CountingStore(FileStore):
    """A FileStore that counts full reads and full listings."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gets: list[str] = []
        self.lists = 0

    def get(self, workspace: str, task_id: str) -> Task:
        self.gets.append(task_id)
        return super().get(workspace, task_id)

    def list(self, workspace: str, *, strict: bool = False, limit: int | None = None) -> Any:
        self.lists += 1
        return super().list(workspace, strict=strict, limit=limit)


def _workspace_of(home: Any, finished: int, running: int) -> CountingStore:
    """``finished`` completed tasks, newest; ``running`` crashed runs, oldest."""
    store = CountingStore(home)
    store.create_workspace("ws")
    for i in range(running):
        steps = [Step(name="work", type="ai", status="running")]
        store.create("ws", Task(id=f"task-run-{i:03d}", status="running", steps=steps, created_at=T0))
    for i in range(finished):
        created = T0 + timedelta(minutes=1 + i)
        store.create("ws", Task(id=f"task-done-{i:03d}", status="completed", created_at=created))
    return store


@pytest.mark.stores("file")
def test_a_fresh_index_reads_only_the_page_and_the_running_tasks(home: Any) -> None:
    """A first page of 10 rows out of 60 finished tasks and 3 running ones reads 13 tasks in full, lists none."""
    store = _workspace_of(home, finished=60, running=3)
    store.gets.clear()
    page = _views.task_list_page(index_for(store), store, "ws", per_page=10)
    assert [row.task.id for row in page.rows] == [f"task-done-{i:03d}" for i in range(59, 49, -1)]
    assert page.counts["crashed"] == 3 and page.counts["completed"] == 60 and page.total == 63
    assert store.lists == 0
    assert sorted(store.gets) == sorted([f"task-run-{i:03d}" for i in range(3)] + [r.task.id for r in page.rows])


@pytest.mark.stores("file")
def test_an_unchanged_workspace_is_paged_without_reading_a_task(home: Any) -> None:
    """The same page again, and the next page's tasks once read, cost no full read."""
    store = _workspace_of(home, finished=30, running=2)
    index = index_for(store)
    _views.task_list_page(index, store, "ws", per_page=10)
    store.gets.clear()
    _views.task_list_page(index, store, "ws", per_page=10)
    assert store.gets == []


@pytest.mark.stores("file")
def test_changes_by_another_process_show_on_the_next_page(home: Any) -> None:
    """A task updated, created and deleted through another store instance is seen by the next page."""
    store = _workspace_of(home, finished=20, running=1)
    index = index_for(store)
    _views.task_list_page(index, store, "ws", per_page=5)
    other = FileStore(home)
    other.modify("ws", "task-done-019", lambda t: setattr(t, "description", "changed elsewhere"))
    other.create("ws", Task(id="task-zz-new", status="pending", created_at=T0 + timedelta(days=1)))
    other.delete("ws", "task-done-018")
    page = _views.task_list_page(index, store, "ws", per_page=5)
    assert [row.task.id for row in page.rows][:3] == ["task-zz-new", "task-done-019", "task-done-017"]
    assert page.rows[1].task.description == "changed elsewhere"
    assert page.counts["pending"] == 1 and page.counts["completed"] == 19 and page.total == 21


@pytest.mark.stores("file")
def test_a_row_rewritten_by_hand_with_the_same_revision_shows_as_stored(home: Any) -> None:
    """A task.json replaced behind the store with the same revision and times (a hand edit of a step) shows its new
    step on the next page: the file store's stamp, not the revision, says the kept copy is old."""
    store = _workspace_of(home, finished=3, running=0)
    index = index_for(store)
    store.modify("ws", "task-done-002", lambda t: t.steps.append(Step(name="first", type="ai")))
    page = _views.task_list_page(index, store, "ws")
    assert page.rows[0].task.steps[0].name == "first"
    path = store.task_path("ws", "task-done-002") / "task.json"
    doc = json.loads(path.read_bytes())
    doc["steps"][0]["name"] = "renamed by hand"
    (path.parent / ".hand.tmp").write_text(json.dumps(doc))
    os.replace(path.parent / ".hand.tmp", path)
    page = _views.task_list_page(index, store, "ws")
    assert page.rows[0].task.steps[0].name == "renamed by hand"


class WorkspaceCountingStore(FileStore):
    """A FileStore that counts workspace document reads."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.workspace_reads = 0

    def get_workspace(self, name: str) -> Any:
        self.workspace_reads += 1
        return super().get_workspace(name)


@pytest.mark.stores("file")
def test_the_workspace_header_is_read_again_only_when_its_document_changes(home: Any) -> None:
    """The workspace page decodes workspace.json once while it is unchanged, and shows a change made by another
    store instance (another process) on the next request."""
    store = WorkspaceCountingStore(home)
    store.create_workspace("ws", branch="fix/rounding")
    store.create("ws", Task(description="one"))
    with TestClient(create_app(store, live=FAST), base_url=BASE_URL) as client:
        assert client.get("/workspaces/ws").status_code == 200
        assert client.get("/workspaces/ws").status_code == 200
        assert store.workspace_reads == 1
        FileStore(home).set_workspace_status("ws", "paused")
        page = client.get("/workspaces/ws").text
        assert store.workspace_reads == 2 and "paused" in page
        assert client.get("/workspaces/nope").status_code == 404
