"""The dashboard: the task list page of a 10,000-task workspace, first page, rendered server-side.

The application is ``atlas_tasks.web.create_app(store)`` driven in-process by Starlette's TestClient (no network,
no browser): what is timed is routing, the listing (the dashboard's task index), filtering, paging and the
template. The first request of a fresh application pays for reading every task once (reported as "cold"); the row
is about the requests after it, which only check each task.json for changes.
"""

from __future__ import annotations

import time

from benchmarks._harness import ERROR, SKIPPED, Context, Row, Stats, fmt_time, measure
from benchmarks.bench_reads import big_workspace

LIMIT = 0.300


def bench_dashboard(ctx: Context) -> Row:
    big = big_workspace(ctx)
    n = len(big.ids)
    row = Row(
        "dashboard",
        f"dashboard: task list page of {n:,} tasks, first page, server-side",
        "≤ 300 ms",
    )
    try:
        from starlette.testclient import TestClient

        from atlas_tasks.web import create_app
    except ImportError as exc:
        row.status, row.note = SKIPPED, f"skipped: the web extra is not installed ({exc})"
        return row
    client = TestClient(create_app(big.store), base_url="http://127.0.0.1")
    url = f"/workspaces/{big.workspace}"
    newest = big.ids[-1]
    t0 = time.perf_counter()
    first = client.get(url)
    cold = time.perf_counter() - t0
    if first.status_code != 200 or newest not in first.text:
        row.status, row.met = ERROR, False
        row.note = f"GET {url} gave {first.status_code}, newest task {'listed' if newest in first.text else 'missing'}"
        return row
    sizes: list[int] = []

    def page() -> None:
        response = client.get(url)
        sizes.append(len(response.content))

    s = ctx.scale
    stats = measure(
        {"page": page}, rounds=s.rounds(60), warmup=s.warmup(2), min_rounds=s.rounds(10), budget=s.budget(8)
    )
    row.ours = stats["page"]
    row.ref = Stats.of([cold])
    row.ref_label = "first request of a fresh app (reads every task once)"
    row.ref_text = f"cold {fmt_time(cold)} (first request of a fresh app: reads every task once)"
    row.met = row.ours.median <= LIMIT
    row.note = f"GET {url}, {sizes[-1] / 1000:.0f} KB of HTML"
    ctx.maybe_profile(row, page, calls=s.rounds(10))
    client.close()
    return row
