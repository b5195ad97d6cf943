"""The task index behind the listings: cached for the file store, exact with any store."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient
from web_data import BASE_URL, FAST

from atlas_tasks import FileStore, Task
from atlas_tasks.web import _index, create_app
from atlas_tasks.web._index import FileTaskIndex, StoreTaskIndex, SummaryTaskIndex, index_for
from atlas_tasks.web._live import StoreLiveSource


class CountingStore(FileStore):
    """A FileStore that counts the reads the index makes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gets = 0
        self.lists = 0

    def get(self, workspace: str, task_id: str) -> Task:
        self.gets += 1
        return super().get(workspace, task_id)

    def list(self, workspace: str, *, strict: bool = False) -> Any:
        self.lists += 1
        return super().list(workspace, strict=strict)


class OtherStore:
    """Another backend, as far as the dashboard can tell: the Store protocol plus leases, no file paths and no
    change stamps."""

    hidden: tuple[str, ...] = (
        "home",
        "go_home",
        "task_path",
        "log_path",
        "workspace_path",
        "workspace_names",
        "task_stamps",
        "task_stamp",
        "check",
    )

    def __init__(self, inner: FileStore) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        if name in self.hidden:
            raise AttributeError(name)
        return getattr(self._inner, name)


@pytest.fixture
def counting(home: Any) -> CountingStore:
    return CountingStore(home)


def _ids(listing: Any) -> list[str]:
    return [t.id for t in listing]


def test_index_matches_store_list(store: FileStore, filled: dict[str, str]) -> None:
    """The cached listing has the store's tasks, order and errors."""
    (store.task_path("ws", filled["pending"]) / "task.json").write_text("{oops")
    expected = store.list("ws")
    got = FileTaskIndex(store).tasks("ws")
    assert _ids(got) == _ids(expected)
    assert [type(e) for e in got.errors] == [type(e) for e in expected.errors]


def test_index_reads_nothing_when_nothing_changed(counting: CountingStore, filled: dict[str, str]) -> None:
    """A second listing of an unchanged workspace decodes no task at all."""
    index = FileTaskIndex(counting)
    index.tasks("ws")
    counting.gets = counting.lists = 0
    index.tasks("ws")
    assert counting.gets == counting.lists == 0


def test_index_rereads_only_changed_tasks(counting: CountingStore, filled: dict[str, str]) -> None:
    """A modified, a new and a deleted task are seen; only the first two are read again."""
    index = FileTaskIndex(counting)
    index.tasks("ws")
    counting.modify("ws", filled["done"], lambda t: t.metadata.update(seen=True))
    counting.create("ws", Task(id="task-zz", description="new"))
    counting.delete("ws", filled["pending"])
    counting.gets = counting.lists = 0
    listing = index.tasks("ws")
    assert counting.lists == 0 and counting.gets == 2
    assert "task-zz" in _ids(listing) and filled["pending"] not in _ids(listing)
    assert next(t for t in listing if t.id == filled["done"]).metadata["seen"] is True
    assert _ids(listing) == _ids(counting.list("ws"))


