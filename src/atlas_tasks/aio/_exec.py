"""Command steps from a coroutine: :func:`atlas_tasks.executors.run_task` on a runner thread, cancellable."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import random
import threading
from typing import TYPE_CHECKING

from atlas_tasks import executors, lifecycle, runs
from atlas_tasks.aio._offload import complete
from atlas_tasks.aio._runs import cancelled_stop
from atlas_tasks.models import Task

if TYPE_CHECKING:
    from atlas_tasks.aio._store import AsyncStore


def _run_blocking(
    store: AsyncStore,
    workspace: str,
    task_id: str,
    cancel: threading.Event,
    on_step: executors.Progress | None,
    workdir: str | os.PathLike[str] | None,
    clock: executors.Clock | None,
    rng: random.Random | None,
) -> Task:
    with store.sync_store.run(workspace, task_id) as run:
        asked = run.poll

        def poll(*, force: bool = False) -> lifecycle.Stop | None:
            # The supervisor's tick asks this about once a second while a command runs: a cancelled coroutine is
            # a stop like a cancel request, so the command's tree is killed and the step recorded as stopped.
            if cancel.is_set():
                return cancelled_stop()
            return asked(force=force)

        run.poll = poll  # type: ignore[method-assign]

        def progress(ctx: runs.StepContext, what: str) -> None:
            if cancel.is_set() and what in ("started", "retrying"):
                raise runs.StepStopped(cancelled_stop())  # before the step's next command starts
            if on_step is not None:
                on_step(ctx, what)

        done = executors.run_task(run, progress, workdir=workdir, clock=clock, rng=rng)
        if cancel.is_set() and not run.stopped and run.task.status in runs.ACTIVE_STATUSES:
            done = run.halt(cancelled_stop())  # cancelled after the last command: recorded between steps
        return done


async def run_task(
    store: AsyncStore,
    workspace: str,
    task_id: str,
    on_step: executors.Progress | None = None,
    *,
    workdir: str | os.PathLike[str] | None = None,
    clock: executors.Clock | None = None,
    rng: random.Random | None = None,
) -> Task:
    """Run every remaining step of a task, as ``with store.run(ws, id) as run: executors.run_task(run, ...)``.

    The run (lease, steps, commands under their supervisors) lives on a thread of its own, not the store's pool.
    ``on_step`` is called on that thread. Cancelling the awaiting coroutine stops the run as a cancel request
    does: the running command's process tree is killed (within about a second: the supervisor's tick), the step is
    recorded as stopped, the task ends ``interrupted`` (``metadata.stop_reason.kind == "cancelled"``), the lease is
    released, and then the CancelledError is raised.

    Returns the task as the run left it (completed, awaiting_approval, interrupted by a stop).

    Raises:
        What ``store.run`` and :func:`atlas_tasks.executors.run_task` raise (TaskRunningError, NotRunnableError,
        StepFailedError ...).
    """
    cancel = threading.Event()
    done: concurrent.futures.Future[Task] = concurrent.futures.Future()

    def main() -> None:
        try:
            done.set_result(_run_blocking(store, workspace, task_id, cancel, on_step, workdir, clock, rng))
        except BaseException as exc:  # noqa: BLE001 - handed to the coroutine, which raises it
            done.set_exception(exc)

    threading.Thread(target=main, name=f"atlas-aio-run-{task_id}", daemon=True).start()
    fut = asyncio.wrap_future(done)
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        cancel.set()
        await complete(fut)  # the run records the stop and releases its lease; then the cancellation goes on
        raise


__all__ = ["run_task"]
