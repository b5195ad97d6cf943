"""Run every benchmark row, print one table, write docs/benchmarks.md.

    python -m benchmarks                 # the full run (what `make bench` does), a few minutes
    python -m benchmarks --quick         # tiny sizes and rounds: checks that every row still runs
    python -m benchmarks --only get,list # some rows (keys as in the table's first column)

Scratch homes go under --dir, $ATLAS_BENCH_DIR or /var/tmp (refused if it is tmpfs, where fsync is free), and are
removed afterwards (--keep keeps them).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import (
    analysis,
    bench_aio,
    bench_aio_pg,
    bench_aio_runs,
    bench_cli,
    bench_concurrency,
    bench_gc,
    bench_memory,
    bench_peers,
    bench_postgres,
    bench_reads,
    bench_web,
    bench_writes,
)
from benchmarks._harness import (
    ERROR,
    FULL,
    QUICK,
    Context,
    Row,
    Scale,
    fmt_met,
    fmt_ratio,
    fmt_time,
    git_revision,
    load_average,
    machine,
    ours_cell,
    pick_root,
    ref_cell,
    scratch_root,
    versions,
)

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "benchmarks.md"

BenchFn = Callable[[Context], "Row | list[Row]"]

#: (keys the function produces, function), in the order they run: rows sharing the 10,000-task workspace run
#: before create_big, which adds tasks to it.
BENCHMARKS: list[tuple[tuple[str, ...], BenchFn]] = [
    (("update",), bench_writes.bench_update),
    (("create",), bench_writes.bench_create),
    (("append_log",), bench_writes.bench_append_log),
    (("versioned", "versioned_warm"), bench_writes.bench_versioned_artifact),
    (("get",), bench_reads.bench_get),
    (("list",), bench_reads.bench_list),
    (("list_summaries",), bench_reads.bench_list_summaries),
    (("list_newest",), bench_reads.bench_list_newest),
    (("list_artifacts",), bench_reads.bench_list_artifacts),
    (("dashboard",), bench_web.bench_dashboard),
    (("list_summaries_100k",), bench_reads.bench_list_summaries_huge),
    (("list_newest_100k",), bench_reads.bench_list_newest_huge),
    (("dashboard_100k",), bench_web.bench_dashboard_huge),
    (
        ("pg_update", "pg_get", "pg_list", "pg_summaries", "pg_1m_get", "pg_1m_update", "pg_1m_newest"),
        bench_postgres.bench_postgres,
    ),
    (("peer_put", "peer_get", "peer_list"), bench_peers.bench_sqlite_saver),
    (("peer_diskcache",), bench_peers.bench_diskcache),
    (("create_big",), bench_writes.bench_create_big),
    (("one_task_writers",), bench_concurrency.bench_one_task_writers),
    (("throughput",), bench_concurrency.bench_throughput),
    (("cli_cold",), bench_cli.bench_cli_cold_start),
    (("iter_memory",), bench_memory.bench_iter_memory),
    (("gc",), bench_gc.bench_gc),
    (("aio_lag", "aio_throughput", "aio_overhead"), bench_aio.bench_aio),
    (bench_aio_pg.KEYS, bench_aio_pg.bench_aio_pg),
    (bench_aio_runs.KEYS, bench_aio_runs.bench_aio_runs),
]

#: The table's order: the issue's.
TABLE_ORDER = [
    "update",
    "create",
    "create_big",
    "get",
    "list",
    "list_summaries",
    "list_newest",
    "dashboard",
    "list_summaries_100k",
    "list_newest_100k",
    "dashboard_100k",
    "append_log",
    "versioned",
    "versioned_warm",
    "list_artifacts",
    "one_task_writers",
    "cli_cold",
    "iter_memory",
    "throughput",
    "gc",
    "peer_put",
    "peer_get",
    "peer_list",
    "peer_diskcache",
    "pg_update",
    "pg_get",
    "pg_list",
    "pg_summaries",
    "pg_1m_get",
    "pg_1m_update",
    "pg_1m_newest",
    "aio_lag",
    "aio_throughput",
    "aio_overhead",
    "aio_runs",
    "aio_pg_throughput",
    "aio_pg_overhead",
]


def run_all(ctx: Context, only: set[str] | None = None) -> list[Row]:
    """Run the selected benchmark functions; a function that raises gives ERROR rows instead of ending the run."""
    rows: list[Row] = []
    for keys, fn in BENCHMARKS:
        if only and not only.intersection(keys):
            continue
        started = time.perf_counter()
        print(f"[{', '.join(keys)}] …", file=sys.stderr, flush=True)
        try:
            produced = fn(ctx)
        except Exception as exc:
            traceback.print_exc()
            produced = [Row(key, key, "–", status=ERROR, note=f"{type(exc).__name__}: {exc}") for key in keys]
        got = produced if isinstance(produced, list) else [produced]
        for row in got:
            row.extra["seconds"] = time.perf_counter() - started
            print(
                f"    {row.key}: {ours_cell(row)} vs {ref_cell(row)} → {fmt_ratio(row.ratio)} "
                f"[{fmt_met(row)}] {row.note}",
                file=sys.stderr,
                flush=True,
            )
        rows.extend(got)
    order = {key: i for i, key in enumerate(TABLE_ORDER)}
    rows.sort(key=lambda r: order.get(r.key, len(order)))
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def results_table(rows: list[Row]) -> str:
    lines = [
        "| row | what | ours (median) | floor / peer (median, same run) | ratio | target | met? |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        title = r.title + (f" — {r.note}" if r.note else "")
        cells = [r.key, title, ours_cell(r), ref_cell(r), fmt_ratio(r.ratio), r.target, fmt_met(r)]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def _spread(stats: object) -> list[str]:
    if stats is None:
        return ["–", "–", "–", "–"]
    return [str(stats.n), fmt_time(stats.median), fmt_time(stats.p90), fmt_time(stats.p99)]  # type: ignore[attr-defined]


def details_table(rows: list[Row]) -> str:
    lines = [
        "| row | rounds | ours median | ours p90 | ours p99 | ref rounds | ref median | ref p90 | ref p99 | row took |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r.ours is None and r.ref is None:
            continue
        took = r.extra.get("seconds")
        cells = [r.key, *_spread(r.ours), *_spread(r.ref), f"{took:.0f} s" if took is not None else "–"]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def missed_section(rows: list[Row]) -> str:
    missed = [r for r in rows if r.met is False or r.status not in ("ok",)]
    if not missed:
        return "Every target is met in this run.\n"
    out: list[str] = []
    for r in missed:
        if r.met is None and r.status == "ok":
            continue
        out.append(f"### {r.key}: {r.title}\n")
        if r.status != "ok":
            out.append(f"Status: **{r.status}**. {r.note}\n")
        else:
            out.append(f"Ours {ours_cell(r)}, {ref_cell(r)}, ratio {fmt_ratio(r.ratio)}; target {r.target}.\n")
        if r.key in analysis.WHY:
            out.append(f"Why: {analysis.WHY[r.key]}\n")
        if r.profile:
            out.append("Profile of our side (cProfile, or `-X importtime` for the CLI):\n")
            out.append("```\n" + r.profile + "\n```\n")
    return "\n".join(out) + "\n"


def render_doc(rows: list[Row], info: dict[str, str], pkgs: dict[str, str], scale: Scale, elapsed: float) -> str:
    met = sum(1 for r in rows if r.met is True)
    judged = sum(1 for r in rows if r.met is not None or r.status not in ("ok",))
    machine_rows = "\n".join(f"| {k} | {_cell(v)} |" for k, v in info.items())
    version_rows = "\n".join(f"| {k} | {v} |" for k, v in pkgs.items())
    return f"""# Benchmarks

