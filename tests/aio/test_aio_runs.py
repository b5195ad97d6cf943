"""Async runs on a real store: many at once in one loop, per-task order, and cancellation at every await point.

No pytest-asyncio: each test drives its coroutine with ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from atlas_tasks import Step, Task, aio
from atlas_tasks.aio import AsyncStore
from atlas_tasks.errors import TaskRunningError
from atlas_tasks.models import TaskStatus
from atlas_tasks.store import Store

STEPS = ("one", "two", "three")
#: Where the coroutine running step "two" is cancelled (see _script).
POINTS = ("begin", "body", "log", "artifact", "checkpoint", "between")


def _task(store: Store, ws: str, steps: tuple[str, ...] = STEPS) -> Task:
    return store.create(ws, Task(description="async", steps=[Step(name=n, type="validation") for n in steps]))


def _drive(store: Store, work: Callable[[AsyncStore], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with aio.wrap(store) as astore:
            return await work(astore)

    return asyncio.run(main())


async def _run_all(astore: AsyncStore, ws: str, task_id: str) -> Task:
    """Run every remaining step of a task; each step logs and saves an artifact."""
    async with astore.run(ws, task_id) as run:
        async for step in run.remaining_steps():
            async with run.step(step) as ctx:
                await ctx.log("working", step=step.name)
                await ctx.artifact(f"{step.name}.txt", f"done {step.name}")
        return run.task


def _successes(task: Task, name: str) -> int:
    return sum(1 for r in task.step_results if r.step_name == name and r.status == "success")


@pytest.mark.stores("file", "memory", "postgres")
def test_64_concurrent_runs_all_complete(store: Store, ws: str) -> None:
    """64 runs awaited together in one loop all complete, with every step recorded once, its log and artifact."""
    ids = [_task(store, ws).id for _ in range(64)]

    async def work(astore: AsyncStore) -> list[Task]:
        return await asyncio.gather(*(_run_all(astore, ws, i) for i in ids))

    done = _drive(store, work)
    assert [t.status for t in done] == [TaskStatus.COMPLETED] * 64
    for task_id in ids:
        stored = store.get(ws, task_id)
        assert stored.status == TaskStatus.COMPLETED
        assert [_successes(stored, n) for n in STEPS] == [1, 1, 1]
        assert sorted(store.list_artifacts(ws, task_id)) == sorted(f"{n}.txt" for n in STEPS)
        events = [e.get("step") for e in store.read_log(ws, task_id) if e.get("event") == "working"]
        assert events == list(STEPS)
        assert store.lease_holder(ws, task_id) is None  # type: ignore[attr-defined]


@pytest.mark.stores("file", "postgres")  # memory calls are too quick to overlap: no order to lose
def test_calls_for_one_task_reach_the_store_in_issue_order(store: Store, ws: str) -> None:
    """200 appends to one task's log issued at once (gather) land in the order they were issued."""
    task = _task(store, ws)

    async def work(astore: AsyncStore) -> None:
        await asyncio.gather(*(astore.append_log(ws, task.id, {"event": "n", "n": n}) for n in range(200)))

    _drive(store, work)
    assert [e["n"] for e in store.read_log(ws, task.id)] == list(range(200))


@pytest.mark.stores("file", "postgres")  # memory calls are too quick to overlap: no order to lose
def test_updates_of_one_task_apply_in_issue_order(store: Store, ws: str) -> None:
    """Read-modify-writes of one task issued at once apply in the order issued (each sees the one before)."""
    task = _task(store, ws)

    def add(n: int) -> Callable[[Task], None]:
        return lambda t: t.metadata.setdefault("seen", []).append(n)

    async def work(astore: AsyncStore) -> None:
        await asyncio.gather(*(astore.modify(ws, task.id, add(n)) for n in range(40)))

    _drive(store, work)
    assert store.get(ws, task.id).metadata["seen"] == list(range(40))


async def _script(astore: AsyncStore, ws: str, task_id: str, point: str) -> None:
    """Run the task, cancelling our own coroutine at ``point`` of step "two" (the cancellation lands at the next
    await: the call there is handed to the pool, completes, and then CancelledError is raised)."""
    me = asyncio.current_task()
    assert me is not None
    async with astore.run(ws, task_id) as run:
        async for step in run.remaining_steps():
            two = step.name == "two"
            if two and point == "begin":
                me.cancel()
            async with run.step(step) as ctx:
                if not two:
                    await ctx.log("working")
                    continue
                if point == "body":
                    me.cancel()
                    await asyncio.sleep(0)
                elif point == "log":
                    me.cancel()
                    await ctx.log("cancelled during this line")
                elif point == "artifact":
                    me.cancel()
                    await ctx.artifact("half.txt", "written whole")
                elif point == "checkpoint":
                    run.task.metadata["progress"] = 50
                    me.cancel()
                    await run.checkpoint()
            if two and point == "between":
                me.cancel()  # lands at the next step's boundary (remaining_steps)
    raise AssertionError("the cancellation did not land")


