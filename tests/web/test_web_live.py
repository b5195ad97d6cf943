"""Live updates: the Server-Sent Events of task and listing pages, and the change sources behind them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from starlette.testclient import TestClient
from web_data import HOSTILE

from atlas_tasks import Task
from atlas_tasks.store import LocalFiles, Store
from atlas_tasks.web._live import FileLiveSource, LiveSettings, LogCursor, StoreLiveSource, sse

STORE_KINDS = ("memory", "file")


def events(lines: Iterator[str]) -> Iterator[tuple[str, Any, str | None]]:
    """Parse an SSE stream into ``(event, data, id)``; comments and ``retry:`` lines are skipped."""
    name, data, event_id = "message", "", None
    for line in lines:
        if line == "":
            if data:
                yield name, json.loads(data), event_id
            name, data, event_id = "message", "", None
        elif line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data += line[6:]
        elif line.startswith("id: "):
            event_id = line[4:]


@contextmanager
def stream(client: TestClient, url: str, **kwargs: Any) -> Iterator[Iterator[tuple[str, Any, str | None]]]:
    """Open an event stream and yield its parsed events."""
    with client.stream("GET", url, **kwargs) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        yield events(response.iter_lines())


def _line_ends(store: Store, task_id: str) -> list[int]:
    """The store's log position just after each line of the task's log (for the file store: task.log's byte
    offsets, checked here against the file itself)."""
    positions = store.tail_log("ws", task_id, 1_000_000).positions
    if isinstance(store, LocalFiles):
        ends, offset = [], 0
        for line in store.log_path("ws", task_id).read_bytes().splitlines(keepends=True):
            offset += len(line)
            ends.append(offset)
        assert positions == ends
    return positions


def _text(pieces: list[list[str]]) -> str:
    return "".join(text for text, _ in pieces)


def test_finished_task_streams_state_log_and_end(client: TestClient, store: Store, filled: dict[str, str]) -> None:
    """A finished task's stream sends its state, every log line after ``log_from``, then ``end``, and closes."""
    store.modify("ws", filled["done"], lambda t: t.transition("abandoned", "given up"))
    with stream(client, f"/workspaces/ws/tasks/{filled['done']}/events?log_from=0") as received:
        got = list(received)
    kinds = [kind for kind, _, _ in got]
    assert kinds == ["task", "log", "log", "end"]
    state = got[0][1]
    assert state["status"] == "abandoned" and state["terminal"] is True
    assert [s["attempts"] for s in state["steps"]] == [2, 1, 0]
    assert _text(got[2][1]["pieces"]).endswith(f"error validate failed {HOSTILE}")  # text, not markup
    # Each id is the store's position after its line: in the file store, task.log's byte offset.
    ends = [str(n) for n in _line_ends(store, filled["done"])]
    assert [event_id for _, _, event_id in got[1:3]] == ends


def test_log_from_and_last_event_id_skip_lines_already_shown(
    client: TestClient, store: Store, filled: dict[str, str]
) -> None:
    """Lines the page already shows are not sent again; a reconnect's Last-Event-ID wins over log_from."""
    store.modify("ws", filled["done"], lambda t: t.transition("abandoned", "given up"))
    url = f"/workspaces/ws/tasks/{filled['done']}/events"
    first, second = _line_ends(store, filled["done"])
    with stream(client, url + f"?log_from={first}") as received:
        assert [kind for kind, _, _ in received] == ["task", "log", "end"]
    with stream(client, url + "?log_from=0", headers={"last-event-id": str(second)}) as received:
        assert [kind for kind, _, _ in received] == ["task", "end"]


