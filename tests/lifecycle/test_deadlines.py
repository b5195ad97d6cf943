"""Deadlines: stored absolute, they stop a running command, refuse a late run, and are applied by recover."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import pytest

from atlas_tasks import Step, Task, executors, runs
from atlas_tasks.errors import DeadlinePassedError, GuardValueError
from atlas_tasks.lifecycle import deadlines
from atlas_tasks.models import TaskStatus, utcnow
from atlas_tasks.store import Store

ALL_KINDS = ("file", "memory", "postgres")
TRAPPING = "trap 'echo got-term; exit 3' TERM; sleep 60 & wait"


def _task(store: Store, ws: str, commands: list[str], **metadata: object) -> Task:
    step = Step(name="long", type="validation", commands=commands, shell=True)  # type: ignore[call-arg]
    return store.create(ws, Task(description="deadline", steps=[step], metadata=dict(metadata)))


@pytest.mark.parametrize("text", ["soon", "-5m", "0", "2026-13-01"])
def test_bad_deadlines_are_refused(text: str) -> None:
    """A deadline that is neither a positive duration nor an ISO time raises GuardValueError."""
    with pytest.raises(GuardValueError):
        deadlines.parse_when(text)


@pytest.mark.stores(*ALL_KINDS)
def test_a_passed_deadline_refuses_the_run_and_extending_lifts_it(store: Store, ws: str) -> None:
    """A run past the deadline is refused with how to extend it; after set_deadline it runs."""
    task = _task(store, ws, ["true"])
    deadlines.set_deadline(store, ws, task.id, utcnow() - timedelta(seconds=1), "test")
    with pytest.raises(DeadlinePassedError, match="--extend"), store.run(ws, task.id):
        pass
    deadlines.set_deadline(store, ws, task.id, utcnow() + timedelta(hours=1), "more time")
    with store.run(ws, task.id) as live:
        done = executors.run_task(live)
    assert done.status == TaskStatus.COMPLETED
    changes = store.get(ws, task.id).metadata["deadline_changes"]
    assert [c["reason"] for c in changes] == ["test", "more time"]


@pytest.mark.stores("file", "memory")
def test_a_deadline_stops_a_long_command_with_a_grace(store: Store, ws: str) -> None:
    """A deadline passing mid-command SIGTERMs it (its trap runs) and ends the task interrupted with the reason."""
    task = _task(store, ws, [TRAPPING])
    deadlines.set_deadline(store, ws, task.id, utcnow() + timedelta(seconds=2), "short")
    with store.run(ws, task.id) as live:
        done = executors.run_task(live)
    stored = store.get(ws, task.id)
    assert done.status == TaskStatus.INTERRUPTED
    assert stored.metadata["stop_reason"]["kind"] == "deadline"
    raw = store.get_artifact(ws, task.id, stored.step_results[-1].artifact_path.removeprefix("artifacts/"))
    assert b"got-term" in raw, "the command got SIGTERM first (the grace), not an instant SIGKILL"


@pytest.mark.stores(*ALL_KINDS)
def test_deadline_seconds_becomes_absolute_at_the_first_run(store: Store, ws: str) -> None:
    """metadata.deadline_seconds turns into metadata.deadline when the first run starts, and stays on resume."""
    task = _task(store, ws, ["true"], deadline_seconds=3600)
    before = utcnow()
    with store.run(ws, task.id):
        pass
    stored = store.get(ws, task.id)
    when = deadlines.deadline_of(stored)
    assert when is not None and before + timedelta(seconds=3590) <= when <= utcnow() + timedelta(seconds=3600)
    assert "deadline_seconds" not in stored.metadata


RUNNER = textwrap.dedent(
    """
    import sys
    from atlas_tasks import executors
    from atlas_tasks.backends.file import FileStore
    store = FileStore(sys.argv[1])
    with store.run(sys.argv[2], sys.argv[3]) as live:
        executors.run_task(live)
    """
)


@pytest.mark.stores("file")
def test_a_deadline_passed_while_nothing_ran_is_applied_by_recover(store: Store, ws: str) -> None:
    """A runner killed -9 leaves the task running; once its deadline passes, recover marks it with the deadline
    reason and a new run is refused."""
    task = _task(store, ws, ["sleep 60"])
    deadlines.set_deadline(store, ws, task.id, utcnow() + timedelta(seconds=3), "short")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, str(getattr(store, "home")), ws, task.id], env=env)  # noqa: B009
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end and store.get(ws, task.id).steps[0].status != "running":
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    while utcnow() < deadlines.deadline_of(store.get(ws, task.id)):  # type: ignore[operator]
        time.sleep(0.2)
    changed = runs.recover(store, ws)  # type: ignore[arg-type]
    assert [t.id for t in changed] == [task.id]
    stored = store.get(ws, task.id)
    assert stored.status == TaskStatus.INTERRUPTED
    assert "deadline" in stored.transitions[-1].reason
    assert stored.metadata["stop_reason"]["kind"] == "deadline"
    with pytest.raises(DeadlinePassedError), store.run(ws, task.id):
        pass


@pytest.mark.stores("file", "memory")
def test_describe_shows_the_time_left(store: Store, ws: str, tmp_path: Path) -> None:
    """show's lifecycle lines name the deadline and the time left."""
    task = deadlines.set_deadline(store, ws, _task(store, ws, ["true"]).id, utcnow() + timedelta(hours=2), "")
    [(label, text)] = deadlines.describe(task)
    assert label == "deadline" and text.endswith(("(2:00:00 left)", "(1:59:59 left)"))
