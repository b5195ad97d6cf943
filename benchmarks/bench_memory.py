"""Streaming: iterating 100,000 tasks must not hold them all (peak memory must not grow with the task count)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from atlas_tasks import FileStore
from benchmarks import fixtures
from benchmarks._harness import ERROR, Context, Row

REPO = Path(__file__).resolve().parent.parent
#: Bookkeeping an iterator may keep per task (an id and a sort key), never a Task.
BYTES_PER_TASK_LIMIT = 256


def _probe(home: Path, workspace: str, mode: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks._memprobe", str(home), workspace, mode],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
        check=False,
    )
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def bench_iter_memory(ctx: Context) -> Row:
    s = ctx.scale
    small, large = s.iter_small, s.iter_large
    row = Row(
        "iter_memory",
        f"iterate {large:,} tasks (iter_tasks): peak memory",
        f"bounded: ≤ {BYTES_PER_TASK_LIMIT} B more per extra task",
    )
    home = ctx.fresh_dir("iter")
    store = FileStore(home)
    task = fixtures.small_task()
    started = time.perf_counter()
    fixtures.seed_workspace(store, "small", small, task)
    fixtures.seed_workspace(store, "large", large, task)
    ctx.log(f"seeded {small + large:,} small tasks in {time.perf_counter() - started:.1f}s")
    listed = _probe(home, "small", "list")
    it_small = _probe(home, "small", "iter")
    if "missing" in it_small:
        row.missing(it_small["missing"])
    else:
        it_large = _probe(home, "large", "iter")
        failed = next((r["error"] for r in (it_small, it_large) if "error" in r), None)
        if failed is not None:
            row.status, row.met, row.note = ERROR, False, failed
            return row
        grow_small = max(0, it_small["peak_kb"] - it_small["baseline_kb"]) * 1024
        grow_large = max(0, it_large["peak_kb"] - it_large["baseline_kb"]) * 1024
        per_task = (grow_large - grow_small) / (large - small)
        row.ours_text = f"+{grow_large / 2**20:.1f} MiB at {large:,} ({it_large['seconds']:.1f} s)"
        row.ref_text = f"+{grow_small / 2**20:.1f} MiB at {small:,}"
        row.ratio = grow_large / grow_small if grow_small else None
        row.met = per_task <= BYTES_PER_TASK_LIMIT and it_large["count"] == large
        row.note = f"{per_task:.0f} B per extra task"
        if it_large["count"] != large:
            row.status, row.note = ERROR, f"iter_tasks yielded {it_large['count']} tasks, expected {large}"
        row.extra["iter"] = {"small": it_small, "large": it_large}
    if "error" not in listed:
        grow = max(0, listed["peak_kb"] - listed["baseline_kb"]) * 1024
        row.extra["list"] = listed
        context = f"list() of {small:,} of these tasks takes +{grow / 2**20:.1f} MiB"
        row.note = f"{row.note}; {context}" if row.note else context
        if row.ref_text is None:
            row.ref_text = context
    shutil.rmtree(home, ignore_errors=True)  # 110,000 directories: free them now, not at the end
    return row
