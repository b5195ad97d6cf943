"""Following a log on PostgreSQL: append_log announces each line on the task's own channel (NOTIFY at commit), and
follow_log yields every line once, in order, until told the run is over."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest

from atlas_tasks import Task
from atlas_tasks.backends.postgres import PostgresStore
from atlas_tasks.backends.postgres._leases import log_channel
from atlas_tasks.errors import TaskNotFoundError


def test_append_log_notifies_the_tasks_channel_only(
    pg_store: PostgresStore, pg_ws: str, pg_conn: psycopg.Connection[Any]
) -> None:
    one, two = (pg_store.create(pg_ws, Task(description=d)) for d in ("one", "two"))
    pg_conn.execute(f'LISTEN "{log_channel(pg_store.schema, pg_ws, one.id)}"')
    pg_store.append_log(pg_ws, two.id, {"event": "elsewhere"})
    pg_store.append_log(pg_ws, one.id, {"event": "first"})
    pg_store.append_log(pg_ws, one.id, {"event": "second"})
    got = [n.payload for n in pg_conn.notifies(timeout=10, stop_after=2)]
    assert got == ["1", "2"]  # the sequence numbers of task one's lines; nothing for task two


def test_channel_names_are_short_identifiers() -> None:
    long = log_channel("s" * 63, "w" * 200, "task-" + "x" * 200)
    assert long.isidentifier() and len(long) < 63
    assert log_channel("a", "w", "t1") != log_channel("b", "w", "t1") != log_channel("a", "w", "t2")


def test_follow_yields_old_and_new_lines_once_in_order(pg_store: PostgresStore, pg_ws: str) -> None:
    """Lines written before and while following all come out once, in order; lines committed before `until`
    turned true are not lost."""
    task = pg_store.create(pg_ws, Task(description="x"))
    pg_store.append_log(pg_ws, task.id, {"event": "before"})
    written = threading.Event()

    def writer() -> None:
        for i in range(20):
            pg_store.append_log(pg_ws, task.id, {"event": f"line {i}"})
        written.set()

    thread = threading.Thread(target=writer)
    seen = []
    for entry in pg_store.follow_log(pg_ws, task.id, until=written.is_set, poll=0.05):
        seen.append(entry["event"])
        if len(seen) == 1:
            thread.start()  # new lines only once the follower has read the old one
    thread.join()
    assert seen == ["before", *(f"line {i}" for i in range(20))]


def test_follow_of_a_missing_task_is_a_typed_error(pg_store: PostgresStore, pg_ws: str) -> None:
    with pytest.raises(TaskNotFoundError):
        next(pg_store.follow_log(pg_ws, "task-20200101-000000", until=lambda: True))