Generated by `make bench` (`python -m benchmarks`); do not edit by hand, re-run it. Scale: **{scale.name}**.
Run finished {info["date"]} and took {elapsed / 60:.1f} min. **{met} of {judged} judged rows meet their target.**

Every figure is a median. Each row's floor or peer was measured in the same process and run, interleaved round by
round with our operation, so machine noise lands on both sides of the ratio. Absolute times move between machines;
the ratios are what the targets are about. This machine was shared with other work during the run (load average
at start / end: {info["load"]}), so single figures are noisy; medians and interleaving keep the ratios usable.

## Results

{results_table(rows)}

## Machine

| | |
|---|---|
{machine_rows}

## Versions

| package | version |
|---|---|
{version_rows}

## Spread

p90 needs ≥ 10 rounds and p99 ≥ 100 (– otherwise).

{details_table(rows)}

## Method

- Scratch homes are on a disk-backed filesystem (see Machine); tmpfs is refused because fsync costs nothing there.
- **Floors** are the least a program has to do for the same effect, written as plain Python in
  `benchmarks/floors.py`: update and create against `write + fsync + rename + directory fsync` of the very bytes
  the store wrote; get against `open + read + json.loads`; list against `scandir + read + json.loads` of every
  task.json, keeping the documents in a list as a listing must, with the cyclic collector paused and the result
  moved to the oldest generation exactly as the store's list does (the same reading discarding each document is
  shown in the row too); append against `open(O_APPEND) + write + fdatasync + close`; list_artifacts against
  `os.scandir + sorted`. `cli_cold` compiles the package's bytecode first, as installing a wheel does; its
  in-process side runs the command as the entry point does (the fast path of `list` when it answers, else the typer
  app), so both sides do the same work.
- **Warm-up** rounds are discarded; then rounds run until the round count or the row's time budget.
- **Workspaces of 10,000 and 100,000 tasks** are seeded by writing task directories directly (copies of one task
  the store created, with new ids and times, and workspace.json listing them), as a Go-written or restored home
  looks. `update`, `create`, `append_log` use a ~10 KB task (7 steps, 3 results with output). `create_big` seeds
  its own 100,000 tasks (~1 KB each, timestamp ids, workspace.json listing all of them as a legacy home does) and
  is judged against create in an empty workspace of the same store, interleaved, not against a floor.
