"""PostgreSQL's collector lock: one ``gc`` at a time per schema (see :class:`atlas_tasks.store.CollectorLocks`).

A session-level advisory lock on a connection of its own, like a run lease: the server gives it back when the
collector's connection ends, however the collector ends. The holder describes itself in the connection's
``application_name`` (``atlas-tasks gc PID HOST``), which a second collector reads from ``pg_stat_activity`` with the
session's start as ``since`` - no table, so nothing stale outlives the holder.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg

from atlas_tasks.backends.postgres._errors import translated
from atlas_tasks.backends.postgres._leases import key_halves, lease_key
from atlas_tasks.errors import CollectorBusyError

Conn = psycopg.Connection[Any]
_PREFIX = "atlas-tasks gc "

_HOLDER = (
    "SELECT a.application_name, a.backend_start FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
    " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %(hi)s AND l.objid = %(lo)s AND l.objsubid = 1"
)


class PostgresCollectorLock:
    """A held collector lock; ``release()`` closes its connection, which gives the lock back (idempotent)."""

    def __init__(self, conn: Conn) -> None:
        self._conn: Conn | None = conn

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _holder(conn: Conn, key: int) -> dict[str, Any]:
    row = conn.execute(_HOLDER, key_halves(key)).fetchone()
    if row is None:
        return {}
    name, since = str(row[0] or ""), row[1]
    pid, _, host = name.removeprefix(_PREFIX).partition(" ")
    return {"pid": pid or "?", "host": host or "?", "since": since.isoformat() if since is not None else None}


def acquire(conn: Conn, where: str, schema: str, holder: Mapping[str, Any]) -> PostgresCollectorLock:
    """Take the schema's collector lock on ``conn`` (a connection of its own, closed here unless the lock is taken).

    Raises:
        CollectorBusyError: another live collector's session holds it.
    """
    key = lease_key(schema, "", "gc")  # "" is no valid workspace name: never a task's key
    try:
        with translated("collector_lock", where):
            name = f"{_PREFIX}{holder.get('pid', '?')} {holder.get('host', '?')}"[:63]
            conn.execute("SELECT set_config('application_name', %(n)s, false)", {"n": name})
            row = conn.execute("SELECT pg_try_advisory_lock(%(k)s)", {"k": key}).fetchone()
            if row is None or not row[0]:
                raise CollectorBusyError(where, _holder(conn, key))
    except BaseException:
        conn.close()
        raise
    return PostgresCollectorLock(conn)
