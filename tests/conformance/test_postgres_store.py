"""The PostgreSQL store against the shared Store conformance suite, on a real server (never a mock).

It runs twice, because the two ways of connecting take different paths for writes: with a caller's pool every write
is a transaction that sets its own lock timeout; with the store's own pool the timeout is set per connection and a
single-statement write runs without a transaction around it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from atlas_tasks.backends.postgres import PostgresStore
from atlas_tasks.store import Store
from atlas_tasks.testing import (
    ArtifactSizeTests,
    ListingTests,
    LogTailTests,
    RunLeaseTests,
    StampTests,
    StoreTests,
    TombstoneTests,
    UrlTests,
)
from pg_server import server_url as session_server_url


@pytest.fixture(scope="module")
def server_url(request: pytest.FixtureRequest) -> str:
    return session_server_url(request)


@pytest.fixture(scope="module")
def shared_pool(server_url: str) -> Iterator[tuple[ConnectionPool[Any], str]]:
    """One pool and one random schema for every store of the module (the state machine builds many stores)."""
    pool: ConnectionPool[Any] = ConnectionPool(
        server_url, min_size=2, max_size=20, open=True, kwargs={"autocommit": True}
    )
    schema = f"atlas_conformance_{secrets.token_hex(4)}"
    yield pool, schema
    with pool.connection() as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    pool.close()


class TestPostgresStoreConformance(StoreTests):
    """PostgresStore on a caller's connection pool passes every conformance test, the state machine included."""

    @pytest.fixture
    def store_factory(self, shared_pool: tuple[ConnectionPool[Any], str]) -> Callable[[], PostgresStore]:
        pool, schema = shared_pool
        return lambda: PostgresStore(pool=pool, schema=schema, lock_timeout=30)


class TestPostgresStoreOwnPoolConformance(StoreTests):
    """PostgresStore opened from a URL (its own pool) passes every conformance test, the state machine included."""

    @pytest.fixture
    def store_factory(
        self, server_url: str, shared_pool: tuple[ConnectionPool[Any], str]
    ) -> Iterator[Callable[[], PostgresStore]]:
        opened: list[PostgresStore] = []

        def make() -> PostgresStore:
            store = PostgresStore(server_url, schema=shared_pool[1], lock_timeout=30, max_connections=10)
            opened.append(store)
            return store

        yield make
        for store in opened:
            store.close()


class TestPostgresStoreContract(
    ListingTests, LogTailTests, ArtifactSizeTests, RunLeaseTests, StampTests, TombstoneTests, UrlTests
):
    """PostgresStore opened from a URL passes the listing, log, size, lease and URL mixins (no change stamps)."""

    @pytest.fixture
    def store_factory(
        self, server_url: str, shared_pool: tuple[ConnectionPool[Any], str]
    ) -> Iterator[Callable[[], PostgresStore]]:
        opened: list[PostgresStore] = []

        def make() -> PostgresStore:
            store = PostgresStore(server_url, schema=shared_pool[1], lock_timeout=30, max_connections=10)
            opened.append(store)
            return store

        yield make
        for store in opened:
            store.close()

    def damage_task(self, store: Store, workspace: str, task_id: str) -> None:
        """Replace the task's stored document with a JSON array, in SQL behind the store's back."""
        assert isinstance(store, PostgresStore)
        import psycopg

        with psycopg.connect(self._server_url, autocommit=True) as conn:
            conn.execute(
                f'UPDATE "{store.schema}".tasks SET doc = %s::json WHERE workspace = %s AND id = %s',
                ("[1, 2]", workspace, task_id),
            )

    @pytest.fixture(autouse=True)
    def _remember_server(self, server_url: str) -> None:
        self._server_url = server_url


class TestPostgresStorePoolContract(UrlTests):
    """A PostgresStore made on a caller's pool still has a URL that opens the same store."""

    @pytest.fixture
    def store_factory(self, shared_pool: tuple[ConnectionPool[Any], str]) -> Callable[[], PostgresStore]:
        pool, schema = shared_pool
        return lambda: PostgresStore(pool=pool, schema=schema, lock_timeout=30)
