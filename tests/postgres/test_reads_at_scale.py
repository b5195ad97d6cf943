"""Migration 4's read paths: summaries kept in columns, the newest-first index in listing order, the upgrade."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from pg_schema_versions import downgrade_to

from atlas_tasks import CorruptTaskError, Task
from atlas_tasks.backends.postgres import PostgresStore
from atlas_tasks.backends.postgres._encoding import summary_text
from atlas_tasks.backends.postgres._queries import Queries
from atlas_tasks.backends.postgres._store import _LIST_CHUNK
from atlas_tasks.documents.summaries import summarize
from atlas_tasks.store.types import TaskSummary
from atlas_tasks.testing.conformance import sample_task


def _varied_tasks() -> list[Task]:
    """Tasks whose summaries are easy to get wrong: NUL, HTML escapes, non-ASCII, Go's key spelling, no steps."""
    return [
        sample_task(),
        sample_task(description="nul \x00 inside, and <b>&</b>"),
        sample_task(description="ünïcödé ✓ 🎉", template="feature"),
        sample_task(description="Go keys").with_key_style("go"),
        Task(description="no steps at all"),
    ]


def _fields(s: TaskSummary) -> tuple[Any, ...]:
    """Every field, and the times' repr (a NanoTime's nanoseconds and offset, which == does not compare)."""
    times = (s.created_at, s.updated_at, repr(s.created_at), repr(s.updated_at))
    return (s.id, s.workspace, s.status, s.template, s.description, s.current_step, s.total_steps, s.revision, *times)


def _summaries(store: PostgresStore, ws: str) -> list[tuple[Any, ...]]:
    return [_fields(s) for s in store.list_summaries(ws)]


def _from_documents(conn: psycopg.Connection[Any], store: PostgresStore, ws: str) -> list[tuple[Any, ...]]:
    """What the shared summary reader makes of each stored document, in listing order (the old code path)."""
    rows = conn.execute(
        f'SELECT id, doc::text FROM "{store.schema}".tasks WHERE workspace = %s '
        "ORDER BY created_at DESC NULLS LAST, id DESC",
        [ws],
    ).fetchall()
    out = []
    for task_id, doc in rows:
        try:
            s = summarize(doc.encode(), ws, task_id, "")
        except CorruptTaskError:
            continue  # listed in .errors, as list_summaries does
        out.append(_fields(s))
    return out


def test_stored_summaries_equal_reading_the_documents(
    pg_store: PostgresStore, pg_ws: str, pg_conn: psycopg.Connection[Any]
) -> None:
    """list_summaries from the summary columns equals the shared reader on every document, times to the nanosecond."""
    for task in _varied_tasks():
        pg_store.create(pg_ws, task)
    updated = pg_store.get(pg_ws, pg_store.list(pg_ws)[0].id)
    updated.description = "changed by an update"
    pg_store.update(pg_ws, updated)
    got = _summaries(pg_store, pg_ws)
    assert got == _from_documents(pg_conn, pg_store, pg_ws)
    assert "changed by an update" in [row[4] for row in got]
    stored = pg_conn.execute(
        f'SELECT count(*) FROM "{pg_store.schema}".tasks WHERE workspace = %s AND summary_revision = revision',
        [pg_ws],
    ).fetchone()
    assert stored == (len(got),)  # every row was read from its column, none from its document


def test_go_nanosecond_times_survive_the_summary_column() -> None:
    """A Go-written time with nanoseconds and an offset is kept as written, so the summary equals the document's."""
    doc = b'{"id":"task-1","status":"pending","created_at":"2025-03-01T10:00:00.123456789+02:00","steps":[]}'
    text = summary_text(doc, "task-1")
    assert text is not None and "2025-03-01T10:00:00.123456789+02:00" in text


def test_document_rewritten_behind_the_store_is_summarized_again(
    pg_store: PostgresStore, pg_ws: str, pg_conn: psycopg.Connection[Any]
) -> None:
    """A document changed in SQL without a new summary (a hand repair, an older atlas-tasks) is listed as it now is."""
    created = pg_store.create(pg_ws, sample_task(description="before"))
    pg_conn.execute(
        f'UPDATE "{pg_store.schema}".tasks SET doc = replace(doc::text, \'"before"\', \'"after"\')::json '
        "WHERE workspace = %s AND id = %s",
        [pg_ws, created.id],
    )
    assert [s.description for s in pg_store.list_summaries(pg_ws)] == ["after"]


