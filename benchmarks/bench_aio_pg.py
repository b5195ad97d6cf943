"""The asyncio API on PostgreSQL (issue #19): throughput of 64 coroutines, and the per-call overhead.

A throwaway cluster of its own (no seeding: a handful of tasks), restarted durable as bench_postgres's is
(``fsync=on``, ``synchronous_commit=on``), so a committed update is as durable as the file store's.

* aio_pg_throughput: aggregate updates/s of 64 coroutines (one task each) through ``aio.open_async_store(url)``,
  against the same work on 8 threads with the sync ``PostgresStore`` (the issue's target: at least as many); LangGraph's
  ``AsyncPostgresSaver`` (64 coroutines, ``aput`` of a checkpoint holding the same task document, on an async pool
  of the same size as ours) is reported beside them when installed.
* aio_pg_overhead: one awaited ``update`` with no concurrency against the sync ``update``, interleaved round by
  round, on one server.

Both measure whatever ``open_async_store`` gives for a ``postgresql://`` URL (the note says which: native, or the
thread pool over the sync store).
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from typing import Any

from atlas_tasks import aio
from benchmarks import fixtures
from benchmarks._harness import NOT_INSTALLED, SKIPPED, Context, Row, Stats, fmt_time
from benchmarks.bench_aio import OVERHEAD_LIMIT, saver_rate, thread_rate, updates_until
from benchmarks.bench_postgres import _restart_durable, _settings

KEYS = ("aio_pg_throughput", "aio_pg_overhead")
SCHEMA = "atlas_bench_aio"
#: Connections on each side (ours: the store's default pool size; the peer's async pool: the same).
POOL = 10


def bench_aio_pg(ctx: Context) -> list[Row]:
    try:
        from atlas_tasks.backends.postgres import PostgresStore
        from atlas_tasks.backends.postgres.testing import ServerError, TemporaryServer
    except ImportError as exc:
        return [Row(key, key, "–", status=SKIPPED, note=f"no server (postgres extra missing: {exc})") for key in KEYS]
    try:
        server = TemporaryServer()
        server.start()
    except (ServerError, OSError, subprocess.SubprocessError) as exc:
        reason = str(exc).splitlines()[0][:160]
        return [Row(key, key, "–", status=SKIPPED, note=f"no server ({reason})") for key in KEYS]
    try:
        _restart_durable(server)
        settings = _settings(server.url)
        sync = PostgresStore(server.url, schema=SCHEMA, max_connections=POOL)
        try:
            sync.migrate()
            sync.create_workspace("ws", exist_ok=True)
            rows = [_throughput_row(ctx, server.url, sync), _overhead_row(ctx, server.url, sync)]
        finally:
            sync.close()
        for row in rows:
            row.note += f"; server {settings}"
        return rows
    finally:
        server.stop()


def _kind(astore: aio.AsyncStore) -> str:
    native = getattr(astore, "native", False)
    return "native async (psycopg async pool, greenlets)" if native else "thread pool over the sync store"


def _throughput_row(ctx: Context, url: str, sync: Any) -> Row:
    coroutines = 64 if ctx.scale.name == "full" else 8
    threads = ctx.scale.writers
    seconds = ctx.scale.throughput_seconds
    template = fixtures.sample_task(ctx.scale.task_bytes)
    tasks = [sync.create("ws", template) for _ in range(max(coroutines, threads))]
    ids = [t.id for t in tasks]
    kind = ["?"]

    async def run_async() -> float:
        async with aio.open_async_store(url, schema=SCHEMA, max_connections=POOL) as astore:
            kind[0] = _kind(astore)
            current = [await astore.get("ws", t.id) for t in tasks[:coroutines]]
            start = time.perf_counter()
            counts = await asyncio.gather(*(updates_until(astore, t, start + seconds) for t in current))
            return sum(counts) / (time.perf_counter() - start)

    # Two rounds each, alternated, the better of each side: the server's own warm-up counts for neither.
    ours = max(asyncio.run(run_async()), 0.0)
    ref = thread_rate(sync, ids, threads, seconds)
    ours = max(ours, asyncio.run(run_async()))
    ref = max(ref, thread_rate(sync, ids, threads, seconds))
    row = Row(
        "aio_pg_throughput",
        f"PostgreSQL: {coroutines} coroutines updating {coroutines} tasks through open_async_store, updates/s",
        f"≥ {threads} threads with the sync PostgresStore",
        ours_text=f"{ours:,.0f} updates/s",
        ref_text=f"{ref:,.0f} updates/s ({threads} threads, sync store)",
        ref_label=f"{threads} threads, sync PostgresStore",
        ratio=ours / ref,
        note=f"{kind[0]}; {seconds:g} s per side, best of 2 alternated; pools of {POOL} connections; "
        "ratio = async ÷ threads",
    )
    row.met = row.ratio is not None and row.ratio >= 1.0
    peer = _async_postgres_rate(ctx, url, coroutines, seconds)
    if peer is None:
        row.note += "; AsyncPostgresSaver: " + NOT_INSTALLED
    else:
        row.note += f"; LangGraph AsyncPostgresSaver, {coroutines} coroutines: {peer:,.0f} puts/s ({ours / peer:.2f}×)"
        row.extra["async_postgres_saver_rate"] = peer
    return row


def _async_postgres_rate(ctx: Context, url: str, coroutines: int, seconds: float) -> float | None:
    try:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from psycopg.rows import dict_row
        from psycopg_pool import AsyncConnectionPool
    except ImportError:
        return None
    payload = fixtures.payload_dict(fixtures.sample_task(ctx.scale.task_bytes))

    async def main() -> float:
        # The connection settings LangGraph's documentation gives for a pool (autocommit, dict rows, no
        # server-side prepare); its own schema in the same database.
        kwargs = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
        async with AsyncConnectionPool(url, min_size=POOL, max_size=POOL, kwargs=kwargs, open=False) as pool:
            saver = AsyncPostgresSaver(pool)  # type: ignore[arg-type]
            await saver.setup()
            return max([await saver_rate(saver, payload, coroutines, seconds) for _ in range(2)])

    return asyncio.run(main())


def _overhead_row(ctx: Context, url: str, sync: Any) -> Row:
    template = fixtures.sample_task(ctx.scale.task_bytes)
    a, b = sync.create("ws", template), sync.create("ws", template)
    rounds = ctx.scale.rounds(300, minimum=5)
    warmup = ctx.scale.warmup(20)
    kind = ["?"]

    async def main() -> tuple[list[float], list[float]]:
        async with aio.open_async_store(url, schema=SCHEMA, max_connections=POOL) as astore:
            kind[0] = _kind(astore)
            ta, tb = await astore.get("ws", a.id), sync.get("ws", b.id)
            async_s: list[float] = []
            sync_s: list[float] = []
            for i in range(warmup + rounds):
                for which in ("async", "sync") if i % 2 == 0 else ("sync", "async"):
                    t0 = time.perf_counter()
                    if which == "async":
                        ta.metadata["n"] = i
                        ta = await astore.update("ws", ta)
                    else:
                        tb.metadata["n"] = i
                        tb = sync.update("ws", tb)
                    if i >= warmup:
                        (async_s if which == "async" else sync_s).append(time.perf_counter() - t0)
            return async_s, sync_s

    async_s, sync_s = asyncio.run(main())
    ours, ref = Stats.of(async_s), Stats.of(sync_s)
    row = Row(
        "aio_pg_overhead",
        "PostgreSQL: one awaited update, no concurrency, against the sync PostgresStore.update in the same loop",
        f"≤ {OVERHEAD_LIMIT:.2f}× sync",
        ours=ours,
        ref=ref,
        ref_label="sync PostgresStore.update",
        ratio=ours.median / ref.median,
        note=f"{kind[0]}; {ours.n} rounds each, interleaved; medians (+{fmt_time(ours.median - ref.median)} per call)",
    )
    row.met = row.ratio is not None and row.ratio <= OVERHEAD_LIMIT
    return row
