"""The PostgreSQL tables, as an ordered list of migrations recorded in a version table.

Every table lives in one PostgreSQL schema (``atlas_tasks`` by default), so several stores can share a database.
A store brings its schema up to date on first use, under an advisory lock so that many processes starting at once
apply each migration exactly once; a database whose version is above :data:`LATEST` was laid out by a newer
atlas-tasks and is refused before anything is read or written.

Why these columns: the task document is kept as ``json`` — its exact text — rather than ``jsonb``, because jsonb
refuses ``\\u0000`` inside strings (a task description may hold one; the file store keeps it) and rewrites numbers
and key order, while the store promises to write back unknown keys unchanged. The columns next to it (status,
times, revision) are what queries and indexes use. Names are ``COLLATE "C"`` so that ordering by id is by code
point, as in the file store.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from atlas_tasks import __version__
from atlas_tasks.backends.postgres._errors import DatabaseTooNewError

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


@dataclass(frozen=True)
class Migration:
    """One step of the schema: ``statements`` run in one transaction; ``{s}`` is the quoted schema name."""

    version: int
    description: str
    statements: tuple[str, ...]
    #: Python run after the statements, in the same transaction (``conn``, quoted schema): what SQL cannot compute.
    backfill: Callable[[psycopg.Connection[Any], str], None] | None = None


_V1 = (
    """CREATE TABLE {s}.workspaces (
        name text COLLATE "C" PRIMARY KEY,
        doc json NOT NULL
    )""",
    """CREATE TABLE {s}.tasks (
        workspace text COLLATE "C" NOT NULL REFERENCES {s}.workspaces (name) ON DELETE CASCADE,
        id text COLLATE "C" NOT NULL,
        seq bigint GENERATED ALWAYS AS IDENTITY,
        status text NOT NULL,
        created_at timestamptz,
        updated_at timestamptz,
        revision bigint NOT NULL,
        doc json NOT NULL,
        ref json NOT NULL,
        PRIMARY KEY (workspace, id)
    )""",
    # list(): newest first, ties by id descending.
    "CREATE INDEX tasks_newest_first ON {s}.tasks (workspace, created_at DESC, id DESC)",
    "CREATE INDEX tasks_by_status ON {s}.tasks (workspace, status)",
    # One row per task holding its last log sequence number: appends to one task take turns on it, so sequence
    # numbers are gapless and in commit order (a reader that saw line n has seen every line before it).
    """CREATE TABLE {s}.log_heads (
        workspace text COLLATE "C" NOT NULL,
        task_id text COLLATE "C" NOT NULL,
        last_seq bigint NOT NULL,
        PRIMARY KEY (workspace, task_id),
        FOREIGN KEY (workspace, task_id) REFERENCES {s}.tasks (workspace, id) ON DELETE CASCADE
    )""",
    """CREATE TABLE {s}.log_lines (
        workspace text COLLATE "C" NOT NULL,
        task_id text COLLATE "C" NOT NULL,
        seq bigint NOT NULL,
        line bytea NOT NULL,
        PRIMARY KEY (workspace, task_id, seq),
        FOREIGN KEY (workspace, task_id) REFERENCES {s}.tasks (workspace, id) ON DELETE CASCADE
    )""",
    # The primary key is what makes a version number write-once: two savers claiming N cannot both insert it.
    """CREATE TABLE {s}.artifacts (
        workspace text COLLATE "C" NOT NULL,
        task_id text COLLATE "C" NOT NULL,
        name text COLLATE "C" NOT NULL,
        data bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (workspace, task_id, name),
        FOREIGN KEY (workspace, task_id) REFERENCES {s}.tasks (workspace, id) ON DELETE CASCADE
    )""",
)

# Run leases. Who holds a task is decided by a session-level advisory lock (released by the server when the holder's
# connection ends, however its process or machine dies); this row only describes the holder (pid, host, start) and
# names the server process holding the lock, so a stale row from a dead holder is never taken for a live one.
_V2 = (
    """CREATE TABLE {s}.run_leases (
        workspace text COLLATE "C" NOT NULL,
        task_id text COLLATE "C" NOT NULL,
        holder json NOT NULL,
        backend_pid integer NOT NULL,
        acquired_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (workspace, task_id),
        FOREIGN KEY (workspace, task_id) REFERENCES {s}.tasks (workspace, id) ON DELETE CASCADE
    )""",
)

# Tombstones: one row per deleted task id, so the id is never handed out again (docs/retention.md). No foreign key:
# a tombstone outlives its task by design, and its workspace too. Times are RFC 3339 text, as task documents keep
# them, so a restore compares created_at exactly as the file store does.
_V3 = (
    """CREATE TABLE {s}.tombstones (
        workspace text COLLATE "C" NOT NULL,
        id text COLLATE "C" NOT NULL,
        deleted_at text NOT NULL,
        created_at text NOT NULL DEFAULT '',
        info json NOT NULL,
        PRIMARY KEY (workspace, id)
    )""",
)

# Reads at scale. (1) The newest-first index in the listings' own order: they put tasks without created_at last
# (NULLS LAST), which the old index (DESC, so NULLS FIRST) could not serve: ORDER BY … LIMIT 20 sorted the whole
# workspace. (2) Each task's summary (what list_summaries shows, as the shared summary reader reads it from the
# document) in a column beside it, with the revision it was read at: listing summaries no longer fetches and parses
# every document. A summary whose revision is not the row's (written by an older atlas-tasks still running during an
# upgrade) is ignored and the document read instead; and a trigger forgets the summary whenever the document is
# rewritten without a new one (an older atlas-tasks, a repair by hand in SQL), so it never outlives its document.
_V4 = (
    "ALTER TABLE {s}.tasks ADD COLUMN summary text, ADD COLUMN summary_revision bigint",
    """CREATE FUNCTION {s}.tasks_summary_forget() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.summary := NULL;
        NEW.summary_revision := NULL;
        RETURN NEW;
    END $$""",
    # Our own writes set summary_revision to the new revision (always a new value), so they never fire it.
    """CREATE TRIGGER tasks_summary_forget BEFORE UPDATE OF doc ON {s}.tasks FOR EACH ROW
    WHEN (NEW.summary_revision IS NOT DISTINCT FROM OLD.summary_revision)
    EXECUTE PROCEDURE {s}.tasks_summary_forget()""",
    # Room on each page for a task's next version: an update that changes no indexed column (status, created_at, id:
    # most updates) is then a HOT update, which writes no index entry, so its cost does not grow with the table.
    # Applies to pages written from now on.
    "ALTER TABLE {s}.tasks SET (fillfactor = 80)",
    "DROP INDEX {s}.tasks_newest_first",
    "CREATE INDEX tasks_newest_first ON {s}.tasks (workspace, created_at DESC NULLS LAST, id DESC)",
)

#: Rows per batch of migration 4's backfill.
_BACKFILL_BATCH = 1000


def _backfill_summaries(conn: psycopg.Connection[Any], s: str) -> None:
    """Store the summary of every task written before migration 4, read by the code that writes new ones."""
    from atlas_tasks.backends.postgres._encoding import summary_params

    update = f"UPDATE {s}.tasks SET summary = %(summary)s, summary_revision = %(summary_revision)s"  # noqa: S608
    update += " WHERE workspace = %(ws)s AND id = %(id)s"
    # A server-side cursor: one batch of documents in memory at a time, however many tasks there are.
    with conn.cursor(name="atlas_tasks_backfill") as rows, conn.cursor() as out:
        rows.itersize = _BACKFILL_BATCH
        rows.execute(f"SELECT workspace, id, revision, doc::text FROM {s}.tasks")  # noqa: S608
        batch: list[dict[str, Any]] = []
        for workspace, task_id, revision, doc in rows:
            params = summary_params(doc.encode("utf-8"), task_id, int(revision))
            if params["summary"] is not None:
                batch.append({**params, "ws": workspace, "id": task_id})
            if len(batch) >= _BACKFILL_BATCH:
                out.executemany(update, batch)
                batch.clear()
        if batch:
            out.executemany(update, batch)


#: Every migration, oldest first; a new one is appended, never edited once released.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "workspaces, tasks, log lines and artifacts", _V1),
    Migration(2, "run leases (holder descriptions; the lease itself is an advisory lock)", _V2),
    Migration(3, "tombstones of deleted task ids", _V3),
    Migration(4, "summaries in columns, newest-first index in listing order", _V4, _backfill_summaries),
)
#: The schema version this library writes.
LATEST = MIGRATIONS[-1].version

_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS {s}.schema_migrations (
    version integer PRIMARY KEY,
    description text NOT NULL,
    library_version text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


def check_schema_name(name: str) -> str:
    """Return ``name`` if it is a plain lower-case SQL identifier (it is put into SQL text, never quoted raw).

    Raises:
        ValueError: anything else, and PostgreSQL's system schemas (``information_schema``, ``pg_*``).
    """
    if not _SCHEMA_NAME.fullmatch(name):
        raise ValueError(f"schema must be a lower-case SQL identifier (letters, digits, '_'), not {name!r}")
    if name == "information_schema" or name.startswith("pg_"):
        # PostgreSQL's own schemas: pg_* is refused by the server, but information_schema would take the store's
        # tables, and pg_dump leaves that schema out by default: the store would be missing from every backup.
        raise ValueError(
            f"schema {name!r} is one of PostgreSQL's system schemas (information_schema, pg_*); "
            "choose a schema of your own, e.g. ?schema=atlas_tasks"
        )
    return name


def current_version(conn: psycopg.Connection[Any], schema: str) -> int:
    """The schema version recorded in the database (0 if the store's tables were never created)."""
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [f'"{schema}".schema_migrations']).fetchone()
    if not exists or not exists[0]:
        return 0
    # The schema name is checked by check_schema_name before it reaches any SQL text.
    row = conn.execute(f'SELECT coalesce(max(version), 0) FROM "{schema}".schema_migrations').fetchone()  # noqa: S608
    return int(row[0]) if row else 0


