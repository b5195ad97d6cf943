"""Typed errors from the PostgreSQL store: never a bare psycopg exception from a public method."""

from __future__ import annotations

import pickle
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from atlas_tasks import AtlasTasksError, LockTimeoutError, StorageError, StoreUnavailableError, TaskStatus
from atlas_tasks.backends.postgres import DatabaseError, DatabaseTooNewError, PostgresStore
from atlas_tasks.backends.postgres._errors import describe
from atlas_tasks.backends.postgres.testing import TemporaryServer, free_port
from atlas_tasks.testing.conformance import sample_task


def test_unreachable_server_says_where(monkeypatch: pytest.MonkeyPatch) -> None:
    """No server at the address: StoreUnavailableError (a ConnectionError) naming host and port, never the password."""
    port = free_port()
    store = PostgresStore(f"postgresql://atlas:s3cret@127.0.0.1:{port}/atlas", connect_timeout=2)
    with pytest.raises(StoreUnavailableError) as info:
        store.list_workspaces()
    err = info.value
    assert isinstance(err, ConnectionError)
    assert err.where == f"postgresql://atlas@127.0.0.1:{port}/atlas"
    assert "refused" in err.reason.lower() or "connect" in err.reason.lower()
    assert "s3cret" not in str(err) and "s3cret" not in repr(store)
    store.close()


def test_missing_database_is_unavailable(pg_url: str) -> None:
    """A database that does not exist is reported as StoreUnavailableError with the server's reason."""
    url = pg_url.rsplit("/", 1)[0] + "/no_such_database"
    with PostgresStore(url, connect_timeout=2) as store, pytest.raises(StoreUnavailableError) as info:
        store.get_workspace("ws-x")
    assert "no_such_database" in str(info.value) and "does not exist" in info.value.reason


def test_server_going_away_is_unavailable() -> None:
    """A server that stops while the store is open turns the next call into StoreUnavailableError."""
    with TemporaryServer() as server, PostgresStore(server.url, connect_timeout=2) as store:
        store.create_workspace("ws-a")
        server.stop()
        with pytest.raises(StoreUnavailableError) as info:
            store.get_workspace("ws-a")
        assert f":{server.port}/" in str(info.value)


def test_dropped_table_is_a_database_error(
    make_store: Callable[..., PostgresStore], fresh_schema: str, pg_conn: psycopg.Connection[Any]
) -> None:
    """A statement the database refuses raises DatabaseError (a StorageError) with its SQLSTATE."""
    store = make_store(schema=fresh_schema)
    store.create_workspace("ws-a")
    task = store.create("ws-a", sample_task())
    pg_conn.execute(f'DROP TABLE "{fresh_schema}".log_lines')
    with pytest.raises(DatabaseError) as info:
        store.append_log("ws-a", task.id, {"event": "x"})
    assert isinstance(info.value, StorageError) and isinstance(info.value, AtlasTasksError)
    assert info.value.sqlstate == "42P01" and "append_log" in str(info.value)


def _hold_edit(store: PostgresStore, ws: str, task_id: str, held: threading.Event, release: threading.Event) -> None:
    with store.edit(ws, task_id) as task:
        task.description = "held"
        held.set()
        release.wait(10)


def _waiter(kind: str, make_store: Callable[..., PostgresStore], pg_url: str, schema: str) -> PostgresStore:
    if kind == "caller's pool":
        return make_store(lock_timeout=0.3)
    if kind == "own pool":
        return PostgresStore(pg_url, schema=schema, lock_timeout=0.3)
    store = PostgresStore(pg_url, schema=schema, lock_timeout=30)
    store.lock_timeout = 0.3  # changed after the pool's connections were set up with 30s
    return store


