"""Run leases across machines on PostgreSQL: one live runner per task, a dead runner seen from anywhere, resume.

"Machines" here are separate OS processes with their own connections to the server: all the lease knows of a
runner is its server session, which is what another machine would see too.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from atlas_tasks import Step, Task, TaskStatus
from atlas_tasks.backends.postgres import PostgresStore
from atlas_tasks.backends.postgres._leases import LeaseLostError
from atlas_tasks.errors import TaskRunningError
from atlas_tasks.executors import run_task
from atlas_tasks.runs import is_interrupted, recover

RUNNER = Path(__file__).with_name("pg_runner.py")


def wait_until(condition: Callable[[], bool], what: str, limit: float = 30.0) -> None:
    """Wait for a condition the system under test must reach (a deadline only against hanging, not a timing test)."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.05)


@pytest.fixture
def other_store(pg_url: str, pg_schema: str) -> Iterator[PostgresStore]:
    """A second store with its own pool: another machine looking at the same database."""
    with PostgresStore(pg_url, schema=pg_schema) as store:
        yield store


def test_lease_is_seen_from_another_store_and_refuses_a_second_runner(
    pg_store: PostgresStore, other_store: PostgresStore, pg_ws: str
) -> None:
    """A held lease names its holder to every store on the database; a second taker gets TaskRunningError."""
    task = pg_store.create(pg_ws, Task(description="x"))
    assert other_store.lease_holder(pg_ws, task.id) is None
    lease = pg_store.acquire_lease(pg_ws, task.id, {"pid": 4242, "host": "machine-a", "started_at": "t0"})
    try:
        assert other_store.lease_holder(pg_ws, task.id) == {"pid": 4242, "host": "machine-a", "started_at": "t0"}
        with pytest.raises(TaskRunningError) as info:
            other_store.acquire_lease(pg_ws, task.id, {"pid": 1, "host": "machine-b"})
        assert "pid 4242 on machine-a" in str(info.value)
        lease.verify()
    finally:
        lease.release()
    lease.release()  # twice is harmless
    assert other_store.lease_holder(pg_ws, task.id) is None
    other_store.acquire_lease(pg_ws, task.id, {"pid": 2}).release()


def test_leases_are_per_task_and_per_schema(
    pg_store: PostgresStore, pg_ws: str, pg_url: str, fresh_schema: str
) -> None:
    """Holding one task's lease leaves other tasks, and the same ids in another schema, free."""
    one, two = (pg_store.create(pg_ws, Task(description=d)) for d in ("one", "two"))
    lease = pg_store.acquire_lease(pg_ws, one.id, {"pid": 1})
    try:
        assert pg_store.lease_holder(pg_ws, two.id) is None
        with PostgresStore(pg_url, schema=fresh_schema) as elsewhere:
            elsewhere.create_workspace(pg_ws)
            elsewhere.create(pg_ws, Task(id=one.id, description="same id, other schema"))
            assert elsewhere.lease_holder(pg_ws, one.id) is None
            elsewhere.acquire_lease(pg_ws, one.id, {"pid": 2}).release()
    finally:
        lease.release()


def test_lost_lease_connection_stops_the_run_before_it_writes(
    pg_store: PostgresStore, pg_ws: str, pg_conn: psycopg.Connection[Any]
) -> None:
    """If the server ends the lease's session (a network cut, an admin), the runner raises LeaseLostError at its
    next checkpoint and writes nothing more; the task is then seen as interrupted and can be resumed."""
    task = pg_store.create(pg_ws, Task(description="x", steps=[Step(name="a", type="ai"), Step(name="b", type="ai")]))
    with pytest.raises(LeaseLostError) as info, pg_store.run(pg_ws, task.id) as run:
        first = run.task.steps[0]
        with run.step(first):
            revision = pg_store.get(pg_ws, task.id).revision
            pg_conn.execute(
                f'SELECT pg_terminate_backend(backend_pid) FROM "{pg_store.schema}".run_leases'
                " WHERE workspace = %s AND task_id = %s",
                [pg_ws, task.id],
            )
    assert "resume it with `atlas-tasks run" in str(info.value)
    stored = pg_store.get(pg_ws, task.id)
    assert stored.revision == revision and stored.steps[0].status == "running"  # the step's end was not written
    wait_until(lambda: pg_store.lease_holder(pg_ws, task.id) is None, "the terminated session's lock is gone")
    assert is_interrupted(pg_store, pg_ws, stored)


