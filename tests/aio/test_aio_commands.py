"""``aio.run_task``: command steps run from a coroutine, and a cancelled coroutine kills the command's process tree."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from atlas_tasks import Step, Task, aio
from atlas_tasks.models import TaskStatus
from atlas_tasks.store import Store

# Writes its own pid and its child's, then waits far longer than the test (unless `proceed` exists).
LONG = "test -f proceed && exit 0; echo $$ > shell.pid; sleep 60 & echo $! > child.pid; wait"


def _task(store: Store, ws: str, *commands: str) -> Task:
    steps = [Step(name=f"s{i}", type="validation", commands=[c], shell=True) for i, c in enumerate(commands)]  # type: ignore[call-arg]
    return store.create(ws, Task(description="commands", steps=steps))


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")  # dead, not yet reaped
    except (OSError, IndexError):
        return True


@pytest.mark.stores("file", "memory")
def test_run_task_runs_every_command_step(store: Store, ws: str, worktree: Path) -> None:
    """Awaited together, two tasks' command steps all run (in the workspace's worktree) and both complete."""
    tasks = [_task(store, ws, f"echo {n}-a >> out.txt", f"echo {n}-b >> out.txt") for n in range(2)]

    async def main() -> list[Task]:
        async with aio.wrap(store) as astore:
            return await asyncio.gather(*(aio.run_task(astore, ws, t.id) for t in tasks))

    done = asyncio.run(main())
    assert [t.status for t in done] == [TaskStatus.COMPLETED] * 2
    assert sorted((worktree / "out.txt").read_text().split()) == ["0-a", "0-b", "1-a", "1-b"]


@pytest.mark.stores("file", "memory")
def test_cancel_mid_command_kills_the_tree_and_interrupts_the_task(store: Store, ws: str, worktree: Path) -> None:
    """Cancelling the coroutine while a command runs kills its process tree, records the step as stopped and the
    task as interrupted with the lease free; the next run_task resumes it to completion."""
    task = _task(store, ws, "true", LONG, "true")
    pids = (worktree / "shell.pid", worktree / "child.pid")

    async def main() -> None:
        async with aio.wrap(store) as astore:
            job = asyncio.create_task(aio.run_task(astore, ws, task.id))
            deadline = time.monotonic() + 60
            while not all(p.exists() and p.read_text().strip() for p in pids):
                assert time.monotonic() < deadline, "the command did not start"
                assert not job.done(), job
                await asyncio.sleep(0.05)
            job.cancel()
            with pytest.raises(asyncio.CancelledError):
                await job

    asyncio.run(main())
    for path in pids:
        pid = int(path.read_text())
        deadline = time.monotonic() + 30
        while not _gone(pid):
            assert time.monotonic() < deadline, f"process {pid} ({path.name}) outlived the cancelled run"
            time.sleep(0.05)
    stored = store.get(ws, task.id)
    assert stored.status == TaskStatus.INTERRUPTED
    assert stored.metadata["stop_reason"]["kind"] == aio.CANCELLED_KIND
    assert stored.steps[1].status == "failed" and stored.steps[1].error == aio.cancelled_stop().reason
    assert store.lease_holder(ws, task.id) is None  # type: ignore[attr-defined]

    (worktree / "proceed").touch()

    async def resume() -> Task:
        async with aio.wrap(store) as astore:
            return await aio.run_task(astore, ws, task.id)

    finished = asyncio.run(resume())
    assert finished.status == TaskStatus.COMPLETED
    assert [sum(r.status == "success" for r in finished.step_results if r.step_index == i) for i in range(3)] == [
        1,
        1,
        1,
    ]
