"""A real PostgreSQL server for the whole session: $ATLAS_TEST_PG_URL, else a throwaway one started here.

If no server can be started the fixtures fail (loudly), they never skip: the backend must not go untested.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from atlas_tasks.backends.postgres import PostgresStore
from pg_server import server_url


@pytest.fixture(scope="session")
def pg_url(request: pytest.FixtureRequest) -> str:
    return server_url(request)


@pytest.fixture(scope="session")
def pg_pool(pg_url: str) -> Iterator[ConnectionPool[Any]]:
    pool: ConnectionPool[Any] = ConnectionPool(pg_url, min_size=2, max_size=20, open=True, kwargs={"autocommit": True})
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def pg_schema(pg_pool: ConnectionPool[Any]) -> Iterator[str]:
    """One schema for the session's stores (random, so a shared server's other schemas are never touched)."""
    name = f"atlas_test_{secrets.token_hex(4)}"
    yield name
    drop_schema(pg_pool, name)


@pytest.fixture
def fresh_schema(pg_pool: ConnectionPool[Any]) -> Iterator[str]:
    """A schema of its own for a test that looks at tables or versions."""
    name = f"atlas_test_{secrets.token_hex(4)}"
    yield name
    drop_schema(pg_pool, name)


def drop_schema(pool: ConnectionPool[Any], name: str) -> None:
    with pool.connection() as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def pg_conn(pg_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A raw autocommit connection, for looking at (or damaging) rows directly."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def make_store(pg_pool: ConnectionPool[Any], pg_schema: str) -> Callable[..., PostgresStore]:
    """Build stores on the shared pool and schema (keyword arguments go to PostgresStore)."""

    def make(**kwargs: Any) -> PostgresStore:
        kwargs.setdefault("schema", pg_schema)
        return PostgresStore(pool=pg_pool, **kwargs)

    return make


@pytest.fixture
def pg_store(make_store: Callable[..., PostgresStore]) -> PostgresStore:
    return make_store(lock_timeout=30)


@pytest.fixture
def pg_ws(pg_store: PostgresStore) -> str:
    name = f"ws-{secrets.token_hex(4)}"
    pg_store.create_workspace(name)
    return name
