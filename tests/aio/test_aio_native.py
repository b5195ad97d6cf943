"""The native async PostgreSQL store (``aio.open_async_store("postgresql://...")``): the whole contract, no thread.

The conformance suite and its state machine reach it through the sync facade, as test_aio_conformance does for the
thread-pool stores; the other tests await it directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from atlas_tasks import aio
from atlas_tasks.aio import AsyncStore
from atlas_tasks.backends.postgres import PostgresStore
from atlas_tasks.backends.postgres._bridge import wait_for
from atlas_tasks.errors import NotBridgedError
from atlas_tasks.models import Step, Task, TaskStatus
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

pytestmark = pytest.mark.postgres

CONTRACT = (ListingTests, LogTailTests, ArtifactSizeTests, RunLeaseTests, StampTests, TombstoneTests, UrlTests)


@pytest.fixture(scope="module")
def server_url(request: pytest.FixtureRequest) -> str:
    return session_server_url(request)


@pytest.fixture(scope="module")
def schema(server_url: str) -> Iterator[str]:
    name = f"atlas_aio_native_{secrets.token_hex(4)}"
    yield name
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture(scope="module")
def loop() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.close()


@pytest.fixture(scope="module")
def async_pool(server_url: str, loop: LoopThread) -> Iterator[AsyncConnectionPool[Any]]:
    """A caller's async pool, opened on the facade's loop (async connections belong to one loop)."""

    async def make() -> AsyncConnectionPool[Any]:
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            server_url, min_size=2, max_size=20, open=False, kwargs={"autocommit": True}
        )
        await pool.open()
        return pool

    pool = loop.run(make())
    yield pool
    loop.run(pool.close())


@pytest.fixture
def native(server_url: str, schema: str, loop: LoopThread) -> Iterator[Callable[..., SyncOverAsync]]:
    """Opens native async stores on the loop, each behind the sync facade; closes them afterwards."""
    made: list[SyncOverAsync] = []

    def make(**kwargs: Any) -> SyncOverAsync:
        astore = aio.open_async_store(f"{server_url}?schema={schema}", lock_timeout=30, **kwargs)
        assert astore.native
        facade = SyncOverAsync(astore, loop)
        made.append(facade)
        return facade

    yield make
    for facade in made:
        facade.close()


class TestNativePostgresStoreConformance(StoreTests):
    """The native store on a caller's AsyncConnectionPool passes every conformance test, the state machine too."""

    @pytest.fixture
    def store_factory(
        self, native: Callable[..., SyncOverAsync], async_pool: AsyncConnectionPool[Any]
    ) -> Callable[[], SyncOverAsync]:
        return lambda: native(pool=async_pool)


class TestNativePostgresStoreContract(*CONTRACT):  # type: ignore[misc]
    """The native store opened from a URL (its own async pool) passes the listing, log, lease … mixins."""

    @pytest.fixture
    def store_factory(self, native: Callable[..., SyncOverAsync]) -> Callable[[], SyncOverAsync]:
        return lambda: native(max_connections=10)

    def damage_task(self, store: Store, workspace: str, task_id: str) -> None:
        """Replace the task's stored document with a JSON array, in SQL behind the async store's back."""
        assert isinstance(store, SyncOverAsync)
        pg = store.astore.sync_store
        assert isinstance(pg, PostgresStore)
        with psycopg.connect(self._server_url, autocommit=True) as conn:
            conn.execute(
                f'UPDATE "{pg.schema}".tasks SET doc = %s::json WHERE workspace = %s AND id = %s',
                ("[1, 2]", workspace, task_id),
            )

    @pytest.fixture(autouse=True)
    def _remember_server(self, server_url: str) -> None:
        self._server_url = server_url


# -- native means native ------------------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has died
    except (OSError, IndexError):
        return False


def _open(server_url: str, schema: str, **kwargs: Any) -> AsyncStore:
    return aio.open_async_store(f"{server_url}?schema={schema}", lock_timeout=30, **kwargs)


async def _busy(astore: AsyncStore, workspace: str) -> set[str]:
    """Many calls at once (creates, reads, updates, an edit, a listing, log lines, a lease); return the names of
    the threads alive at the end that were not alive at the start."""
    before = set(threading.enumerate())
    await astore.create_workspace(workspace, exist_ok=True)
    tasks = await asyncio.gather(*(astore.create(workspace, Task(description=f"t{i}")) for i in range(16)))
    got = await asyncio.gather(*(astore.get(workspace, t.id) for t in tasks))
    for task in got:
        task.description += " (updated)"
    await asyncio.gather(*(astore.update(workspace, t) for t in got))
    async with astore.edit(workspace, tasks[0].id) as task:
        task.description = "edited"
    await asyncio.gather(*(astore.append_log(workspace, t.id, {"event": "x"}) for t in tasks))
    assert len(await astore.list(workspace)) == 16
    assert isinstance(astore, aio.AsyncRunLeases)
    lease = await astore.acquire_lease(workspace, tasks[1].id, {"pid": 1})
    await lease.release()
    return {t.name for t in set(threading.enumerate()) - before}


