"""PostgreSQL beside the file store: update, get and list of 10,000 tasks, same payloads, same run, interleaved.

The server is a throwaway cluster from :mod:`atlas_tasks.backends.postgres.testing` (run as the ``postgres`` user
when we are root). That module starts it with ``fsync=off`` (it exists for tests); the benchmark seeds 10,000
tasks in that mode and then **restarts the cluster durable** (``fsync=on``, ``synchronous_commit=on``,
``full_page_writes=on``), so a committed update is as durable as the file store's. Its data directory is on the
same disk as the file store's scratch home. When no server can be started, the rows say "skipped: no server".
"""

from __future__ import annotations

import subprocess
import time
from typing import Any

from benchmarks import fixtures
from benchmarks._harness import ERROR, SKIPPED, Context, Row, measure
from benchmarks.bench_reads import big_workspace

SCHEMA = "atlas_bench"
#: The server settings of every measured round: a commit is durable when it returns.
DURABLE_SETTINGS = ("fsync=on", "synchronous_commit=on", "full_page_writes=on", "max_connections=50")

TITLES = {
    "pg_update": "PostgreSQL: durable update of the 10 KB task, vs the file store's update",
    "pg_get": "PostgreSQL: get of a task among 10,000, vs the file store's get",
    "pg_list": "PostgreSQL: list 10,000 tasks (full typed models, newest first), vs the file store's list",
}


def _skipped(reason: str) -> list[Row]:
    rows = []
    for key, title in TITLES.items():
        row = Row(key, title, "reported (PostgreSQL ÷ file)", status=SKIPPED, note=f"skipped: {reason}")
        row.ref_text = "–"
        rows.append(row)
    return rows


def _restart_durable(server: Any) -> None:
    """``pg_ctl restart`` of the throwaway cluster with :data:`DURABLE_SETTINGS` instead of its fast ones."""
    root = server.root
    options = [f"-p {server.port}", f"-k {root / 'sock'}", "-c listen_addresses=127.0.0.1"]
    options += [f"-c {setting}" for setting in DURABLE_SETTINGS]
    command = [
        str(server.bin_dir / "pg_ctl"),
        "-D",
        str(root / "data"),
        "-l",
        str(root / "server.log"),
        "-o",
        " ".join(options),
        "-m",
        "fast",
        "-w",
        "restart",
    ]
    if server.run_as is not None:
        command = ["runuser", "-u", server.run_as, "--", *command]
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd="/", timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"pg_ctl restart failed: {done.stderr.strip() or done.stdout.strip()}")


def _settings(url: str) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        values = [conn.execute(f"SHOW {name}").fetchone()[0] for name in ("fsync", "synchronous_commit")]  # type: ignore[index]
    return f"fsync={values[0]}, synchronous_commit={values[1]}"


def _seed(store: Any, url: str, count: int, template_task: Any) -> None:
    """``count`` tasks with the file fixture's ids and times, copied in SQL from one task the store created."""
    store.create_workspace("big", exist_ok=True)
    created = store.create("big", template_task)
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        doc, created_text = conn.execute(
            f"SELECT doc::text, doc->>'created_at' FROM {SCHEMA}.tasks WHERE workspace = 'big' AND id = %s",
            (created.id,),
        ).fetchone()  # type: ignore[misc]
        conn.execute(
            f"""
            INSERT INTO {SCHEMA}.tasks (workspace, id, status, created_at, updated_at, revision, doc, ref)
            SELECT 'big', t.id, s.status, t.ts::timestamptz, t.ts::timestamptz, s.revision,
                   replace(replace(%(doc)s, %(old_id)s, t.id), %(old_ts)s, t.ts)::json,
                   replace(replace(s.ref::text, %(old_id)s, t.id), %(old_ts)s, t.ts)::json
            FROM (SELECT to_char(timestamp '2025-01-01' + g * interval '1 second', '"task-"YYYYMMDD-HH24MISS') AS id,
                         to_char(timestamp '2025-01-01' + g * interval '1 second', 'YYYY-MM-DD"T"HH24:MI:SS')
                           || '.123456Z' AS ts
                  FROM generate_series(0, %(n)s - 1) AS g) AS t,
                 {SCHEMA}.tasks AS s
            WHERE s.workspace = 'big' AND s.id = %(old_id)s
            """,
            {"doc": doc, "old_id": created.id, "old_ts": created_text, "n": count},
        )
        conn.execute("ANALYZE")
    store.delete("big", created.id)


