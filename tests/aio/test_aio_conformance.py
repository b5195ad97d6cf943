"""The async store against the full Store conformance suite and capability mixins, on file, memory and PostgreSQL.

Each test's store is a :class:`~atlas_tasks.testing.sync_over_async.SyncOverAsync`: every call the (sync) suite
makes is a coroutine of the :class:`~atlas_tasks.aio.AsyncStore`, awaited on an event loop in a helper thread.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from atlas_tasks import FileStore
from atlas_tasks.aio import AsyncStore
from atlas_tasks.backends.memory import MemoryStore
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
from atlas_tasks.testing.sync_over_async import LoopThread, SyncOverAsync
from pg_server import server_url as session_server_url

CONTRACT = (ListingTests, LogTailTests, ArtifactSizeTests, RunLeaseTests, StampTests, TombstoneTests, UrlTests)


@pytest.fixture(scope="module")
def loop() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.close()


@pytest.fixture
def over(loop: LoopThread) -> Iterator[Callable[[Store], SyncOverAsync]]:
    """Wraps a sync store in an async store, and that in the sync facade; closes every async store afterwards."""
    made: list[SyncOverAsync] = []

    def make(store: Store) -> SyncOverAsync:
        facade = SyncOverAsync(AsyncStore.from_store(store, max_threads=4), loop)
        made.append(facade)
        return facade

    yield make
    for facade in made:
        facade.close()


def _sync(store: Store) -> Store:
    assert isinstance(store, SyncOverAsync)
    return store.astore.sync_store


class TestAsyncFileStoreConformance(StoreTests):
    """The async store over a FileStore passes every conformance test, the state machine included."""

    @pytest.fixture
    def store_factory(
        self, tmp_path_factory: pytest.TempPathFactory, over: Callable[[Store], SyncOverAsync]
    ) -> Callable[[], SyncOverAsync]:
        return lambda: over(FileStore(tmp_path_factory.mktemp("home"), lock_timeout=30))


class TestAsyncFileStoreContract(*CONTRACT):  # type: ignore[misc]
    """The async store over a FileStore passes the listing, log, size, lease, stamp, tombstone and URL mixins."""

    @pytest.fixture
    def store_factory(
        self, tmp_path_factory: pytest.TempPathFactory, over: Callable[[Store], SyncOverAsync]
    ) -> Callable[[], SyncOverAsync]:
        return lambda: over(FileStore(tmp_path_factory.mktemp("home"), lock_timeout=30))

    def damage_task(self, store: Store, workspace: str, task_id: str) -> None:
        """Overwrite task.json in place with a JSON array, behind the async store's back."""
        files = _sync(store)
        assert isinstance(files, FileStore)
        (files.task_path(workspace, task_id) / "task.json").write_bytes(b"[1, 2]\n")


class TestAsyncMemoryStoreConformance(StoreTests):
    """The async store over a MemoryStore passes every conformance test."""

    @pytest.fixture
    def store_factory(self, over: Callable[[Store], SyncOverAsync]) -> Callable[[], SyncOverAsync]:
        store = over(MemoryStore())
        return lambda: store


class TestAsyncMemoryStoreContract(*CONTRACT):  # type: ignore[misc]
    """The async store over a MemoryStore passes the mixins (no change stamps: those skip)."""

    @pytest.fixture
    def store_factory(self, over: Callable[[Store], SyncOverAsync]) -> Callable[[], SyncOverAsync]:
        return lambda: over(MemoryStore())

    def damage_task(self, store: Store, workspace: str, task_id: str) -> None:
        """Replace the task's stored bytes with a JSON array, behind the async store's back."""
        memory = _sync(store)
        assert isinstance(memory, MemoryStore)
        memory._workspaces[workspace].tasks[task_id].doc = b"[1, 2]\n"


@pytest.fixture(scope="module")
def server_url(request: pytest.FixtureRequest) -> str:
    return session_server_url(request)