def migrate(conn: psycopg.Connection[Any], schema: str, where: str) -> list[int]:
    """Apply the migrations the database lacks, in order, and return their versions (empty if up to date).

    Raises:
        DatabaseTooNewError: the database is at a version above :data:`LATEST`.
    """
    found = current_version(conn, schema)
    _refuse_newer(found, schema, where)
    if found == LATEST:
        return []
    key = [f"atlas_tasks migrate {schema}"]
    # One migrator at a time; the others wait, then find the work done. The lock is a session lock taken before
    # the transaction begins: a transaction that waited for it inside would keep a catalog snapshot from before the
    # wait and not see the schema the first migrator created (CREATE SCHEMA IF NOT EXISTS then fails).
    conn.execute("SELECT pg_advisory_lock(hashtext(%s))", key)
    try:
        if not conn.autocommit:
            conn.commit()
        with conn.transaction():
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            conn.execute(_VERSION_TABLE.format(s=f'"{schema}"'))
            found = current_version(conn, schema)
            _refuse_newer(found, schema, where)
            return [_apply(conn, schema, m) for m in MIGRATIONS if m.version > found]
    finally:
        conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", key)


def _apply(conn: psycopg.Connection[Any], schema: str, migration: Migration) -> int:
    for statement in migration.statements:
        conn.execute(statement.format(s=f'"{schema}"'))
    if migration.backfill is not None:
        migration.backfill(conn, f'"{schema}"')
    conn.execute(
        f'INSERT INTO "{schema}".schema_migrations (version, description, library_version) VALUES (%s, %s, %s)',  # noqa: S608
        [migration.version, migration.description, __version__],
    )
    return migration.version


def _refuse_newer(found: int, schema: str, where: str) -> None:
    if found > LATEST:
        raise DatabaseTooNewError(f"{where} (schema {schema})", found, LATEST)


__all__ = ["LATEST", "MIGRATIONS", "Migration", "check_schema_name", "current_version", "migrate"]