def test_index_reloads_everything_after_many_changes(counting: CountingStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """More changed tasks than the threshold are read with one store.list instead of one get each."""
    monkeypatch.setattr(_index, "FULL_RELOAD_AFTER", 3)
    counting.create_workspace("big")
    index = FileTaskIndex(counting)
    index.tasks("big")
    for i in range(4):
        counting.create("big", Task(id=f"task-{i:04d}"))
    counting.gets = counting.lists = 0
    assert len(index.tasks("big")) == 4
    assert counting.lists == 1 and counting.gets == 0


def test_index_sees_a_task_turn_unreadable(store: FileStore, filled: dict[str, str]) -> None:
    """A task.json damaged after it was cached moves to the errors."""
    index = FileTaskIndex(store)
    index.tasks("ws")
    (store.task_path("ws", filled["pending"]) / "task.json").write_text("{broken")
    listing = index.tasks("ws")
    assert filled["pending"] not in _ids(listing) and [e.task_id for e in listing.errors] == [filled["pending"]]


def test_index_workspace_names_and_missing_workspace(store: FileStore, filled: dict[str, str]) -> None:
    """Workspace names come from the directory; an unknown workspace raises WorkspaceNotFoundError."""
    from atlas_tasks.errors import WorkspaceNotFoundError

    index = FileTaskIndex(store)
    assert index.workspace_names() == ["other", "ws"]
    with pytest.raises(WorkspaceNotFoundError):
        index.tasks("nope")
    assert FileTaskIndex(FileStore(store.home / "missing")).workspace_names() == []


def test_index_for_picks_by_backend(store: FileStore) -> None:
    """A store with change stamps gets the stamp-based index; any other store the summary-based one."""
    assert isinstance(index_for(store), FileTaskIndex)
    assert isinstance(index_for(OtherStore(store)), SummaryTaskIndex)  # type: ignore[arg-type]


@pytest.mark.parametrize("plain", [False, True])
def test_dashboard_works_through_the_store_protocol_alone(
    store: FileStore, filled: dict[str, str], plain: bool
) -> None:
    """With a store that has no file paths (another backend) every page and API document still works."""
    other: Any = OtherStore(store)
    app = create_app(other, live=FAST, index=StoreTaskIndex(other) if plain else None)
    assert isinstance(app.state.dashboard.source, StoreLiveSource)
    with TestClient(app, base_url=BASE_URL) as client:
        for path in (
            "/",
            "/tasks",
            "/workspaces/ws?status=crashed",
            f"/workspaces/ws/tasks/{filled['done']}",
            f"/workspaces/ws/tasks/{filled['done']}/artifacts/report.json",
            f"/api/workspaces/ws/tasks/{filled['done']}",
        ):
            assert client.get(path).status_code == 200, path
        sizes = client.get(f"/api/workspaces/ws/tasks/{filled['done']}/artifacts").json()["artifacts"]
        expected = len(store.get_artifact("ws", filled["done"], "report.json"))
        assert {"name": "report.json", "size": expected, "step": None} in sizes


def test_run_finishing_between_reads_is_not_crashed(store: FileStore, filled: dict[str, str]) -> None:
    """A listing read while the task ran, then the runner finished and let go of its lease: not a crash."""
    from atlas_tasks.web import _views

    index = FileTaskIndex(store)
    stale = next(t for t in index.tasks("ws") if t.id == filled["crashed"])
    assert stale.status == "running" and index.unchanged("ws", stale)

    def finish(task: Task) -> None:
        task.steps[0].status = "success"
        task.current_step = 1
        task.transition("validating", "done")
        task.transition("awaiting_approval", "done")
        task.transition("completed", "done")

    store.modify("ws", filled["crashed"], finish)
    assert _views.crashed_keys(store, [("ws", stale)]) == {("ws", stale.id)}  # the two reads disagree...
    assert not index.unchanged("ws", stale)  # ...and the second look says the copy is old
    state = _views.task_state(store, "ws", stale)
    assert state["status"] == "completed" and state["crashed"] is False


def test_lease_file_left_by_a_dead_runner_still_counts_as_crashed(
    client: TestClient, store: FileStore, filled: dict[str, str]
) -> None:
    """A lease file whose runner is gone is probed, not trusted; a held one means a live runner."""
    store.acquire_lease("ws", filled["crashed"], {"pid": 1, "host": "h"}).release()
    assert filled["crashed"] in client.get("/workspaces/ws?status=crashed").text
    lease = store.acquire_lease("ws", filled["crashed"], {"pid": 1, "host": "h"})
    try:
        assert filled["crashed"] not in client.get("/workspaces/ws?status=crashed").text
    finally:
        lease.release()