def test_summary_of_another_revision_is_not_used(
    pg_store: PostgresStore, pg_ws: str, pg_conn: psycopg.Connection[Any]
) -> None:
    """A summary column whose revision is not the row's is ignored: the document is read instead."""
    created = pg_store.create(pg_ws, sample_task(description="the document's"))
    wrong = summary_text(b'{"description":"a stale summary"}', created.id)
    pg_conn.execute(
        f'UPDATE "{pg_store.schema}".tasks SET summary = %s, summary_revision = revision - 1 '
        "WHERE workspace = %s AND id = %s",
        [wrong, pg_ws, created.id],
    )
    assert [s.description for s in pg_store.list_summaries(pg_ws)] == ["the document's"]


def test_unchanged_summaries_are_handed_out_again(pg_store: PostgresStore, pg_ws: str) -> None:
    """A second listing reuses the (frozen) summary of an unchanged task and builds a new one for a changed task."""
    a = pg_store.create(pg_ws, sample_task(description="a"))
    b = pg_store.create(pg_ws, sample_task(description="b"))
    first = {s.id: s for s in pg_store.list_summaries(pg_ws)}
    b.description = "b, changed"
    pg_store.update(pg_ws, b)
    second = {s.id: s for s in pg_store.list_summaries(pg_ws)}
    assert second[a.id] is first[a.id]
    assert second[b.id].description == "b, changed" and first[b.id].description == "b"


def test_tasks_without_created_at_are_listed_last(
    pg_store: PostgresStore, pg_ws: str, pg_conn: psycopg.Connection[Any]
) -> None:
    """A task without created_at comes after every dated one, in list, list(limit=) and list_summaries alike."""
    undated = pg_store.create(pg_ws, sample_task(description="undated"))
    dated = [pg_store.create(pg_ws, sample_task()).id for _ in range(3)]
    pg_conn.execute(
        f"UPDATE \"{pg_store.schema}\".tasks SET created_at = NULL, doc = (doc::jsonb - 'created_at')::json "
        "WHERE workspace = %s AND id = %s",
        [pg_ws, undated.id],
    )
    expected = [*sorted(dated, reverse=True), undated.id]
    assert [t.id for t in pg_store.list(pg_ws)] == expected
    assert [t.id for t in pg_store.list(pg_ws, limit=4)] == expected
    assert [t.id for t in pg_store.list(pg_ws, limit=2)] == expected[:2]
    assert [s.id for s in pg_store.list_summaries(pg_ws)] == expected


def test_newest_first_needs_no_sort(pg_store: PostgresStore, pg_ws: str, pg_conn: psycopg.Connection[Any]) -> None:
    """The listing query reads the newest-first index in order (no Sort node), so LIMIT 20 reads only 20 rows."""
    pg_store.create(pg_ws, sample_task())
    query = Queries.for_schema(pg_store.schema).task_list_page
    with pg_conn.transaction():
        pg_conn.execute("SET LOCAL enable_sort = off")
        pg_conn.execute("SET LOCAL enable_seqscan = off")
        plan = pg_conn.execute("EXPLAIN (FORMAT JSON) " + query, (pg_ws, 20, 0)).fetchone()
    assert plan is not None
    text = str(plan[0])
    assert "tasks_newest_first" in text and "'Sort'" not in text