@pytest.mark.stores("file", "memory", "postgres")
@pytest.mark.parametrize("point", POINTS)
def test_cancel_at_each_await_point_leaves_an_interrupted_resumable_task(store: Store, ws: str, point: str) -> None:
    """Cancelled at any await of a step, the task is interrupted (why recorded), its lease free, and `run` resumes
    it without running a recorded step again."""
    task = _task(store, ws)

    async def work(astore: AsyncStore) -> None:
        with pytest.raises(asyncio.CancelledError):
            await asyncio.create_task(_script(astore, ws, task.id, point))

    _drive(store, work)
    stored = store.get(ws, task.id)
    assert stored.status == TaskStatus.INTERRUPTED
    assert stored.metadata["stop_reason"]["kind"] == aio.CANCELLED_KIND
    assert store.lease_holder(ws, task.id) is None  # type: ignore[attr-defined]
    assert _successes(stored, "one") == 1
    two = [r for r in stored.step_results if r.step_name == "two"]
    if point == "between":
        assert [r.status for r in two] == ["success"]
        assert stored.current_step == 2
    else:
        assert [r.status for r in two] == ["failed"]
        assert two[0].error == aio.cancelled_stop().reason
        assert stored.current_step == 1
    if point == "artifact":
        assert store.get_artifact(ws, task.id, "half.txt") == b"written whole"
    if point == "checkpoint":
        assert stored.metadata["progress"] == 50

    finished = _drive(store, lambda astore: _run_all(astore, ws, task.id))
    assert finished.status == TaskStatus.COMPLETED
    assert [_successes(finished, n) for n in STEPS] == [1, 1, 1]


@pytest.mark.stores("file", "memory")
def test_repeated_cancellation_during_cleanup_still_releases_the_lease(store: Store, ws: str) -> None:
    """A coroutine cancelled again and again while its step and run are being closed, with other calls for the same
    task queued ahead of the cleanup, still records the stop and releases the lease (the cleanup is shielded)."""
    task = _task(store, ws)

    async def runner(astore: AsyncStore, inside: asyncio.Event) -> None:
        async with astore.run(ws, task.id) as run, run.step() as ctx:
            await ctx.log("started")
            inside.set()
            await asyncio.sleep(3600)

    async def work(astore: AsyncStore) -> None:
        inside = asyncio.Event()
        job = asyncio.create_task(runner(astore, inside))
        await inside.wait()
        # Calls for the same task, queued before the cleanup: it must wait its turn while being cancelled.
        chatter = asyncio.gather(*(astore.append_log(ws, task.id, {"event": "chatter"}) for _ in range(50)))
        while not job.done():
            job.cancel()  # a task group shutting down, an impatient supervisor...
            await asyncio.sleep(0)
        await chatter
        with pytest.raises(asyncio.CancelledError) as cancelled:
            await job
        # Asked while the cancelled coroutine's frames are still alive (its traceback is held): the lease was given
        # back by the cleanup, not by a garbage collector closing an abandoned generator.
        assert await astore.lease_holder(ws, task.id) is None  # type: ignore[attr-defined]
        del cancelled

    _drive(store, work)
    assert store.lease_holder(ws, task.id) is None  # type: ignore[attr-defined]
    stored = store.get(ws, task.id)
    assert stored.status == TaskStatus.INTERRUPTED
    assert stored.steps[0].status == "failed"