@pytest.mark.parametrize("kind", ["caller's pool", "own pool", "own pool, changed"])
@pytest.mark.parametrize("op", ["update", "modify", "delete", "import_task"])
def test_lock_wait_times_out(
    make_store: Callable[..., PostgresStore], pg_url: str, pg_schema: str, pg_ws: str, op: str, kind: str
) -> None:
    """A writer kept waiting by an edit longer than lock_timeout gets LockTimeoutError (a TimeoutError)."""
    holder, waiter = make_store(lock_timeout=30), _waiter(kind, make_store, pg_url, pg_schema)
    task = holder.create(pg_ws, sample_task())
    held, release = threading.Event(), threading.Event()
    thread = threading.Thread(target=_hold_edit, args=(holder, pg_ws, task.id, held, release))
    thread.start()
    try:
        assert held.wait(10)
        calls: dict[str, Callable[[], object]] = {
            "update": lambda: waiter.update(pg_ws, task),
            "modify": lambda: waiter.modify(pg_ws, task.id, lambda t: None),
            "delete": lambda: waiter.delete(pg_ws, task.id),
            "import_task": lambda: waiter.import_task(pg_ws, task, replace=True),
        }
        started = time.monotonic()
        with pytest.raises(LockTimeoutError) as info:
            calls[op]()
        assert isinstance(info.value, TimeoutError) and task.id in str(info.value)
        assert time.monotonic() - started < 5
    finally:
        release.set()
        thread.join()
        waiter.close()
    assert holder.get(pg_ws, task.id).description == "held"


def test_appends_and_artifacts_do_not_wait_for_an_edit(make_store: Callable[..., PostgresStore], pg_ws: str) -> None:
    """Log appends and artifact saves go on while another writer edits the task (they only need it to exist)."""
    holder, other = make_store(lock_timeout=30), make_store(lock_timeout=0.3)
    task = holder.create(pg_ws, sample_task())
    held, release = threading.Event(), threading.Event()
    thread = threading.Thread(target=_hold_edit, args=(holder, pg_ws, task.id, held, release))
    thread.start()
    try:
        assert held.wait(10)
        other.append_log(pg_ws, task.id, {"event": "during edit"})
        assert other.save_versioned_artifact(pg_ws, task.id, "validation.json", b"v") == "validation.1.json"
        other.save_artifact(pg_ws, task.id, "notes.md", b"n")
    finally:
        release.set()
        thread.join()
    assert [line["event"] for line in holder.read_log(pg_ws, task.id)] == ["during edit"]


def test_edit_lets_the_blocks_own_database_error_through(pg_store: PostgresStore, pg_ws: str) -> None:
    """A psycopg error raised by the caller's block is re-raised as the very same object, and nothing is saved."""
    task = pg_store.create(pg_ws, sample_task())
    mine = psycopg.errors.UniqueViolation("the caller's own")
    with pytest.raises(psycopg.errors.UniqueViolation) as info, pg_store.edit(pg_ws, task.id) as editing:
        editing.description = "never saved"
        raise mine
    assert info.value is mine
    assert pg_store.get(pg_ws, task.id).revision == 1


def test_invalid_transition_in_edit_rolls_back(pg_store: PostgresStore, pg_ws: str) -> None:
    """A save refused inside edit (status set without a transition) releases the row for the next writer."""
    task = pg_store.create(pg_ws, sample_task())

    def cheat(t: Any) -> None:
        t.status = TaskStatus.COMPLETED

    with pytest.raises(AtlasTasksError):
        pg_store.modify(pg_ws, task.id, cheat)
    assert pg_store.modify(pg_ws, task.id, lambda t: t.metadata.update(ok=True)).revision == 2


@pytest.mark.parametrize(
    "error",
    [
        DatabaseError("append_log", "postgresql://u@h:5432/db", "42P01", 'relation "x" does not exist'),
        DatabaseTooNewError("postgresql://u@h:5432/db (schema s)", 3, 1),
        StoreUnavailableError("postgresql://u@h:5432/db", "connection refused"),
    ],
)
def test_errors_pickle(error: AtlasTasksError) -> None:
    """The backend's errors survive pickling with their message and attributes (they cross process boundaries)."""
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and str(copy) == str(error) and copy.context == error.context


@pytest.mark.parametrize(
    ("conninfo", "where"),
    [
        ("postgresql://alice:pw@db.example:6543/atlas?sslmode=require", "postgresql://alice@db.example:6543/atlas"),
        ("host=db.example user=bob password=pw dbname=x", "postgresql://bob@db.example:5432/x"),
        ("postgresql://carol@/atlas?host=/run/postgresql", "postgresql://carol@/atlas?host=/run/postgresql"),
        ("not a = valid = string", "<an unparsable connection string>"),
    ],
)
def test_describe_drops_the_password(conninfo: str, where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server is named as user@host:port/dbname, without password, for URLs and key=value strings alike."""
    for var in ("PGHOST", "PGPORT", "PGUSER", "PGDATABASE"):
        monkeypatch.delenv(var, raising=False)
    assert describe(conninfo) == where