def test_upgrade_from_version_3_stores_every_summary(
    make_store: Callable[..., PostgresStore], fresh_schema: str, pg_conn: psycopg.Connection[Any]
) -> None:
    """A version-3 database with tasks upgrades to 4: each row gets its document's summary; listings are unchanged."""
    old = make_store(schema=fresh_schema)
    old.create_workspace("w")
    for task in _varied_tasks():
        old.create("w", task)
    damaged = old.create("w", sample_task(description="to be damaged")).id
    s = f'"{fresh_schema}"'
    pg_conn.execute(f"UPDATE {s}.tasks SET doc = '[1, 2]'::json WHERE id = %s", [damaged])
    before_list = [t.id for t in old.list("w")]
    downgrade_to(pg_conn, fresh_schema, 3)
    columns = pg_conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = 'tasks'",
        [fresh_schema],
    ).fetchall()
    assert "summary" not in {c[0] for c in columns} and old.schema_version() == 3

    store = make_store(schema=fresh_schema)
    assert store.migrate() == [4]
    rows = pg_conn.execute(f"SELECT id, doc::text, revision, summary, summary_revision FROM {s}.tasks").fetchall()
    for task_id, doc, revision, summary, summary_revision in rows:
        expected = summary_text(doc.encode(), task_id)
        assert summary == expected
        assert summary_revision == (None if expected is None else revision)
    assert sum(1 for row in rows if row[3] is None) == 1  # the damaged one: listed from its document
    listed = store.list_summaries("w")
    assert [e.task_id for e in listed.errors] == [damaged]
    assert _summaries(store, "w") == _from_documents(pg_conn, store, "w")
    assert [x.id for x in listed] == before_list
    index = pg_conn.execute(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND indexname = 'tasks_newest_first'", [fresh_schema]
    ).fetchone()
    assert index is not None and "NULLS LAST" in index[0]


def test_updates_leave_the_indexes_alone(
    make_store: Callable[..., PostgresStore], fresh_schema: str, pg_conn: psycopg.Connection[Any]
) -> None:
    """Updates keeping status and created_at are HOT (no index entry written), even on pages filled by creates."""
    store = make_store(schema=fresh_schema)
    store.create_workspace("w")
    tasks = [store.create("w", sample_task()) for _ in range(20)]  # several full pages (as full as fillfactor lets)
    # One update per task, on tasks spread over the pages: each new version needs the room fillfactor left (a
    # second one would also depend on pruning, which another session's snapshot can hold back).
    updates = 0
    for task in tasks[::4]:
        task.metadata["n"] = 1
        store.update("w", task)
        updates += 1
    # The server's statistics are flushed by the writing session within a second or so of going idle.
    deadline = time.monotonic() + 30
    hot = 0
    while time.monotonic() < deadline:
        row = pg_conn.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relid = %s::regclass",
            [f'"{fresh_schema}".tasks'],
        ).fetchone()
        assert row is not None
        if row[0] >= updates:
            hot = row[1]
            break
        time.sleep(0.2)
    assert hot == updates


def test_whole_listing_in_chunks_equals_one_ordered_query(
    pg_store: PostgresStore, pg_ws: str, pg_conn: psycopg.Connection[Any]
) -> None:
    """list() in several read-ahead chunks gives every task once, in the server's order, damaged ones in errors."""
    source = pg_store.create(pg_ws, sample_task())
    s = f'"{pg_store.schema}"'
    count = 2 * _LIST_CHUNK + 345  # three chunks, the last one partial
    pg_conn.execute(
        f"INSERT INTO {s}.tasks (workspace, id, status, created_at, updated_at, revision, doc, ref)"
        " SELECT t.workspace, t.id || '-' || lpad(g::text, 5, '0'), t.status, t.created_at - g * interval '1 s',"
        " t.updated_at, t.revision, replace(t.doc::text, t.id, t.id || '-' || lpad(g::text, 5, '0'))::json, t.ref"
        f" FROM {s}.tasks t, generate_series(1, %s) g WHERE t.workspace = %s AND t.id = %s",
        [count, pg_ws, source.id],
    )
    damaged = f"{source.id}-{_LIST_CHUNK + 7:05d}"  # in the second chunk
    pg_conn.execute(f"UPDATE {s}.tasks SET doc = '[1]'::json WHERE workspace = %s AND id = %s", [pg_ws, damaged])
    expected = [
        row[0]
        for row in pg_conn.execute(
            f"SELECT id FROM {s}.tasks WHERE workspace = %s ORDER BY created_at DESC NULLS LAST, id DESC", [pg_ws]
        ).fetchall()
        if row[0] != damaged
    ]
    listed = pg_store.list(pg_ws)
    assert [t.id for t in listed] == expected and len(expected) == count
    assert [e.task_id for e in listed.errors] == [damaged]
    assert [t.id for t in pg_store.list(pg_ws, limit=count + 5)] == expected
    with pytest.raises(CorruptTaskError):
        pg_store.list(pg_ws, strict=True)
