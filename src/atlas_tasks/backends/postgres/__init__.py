"""The PostgreSQL backend: ``PostgresStore``, for agents on many machines sharing one store.

Needs the ``postgres`` extra (psycopg 3 and psycopg_pool): ``pip install 'atlas-tasks[postgres]'``.
"""

from __future__ import annotations

from atlas_tasks.errors import MissingExtraError

try:
    import psycopg  # noqa: F401 - imported to fail early, with the fix in the message
    import psycopg_pool  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess without psycopg
    raise MissingExtraError("postgres", "PostgresStore", exc) from exc

from atlas_tasks.backends.postgres._errors import DatabaseError, DatabaseTooNewError
from atlas_tasks.backends.postgres._schema import LATEST as SCHEMA_VERSION
from atlas_tasks.backends.postgres._store import PostgresStore

__all__ = ["SCHEMA_VERSION", "DatabaseError", "DatabaseTooNewError", "PostgresStore"]