def bench_postgres(ctx: Context) -> list[Row]:
    try:
        from atlas_tasks.backends.postgres import PostgresStore
        from atlas_tasks.backends.postgres.testing import ServerError, TemporaryServer
    except ImportError as exc:
        return _skipped(f"no server (the postgres extra is not installed: {exc})")
    s = ctx.scale
    big = big_workspace(ctx)
    template = fixtures.sample_task(s.task_bytes)
    try:
        server = TemporaryServer()
        server.start()
    except (ServerError, OSError, subprocess.SubprocessError) as exc:
        return _skipped(f"no server ({str(exc).splitlines()[0][:160]})")
    try:
        started = time.perf_counter()
        seed_store = PostgresStore(server.url, schema=SCHEMA)
        try:
            seed_store.migrate()
            _seed(seed_store, server.url, len(big.ids), template)
        finally:
            seed_store.close()
        _restart_durable(server)
        ctx.log(
            f"PostgreSQL: seeded {len(big.ids):,} tasks and restarted durable in {time.perf_counter() - started:.1f}s"
        )
        store = PostgresStore(server.url, schema=SCHEMA)
        try:
            return _measure(ctx, store, big, template, _settings(server.url))
        finally:
            store.close()
    finally:
        server.stop()


def _measure(ctx: Context, pg: Any, big: Any, template: Any, settings: str) -> list[Row]:
    s = ctx.scale
    rows: list[Row] = []

    # update: the same 10 KB task on both sides, one update per round each.
    pg.create_workspace("hot", exist_ok=True)
    home = ctx.fresh_dir("pg-file")
    from atlas_tasks import FileStore

    files = FileStore(home)
    files.create_workspace("hot")
    state: dict[str, Any] = {"pg": pg.create("hot", template), "file": files.create("hot", template), "n": 0}

    def mutate() -> None:
        state["n"] += 1
        state["pg"].metadata["n"] = state["n"]
        state["file"].metadata["n"] = state["n"]

    def pg_update() -> None:
        state["pg"] = pg.update("hot", state["pg"])

    def file_update() -> None:
        state["file"] = files.update("hot", state["file"])

    stats = measure(
        {"pg": pg_update, "file": file_update},
        rounds=s.rounds(300),
        warmup=s.warmup(5),
        min_rounds=s.rounds(30),
        budget=s.budget(8),
        setup=mutate,
    )
    row = _row("pg_update", stats, "file store update")
    row.note = f"PostgreSQL {settings}, data directory on the same disk"
    rows.append(row)

    # get: one task in the middle of 10,000 on both sides.
    task_id = big.ids[len(big.ids) // 2]

    def pg_get() -> None:
        pg.get("big", task_id)

    def file_get() -> None:
        big.store.get(big.workspace, task_id)

    stats = measure(
        {"pg": pg_get, "file": file_get},
        rounds=s.rounds(2000),
        warmup=s.warmup(20),
        min_rounds=s.rounds(100),
        budget=s.budget(5),
    )
    rows.append(_row("pg_get", stats, "file store get"))

    # list: every task, full typed models, newest first.
    got: dict[str, Any] = {}

    def pg_list() -> None:
        got["pg"] = pg.list("big")

    def file_list() -> None:
        got["file"] = big.store.list(big.workspace)

    stats = measure(
        {"pg": pg_list, "file": file_list},
        rounds=s.rounds(3),
        warmup=0,  # both sides are warm: the file side's list rows ran on this workspace, the pool is open
        min_rounds=2,
        budget=s.budget(10),
    )
    row = _row("pg_list", stats, "file store list")
    pg_ids, file_ids = [t.id for t in got["pg"]], [t.id for t in got["file"]]
    if pg_ids != file_ids:
        row.status = ERROR
        row.note = f"the two listings differ ({len(pg_ids)} vs {len(file_ids)} tasks)"
    rows.append(row)
    return rows


def _row(key: str, stats: dict[str, Any], label: str) -> Row:
    row = Row(key, TITLES[key], "reported (PostgreSQL ÷ file)", ours=stats["pg"], ref=stats["file"], ref_label=label)
    row.ratio = row.ours.median / row.ref.median  # type: ignore[union-attr]
    return row
