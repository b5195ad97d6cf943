"""The store's connections: a pool, a first-use check (server reachable, tables up to date), sessions.

Nothing connects at construction: the first operation probes the server with a direct connection (so an
unreachable server is reported with libpq's own reason, not a pool timeout), brings the schema up to date, then
opens the pool.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from atlas_tasks.backends.postgres import _schema
from atlas_tasks.backends.postgres._errors import describe, first_line, translate, translated
from atlas_tasks.errors import StoreUnavailableError

Conn = psycopg.Connection[Any]

#: How a session runs: ``read`` (each statement on its own), ``write`` (statements that are each atomic on their
#: own, with lock waits bounded), ``transaction`` (one transaction, lock waits bounded).
Mode = Literal["read", "write", "transaction"]


def _conninfo_of(pool: ConnectionPool[Any]) -> str:
    # A pool may build its connection string per connection (rotating credentials); one sample names the server.
    return pool.conninfo if isinstance(pool.conninfo, str) else pool.conninfo()


def lock_timeout_setting(seconds: float) -> str:
    """PostgreSQL's ``lock_timeout`` for a store's ``lock_timeout`` (0 there means "never wait", here "forever")."""
    if seconds < 0:
        return "0"  # wait forever, like a negative filelock timeout
    return f"{max(1, round(seconds * 1000))}ms"


class Connections:
    """A pool of autocommit connections to one database, plus the schema it must hold.

    Args:
        conninfo: libpq connection string or URL (ignored when ``pool`` is given).
        pool: a caller's pool to use (and not close); its connections may be in autocommit or not.
        schema: the PostgreSQL schema holding the store's tables.
        connect_timeout: seconds to wait for the server, and for a free pooled connection.
        max_connections: size of the pool this object creates.
        lock_timeout: the lock timeout set on every connection of the pool this object creates.
    """

    #: May the store use these connections from a thread of its own (the bridged twin's belong to one event loop).
    threads_ok = True

    def __init__(
        self,
        conninfo: str,
        pool: ConnectionPool[Any] | None,
        schema: str,
        *,
        connect_timeout: float,
        max_connections: int,
        lock_timeout: float,
    ) -> None:
        self.schema = _schema.check_schema_name(schema)
        self.connect_timeout = connect_timeout
        self._owns_pool = pool is None
        self._preset_lock_timeout = lock_timeout
        self.conninfo = conninfo if pool is None else _conninfo_of(pool)
        self.where = describe(self.conninfo)
        self.pool: ConnectionPool[Any] = pool or ConnectionPool(
            conninfo,
            min_size=1,
            max_size=max_connections,
            open=False,
            kwargs={"autocommit": True},
            configure=self._configure,
            timeout=connect_timeout,
            name=f"atlas-tasks {self.where}",
        )
        self._ready = False
        self._ready_lock = threading.Lock()
        # One binary cursor per pooled connection, for rows(): a connection is used by one thread at a time, and its
        # cursor goes with it when the pool drops it.
        self._cursors: weakref.WeakKeyDictionary[Conn, psycopg.Cursor[Any]] = weakref.WeakKeyDictionary()

    # -- first use ------------------------------------------------------------------------------------------------
    def ensure_ready(self) -> None:
        """Probe the server and migrate the schema, once (thread-safe)."""
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            with translated("connect", self.where):
                if self._owns_pool:
                    with self._direct() as conn:
                        _schema.migrate(conn, self.schema, self.where)
                    self.pool.open()
                else:
                    with self._pooled() as conn:
                        _schema.migrate(conn, self.schema, self.where)
            self._ready = True

    def migrate(self) -> list[int]:
        """Apply pending migrations now; return the versions applied."""
        with translated("migrate", self.where), self._direct() as conn:
            return _schema.migrate(conn, self.schema, self.where)

    def schema_version(self) -> int:
        """The schema version recorded in the database (0: no tables yet)."""
        with translated("schema_version", self.where), self._direct() as conn:
            return _schema.current_version(conn, self.schema)

    @contextlib.contextmanager
    def _direct(self) -> Iterator[Conn]:
        if not self._owns_pool:
            with self._pooled() as conn:
                yield conn
            return
        with self._connect({}) as conn:
            yield conn

    def _connect(self, settings: dict[str, Any]) -> Conn:
        """A new autocommit connection with the store's conninfo and ``settings``; StoreUnavailableError when the
        server cannot be reached. (The native async store's connections override this one method.)"""
        # libpq wants whole seconds, at least 2.
        kwargs = {**settings, "autocommit": True, "connect_timeout": max(2, round(self.connect_timeout))}
        try:
            return psycopg.connect(self.conninfo, **kwargs)
        except psycopg.OperationalError as exc:
            raise StoreUnavailableError(self.where, first_line(exc)) from exc

    def translated(self, op: str) -> contextlib.AbstractContextManager[None]:
        """Translate psycopg errors raised in the block (on a dedicated connection) for ``op``."""
        return translated(op, self.where)

    def dedicated(self, op: str, **settings: Any) -> Conn:
        """A new autocommit connection of its own, not pooled (a run lease, a log follower); the caller closes it.

        Args:
            op: the store method, for messages.
            **settings: libpq connection parameters added to the store's (keepalives …).
        """
        self.ensure_ready()
        given = self.pool.kwargs
        # A caller's pool may compute its parameters per connection (rotating credentials).
        kwargs: dict[str, Any] = {} if self._owns_pool else dict(given() if callable(given) else given or {})
        kwargs.update(settings)
        with translated(op, self.where):
            return self._connect(kwargs)

    # -- sessions -------------------------------------------------------------------------------------------------
    def _configure(self, conn: Conn) -> None:
        # Once per connection of our own pool: then a write that is one statement needs no transaction around it
        # just to bound its lock waits (one round trip instead of four, which counts on a remote server).
        conn.execute(
            "SELECT set_config('lock_timeout', %(timeout)s, false)",
            {"timeout": lock_timeout_setting(self._preset_lock_timeout)},
        )

    @contextlib.contextmanager
    def session(self, op: str, *, locking: str = "", lock_timeout: float = 0.0, mode: Mode = "read") -> Iterator[Conn]:
        """A pooled connection with errors translated, run as ``mode`` says (see :data:`Mode`).

        Args:
            op: the store method, for messages.
            locking: what a lock wait is for, for LockTimeoutError.
            lock_timeout: seconds a statement may wait for a row lock (``write`` and ``transaction``).
            mode: ``read``, ``write`` or ``transaction``; a transaction commits on a clean exit, else rolls back.
        """
        self.ensure_ready()
        with translated(op, self.where, locking=locking, lock_timeout=lock_timeout), self._pooled() as conn:
            preset = self._owns_pool and lock_timeout == self._preset_lock_timeout
            if mode == "read" or (mode == "write" and preset):
                yield conn
                return
            with conn.transaction():
                if not preset:
                    # SET LOCAL, as a function so it takes a parameter: it ends with the transaction, so a caller's
                    # pool never keeps this store's setting.
                    conn.execute(
                        "SELECT set_config('lock_timeout', %(timeout)s, true)",
                        {"timeout": lock_timeout_setting(lock_timeout)},
                    )
                yield conn

    def rows(self, op: str, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Every row of one read-only statement, by the shortest path (``get`` and the listings).

        On the store's own pool (autocommit connections) this is a checkout, one prepared statement and a return,
        without the context managers of :meth:`session` (about 15 µs a call, a tenth of a ``get``), on a cursor
        kept with its connection (a new cursor and its adapters cost ~30 µs a statement), results in binary
        (text comes back as is; ~20 µs less per ``get`` than the text format's path). A caller's pool may hand
        out connections outside autocommit, so it goes through :meth:`session`, which ends the transaction its
        statement opened.
        """
        if not self._ready:
            self.ensure_ready()
        if not self._owns_pool:
            with self.session(op) as conn:
                found: list[tuple[Any, ...]] = conn.execute(query, params).fetchall()
                return found
        try:
            conn = self.pool.getconn(timeout=self.connect_timeout)
        except PoolTimeout as exc:
            raise StoreUnavailableError(self.where, self._pool_timeout_reason()) from exc
        try:
            cursor = self._cursors.get(conn)
            if cursor is None or cursor.closed:
                cursor = self._cursors[conn] = conn.cursor(binary=True)
            cursor.execute(query, params, prepare=True)
            rows: list[tuple[Any, ...]] = cursor.fetchall()
            return rows
        except psycopg.Error as exc:
            raise translate(exc, op, self.where) from exc
        finally:
            self.pool.putconn(conn)

    @contextlib.contextmanager
    def _pooled(self) -> Iterator[Conn]:
        try:
            with self.pool.connection(timeout=self.connect_timeout) as conn:
                yield conn
        except PoolTimeout as exc:
            raise StoreUnavailableError(self.where, self._pool_timeout_reason()) from exc

    def _pool_timeout_reason(self) -> str:
        # The pool only says it waited; a direct attempt tells whether the server is gone or the pool is full.
        if self._owns_pool:
            try:
                psycopg.connect(self.conninfo, connect_timeout=max(2, round(self.connect_timeout))).close()
            except psycopg.OperationalError as exc:
                return first_line(exc)
        return (
            f"no pooled connection became free within {self.connect_timeout:g}s (every connection busy, or the "
            "server unreachable); raise max_connections or connect_timeout"
        )

    def close(self) -> None:
        """Close the pool if this object created it (a caller's pool is left to the caller)."""
        if self._owns_pool:
            self.pool.close()


__all__ = ["Conn", "Connections", "Mode", "lock_timeout_setting"]