@pytest.mark.stores("file", "memory")
def test_a_task_group_shutting_down_interrupts_its_runs(store: Store, ws: str) -> None:
    """When one run of a TaskGroup fails, the group cancels the others mid-step: each is recorded interrupted with
    its lease free, and the failure comes out in the ExceptionGroup."""
    tasks = [_task(store, ws) for _ in range(3)]

    async def waits(astore: AsyncStore, task_id: str, inside: asyncio.Event) -> None:
        async with astore.run(ws, task_id) as run, run.step() as ctx:
            await ctx.log("waiting")
            inside.set()
            await asyncio.sleep(3600)

    async def fails(inside: list[asyncio.Event]) -> None:
        for event in inside:
            await event.wait()
        raise RuntimeError("agent crashed")

    async def work(astore: AsyncStore) -> None:
        inside = [asyncio.Event() for _ in tasks]
        with pytest.raises(ExceptionGroup) as info:
            async with asyncio.TaskGroup() as group:
                for task, event in zip(tasks, inside, strict=True):
                    group.create_task(waits(astore, task.id, event))
                group.create_task(fails(inside))
        assert [type(e) for e in info.value.exceptions] == [RuntimeError]

    _drive(store, work)
    for task in tasks:
        stored = store.get(ws, task.id)
        assert stored.status == TaskStatus.INTERRUPTED
        assert stored.metadata["stop_reason"]["kind"] == aio.CANCELLED_KIND
        assert store.lease_holder(ws, task.id) is None  # type: ignore[attr-defined]


@pytest.mark.stores("file", "memory")
def test_a_held_run_refuses_a_second_runner(store: Store, ws: str) -> None:
    """While a coroutine holds a task's run, a second ``astore.run`` of it raises TaskRunningError."""
    task = _task(store, ws)

    async def work(astore: AsyncStore) -> None:
        async with astore.run(ws, task.id):
            with pytest.raises(TaskRunningError):
                async with astore.run(ws, task.id):
                    pass

    _drive(store, work)
    assert store.lease_holder(ws, task.id) is None  # type: ignore[attr-defined]


@pytest.mark.stores("file", "memory")
def test_edit_saves_on_clean_exit_and_nothing_on_error(store: Store, ws: str) -> None:
    """``async with astore.edit`` saves what the block changed (awaits inside included); a raising block saves
    nothing."""
    task = _task(store, ws)

    async def work(astore: AsyncStore) -> None:
        async with astore.edit(ws, task.id) as t:
            t.description = "edited"
            await asyncio.sleep(0)
        with pytest.raises(KeyError):
            async with astore.edit(ws, task.id) as t:
                t.description = "lost"
                raise KeyError("no")

    _drive(store, work)
    stored = store.get(ws, task.id)
    assert (stored.description, stored.revision) == ("edited", task.revision + 1)


@pytest.mark.stores("file", "memory")
def test_an_edit_block_may_await_calls_about_its_own_and_other_tasks(store: Store, ws: str) -> None:
    """Inside ``async with astore.edit``, awaiting the store about the same task or another one works (as in a sync
    edit block) instead of waiting for the lock the block holds."""
    task, other = _task(store, ws), _task(store, ws)

    async def work(astore: AsyncStore) -> int:
        async with astore.edit(ws, task.id) as t:
            await astore.append_log(ws, task.id, {"event": "inside the edit"})
            t.description = (await astore.get(ws, other.id)).description + " (copied)"
            return len(await astore.read_log(ws, task.id))

    result: list[int] = []
    # A daemon thread with a bounded join: a deadlock (the block waiting for its own lock) fails instead of hanging.
    runner = threading.Thread(target=lambda: result.append(_drive(store, work)), daemon=True)
    runner.start()
    runner.join(60)
    assert result == [1], "the edit block deadlocked on its own store calls"
    assert store.get(ws, task.id).description == "async (copied)"


@pytest.mark.stores("file", "memory")
def test_follow_log_yields_entries_appended_by_another_coroutine(store: Store, ws: str) -> None:
    """``async for`` over ``follow_log`` sees entries another coroutine appends, and breaking out stops it."""
    task = _task(store, ws)

    async def work(astore: AsyncStore) -> list[int]:
        async def writer() -> None:
            for n in range(5):
                await astore.append_log(ws, task.id, {"event": "n", "n": n})
                await asyncio.sleep(0.01)

        seen: list[int] = []
        writing = asyncio.create_task(writer())
        async for entry in astore.follow_log(ws, task.id, until=lambda: False, poll=0.02):
            seen.append(entry["n"])
            if len(seen) == 5:
                break
        await writing
        return seen

    assert _drive(store, work) == [0, 1, 2, 3, 4]


def test_importing_the_library_does_not_import_asyncio() -> None:
    """``import atlas_tasks`` (and the CLI's start-up) loads neither asyncio nor atlas_tasks.aio."""
    import subprocess
    import sys

    code = "import sys, atlas_tasks, atlas_tasks.cli; print('asyncio' in sys.modules, 'atlas_tasks.aio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
