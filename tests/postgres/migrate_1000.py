"""Migrate a 1,000-task file home into PostgreSQL with the real CLI, verify it, run it again, and print the figures.

    .venv/bin/python tests/postgres/migrate_1000.py [--tasks N] [--home DIR]

Uses $ATLAS_TEST_PG_URL, or starts a throwaway server (as the tests do). The home is built with FileStore (each task
with 4 log lines, a spec and a versioned validation report) in a temporary directory unless --home names one that
was built before. Three runs of `atlas-tasks migrate`: one killed with SIGKILL once 30% of the tasks are in the
database, one that resumes it (copies the rest, skips what is there, verifies), one that finds nothing to do. Exits 1
unless the copy verifies: every task, log line and artifact equal (sha256) in both stores.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg

from atlas_tasks import FileStore, Step, Task
from atlas_tasks.backends.postgres import PostgresStore
from atlas_tasks.backends.postgres.testing import TemporaryServer

LOG_LINES, ARTIFACTS = 4, 2


def build_home(home: Path, count: int) -> float:
    """Fill ``home`` with ``count`` tasks over four workspaces; returns the seconds it took."""
    store = FileStore(home)
    workspaces = [f"team-{i}" for i in range(4)]
    for ws in workspaces:
        store.create_workspace(ws, exist_ok=True)
    started = time.perf_counter()
    for i in range(count):
        ws = workspaces[i % len(workspaces)]
        steps = [Step(name=name, type="ai") for name in ("analyze", "implement", "validate")]
        task = store.create(ws, Task(description=f"task {i}: fix the thing", template="bugfix", steps=steps))
        for n in range(LOG_LINES):
            store.append_log(ws, task.id, {"event": "step progress", "step_name": "analyze", "n": n})
        store.save_artifact(ws, task.id, "sdd/spec.md", f"# spec {i}\n" + "detail\n" * 40)
        store.save_versioned_artifact(ws, task.id, "validation.json", json.dumps({"task": i, "success": True}))
    return time.perf_counter() - started


def _command(home: Path, url: str) -> list[str]:
    return [sys.executable, "-m", "atlas_tasks", "migrate", "--from", f"file://{home}", "--to", url, "--json"]


def migrate_killed(home: Path, url: str, base: str, schema: str, at: int) -> int:
    """Start a migrate and SIGKILL it once ``at`` tasks are in the database; returns how many were there."""
    proc = subprocess.Popen(_command(home, url), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    count = 0
    with psycopg.connect(base, autocommit=True) as conn:
        while proc.poll() is None:
            if conn.execute("SELECT to_regclass(%s) IS NOT NULL", [f'"{schema}".tasks']).fetchone() == (True,):
                row = conn.execute(f'SELECT count(*) FROM "{schema}".tasks').fetchone()
                count = int(row[0]) if row else 0
                if count >= at:
                    proc.send_signal(signal.SIGKILL)
                    break
            time.sleep(0.02)
        proc.wait()
        row = conn.execute(f'SELECT count(*) FROM "{schema}".tasks').fetchone()
    if proc.returncode != -signal.SIGKILL:
        raise SystemExit(f"migrate ended (exit {proc.returncode}) before it could be killed at {at} tasks")
    return int(row[0]) if row else 0


def migrate(home: Path, url: str) -> dict[str, Any]:
    done = subprocess.run(_command(home, url), capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"migrate failed (exit {done.returncode}):\n{done.stderr}\n{done.stdout}")
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--home", type=Path, help="a home built by an earlier run (skips building)")
    args = parser.parse_args()
    with ExitStack() as stack:
        base = os.environ.get("ATLAS_TEST_PG_URL") or stack.enter_context(TemporaryServer()).url
        schema = f"atlas_migrate_{secrets.token_hex(4)}"
        url = f"{base}{'&' if '?' in base else '?'}schema={schema}"
        if args.home is None:
            home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="atlas-home-"))) / "home"
            print(f"building a home of {args.tasks} tasks ...", flush=True)
            print(f"  built in {build_home(home, args.tasks):.1f}s", flush=True)
        else:
            home = args.home
        killed_at = migrate_killed(home, url, base, schema, at=max(1, args.tasks * 3 // 10))
        print(f"killed the first migrate with SIGKILL with {killed_at} tasks in the database", flush=True)
        first = migrate(home, url)
        second = migrate(home, url)
        with PostgresStore(base, schema=schema) as store:
            in_db = sum(len(store.list(ws.name)) for ws in store.list_workspaces())
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')  # this run's throwaway schema
    expected = args.tasks if args.home is None else first["verified_tasks"]
    checks = {
        "first run ok and verified": first["ok"] and first["verified"],
        "the killed run left whole tasks only, the resumed run copied the rest": (
            first["tasks_copied"] + first["tasks_skipped"] == expected == in_db and first["tasks_skipped"] == killed_at
        ),
        "every task verified": first["verified_tasks"] == expected,
        "every log line verified": first["verified_log_lines"] == expected * LOG_LINES or args.home is not None,
        "every artifact verified": first["verified_artifacts"] == expected * ARTIFACTS or args.home is not None,
        "second run copies nothing": (second["tasks_copied"], second["tasks_skipped"]) == (0, expected),
        "second run ok": second["ok"],
    }
    print(
        f"resumed run: {first['tasks_skipped']} skipped, {first['tasks_copied']} tasks copied "
        f"in {first['seconds_copy']:.1f}s "
        f"({first['tasks_per_second']:.0f} tasks/s), {first['log_lines']} log lines, {first['artifacts']} artifacts "
        f"({first['artifact_bytes']} bytes); verified {first['verified_tasks']} tasks in {first['seconds_verify']:.1f}s"
    )
    print(
        f"next run:    {second['tasks_skipped']} skipped in {second['seconds_copy']:.1f}s "
        f"({second['tasks_per_second']:.0f} tasks/s), verified {second['verified_tasks']}"
    )
    for name, passed in checks.items():
        print(f"  {'ok  ' if passed else 'FAIL'} {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
