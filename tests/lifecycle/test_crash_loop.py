"""The crash-loop limit: runners killed -9 again and again without progress stop being resumed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from atlas_tasks import Step, Task, executors
from atlas_tasks.errors import CrashLoopError
from atlas_tasks.lifecycle import recovery
from atlas_tasks.models import TaskStatus
from atlas_tasks.store import Store

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


def _task(store: Store, ws: str, first: str, limit: int, then: str = "sleep 60") -> Task:
    steps = [
        Step(name="first", type="validation", commands=[first], shell=True),  # type: ignore[call-arg]
        Step(name="hang", type="validation", commands=[then], shell=True),  # type: ignore[call-arg]
    ]
    return store.create(ws, Task(description="loop", steps=steps, metadata={"recovery": {"limit": limit}}))


def _crash(store: Store, ws: str, task_id: str, step: str) -> None:
    """Start a real runner and kill -9 it once step `step` is running."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    home = str(getattr(store, "home"))  # noqa: B009 - the FileStore's directory
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, home, ws, task_id], env=env, stderr=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end:
            task = store.get(ws, task_id)
            current = task.steps[task.current_step] if task.current_step < len(task.steps) else None
            ours = task.metadata.get("run", {}).get("pid") == proc.pid  # not the status the last runner left
            if ours and current is not None and current.name == step and current.status == "running":
                break
            if proc.poll() is not None:
                pytest.fail(f"the runner exited before step {step!r} ran")
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)


@pytest.mark.stores("file")
def test_kill_loops_without_progress_are_refused_and_the_override_is_recorded(store: Store, ws: str) -> None:
    """After `limit` crash resumes without a completed step the run is refused, the task stays interrupted
    (exhausted, with the reason); --reset-crash-count lets it run and is logged."""
    task = _task(store, ws, "sleep 60", limit=2)
    for _ in range(3):  # the first run, then two crash resumes
        _crash(store, ws, task.id, "first")
    assert recovery.state(store.get(ws, task.id))["crash_resumes"] == 2
    with pytest.raises(CrashLoopError, match="--reset-crash-count"), store.run(ws, task.id):
        pass
    stored = store.get(ws, task.id)
    assert stored.status == TaskStatus.INTERRUPTED
    assert stored.metadata["recovery"]["exhausted"] is True
    assert stored.metadata["stop_reason"]["kind"] == "crash_loop"
    assert "crash-loop limit" in stored.transitions[-1].reason
    with pytest.raises(CrashLoopError), store.run(ws, task.id):
        pass  # still refused: nothing changed
    recovery.reset_crash_count(store, ws, task.id)
    with store.run(ws, task.id) as live:
        assert live.task.status == TaskStatus.RUNNING
    assert any(e.get("event") == "crash count reset" for e in store.read_log(ws, task.id))
    assert store.get(ws, task.id).metadata["recovery"]["resets"][0]["crash_resumes"] == 2


@pytest.mark.stores("file")
def test_a_completed_step_resets_the_count(store: Store, ws: str) -> None:
    """Crash resumes count only until a step completes: then the count is back to 0."""
    marker = Path(str(getattr(store, "home"))) / "go-on"  # noqa: B009 - the FileStore's directory
    wait = f"[ -f {marker} ] || sleep 60"
    task = _task(store, ws, wait, limit=5, then=wait)
    for _ in range(3):
        _crash(store, ws, task.id, "first")
    assert recovery.state(store.get(ws, task.id))["crash_resumes"] == 2
    marker.touch()
    with store.run(ws, task.id) as live:
        executors.run_task(live)
    assert store.get(ws, task.id).status == TaskStatus.COMPLETED
    assert recovery.state(store.get(ws, task.id))["crash_resumes"] == 0


@pytest.mark.stores("file", "memory", "postgres")
def test_describe_counts_resumes_against_the_limit(store: Store, ws: str) -> None:
    """show's lifecycle lines say n/limit crash resumes."""
    task = store.create(ws, Task(description="d", metadata={"recovery": {"crash_resumes": 1, "limit": 3}}))
    assert recovery.describe(task) == [("crash loop", "1/3 crash resumes in a row")]