def test_native_store_starts_no_thread(server_url: str, schema: str) -> None:
    """Creates, reads, updates, an edit, a listing, log lines and a lease on the native store start no thread."""

    async def work() -> set[str]:
        async with _open(server_url, schema) as astore:
            return await _busy(astore, "nothreads")

    assert asyncio.run(work()) == set()


def test_thread_count_sees_the_thread_pool(server_url: str, schema: str) -> None:
    """Negative control of the test above: the same calls with ``native=False`` leave the pool's threads behind."""

    async def work() -> set[str]:
        async with _open(server_url, schema, native=False) as astore:
            assert not astore.native
            return await _busy(astore, "threads")

    assert any(name.startswith("atlas-aio") for name in asyncio.run(work()))


def test_follow_log_wakes_on_notify_without_a_thread(server_url: str, schema: str) -> None:
    """A follower waiting with a one-hour poll receives a line appended meanwhile: NOTIFY woke it, no thread did."""

    async def work() -> None:
        async with _open(server_url, schema) as astore:
            await astore.create_workspace("follow", exist_ok=True)
            task = await astore.create("follow", Task(description="f"))
            listening = asyncio.Event()
            got: list[dict[str, Any]] = []

            async def follow() -> None:
                follower = astore.follow_log("follow", task.id, until=lambda: False, poll=3600, on_listen=listening.set)
                async with contextlib.aclosing(follower) as entries:
                    async for entry in entries:
                        got.append(entry)
                        break  # leaving early closes the follower at once (its wait is not resumed)

            follower = asyncio.ensure_future(follow())
            await asyncio.wait_for(listening.wait(), 30)
            await asyncio.sleep(0.2)  # let the follower reach its wait for a notification
            assert threading.active_count() == before
            await astore.append_log("follow", task.id, {"event": "woken"})
            await asyncio.wait_for(follower, 30)  # the poll is an hour: only the NOTIFY can end this in time
            assert [e["event"] for e in got] == ["woken"]

    before = threading.active_count()
    asyncio.run(work())


def test_64_coroutines_share_a_small_async_pool(server_url: str, schema: str) -> None:
    """64 coroutines updating 64 tasks at once all succeed through a caller's async pool of 4 connections."""

    async def work() -> None:
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            server_url, min_size=1, max_size=4, open=False, kwargs={"autocommit": True}, timeout=60
        )
        await pool.open()
        try:
            async with _open(server_url, schema, pool=pool) as astore:
                await astore.create_workspace("shared", exist_ok=True)
                tasks = [await astore.create("shared", Task(description=f"t{i}")) for i in range(64)]

                async def bump(task: Task) -> Task:
                    task.description = "bumped"
                    return await astore.update("shared", task)

                saved = await asyncio.gather(*(bump(t) for t in tasks))
                assert [t.revision for t in saved] == [t.revision + 1 for t in tasks]
                stats = pool.get_stats()
                assert stats["pool_max"] == 4 and stats["requests_num"] >= 64
        finally:
            await pool.close()

    asyncio.run(work())


def test_cancelled_update_completes_then_raises(server_url: str, schema: str) -> None:
    """An update cancelled while it waits on the server still saves whole (revision + 1), then raises CancelledError."""

    async def work() -> None:
        async with _open(server_url, schema) as astore:
            pg = astore.sync_store
            assert isinstance(pg, PostgresStore)
            await astore.create_workspace("cancel", exist_ok=True)
            task = await astore.create("cancel", Task(description="before"))
            # Another session holds the row: the update's UPDATE waits on the server, mid-write, when cancelled.
            blocker = await psycopg.AsyncConnection.connect(server_url)
            await blocker.execute(
                f'SELECT 1 FROM "{pg.schema}".tasks WHERE workspace = %s AND id = %s FOR UPDATE', ("cancel", task.id)
            )
            task.description = "after"
            update = asyncio.ensure_future(astore.update("cancel", task))
            async with await psycopg.AsyncConnection.connect(server_url, autocommit=True) as watch:
                for _ in range(300):
                    cur = await watch.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE%%'"
                    )
                    row = await cur.fetchone()
                    if row and row[0]:
                        break
                    await asyncio.sleep(0.05)
                else:
                    raise AssertionError("the update never waited for the row lock")
            update.cancel()
            await asyncio.sleep(0.2)
            assert not update.done()  # the write is in flight: the cancellation waits for it
            await blocker.rollback()
            await blocker.close()
            with pytest.raises(asyncio.CancelledError):
                await update
            saved = await astore.get("cancel", task.id)
            assert (saved.revision, saved.description) == (task.revision + 1, "after")

    asyncio.run(work())