def test_running_task_pushes_step_changes_and_new_lines(
    client: TestClient, store: Store, filled: dict[str, str]
) -> None:
    """While a task runs, a new log line and a step's change of status arrive as events without asking again."""
    task_id = filled["crashed"]
    lease = store.acquire_lease("ws", task_id, {"pid": 1, "host": "h"})
    try:
        with stream(client, f"/workspaces/ws/tasks/{task_id}/events") as received:
            kind, state, _ = next(received)
            assert kind == "task" and state["status"] == "running" and state["steps"][0]["running_since"]
            store.append_log("ws", task_id, {"level": "info", "event": "pushing", "step_name": "commit"})
            kind, line, event_id = next(received)
            assert kind == "log" and "pushing" in _text(line["pieces"])
            assert event_id == str(_line_ends(store, task_id)[-1])

            def finish(task: Task) -> None:
                task.steps[0].status = "success"
                task.current_step = 1
                task.transition("validating", "all steps done")
                task.transition("awaiting_approval", "all steps done")
                task.transition("completed", "done")

            store.modify("ws", task_id, finish)
            kind, state, _ = next(received)
            assert kind == "task" and state["status"] == "completed" and state["steps"][0]["status"] == "success"
            assert next(received)[0] == "end"
    finally:
        lease.release()


def test_runner_death_turns_the_task_crashed(client: TestClient, store: Store, filled: dict[str, str]) -> None:
    """A runner that dies writes nothing, yet the stream reports the task as crashed once its lease is free."""
    task_id = filled["crashed"]
    lease = store.acquire_lease("ws", task_id, {"pid": 1, "host": "h"})
    with stream(client, f"/workspaces/ws/tasks/{task_id}/events") as received:
        assert next(received)[1]["crashed"] is False
        lease.release()
        kind, state, _ = next(received)
        assert kind == "task" and state["crashed"] is True and state["status"] == "interrupted (crashed)"


def test_deleted_task_stream_says_gone(client: TestClient, store: Store, filled: dict[str, str]) -> None:
    """A task deleted while watched gets one ``gone`` event and the stream ends."""
    with stream(client, f"/workspaces/ws/tasks/{filled['pending']}/events") as received:
        assert next(received)[0] == "task"
        store.delete("ws", filled["pending"])
        kind, data, _ = next(received)
        assert kind == "gone" and "not found" in data["message"]
        assert list(received) == []


def test_stream_of_unknown_task_is_404(client: TestClient, filled: dict[str, str]) -> None:
    """An unknown task is a 404 page before any stream starts."""
    response = client.get("/workspaces/ws/tasks/task-nope/events")
    assert response.status_code == 404 and response.headers["content-type"].startswith("text/html")


def test_stream_ends_after_its_lifetime(make_client: Callable[..., TestClient], filled: dict[str, str]) -> None:
    """An idle stream ends after its lifetime (the browser reconnects), with keepalive comments meanwhile."""
    client = make_client(live=LiveSettings(poll=0.02, lifetime=0.3, keepalive=0.1))
    with client.stream("GET", f"/workspaces/ws/tasks/{filled['pending']}/events") as response:
        body = "".join(response.iter_text())
    assert body.startswith("retry: 2000\n\n") and ": keepalive" in body and body.count("event: task") == 1


def test_row_events_report_listed_tasks(
    make_client: Callable[..., TestClient], store: Store, filled: dict[str, str]
) -> None:
    """A listing's stream sends each listed task's row, then a new row whenever one of them changes."""
    client = make_client(live=LiveSettings(poll=0.02, lifetime=5.0, keepalive=5.0))
    url = f"/events/tasks?t=ws/{filled['pending']}&t=ws/{filled['crashed']}"
    with stream(client, url) as received:
        first = {data["key"]: data for _, data in (next(received)[:2], next(received)[:2])}
        assert first[f"ws/{filled['crashed']}"]["status"] == "interrupted (crashed)"
        assert first[f"ws/{filled['pending']}"]["status_class"] == "st-pending"
        store.modify("ws", filled["pending"], lambda t: t.transition("running", "go"))
        kind, data, _ = next(received)
        assert kind == "row" and data["key"] == f"ws/{filled['pending']}"
        assert data["status"] == "interrupted (crashed)"  # running, and no runner holds it


