"""Peers in the same run with the same payloads: LangGraph's SqliteSaver (put / get_tuple / list) and diskcache.

SqliteSaver is used as LangGraph sets it up (``sqlite3.connect`` defaults, WAL from ``setup()``, synchronous left
at SQLite's default FULL, so a commit is durable). diskcache is opened with ``sqlite_synchronous=2`` (FULL) so its
``set`` is durable too (its default, NORMAL, is not in WAL mode). Ratios are ours ÷ theirs: below 1 means we are
faster. These rows have no target; they are reported.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from atlas_tasks import FileStore
from benchmarks import fixtures
from benchmarks._harness import NOT_INSTALLED, Context, Row, measure
from benchmarks.bench_concurrency import sqlite_mode
from benchmarks.bench_reads import big_workspace


def _not_installed(key: str, title: str, package: str) -> Row:
    row = Row(key, title, "reported (ours ÷ theirs)", status=NOT_INSTALLED)
    row.ref_text = f"{package} not installed (the bench extra)"
    return row


def _saver(db: str) -> Any:
    from langgraph.checkpoint.sqlite import SqliteSaver

    saver = SqliteSaver(sqlite3.connect(db, check_same_thread=False))
    saver.setup()
    return saver


def _config(thread_id: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}


def _put(saver: Any, thread_id: str, payload: dict[str, Any], step: int) -> None:
    from langgraph.checkpoint.base import empty_checkpoint

    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"task": payload}
    saver.put(_config(thread_id), checkpoint, {"step": step}, {})


def bench_sqlite_saver(ctx: Context) -> list[Row]:
    titles = {
        "peer_put": "durable update vs SqliteSaver.put",
        "peer_get": "get vs SqliteSaver.get_tuple",
        "peer_list": "list of the whole store vs SqliteSaver.list",
    }
    try:
        from langgraph.checkpoint.sqlite import SqliteSaver  # noqa: F401
    except ImportError:
        return [_not_installed(k, t, "langgraph-checkpoint-sqlite") for k, t in titles.items()]
    s = ctx.scale
    big = big_workspace(ctx)
    template = fixtures.sample_task(s.task_bytes)
    payload = fixtures.payload_dict(template)
    home = ctx.fresh_dir("peer-sqlite")
    db = str(home / "checkpoints.sqlite")
    saver = _saver(db)
    # Seed as many threads as our big workspace has tasks, one checkpoint each, without fsync (a fixture).
    saver.conn.execute("PRAGMA synchronous=OFF")
    for i in range(len(big.ids)):
        _put(saver, f"thread-{i:06d}", payload, 0)
    saver.conn.execute("PRAGMA synchronous=FULL")
    mode = sqlite_mode(db)
    rows: list[Row] = []

    # put vs update
    store = FileStore(home / "atlas")
    store.create_workspace("ws")
    state = {"task": store.create("ws", template), "step": 0}

    def ours_update() -> None:
        task = state["task"]
        task.metadata["n"] = state["step"]  # type: ignore[union-attr]
        state["task"] = store.update("ws", task)  # type: ignore[arg-type]

    def theirs_put() -> None:
        state["step"] += 1  # type: ignore[operator]
        payload["metadata"]["n"] = state["step"]
        _put(saver, "thread-hot", payload, state["step"])  # type: ignore[arg-type]

    stats = measure(
        {"ours": ours_update, "theirs": theirs_put},
        rounds=s.rounds(300),
        warmup=s.warmup(5),
        min_rounds=s.rounds(30),
        budget=s.budget(8),
    )
    rows.append(_peer_row("peer_put", titles["peer_put"], stats, f"SqliteSaver.put, {mode}"))

    # get vs get_tuple
    task_id = big.ids[len(big.ids) // 2]
    config = _config(f"thread-{len(big.ids) // 2:06d}")
    got: dict[str, Any] = {}

    def ours_get() -> None:
        big.store.get(big.workspace, task_id)

    def theirs_get() -> None:
        got["tuple"] = saver.get_tuple(config)

    stats = measure(
        {"ours": ours_get, "theirs": theirs_get},
        rounds=s.rounds(2000),
        warmup=s.warmup(20),
        min_rounds=s.rounds(100),
        budget=s.budget(5),
    )
    rows.append(_peer_row("peer_get", titles["peer_get"], stats, "SqliteSaver.get_tuple"))
    assert got["tuple"] is not None

    # list everything vs list(None)
    counted: dict[str, int] = {}

    def ours_list() -> None:
        counted["ours"] = len(big.store.list(big.workspace))

    def theirs_list() -> None:
        counted["theirs"] = sum(1 for _ in saver.list(None))

    stats = measure(
        {"ours": ours_list, "theirs": theirs_list},
        rounds=s.rounds(5),
        warmup=0,  # both are warm: the list rows ran on the same workspace, the seeding filled SQLite's cache
        min_rounds=2,
        budget=s.budget(12),
    )
    row = _peer_row(
        "peer_list", f"{titles['peer_list']} ({len(big.ids):,} tasks / threads)", stats, "SqliteSaver.list(None)"
    )
    row.note = f"theirs returned {counted['theirs']:,} checkpoints (plain dicts), ours {counted['ours']:,} Tasks"
    rows.append(row)
    saver.conn.close()
    return rows


def bench_diskcache(ctx: Context) -> Row:
    title = "durable update vs diskcache Cache.set (synchronous=FULL)"
    try:
        import diskcache
    except ImportError:
        return _not_installed("peer_diskcache", title, "diskcache")
    s = ctx.scale
    home = ctx.fresh_dir("peer-diskcache")
    store = FileStore(home / "atlas")
    store.create_workspace("ws")
    state = {"task": store.create("ws", fixtures.sample_task(s.task_bytes)), "n": 0}
    data = (store.task_path("ws", state["task"].id) / "task.json").read_bytes()  # type: ignore[union-attr]
    cache = diskcache.Cache(str(home / "cache"), sqlite_synchronous=2)

    def ours() -> None:
        task = state["task"]
        task.metadata["n"] = state["n"]  # type: ignore[union-attr]
        state["task"] = store.update("ws", task)  # type: ignore[arg-type]

    def theirs() -> None:
        state["n"] += 1  # type: ignore[operator]
        cache.set("task", data)

    stats = measure(
        {"ours": ours, "theirs": theirs},
        rounds=s.rounds(300),
        warmup=s.warmup(5),
        min_rounds=s.rounds(30),
        budget=s.budget(8),
    )
    sync = cache._sql("PRAGMA synchronous").fetchone()[0]
    journal = cache._sql("PRAGMA journal_mode").fetchone()[0]
    cache.close()
    return _peer_row(
        "peer_diskcache",
        title,
        stats,
        f"diskcache.set of the same {len(data)} bytes, journal_mode={journal}, synchronous={sync}",
    )


def _peer_row(key: str, title: str, stats: dict[str, Any], label: str) -> Row:
    row = Row(key, title, "reported (ours ÷ theirs)", ours=stats["ours"], ref=stats["theirs"], ref_label=label)
    row.ratio = row.ours.median / row.ref.median  # type: ignore[union-attr]
    return row