def test_wait_for_outside_a_bridge_raises_the_typed_error() -> None:
    """wait_for called from plain sync code raises NotBridgedError, whose message says to use the async store."""

    async def nothing() -> None:
        return None

    with pytest.raises(NotBridgedError, match="await the AsyncStore"):
        wait_for(nothing())


def test_native_sync_store_used_from_sync_code_raises_the_typed_error(server_url: str, schema: str) -> None:
    """The sync store behind a native async store, called outside its loop, raises NotBridgedError (nothing hangs)."""
    astore = _open(server_url, schema)
    with pytest.raises(NotBridgedError):
        astore.sync_store.list_workspaces()


def test_async_run_holds_its_lease_across_awaits(server_url: str, schema: str) -> None:
    """A run on the native store holds its lease (seen from a sync store) while its steps await, then completes."""

    async def work() -> None:
        async with _open(server_url, schema) as astore:
            await astore.create_workspace("runs", exist_ok=True)
            steps = [Step(name="a", type="validation"), Step(name="b", type="validation")]
            task = await astore.create("runs", Task(description="r", steps=steps))
            with PostgresStore(server_url, schema=schema) as other:
                holder = asyncio.get_running_loop().run_in_executor
                async with astore.run("runs", task.id) as run:
                    async for step in run.remaining_steps():
                        async with run.step(step) as ctx:
                            await asyncio.sleep(0.01)
                            await ctx.log("working", step=step.name)
                            seen = await holder(None, other.lease_holder, "runs", task.id)
                            assert seen is not None
                assert await holder(None, other.lease_holder, "runs", task.id) is None
            done = await astore.get("runs", task.id)
            assert done.status == TaskStatus.COMPLETED

    asyncio.run(work())


def test_run_task_on_a_native_store_runs_commands_and_ai_steps(server_url: str, schema: str, tmp_path: Path) -> None:
    """aio.run_task on a native store (no thread drives the sync store): a command step with output and an AI step
    with the prompt on stdin complete, their artifacts and log lines in the database; a cancelled coroutine leaves
    the next task interrupted with the tree killed and its lease free."""
    worktree = tmp_path / "wt"
    worktree.mkdir()

    async def work() -> None:
        async with _open(server_url, schema) as astore:
            assert astore.native
            await astore.create_workspace("exec", worktree_path=str(worktree), exist_ok=True)
            task = Task(
                description="x",
                steps=[
                    Step(name="a", type="validation", commands=["echo built-it"]),
                    Step(name="ask", type="ai", prompt="hello there"),
                ],
            )
            task.config.variables["ai_command"] = "cat"
            task = await astore.create("exec", task)
            done = await aio.run_task(astore, "exec", task.id)
            assert done.status == TaskStatus.COMPLETED
            report = json.loads(await astore.get_artifact("exec", task.id, "validation.1.json"))
            assert report["results"][0]["stdout"] == "built-it\n"
            assert (await astore.get_artifact("exec", task.id, "ask.1.md")).decode() == "hello there"
            logged = [e async for e in astore.iter_log("exec", task.id)]
            assert any(e.get("event") == "output" and e.get("text") == "built-it\n" for e in logged)

            wait = Step(name="w", type="validation", shell=True, commands=["echo $$ > sh.pid; sleep 60"])  # type: ignore[call-arg]
            long = Task(description="y", steps=[wait])
            long = await astore.create("exec", long)
            job = asyncio.create_task(aio.run_task(astore, "exec", long.id))
            while not (worktree / "sh.pid").exists() or not (worktree / "sh.pid").read_text().strip():
                assert not job.done(), job
                await asyncio.sleep(0.05)
            job.cancel()
            with pytest.raises(asyncio.CancelledError):
                await job
            stored = await astore.get("exec", long.id)
            assert stored.status == TaskStatus.INTERRUPTED
            assert stored.metadata["stop_reason"]["kind"] == aio.CANCELLED_KIND
            assert await astore.lease_holder("exec", long.id) is None
            pid = int((worktree / "sh.pid").read_text())
            deadline = time.monotonic() + 30
            while _alive(pid):
                assert time.monotonic() < deadline, "the command outlived the cancelled run"
                await asyncio.sleep(0.05)

    asyncio.run(work())