def test_sse_data_is_one_line() -> None:
    """Event data is one line of ASCII JSON, so stored newlines cannot forge events."""
    text = sse("log", {"pieces": [["a\nevent: end\n\ndata: x", ""]]}, 3)
    assert text.count("\n") == 4 and text.startswith("event: log\nid: 3\ndata: ")
    assert json.loads(text.splitlines()[2][6:]) == {"pieces": [["a\nevent: end\n\ndata: x", ""]]}


# -- the change sources ----------------------------------------------------------------------------------------------


@pytest.mark.stores("file")  # reads task.log by path for the expected positions
def test_file_source_follows_the_log_by_offset(store: Store, filled: dict[str, str]) -> None:
    """The file source reads only new complete lines; a half-written line waits for its newline."""
    source = FileLiveSource(store)
    cursor = LogCursor(position=_line_ends(store, filled["done"])[0])
    assert [r["event"] for r in source.log_since("ws", filled["done"], cursor)] == [f"failed {HOSTILE}"]
    assert list(source.log_since("ws", filled["done"], cursor)) == []
    log = store.log_path("ws", filled["done"])
    with log.open("ab") as f:
        f.write(b'{"event": "half')
    assert list(source.log_since("ws", filled["done"], cursor)) == []
    with log.open("ab") as f:
        f.write(b' done"}\n')
    assert [r["event"] for r in source.log_since("ws", filled["done"], cursor)] == ["half done"]


@pytest.mark.stores("file")  # reads task.log by path for the expected positions
def test_file_source_starts_over_when_the_log_was_replaced(store: Store, filled: dict[str, str]) -> None:
    """A log now shorter than the position (replaced: the task re-created) is followed again from its start."""
    source = FileLiveSource(store)
    cursor = LogCursor()
    assert len(source.log_since("ws", filled["done"], cursor)) == 2
    log = store.log_path("ws", filled["done"])
    log.write_bytes(b'{"event": "new"}\n')
    assert [r["event"] for r in source.log_since("ws", filled["done"], cursor)] == ["new"]
    store.append_log("ws", filled["done"], {"event": "after"})
    assert [r["event"] for r in source.log_since("ws", filled["done"], cursor)] == ["after"]


@pytest.mark.stores("file")  # reads task.log by path for the expected positions
def test_file_stamp_changes_with_the_task_and_the_lease(store: Store, filled: dict[str, str]) -> None:
    """The stamp changes when task.json is rewritten or a runner takes the lease, and not otherwise."""
    source = FileLiveSource(store)
    before = source.task_stamp("ws", filled["pending"])
    assert source.task_stamp("ws", filled["pending"]) == before
    store.append_log("ws", filled["pending"], {"event": "log lines do not change the task"})
    assert source.task_stamp("ws", filled["pending"]) == before
    store.modify("ws", filled["pending"], lambda t: t.metadata.update(x=1))
    after_write = source.task_stamp("ws", filled["pending"])
    assert after_write != before
    lease = store.acquire_lease("ws", filled["pending"], {"pid": 1})
    try:
        assert source.task_stamp("ws", filled["pending"]) != after_write
    finally:
        lease.release()


def test_store_source_works_through_the_protocol(store: Store, filled: dict[str, str]) -> None:
    """The generic source (any backend) detects changes by revision and reads the log after a position."""
    source = StoreLiveSource(store)
    before = source.task_stamp("ws", filled["done"])
    store.modify("ws", filled["done"], lambda t: t.metadata.update(x=1))
    assert source.task_stamp("ws", filled["done"]) != before
    first, second = _line_ends(store, filled["done"])
    cursor = LogCursor(position=first)
    assert len(source.log_since("ws", filled["done"], cursor)) == 1 and cursor.position == second


def test_closing_a_stream_early_returns_promptly(
    make_client: Callable[..., TestClient], filled: dict[str, str]
) -> None:
    """A browser that goes away ends its stream at once, long before the stream's lifetime."""
    client = make_client(live=LiveSettings(poll=0.02, lifetime=30.0, keepalive=0.05))
    started = time.monotonic()
    with stream(client, f"/workspaces/ws/tasks/{filled['pending']}/events") as received:
        assert next(received)[0] == "task"
    assert time.monotonic() - started < 10