@pytest.fixture(scope="module")
def shared_pool(server_url: str) -> Iterator[tuple[ConnectionPool[Any], str]]:
    """One pool and one random schema for every store of the module (the state machine builds many stores)."""
    pool: ConnectionPool[Any] = ConnectionPool(
        server_url, min_size=2, max_size=20, open=True, kwargs={"autocommit": True}
    )
    schema = f"atlas_aio_conformance_{secrets.token_hex(4)}"
    yield pool, schema
    with pool.connection() as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    pool.close()


@pytest.mark.postgres
class TestAsyncPostgresStoreConformance(StoreTests):
    """The async store over a PostgresStore (a caller's pool) passes every conformance test."""

    @pytest.fixture
    def store_factory(
        self, shared_pool: tuple[ConnectionPool[Any], str], over: Callable[[Store], SyncOverAsync]
    ) -> Callable[[], SyncOverAsync]:
        pool, schema = shared_pool
        return lambda: over(PostgresStore(pool=pool, schema=schema, lock_timeout=30))


@pytest.mark.postgres
class TestAsyncPostgresStoreContract(*CONTRACT):  # type: ignore[misc]
    """The async store over a PostgresStore opened from a URL passes the mixins (no change stamps)."""

    @pytest.fixture
    def store_factory(
        self, server_url: str, shared_pool: tuple[ConnectionPool[Any], str], over: Callable[[Store], SyncOverAsync]
    ) -> Iterator[Callable[[], SyncOverAsync]]:
        opened: list[PostgresStore] = []

        def make() -> SyncOverAsync:
            store = PostgresStore(server_url, schema=shared_pool[1], lock_timeout=30, max_connections=10)
            opened.append(store)
            return over(store)

        yield make
        for store in opened:
            store.close()

    def damage_task(self, store: Store, workspace: str, task_id: str) -> None:
        """Replace the task's stored document with a JSON array, in SQL behind the async store's back."""
        pg = _sync(store)
        assert isinstance(pg, PostgresStore)
        import psycopg

        with psycopg.connect(self._server_url, autocommit=True) as conn:
            conn.execute(
                f'UPDATE "{pg.schema}".tasks SET doc = %s::json WHERE workspace = %s AND id = %s',
                ("[1, 2]", workspace, task_id),
            )

    @pytest.fixture(autouse=True)
    def _remember_server(self, server_url: str) -> None:
        self._server_url = server_url


def test_facade_claims_what_the_store_claims(tmp_path: Path, over: Callable[[Store], SyncOverAsync]) -> None:
    """The async store (and so the facade) has exactly the capabilities of the sync store it wraps."""
    from atlas_tasks import aio
    from atlas_tasks.store.capabilities import ChangeStamps, LocalFiles, RunLeases

    files = AsyncStore.from_store(FileStore(tmp_path))
    memory = AsyncStore.from_store(MemoryStore())
    assert isinstance(files, aio.AsyncChangeStamps) and isinstance(files, aio.AsyncLocalFiles)
    assert not isinstance(memory, aio.AsyncChangeStamps) and not isinstance(memory, aio.AsyncLocalFiles)
    assert isinstance(memory, aio.AsyncRunLeases)
    facade = over(MemoryStore())
    assert isinstance(facade, RunLeases) and not isinstance(facade, ChangeStamps | LocalFiles)
    files._pool.shutdown()
    memory._pool.shutdown()


def test_facade_runs_a_task_through_the_async_store(tmp_path: Path, over: Callable[[Store], SyncOverAsync]) -> None:
    """``facade.run`` is runs.run over the facade: a task runs to completion with every call awaited on the loop."""
    from atlas_tasks import Step, Task
    from atlas_tasks.models import TaskStatus

    facade = over(FileStore(tmp_path))
    facade.create_workspace("ws")
    task = facade.create("ws", Task(description="x", steps=[Step(name="a", type="validation")]))
    with facade.run("ws", task.id) as run:
        for step in run.remaining_steps():
            with run.step(step) as ctx:
                ctx.log("through the loop")
    assert facade.get("ws", task.id).status == TaskStatus.COMPLETED
    assert facade.lease_holder("ws", task.id) is None  # type: ignore[attr-defined]