def _task_with_slow_step(store: PostgresStore, ws: str, counter: Path, marker: Path) -> Task:
    # Step 1 blocks the first time it runs (the runner is killed there) and passes when resumed.
    slow = f"echo step1 >> {counter}; if [ ! -e {marker} ]; then touch {marker}; exec sleep 120; fi"
    steps = [
        Step(name="step0", type="validation", commands=[f"echo step0 >> {counter}"], shell=True),
        Step(name="step1", type="validation", commands=[slow], shell=True),
        Step(name="step2", type="validation", commands=[f"echo step2 >> {counter}"], shell=True),
    ]
    return store.create(ws, Task(description="killed mid-step", steps=steps))


def _start_runner(url: str, schema: str, ws: str, task_id: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(RUNNER), url, schema, ws, task_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_runner_killed_on_one_machine_is_interrupted_on_another_and_resumes(
    pg_url: str, pg_schema: str, pg_store: PostgresStore, other_store: PostgresStore, pg_ws: str, tmp_path: Path
) -> None:
    """A real runner process holds the lease while it works; SIGKILL frees it at once (the server sees the
    session end), another process sees the task as interrupted, recovers it and resumes it in a new process: the
    step done before the kill is not run again, the in-flight one runs again with attempts 2."""
    counter, marker = tmp_path / "counter", tmp_path / "marker"
    task = _task_with_slow_step(pg_store, pg_ws, counter, marker)
    runner = _start_runner(pg_url, pg_schema, pg_ws, task.id)
    try:
        assert runner.stdout is not None
        started = json.loads(runner.stdout.readline())
        wait_until(marker.exists, "the runner reached step1")
        # From "machine B": a live runner, with its pid; nobody else may run it, recover leaves it alone.
        holder = other_store.lease_holder(pg_ws, task.id)
        assert holder is not None and holder["pid"] == started["pid"] == runner.pid
        live = other_store.get(pg_ws, task.id)
        assert live.status == TaskStatus.RUNNING and not is_interrupted(other_store, pg_ws, live)
        with pytest.raises(TaskRunningError):
            other_store.acquire_lease(pg_ws, task.id, {"pid": os.getpid()})
        assert recover(other_store, pg_ws) == []

        os.kill(runner.pid, signal.SIGKILL)
        runner.wait(timeout=30)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        assert runner.stdout is not None and runner.stderr is not None
        runner.stdout.close()
        runner.stderr.close()
    assert runner.returncode == -signal.SIGKILL

    wait_until(lambda: other_store.lease_holder(pg_ws, task.id) is None, "the dead runner's lease is free")
    # The dead runner's description row is still there: it must not be taken for a live holder.
    with psycopg.connect(pg_url, autocommit=True) as conn:
        rows = conn.execute(
            f'SELECT count(*) FROM "{pg_schema}".run_leases WHERE workspace = %s AND task_id = %s', [pg_ws, task.id]
        ).fetchone()
    assert rows == (1,)
    crashed = other_store.get(pg_ws, task.id)
    assert crashed.status == TaskStatus.RUNNING and crashed.steps[1].status == "running"
    assert is_interrupted(other_store, pg_ws, crashed)
    assert [t.id for t in recover(other_store, pg_ws)] == [task.id]
    assert other_store.get(pg_ws, task.id).status == TaskStatus.INTERRUPTED

    resumed = _start_runner(pg_url, pg_schema, pg_ws, task.id)
    _out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    done = other_store.get(pg_ws, task.id)
    assert done.status == TaskStatus.COMPLETED
    assert [s.attempts for s in done.steps] == [1, 2, 1]
    assert counter.read_text().split() == ["step0", "step1", "step1", "step2"]  # step0 never ran again
    events = [entry["event"] for entry in other_store.read_log(pg_ws, task.id)]
    assert "resumed after a crash (the previous runner died)" in events


def test_run_in_process_completes_and_frees_the_lease(
    pg_store: PostgresStore, other_store: PostgresStore, pg_ws: str, tmp_path: Path
) -> None:
    """store.run on PostgreSQL: the lease is held during the run (seen elsewhere) and free after it."""
    steps = [Step(name="a", type="validation", commands=["true"]), Step(name="b", type="validation", commands=["true"])]
    task = pg_store.create(pg_ws, Task(description="x", steps=steps))
    seen: list[dict[str, Any] | None] = []
    with pg_store.run(pg_ws, task.id) as run:
        seen.append(other_store.lease_holder(pg_ws, task.id))
        run_task(run, workdir=tmp_path)
    assert seen[0] is not None and seen[0]["pid"] == os.getpid()
    assert other_store.lease_holder(pg_ws, task.id) is None
    assert pg_store.get(pg_ws, task.id).status == TaskStatus.COMPLETED