- **save_versioned_artifact** opens a fresh `FileStore` per save on both sides (the per-process version cache is
  cold: a resumed run, a CLI call): the worst case. `versioned_warm` is one process saving versions 1…N.
- **Concurrency rows** use separate processes (spawn) that warm up and then start together on a barrier.
  `one_task_writers` runs `modify()` (locked read-modify-write) in every process and reports the p99 of the time
  from asking for the lock to the durable write; its workers wait on the barrier again before they report and
  exit, so a finished worker's teardown does not take the CPU from those still timing their last updates (on two
  cores it used to put every worker's last update into the p99). `throughput` runs `update()` on one task per
  process, for a fixed time; the peer is LangGraph's `SqliteSaver.put` with one thread per process on one database file.
- **Memory** is the peak resident set (VmHWM) of a fresh process iterating a workspace, minus its resident set
  after imports and one warm `get`; the target is met when going from {scale.iter_small:,} to {scale.iter_large:,}
  tasks adds at most {bench_memory.BYTES_PER_TASK_LIMIT} bytes per extra task (an id and a sort key, never a Task).
- **Listing rows** (`list_summaries`, `list_newest` and their `_100k` variants) use the store's summary cache,
  rebuilt by the fixture's `reindex` after seeding (as a first listing would), and validated on every call (a
  `stat` of every task.json for summaries; for the order, the tasks directory's stamp while it is settled, else
  each task directory's inode); the 20 newest tasks are read in full every time. The 100,000-task workspace
  holds ~2-4 KB tasks, 99% completed and 1% crashed runs (a workspace in long use); its `list_summaries` floor
  is a raw scandir + `stat` of every task.json (what checking any cache against the disk costs), and a fresh
  `FileStore`'s first call (the cache file decoded) is shown in the note.
- **PostgreSQL** rows: a throwaway cluster (`atlas_tasks.backends.postgres.testing`), seeded in SQL with the same
  10,000 tasks, then restarted with `fsync=on`, `synchronous_commit=on`; reported as PostgreSQL ÷ file store.
- **Dashboard**: `create_app(store)` under Starlette's TestClient in-process; the median of warm requests of the
  workspace's first page (the first request of a fresh app is shown beside it; for `dashboard_100k` that is a
  freshly started process: `create_app` and its first page, imports excluded, the summary cache on disk).
- **Peers** are reported as ours ÷ theirs (below 1: we are faster), with the same payload (the same task, as a
  dict for SqliteSaver and as the same bytes for diskcache), both durable: SqliteSaver with WAL and synchronous
  FULL, diskcache with `sqlite_synchronous=2` (FULL).

## Missed targets

Generated from this run: each row below missed its target (or could not run), with a profile of our side.

{missed_section(rows)}"""


def print_table(rows: list[Row]) -> None:
    headers = ["row", "ours", "floor / peer", "ratio", "target", "met?"]
    data = [
        [r.key, ours_cell(r), ref_cell(r), fmt_ratio(r.ratio), r.target, fmt_met(r).replace("**", "")] for r in rows
    ]
    widths = [min(60, max(len(h), *(len(d[i]) for d in data))) if data else len(h) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(c[:w].ljust(w) for c, w in zip(cells, widths, strict=True))

    print(line(headers))
    print(line(["-" * w for w in widths]))
    for d in data:
        print(line(d))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes and rounds (a smoke run, not figures)")
    parser.add_argument("--only", help="comma-separated row keys to run")
    parser.add_argument("--dir", help="parent of the scratch homes (default $ATLAS_BENCH_DIR or /var/tmp)")
    parser.add_argument("--out", default=str(DOC), help=f"report to write (default {DOC.relative_to(REPO)})")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument("--no-profile", action="store_true", help="do not profile rows that miss their target")
    parser.add_argument("--keep", action="store_true", help="keep the scratch homes")
    args = parser.parse_args(argv)
    scale = QUICK if args.quick else FULL
    only = {k.strip() for k in args.only.split(",")} if args.only else None
    parent = pick_root(args.dir)
    load_start = load_average()
    started = time.perf_counter()
    with scratch_root(parent, keep=args.keep) as root:
        info = machine(root)
        ctx = Context(scale, root, profile=not args.no_profile)
        rows = run_all(ctx, only)
    elapsed = time.perf_counter() - started
    info["date"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    info["load"] = f"{load_start} / {load_average()}"
    info["git revision"] = git_revision(REPO)
    info["run"] = f"{sys.executable} -m benchmarks {' '.join(argv if argv is not None else sys.argv[1:])}".strip()
    print()
    print_table(rows)
    print(f"\n{elapsed / 60:.1f} min")
    if not args.no_write:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render_doc(rows, info, versions(), scale, elapsed), encoding="utf-8")
        print(f"wrote {out}")
    failed = [r.key for r in rows if r.status == ERROR]
    if failed:
        print(f"rows that failed to run: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0 if not math.isnan(elapsed) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
