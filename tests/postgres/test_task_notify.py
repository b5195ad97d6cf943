"""Task writes on PostgreSQL NOTIFY the task's channel (the one its log lines are announced on), so a live page sees
a status or step change made by another process at once, not at its next poll; log followers ignore them."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient

from atlas_tasks import Step, Task
from atlas_tasks.backends.postgres import PostgresStore
from atlas_tasks.backends.postgres._leases import log_channel
from atlas_tasks.errors import ConflictError
from atlas_tasks.web import create_app
from atlas_tasks.web._live import FollowingLiveSource, LiveSettings

#: Only a notification can explain a change seen well before this: the streams' poll interval, in seconds.
LONG_POLL = 60.0
#: Against hanging only: a notification arrives in milliseconds, a poll would take LONG_POLL.
DEADLINE = 30.0
SLOW = LiveSettings(poll=LONG_POLL, lifetime=600.0, keepalive=600.0)

# Another process changes the task through a store of its own: its own connections, its own commit.
CHANGE = """
import sys
from atlas_tasks.backends.postgres import PostgresStore

url, schema, task_id, what = sys.argv[1:]
with PostgresStore(url, schema=schema) as store:
    if what == "step":
        store.modify("ws", task_id, lambda t: setattr(t.steps[0], "status", "running"))
    else:
        store.modify("ws", task_id, lambda t: t.transition("abandoned", "given up elsewhere"))
"""


@pytest.fixture
def store(pg_url: str, fresh_schema: str) -> Iterator[PostgresStore]:
    with PostgresStore(pg_url, schema=fresh_schema) as opened:
        opened.create_workspace("ws")
        yield opened


def change_in_another_process(pg_url: str, store: PostgresStore, task_id: str, what: str) -> None:
    subprocess.run(
        [sys.executable, "-c", CHANGE, pg_url, store.schema, task_id, what],
        check=True,
        timeout=DEADLINE,
        env=dict(os.environ),
    )


def test_every_task_write_notifies_the_tasks_channel(store: PostgresStore, pg_conn: psycopg.Connection[Any]) -> None:
    """create, update, edit, a transition and delete each send 'task:<revision>' ('task:deleted') at commit; a
    refused update sends nothing; log lines keep their sequence numbers; another task's writes go elsewhere."""
    task = store.create("ws", Task(description="one", steps=[Step(name="s")]))
    other = store.create("ws", Task(description="two"))
    pg_conn.execute(f'LISTEN "{log_channel(store.schema, "ws", task.id)}"')
    stale = store.get("ws", task.id)
    store.update("ws", stale.model_copy(update={"description": "updated"}))
    with pytest.raises(ConflictError):
        store.update("ws", stale)  # refused: no notification
    store.modify("ws", other.id, lambda t: t.metadata.update(x=1))  # another task: another channel
    store.append_log("ws", task.id, {"event": "a line"})
    store.modify("ws", task.id, lambda t: t.transition("running"))
    with store.edit("ws", task.id) as editing:
        editing.steps[0].status = "running"  # type: ignore[assignment]
    store.delete("ws", task.id)
    got = [n.payload for n in pg_conn.notifies(timeout=DEADLINE, stop_after=5)]
    assert got == ["task:2", "1", "task:3", "task:4", "task:deleted"]

    pg_conn.execute(f'LISTEN "{log_channel(store.schema, "ws", "task-explicit")}"')
    store.create("ws", Task(id="task-explicit", description="named"))
    assert [n.payload for n in pg_conn.notifies(timeout=DEADLINE, stop_after=1)] == ["task:1"]


def test_follow_log_yields_lines_only_and_reports_task_writes(store: PostgresStore) -> None:
    """Task writes between log lines wake a follower but add no line and repeat none; on_task gets the revisions."""
    task = store.create("ws", Task(description="x"))
    store.append_log("ws", task.id, {"event": "before"})
    listening, written = threading.Event(), threading.Event()
    revisions: list[str] = []

    def writer() -> None:
        listening.wait(DEADLINE)
        for i in range(5):
            store.modify("ws", task.id, lambda t, i=i: t.metadata.update(n=i))
            store.append_log("ws", task.id, {"event": f"line {i}"})
        store.modify("ws", task.id, lambda t: t.metadata.update(n="last"))
        written.set()

    thread = threading.Thread(target=writer)
    thread.start()
    seen = [
        entry["event"]
        for entry in store.follow_log(
            "ws", task.id, until=written.is_set, poll=0.05, on_listen=listening.set, on_task=revisions.append
        )
    ]
    thread.join()
    assert seen == ["before", *(f"line {i}" for i in range(5))]
    # Each write is announced once, in order (the last one may come after the follower stopped).
    assert revisions == [str(r) for r in range(2, 2 + len(revisions))] and len(revisions) >= 5


def test_waiting_listener_wakes_on_a_write_from_another_process(pg_url: str, store: PostgresStore) -> None:
    """FollowingLiveSource.wait returns long before its timeout when another process changes the task, even if
    the change commits between the mark (taken before reading) and the wait."""
    task = store.create("ws", Task(description="x", status="interrupted", steps=[Step(name="s")]))
    source = FollowingLiveSource(store)
    try:
        mark = source.mark("ws", task.id)
        change_in_another_process(pg_url, store, task.id, "step")  # before the wait begins

        async def wait() -> float:
            started = time.monotonic()
            await source.wait("ws", task.id, LONG_POLL, mark)
            return time.monotonic() - started

        assert asyncio.run(wait()) < DEADLINE

        mark = source.mark("ws", task.id)
        threading.Timer(0.5, change_in_another_process, (pg_url, store, task.id, "abandon")).start()
        assert asyncio.run(wait()) < DEADLINE  # woken while waiting
        assert store.get("ws", task.id).status == "abandoned"
    finally:
        source.close()


def test_status_change_by_another_process_reaches_the_event_stream_at_once(pg_url: str, store: PostgresStore) -> None:
    """With a poll interval of a minute, a step change and then a status change made by another process (no log
    line written) each reach the page's event stream promptly: only the task's NOTIFY can explain that."""
    task = store.create("ws", Task(description="x", status="interrupted", steps=[Step(name="s")]))
    app = create_app(store, live=SLOW)
    seen: list[tuple[str, str, float]] = []
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert isinstance(app.state.dashboard.source, FollowingLiveSource)
        with client.stream("GET", f"/workspaces/ws/tasks/{task.id}/events") as response:
            assert response.status_code == 200
            kind = ""
            changed = time.monotonic()
            for line in response.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind == "end":
                    break
                elif line.startswith("data: ") and kind == "task":
                    data = json.loads(line[6:])
                    seen.append((data["status"], data["steps"][0]["status"], time.monotonic() - changed))
                    if len(seen) == 1:  # the first state: now change the step elsewhere
                        change_in_another_process(pg_url, store, task.id, "step")
                        changed = time.monotonic()
                    elif len(seen) == 2:
                        change_in_another_process(pg_url, store, task.id, "abandon")
                        changed = time.monotonic()
    assert [(status, step) for status, step, _ in seen] == [
        ("interrupted", "pending"),
        ("interrupted", "running"),
        ("abandoned", "running"),
    ]
    assert all(after < DEADLINE for _, _, after in seen[1:]), seen  # a poll would have taken LONG_POLL
