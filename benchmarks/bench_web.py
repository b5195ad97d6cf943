"""The dashboard: the task list page of a 10,000- and a 100,000-task workspace, first page, rendered server-side.

The application is ``atlas_tasks.web.create_app(store)`` driven in-process by Starlette's TestClient (no network,
no browser): what is timed is routing, the listing (the dashboard's summaries), counting, filtering, paging and
the template. Pages are built from ``list_summaries`` (one stat per task against the summary cache) and read in
full only the page's rows and the running tasks (whose crash flags need them). The first request of a fresh
application is reported beside the warm median; for 100,000 tasks it is a freshly started process (a real
restart: nothing of this process's caches helps it). The 10,000-task workspace holds only mid-run tasks (10,000
crashed runs, all read in full on the first request); the 100,000-task one is a workspace in long use: completed
tasks with 1 in 100 a crashed run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks._harness import ERROR, SKIPPED, Context, Row, Stats, fmt_time, measure
from benchmarks.bench_reads import HUGE_ACTIVE_EVERY, big_workspace, huge_workspace, stat_all_tasks

REPO = Path(__file__).resolve().parent.parent
COLD_LIMIT = 3.0

# A freshly started server: a new process imports the dashboard, then builds the app and answers its first page.
# The time from create_app to the response is what a person waits for after `atlas-tasks serve` starts.
_COLD_PROBE = """
import json, sys, time
from starlette.testclient import TestClient
from atlas_tasks import FileStore
from atlas_tasks.web import create_app
home, url, newest = sys.argv[1:4]
started = time.perf_counter()
client = TestClient(create_app(FileStore(home)), base_url="http://127.0.0.1")
response = client.get(url)
took = time.perf_counter() - started
ok = response.status_code == 200 and newest in response.text
print(json.dumps({"seconds": took, "ok": ok, "status": response.status_code}))
"""

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
    row.ref_label = "first request of a fresh app (every task here is a crashed run, so each is read once)"
    row.ref_text = f"cold {fmt_time(cold)} (first request of a fresh app: every task here is running, read once)"
    row.met = row.ours.median <= LIMIT
    row.note = f"GET {url}, {sizes[-1] / 1000:.0f} KB of HTML"
    ctx.maybe_profile(row, page, calls=s.rounds(10))
    client.close()
    return row


def _cold_first_page(home: Path, url: str, newest: str) -> dict[str, object]:
    env_path = str(REPO / "src")
    out = subprocess.run(
        [sys.executable, "-c", _COLD_PROBE, str(home), url, newest],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
        check=False,
        env={**os.environ, "PYTHONPATH": env_path},
    )
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def bench_dashboard_huge(ctx: Context) -> Row:
    huge = huge_workspace(ctx)
    n = len(huge.ids)
    row = Row(
        "dashboard_100k",
        f"dashboard: task list page of {n:,} tasks (1 in {HUGE_ACTIVE_EVERY} a crashed run, the rest completed), "
        "first page, server-side",
        f"≤ 300 ms warm; a fresh server's first page ≤ {COLD_LIMIT:.0f} s",
    )
    try:
        from starlette.testclient import TestClient

        from atlas_tasks.web import create_app
    except ImportError as exc:
        row.status, row.note = SKIPPED, f"skipped: the web extra is not installed ({exc})"
        return row
    url = f"/workspaces/{huge.workspace}"
    newest = huge.ids[-1]
    # First the fresh server (another process: nothing of this process's caches helps it).
    cold = _cold_first_page(huge.home, url, newest)
    if "error" in cold or not cold.get("ok"):
        row.status, row.met = ERROR, False
        failure = cold.get("error") or f"GET {url} gave {cold.get('status')} or no newest task"
        row.note = f"fresh server: {failure}"
        return row
    cold_seconds = float(cold["seconds"])  # type: ignore[arg-type]
    client = TestClient(create_app(huge.store), base_url="http://127.0.0.1")
    first = client.get(url)
    if first.status_code != 200 or newest not in first.text:
        row.status, row.met = ERROR, False
        row.note = f"GET {url} gave {first.status_code}, newest task {'listed' if newest in first.text else 'missing'}"
        return row
    sizes: list[int] = []

    def page() -> None:
        response = client.get(url)
        sizes.append(len(response.content))

    def floor() -> None:
        stat_all_tasks(huge.tasks_dir)

    s = ctx.scale
    stats = measure(
        {"page": page, "floor": floor},
        rounds=s.rounds(20),
        warmup=s.warmup(1),
        min_rounds=s.rounds(5),
        budget=s.budget(12),
    )
    row.ours = stats["page"]
    row.ref = Stats.of([cold_seconds])
    row.ref_label = "a freshly started server's first page (another process, summary cache on disk)"
    row.ref_text = f"fresh server {fmt_time(cold_seconds)} (another process: create_app + first page)"
    row.met = row.ours.median <= LIMIT and cold_seconds <= COLD_LIMIT
    # The least a page that is exact about every task's status does per request: stat every task.json.
    row.note = (
        f"GET {url}, {sizes[-1] / 1000:.0f} KB of HTML; the same run's raw scandir + stat of every task.json "
        f"{fmt_time(stats['floor'].median)} ({row.ours.median / stats['floor'].median:.2f}× of it)"
    )
    ctx.maybe_profile(row, page, calls=s.rounds(3))
    client.close()
    return row
