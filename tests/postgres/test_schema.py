"""The schema: ordered migrations, a version table, applied once on first use, newer databases refused."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from pg_schema_versions import downgrade_to

from atlas_tasks import SchemaVersionError
from atlas_tasks.backends.postgres import SCHEMA_VERSION, DatabaseTooNewError, PostgresStore
from atlas_tasks.backends.postgres._schema import MIGRATIONS
from atlas_tasks.testing.conformance import sample_task


def test_migrations_are_numbered_in_order() -> None:
    """Migration versions run 1, 2, … without gaps, and the last one is the version the library writes."""
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert MIGRATIONS[-1].version == SCHEMA_VERSION


def test_first_use_creates_the_tables(make_store: Callable[..., PostgresStore], fresh_schema: str) -> None:
    """A new schema has version 0 until the first operation, which creates every table and records the version."""
    store = make_store(schema=fresh_schema)
    assert store.schema_version() == 0
    store.list_workspaces()
    assert store.schema_version() == SCHEMA_VERSION


def test_migrate_applies_once(make_store: Callable[..., PostgresStore], fresh_schema: str) -> None:
    """migrate() returns the versions it applied, and nothing the second time."""
    store = make_store(schema=fresh_schema)
    assert store.migrate() == [m.version for m in MIGRATIONS]
    assert store.migrate() == []


def test_concurrent_first_use_migrates_once(
    make_store: Callable[..., PostgresStore], fresh_schema: str, pg_conn: psycopg.Connection[Any]
) -> None:
    """Eight stores starting at once on an empty schema apply each migration exactly once."""
    errors: list[BaseException] = []

    def start() -> None:
        try:
            make_store(schema=fresh_schema).list_workspaces()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    rows = pg_conn.execute(f'SELECT version FROM "{fresh_schema}".schema_migrations ORDER BY version').fetchall()
    assert [r[0] for r in rows] == [m.version for m in MIGRATIONS]


def test_newer_database_refused(
    make_store: Callable[..., PostgresStore], fresh_schema: str, pg_conn: psycopg.Connection[Any]
) -> None:
    """A database migrated by a newer atlas-tasks is refused with DatabaseTooNewError, before any read or write."""
    make_store(schema=fresh_schema).migrate()
    pg_conn.execute(
        f'INSERT INTO "{fresh_schema}".schema_migrations (version, description, library_version) '
        "VALUES (%s, 'from the future', '99.0')",
        [SCHEMA_VERSION + 1],
    )
    store = make_store(schema=fresh_schema)
    with pytest.raises(DatabaseTooNewError) as info:
        store.create_workspace("ws-never")
    assert isinstance(info.value, SchemaVersionError)
    assert "upgrade" in str(info.value) and str(SCHEMA_VERSION + 1) in str(info.value)
    count = pg_conn.execute(f'SELECT count(*) FROM "{fresh_schema}".workspaces').fetchone()
    assert count == (0,)


@pytest.mark.parametrize("bad", ["", "Upper", "has-dash", "1digit", 'x"; DROP TABLE y; --', "a" * 64])
def test_bad_schema_name_refused(make_store: Callable[..., PostgresStore], bad: str) -> None:
    """A schema name that is not a plain lower-case identifier raises ValueError before any SQL is built."""
    with pytest.raises(ValueError, match="schema"):
        make_store(schema=bad)


def test_document_is_kept_as_exact_json_text(
    pg_store: PostgresStore, pg_ws: str, pg_conn: psycopg.Connection[Any]
) -> None:
    """The stored document is exactly the Go-format JSON the file store writes, NUL characters included."""
    from atlas_tasks._codec import encode_task

    created = pg_store.create(pg_ws, sample_task(description="nul \x00 inside", metadata={"big": 1e20}))
    row = pg_conn.execute(
        f'SELECT doc::text, revision, status FROM "{pg_store.schema}".tasks WHERE workspace = %s AND id = %s',
        [pg_ws, created.id],
    ).fetchone()
    assert row is not None
    assert row[0].encode() == encode_task(created)
    assert (row[1], row[2]) == (1, "running")
    got = pg_store.get(pg_ws, created.id)
    assert got.description == "nul \x00 inside" and isinstance(got.metadata["big"], float)


def test_unknown_keys_survive_an_update(pg_store: PostgresStore, pg_ws: str, pg_conn: psycopg.Connection[Any]) -> None:
    """Keys written by a newer writer (unknown to the model) are kept through get and update."""
    created = pg_store.create(pg_ws, sample_task())
    pg_conn.execute(
        f'UPDATE "{pg_store.schema}".tasks SET doc = (doc::jsonb || \'{{"zz_future": [1, 2]}}\')::json '
        "WHERE workspace = %s AND id = %s",
        [pg_ws, created.id],
    )
    task = pg_store.get(pg_ws, created.id)
    task.description = "changed"
    pg_store.update(pg_ws, task)
    assert pg_store.get(pg_ws, created.id).model_extra == {"zz_future": [1, 2]}


def test_newer_task_document_refused(pg_store: PostgresStore, pg_ws: str, pg_conn: psycopg.Connection[Any]) -> None:
    """A task document with a newer schema_version raises SchemaVersionError on get, and is reported by list."""
    created = pg_store.create(pg_ws, sample_task())
    pg_conn.execute(
        f'UPDATE "{pg_store.schema}".tasks SET doc = (doc::jsonb || \'{{"schema_version": "2.0"}}\')::json '
        "WHERE workspace = %s AND id = %s",
        [pg_ws, created.id],
    )
    with pytest.raises(SchemaVersionError):
        pg_store.get(pg_ws, created.id)
    listed = pg_store.list(pg_ws)
    assert list(listed) == [] and [type(e) for e in listed.errors] == [SchemaVersionError]
    with pytest.raises(SchemaVersionError):
        pg_store.list(pg_ws, strict=True)


@pytest.mark.parametrize("system", ["information_schema", "pg_catalog", "pg_toast", "pg_mine"])
def test_system_schema_refused(make_store: Callable[..., PostgresStore], system: str) -> None:
    """PostgreSQL's own schemas (information_schema, pg_*) are refused with a message naming the problem."""
    with pytest.raises(ValueError, match="system schemas"):
        make_store(schema=system)


def test_upgrade_from_version_2_keeps_tasks_and_adds_tombstones(
    make_store: Callable[..., PostgresStore], fresh_schema: str, pg_conn: psycopg.Connection[Any]
) -> None:
    """A version-2 database (no tombstones table) with tasks upgrades to the latest one and keeps every task."""
    old = make_store(schema=fresh_schema)
    old.create_workspace("w")
    kept = [old.create("w", sample_task()).id for _ in range(3)]
    # Back to exactly what version 2 laid out: migration 3 only added the tombstones table.
    downgrade_to(pg_conn, fresh_schema, 2)
    assert old.schema_version() == 2
    store = make_store(schema=fresh_schema)
    assert store.migrate() == [m.version for m in MIGRATIONS if m.version > 2]
    assert sorted(t.id for t in store.list("w", strict=True)) == sorted(kept)
    store.delete("w", kept[0], reason="upgrade test")
    stone = store.tombstone("w", kept[0])
    assert stone is not None and stone.info["reason"] == "upgrade test"
    assert store.schema_version() == SCHEMA_VERSION
