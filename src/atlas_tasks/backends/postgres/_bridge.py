"""The sync store code over psycopg's async connections: greenlets switch between the store and the event loop.

:func:`run_bridged` runs a plain function in a new greenlet on the loop's thread. When that function needs the
network it calls :func:`wait_for` with a coroutine: the greenlet switches back to the driver (the coroutine that
called ``run_bridged``), which awaits it on the loop and switches back in with the result or the exception. So the
same ``PostgresStore`` code (BaseStore's shared logic, the SQL, the error translation) runs over
``psycopg.AsyncConnection`` with no thread: the adapters below present exactly the sync subset of psycopg the store
uses, each method one ``wait_for``. SQLAlchemy's asyncio extension runs its sync ORM over async drivers the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeVar, cast

import greenlet  # type: ignore[import-untyped]  # no stubs shipped

from atlas_tasks.backends.postgres import _schema
from atlas_tasks.backends.postgres._connections import Conn, Connections, lock_timeout_setting
from atlas_tasks.backends.postgres._errors import first_line, translate, translated
from atlas_tasks.errors import NotBridgedError, StoreUnavailableError

T = TypeVar("T")


class _Bridged(greenlet.greenlet):  # type: ignore[misc]
    """A greenlet running store code for :func:`run_bridged` (what :func:`wait_for` checks it is inside)."""


async def run_bridged(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a new greenlet on this thread; each :func:`wait_for` inside is awaited here."""
    child = _Bridged(fn, parent=greenlet.getcurrent())
    request = child.switch(*args, **kwargs)
    while not child.dead:
        try:
            value = await cast(Awaitable[Any], request)
        except BaseException as exc:  # noqa: BLE001 - handed to the store code, which raised it as the sync driver would
            request = child.throw(exc)
        else:
            request = child.switch(value)
    return cast(T, request)


def wait_for(awaitable: Awaitable[T]) -> T:
    """Await ``awaitable`` on the loop from bridged store code (blocking this greenlet only, not the thread).

    Raises:
        NotBridgedError: not called inside :func:`run_bridged` (a native async store used from sync code).
    """
    current = greenlet.getcurrent()
    if not isinstance(current, _Bridged):
        if asyncio.iscoroutine(awaitable):
            awaitable.close()  # never awaited: no "coroutine was never awaited" warning on top of the error
        raise NotBridgedError
    return cast(T, current.parent.switch(awaitable))


@contextlib.contextmanager
def entered(manager: contextlib.AbstractAsyncContextManager[T]) -> Iterator[T]:
    """An async context manager used as a sync one from bridged code (its exit sees the block's exception)."""
    value = wait_for(manager.__aenter__())
    try:
        yield value
    except BaseException:
        if not wait_for(manager.__aexit__(*sys.exc_info())):
            raise
    else:
        wait_for(manager.__aexit__(None, None, None))


class BridgedCursor:
    """A ``psycopg.Cursor`` over an ``AsyncCursor``: the methods the store calls."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)

    @property
    def closed(self) -> bool:
        return bool(self._cursor.closed)

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> BridgedCursor:
        wait_for(self._cursor.execute(query, params, **kwargs))
        return self

    def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> None:
        wait_for(self._cursor.executemany(query, params_seq, **kwargs))

    def fetchone(self) -> Any:
        return wait_for(self._cursor.fetchone())

    def fetchall(self) -> list[Any]:
        return cast(list[Any], wait_for(self._cursor.fetchall()))

    def fetchmany(self, size: int = 0) -> list[Any]:
        return cast(list[Any], wait_for(self._cursor.fetchmany(size)))

    def __iter__(self) -> Iterator[Any]:
        while True:
            rows = self.fetchmany(self._cursor.itersize if hasattr(self._cursor, "itersize") else 100)
            if not rows:
                return
            yield from rows

    def close(self) -> None:
        wait_for(self._cursor.close())

    def __enter__(self) -> BridgedCursor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class BridgedConnection:
    """A ``psycopg.Connection`` over an ``AsyncConnection``: the methods the store calls."""

    def __init__(self, conn: Any) -> None:
        self.async_conn = conn

    @property
    def autocommit(self) -> bool:
        return bool(self.async_conn.autocommit)

    @property
    def closed(self) -> bool:
        return bool(self.async_conn.closed)

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> BridgedCursor:
        return BridgedCursor(wait_for(self.async_conn.execute(query, params, **kwargs)))

    def cursor(self, *args: Any, **kwargs: Any) -> BridgedCursor:
        return BridgedCursor(self.async_conn.cursor(*args, **kwargs))

    def transaction(self) -> contextlib.AbstractContextManager[Any]:
        return entered(self.async_conn.transaction())

    def commit(self) -> None:
        wait_for(self.async_conn.commit())

    def rollback(self) -> None:
        wait_for(self.async_conn.rollback())

    def notifies(self, *, timeout: float | None = None, stop_after: int | None = None) -> Iterator[Any]:
        """The notifications, as the sync ``notifies``: the wait is the async connection's (no thread)."""
        received: AsyncIterator[Any] = self.async_conn.notifies(timeout=timeout, stop_after=stop_after)
        try:
            while True:
                try:
                    notice = wait_for(received.__anext__())
                except StopAsyncIteration:
                    return
                yield notice
        finally:
            aclose = getattr(received, "aclose", None)
            if aclose is not None:
                wait_for(aclose())

    def close(self) -> None:
        wait_for(self.async_conn.close())

    def __enter__(self) -> BridgedConnection:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        wait_for(self.async_conn.__aexit__(*exc_info))


