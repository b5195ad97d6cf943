"""Turning psycopg's exceptions into atlas-tasks errors, and naming a server without its password."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict

from atlas_tasks.errors import (
    AtlasTasksError,
    LockTimeoutError,
    SchemaVersionError,
    StorageError,
    StoreUnavailableError,
)

# SQLSTATE classes that mean "the server is not there for us": connection exceptions and operator intervention
# (shutdown, crash recovery). Everything else is the database refusing one operation.
_UNAVAILABLE_CLASSES = ("08", "57P")


class DatabaseError(StorageError):
    """PostgreSQL refused an operation (a permission, a full disk, a constraint the store did not expect).

    The transaction was rolled back, so nothing of the operation was committed. Attributes: ``op``, ``path`` (the
    server, without password), ``sqlstate`` and ``strerror`` (the server's message).
    """

    sqlstate: str | None

    def __init__(self, op: str, where: str, sqlstate: str | None, detail: str) -> None:
        AtlasTasksError.__init__(
            self,
            f"{op} failed on {where}: {detail} (SQLSTATE {sqlstate or 'none'}); the transaction was rolled back, "
            "nothing of it was committed",
            op=op,
            path=where,
            errno=None,
            strerror=detail,
            sqlstate=sqlstate,
        )


class DatabaseTooNewError(SchemaVersionError):
    """The database's tables were laid out by a newer atlas-tasks than this one; it is refused, never changed."""

    def __init__(self, where: str, found: int, supported: int) -> None:
        AtlasTasksError.__init__(
            self,
            f"the atlas-tasks tables at {where} are at schema version {found}, newer than this atlas-tasks supports "
            f"({supported}); upgrade it (pip install -U 'atlas-tasks[postgres]'); nothing in the database was changed",
            path=where,
            found=str(found),
            supported=str(supported),
        )


def describe(conninfo: str) -> str:
    """``postgresql://user@host:port/dbname`` for a connection string or URL, never with its password."""
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.Error:
        return "<an unparsable connection string>"
    user = params.get("user") or os.environ.get("PGUSER") or ""
    host = str(params.get("host") or params.get("hostaddr") or os.environ.get("PGHOST") or "")
    port = params.get("port") or os.environ.get("PGPORT") or "5432"
    dbname = params.get("dbname") or os.environ.get("PGDATABASE") or user
    credentials = f"{user}@" if user else ""
    if host.startswith("/") or not host:  # a Unix socket directory (or libpq's default one)
        socket = f"?host={host}" if host else ""
        return f"postgresql://{credentials}/{dbname}{socket}"
    return f"postgresql://{credentials}{host}:{port}/{dbname}"


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (psycopg's carry LINE/DETAIL/HINT lines after it)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def is_unavailable(exc: psycopg.Error) -> bool:
    """Whether ``exc`` says the server cannot be reached (as opposed to refusing one statement)."""
    if isinstance(exc, psycopg.InterfaceError):
        return True
    sqlstate = exc.sqlstate
    if sqlstate is None:
        # No SQLSTATE: the client side failed (connection refused, lost, pool timeout).
        return isinstance(exc, psycopg.OperationalError)
    return sqlstate.startswith(_UNAVAILABLE_CLASSES)


@contextlib.contextmanager
def translated(op: str, where: str, *, locking: str = "", lock_timeout: float = 0.0) -> Iterator[None]:
    """Re-raise psycopg errors as atlas-tasks errors; atlas-tasks errors pass through.

    Args:
        op: the store method, for messages.
        where: the server, without password.
        locking: what a lock wait in this block is for ("task 'x' in workspace 'w'"), for LockTimeoutError.
        lock_timeout: the configured lock timeout, for LockTimeoutError.
    """
    try:
        yield
    except psycopg.Error as exc:
        error = translate(exc, op, where, locking=locking, lock_timeout=lock_timeout)
        raise error from (None if isinstance(error, LockTimeoutError) else exc)


def translate(
    exc: psycopg.Error, op: str, where: str, *, locking: str = "", lock_timeout: float = 0.0
) -> AtlasTasksError:
    """The atlas-tasks error for a psycopg one (what :func:`translated` raises), for paths without a ``with``."""
    if isinstance(exc, pg_errors.LockNotAvailable):
        return LockTimeoutError(locking or "a row", where, lock_timeout)
    if is_unavailable(exc):
        return StoreUnavailableError(where, first_line(exc))
    return DatabaseError(op, where, exc.sqlstate, first_line(exc))


__all__ = [
    "DatabaseError",
    "DatabaseTooNewError",
    "describe",
    "first_line",
    "is_unavailable",
    "translate",
    "translated",
]
