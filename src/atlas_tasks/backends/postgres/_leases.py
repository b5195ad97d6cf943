"""Run leases across machines, and following a log as it is written (LISTEN/NOTIFY).

A run lease is a session-level advisory lock, held on a connection of its own for the whole run. The server gives
it back when that connection ends, however the runner ends: a clean exit, ``kill -9`` (the OS closes the socket at
once), or a machine that vanished (the server's TCP keepalives notice within about half a minute). So whether a task
has a live runner is whether some server process holds its lock — seen the same from every machine. A row in
``run_leases`` describes the holder (pid, host, start) for messages, and names the server process that wrote it, so
the description of a dead holder is never shown as a live one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import psycopg

from atlas_tasks.backends.postgres._errors import first_line, translated
from atlas_tasks.backends.postgres._queries import Queries
from atlas_tasks.errors import AtlasTasksError, StoreUnavailableError

Conn = psycopg.Connection[Any]

#: libpq settings of a lease's (and a follower's) own connection: notice a dead server.
CLIENT_KEEPALIVES: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}
#: Server settings of a lease's connection: notice a dead runner machine, and never time the idle session out.
_SERVER_SETTINGS = (
    "SELECT set_config(name, value, false) FROM (VALUES ('tcp_keepalives_idle', '10'),"
    " ('tcp_keepalives_interval', '5'), ('tcp_keepalives_count', '3'), ('idle_session_timeout', '0'),"
    " ('idle_in_transaction_session_timeout', '0'), ('statement_timeout', '0')) AS s (name, value)"
    " WHERE name IN (SELECT name FROM pg_settings)"
)


class LeaseLostError(StoreUnavailableError):
    """A runner's connection holding its run lease broke: another runner may hold the task now, so this one stops.

    Nothing more is written for the run; the task stays as its last checkpoint left it and is seen as interrupted
    (and resumed) like any run whose runner died. Attributes: ``where``, ``reason``, ``workspace``, ``task_id``.
    """

    workspace: str
    task_id: str

    def __init__(self, where: str, reason: str, workspace: str, task_id: str) -> None:
        AtlasTasksError.__init__(
            self,
            f"lost the run lease of task {task_id!r} in workspace {workspace!r}: its connection to {where} broke "
            f"({reason}); the run stops without writing more — resume it with `atlas-tasks run {workspace} {task_id}`",
            where=where,
            reason=reason,
            workspace=workspace,
            task_id=task_id,
        )


def _digest(*parts: str, size: int) -> bytes:
    return hashlib.blake2b("\0".join(parts).encode("utf-8", "surrogatepass"), digest_size=size).digest()


def lease_key(schema: str, workspace: str, task_id: str) -> int:
    """The task's advisory lock key: 64 bits of a hash of schema, workspace and id (signed, as PostgreSQL's bigint)."""
    return int.from_bytes(_digest("atlas-tasks lease", schema, workspace, task_id, size=8), "big", signed=True)


def key_halves(key: int) -> dict[str, int]:
    """How ``pg_locks`` shows a bigint advisory key: ``hi`` (classid) and ``lo`` (objid)."""
    return {"hi": (key >> 32) & 0xFFFFFFFF, "lo": key & 0xFFFFFFFF}


def log_channel(schema: str, workspace: str, task_id: str) -> str:
    """The NOTIFY channel of one task (its log lines and its writes): a plain identifier well under 63 bytes."""
    return "atlas_log_" + _digest("atlas-tasks log", schema, workspace, task_id, size=12).hex()


class PostgresLease:
    """A held run lease: an advisory lock on a connection of its own. ``release()`` gives it back (idempotent).

    ``verify()`` (called by :class:`atlas_tasks.runs.Run` before each checkpoint) raises :class:`LeaseLostError`
    when the connection holding the lock is gone, so a runner that lost its lease stops before writing.
    """

    def __init__(self, conn: Conn, queries: Queries, where: str, workspace: str, task_id: str, key: int) -> None:
        self._conn: Conn | None = conn
        self._q = queries
        self._where = where
        self.workspace = workspace
        self.task_id = task_id
        self.key = key

    def verify(self) -> None:
        """Check that the lock is still held (one round trip on the lease's connection).

        Raises:
            LeaseLostError: the connection broke (or the lease was released).
        """
        if self._conn is None:
            raise LeaseLostError(self._where, "the lease was released", self.workspace, self.task_id)
        try:
            self._conn.execute("SELECT 1")
        except psycopg.Error as exc:
            raise LeaseLostError(self._where, first_line(exc), self.workspace, self.task_id) from exc

    def release(self) -> None:
        """Forget the holder's description, unlock and close the connection; never raises."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            params = {"ws": self.workspace, "id": self.task_id, "key": self.key}
            conn.execute(self._q.lease_forget, params)
            conn.execute(self._q.lease_unlock, params)
        except psycopg.Error:
            pass  # closing the connection below gives the lock back anyway
        finally:
            conn.close()


def take(
    conn: Conn, queries: Queries, where: str, schema: str, workspace: str, task_id: str, holder: Mapping[str, Any]
) -> PostgresLease | None:
    """Try to take the task's lease on ``conn`` (a connection of its own); None if a live runner holds it.

    The caller closes ``conn`` unless a lease is returned.

    Raises:
        LookupError: no such task (or workspace); the lock was given back and the caller says which is missing.
    """
    key = lease_key(schema, workspace, task_id)
    params = {"ws": workspace, "id": task_id, "key": key, "holder": json.dumps(dict(holder), default=str)}
    with translated("acquire_lease", where):
        conn.execute(_SERVER_SETTINGS)
        row = conn.execute(queries.lease_try, params).fetchone()
        if row is None or not row[0]:
            return None
        if conn.execute(queries.lease_describe, params).fetchone() is None:
            conn.execute(queries.lease_unlock, params)
            raise LookupError(task_id)
    return PostgresLease(conn, queries, where, workspace, task_id, key)


def holder_of(conn: Conn, queries: Queries, schema: str, workspace: str, task_id: str) -> dict[str, Any] | None:
    """Who holds the task's lease (pid, host, started_at), ``{}`` if held but not yet described, None if free."""
    params = {"ws": workspace, "id": task_id, **key_halves(lease_key(schema, workspace, task_id))}
    row = conn.execute(queries.lease_holder, params).fetchone()
    if row is None:
        return None
    try:
        described = json.loads(row[0]) if row[0] is not None else {}
    except ValueError:
        return {}
    return described if isinstance(described, dict) else {}


__all__ = [
    "CLIENT_KEEPALIVES",
    "LeaseLostError",
    "PostgresLease",
    "holder_of",
    "key_halves",
    "lease_key",
    "log_channel",
]