class BridgedPool:
    """A ``psycopg_pool.ConnectionPool`` over an ``AsyncConnectionPool``: the methods the store calls."""

    def __init__(self, pool: Any) -> None:
        self.async_pool = pool

    @property
    def conninfo(self) -> Any:
        return self.async_pool.conninfo

    @property
    def kwargs(self) -> Any:
        return self.async_pool.kwargs

    def open(self) -> None:
        wait_for(self.async_pool.open(wait=False))

    def close(self) -> None:
        wait_for(self.async_pool.close())

    def getconn(self, timeout: float | None = None) -> BridgedConnection:
        return BridgedConnection(wait_for(self.async_pool.getconn(timeout=timeout)))

    def putconn(self, conn: BridgedConnection) -> None:
        wait_for(self.async_pool.putconn(conn.async_conn))

    @contextlib.contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[BridgedConnection]:
        with entered(self.async_pool.connection(timeout=timeout)) as conn:
            yield BridgedConnection(conn)


def bridged_rows(pool: BridgedPool, timeout: float, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """One read-only statement's rows on a pooled async connection, prepared and in binary (as ``rows`` does)."""
    conn = wait_for(pool.async_pool.getconn(timeout=timeout))
    try:
        cursor = wait_for(conn.execute(query, params, prepare=True, binary=True))
        return cast(list[tuple[Any, ...]], wait_for(cursor.fetchall()))
    finally:
        wait_for(pool.async_pool.putconn(conn))


class BridgedConnections(Connections):
    """:class:`Connections` over psycopg's async pool and connections, for store code run by :func:`run_bridged`.

    Args:
        conninfo: libpq connection string or URL (ignored when ``pool`` is given).
        pool: a caller's ``psycopg_pool.AsyncConnectionPool`` to use (and not close).
        schema, connect_timeout, max_connections, lock_timeout: as :class:`Connections`.

    The session logic (modes, lock timeouts, error translation) is the parent's; only what opens connections and
    what would block the thread (the first-use lock, a sync probe) is replaced.
    """

    #: The store may not start threads over these connections (an async connection belongs to its loop).
    threads_ok = False

    def __init__(
        self,
        conninfo: str,
        pool: Any,
        schema: str,
        *,
        connect_timeout: float,
        max_connections: int,
        lock_timeout: float,
    ) -> None:
        from psycopg_pool import AsyncConnectionPool

        async def configure(conn: Any) -> None:
            await conn.execute(
                "SELECT set_config('lock_timeout', %(timeout)s, false)",
                {"timeout": lock_timeout_setting(lock_timeout)},
            )

        owned = pool is None
        if owned:
            pool = AsyncConnectionPool(
                conninfo,
                min_size=1,
                max_size=max_connections,
                open=False,
                kwargs={"autocommit": True},
                configure=configure,
                timeout=connect_timeout,
                name="atlas-tasks native",
            )
        # The parent's attributes, with the async pool behind the sync pool's interface (no sync pool is made).
        super().__init__(
            conninfo if owned else _async_conninfo(pool),
            cast(Any, BridgedPool(pool)),
            schema,
            connect_timeout=connect_timeout,
            max_connections=max_connections,
            lock_timeout=lock_timeout,
        )
        self._owns_pool = owned
        self._migrating: asyncio.Event | None = None

    def ensure_ready(self) -> None:
        """Probe and migrate once; other greenlets wait for the first on the loop (a thread lock would deadlock)."""
        while not self._ready:
            if self._migrating is not None:
                wait_for(self._migrating.wait())
                continue
            self._migrating = asyncio.Event()
            try:
                with translated("connect", self.where):
                    with self._direct() as conn:
                        _schema.migrate(conn, self.schema, self.where)
                    if self._owns_pool:
                        self.pool.open()
                self._ready = True
            finally:
                self._migrating.set()
                self._migrating = None

    def _connect(self, settings: dict[str, Any]) -> Conn:
        import psycopg

        kwargs = {**settings, "autocommit": True, "connect_timeout": max(2, round(self.connect_timeout))}
        try:
            made = wait_for(psycopg.AsyncConnection.connect(self.conninfo, **kwargs))
        except psycopg.OperationalError as exc:
            raise StoreUnavailableError(self.where, first_line(exc)) from exc
        return cast(Conn, BridgedConnection(made))

    def rows(self, op: str, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        if not self._ready:
            self.ensure_ready()
        if not self._owns_pool:
            return super().rows(op, query, params)
        from psycopg_pool import PoolTimeout

        try:
            return bridged_rows(cast(BridgedPool, self.pool), self.connect_timeout, query, params)
        except PoolTimeout as exc:
            raise StoreUnavailableError(self.where, self._pool_timeout_reason()) from exc
        except Exception as exc:
            import psycopg

            if isinstance(exc, psycopg.Error):
                raise translate(exc, op, self.where) from exc
            raise

    def _pool_timeout_reason(self) -> str:
        if self._owns_pool:
            try:
                self._connect({}).close()
            except StoreUnavailableError as exc:
                return exc.reason
        return (
            f"no pooled connection became free within {self.connect_timeout:g}s (every connection busy, or the "
            "server unreachable); raise max_connections or connect_timeout"
        )


def _async_conninfo(pool: Any) -> str:
    return pool.conninfo if isinstance(pool.conninfo, str) else str(pool.conninfo())


__all__ = [
    "BridgedConnection",
    "BridgedConnections",
    "BridgedCursor",
    "BridgedPool",
    "bridged_rows",
    "entered",
    "run_bridged",
    "wait_for",
]
