"""Async runs: :mod:`atlas_tasks.runs` driven from coroutines, with cancellation recorded as an interruption."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar

from atlas_tasks import lifecycle, runs
from atlas_tasks.aio._offload import call_in, complete, settle
from atlas_tasks.models import Step, Task, TaskStatus

if TYPE_CHECKING:
    from atlas_tasks.aio._store import AsyncStore

T = TypeVar("T")

#: The ``kind`` of the stop recorded when the coroutine running a task is cancelled (``metadata.stop_reason``).
CANCELLED_KIND = "cancelled"
CANCELLED_REASON = "cancelled: the coroutine running the task was cancelled"


def cancelled_stop() -> lifecycle.Stop:
    """What a cancelled coroutine records: a stop that leaves the task interrupted (resumable by ``run``)."""
    return lifecycle.Stop(CANCELLED_KIND, CANCELLED_REASON, status=TaskStatus.INTERRUPTED)


async def _shielded(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` to its end whatever cancellations the caller gets meanwhile; raise the first one after it."""
    return await complete(asyncio.ensure_future(work))


class AsyncStepContext:
    """What a step's code uses while it runs (the async face of :class:`atlas_tasks.runs.StepContext`)."""

    def __init__(self, run: AsyncRun, ctx: runs.StepContext) -> None:
        self.run = run
        self.sync = ctx

    @property
    def index(self) -> int:
        return self.sync.index

    @property
    def step(self) -> Step:
        return self.sync.step

    @property
    def output(self) -> str:
        return self.sync.output

    @output.setter
    def output(self, value: str) -> None:
        self.sync.output = value

    @property
    def files_changed(self) -> list[str]:
        return self.sync.files_changed

    @files_changed.setter
    def files_changed(self, value: list[str]) -> None:
        self.sync.files_changed = value

    @property
    def metadata(self) -> dict[str, Any]:
        return self.sync.metadata

    @property
    def artifact_path(self) -> str:
        return self.sync.artifact_path

    @property
    def outcome(self) -> str:
        return self.sync.outcome

    async def log(self, event: str, *, level: str = "info", **fields: Any) -> None:
        """Append one durable log line for this step."""
        await self.run._call(lambda: self.sync.log(event, level=level, **fields))

    async def artifact(self, name: str, data: bytes | str, *, versioned: bool = False) -> str:
        """Save an artifact durably (before the step's checkpoint refers to it); returns the name used."""
        return await self.run._call(lambda: self.sync.artifact(name, data, versioned=versioned))

    def skip(self, reason: str = "") -> None:
        """End the step as skipped (recorded when the step's block ends)."""
        self.sync.skip(reason)

    def no_changes(self, reason: str = "") -> None:
        """End the step as no_changes."""
        self.sync.no_changes(reason)

    def await_approval(self, prompt: str = "") -> None:
        """End the step waiting for a human: the run stops at awaiting_approval."""
        self.sync.await_approval(prompt)


class AsyncRun:
    """A live run of one task, holding its lease (the async face of :class:`atlas_tasks.runs.Run`).

    Made by ``async with astore.run(ws, id) as run``. Every blocking part runs in the store's pool, in order with
    the store's other calls about the task. Do not share one run between coroutines.
    """

    def __init__(self, store: AsyncStore, run: runs.Run) -> None:
        self.store = store
        self.sync = run
        self.workspace = run.workspace

    @property
    def task(self) -> Task:
        """The task as of the last checkpoint (or as changed in memory since)."""
        return self.sync.task

    @property
    def stopped(self) -> bool:
        return self.sync.stopped

    @property
    def stop(self) -> lifecycle.Stop | None:
        return self.sync.stop

    async def _call(self, fn: Callable[[], T]) -> T:
        return await self.store._task_call(self.workspace, self.sync.task.id, fn)

    async def checkpoint(self) -> Task:
        """Save the task now (revision-checked); see :meth:`atlas_tasks.runs.Run.checkpoint`."""
        return await self._call(self.sync.checkpoint)

    async def poll(self, *, force: bool = False) -> lifecycle.Stop | None:
        """Whether the run must stop now (cancel, deadline, budget); see :meth:`atlas_tasks.runs.Run.poll`."""
        return await self._call(lambda: self.sync.poll(force=force))

    async def halt(self, stop: lifecycle.Stop) -> Task:
        """Stop the run between steps, recording why; see :meth:`atlas_tasks.runs.Run.halt`."""
        return await self._call(lambda: self.sync.halt(stop))

    async def remaining_steps(self) -> AsyncGenerator[Step, None]:
        """``async for step in run.remaining_steps()``: as :meth:`atlas_tasks.runs.Run.remaining_steps` (each
        boundary's lifecycle check, and the completion when no step is left, run in the pool)."""
        steps = self.sync.remaining_steps()
        end = object()
        try:
            while True:
                item = await self._call(lambda: next(steps, end))
                if isinstance(item, Step):
                    yield item
                else:
                    return
        finally:
            close = getattr(steps, "close", None)
            if close is not None:
                await self._call(close)

    def step(self, step: Step | None = None) -> contextlib.AbstractAsyncContextManager[AsyncStepContext]:
        """``async with run.step() as ctx``: the current step, checkpointed as running before the block and as
        done (or failed) after it, as :meth:`atlas_tasks.runs.Run.step`.

        A cancellation inside the block (or while the step begins) records the step as stopped and the task as
        interrupted, as a stop does (:class:`atlas_tasks.runs.StepStopped`), then propagates.
        """
        return self._step(step)

    @contextlib.asynccontextmanager
    async def _step(self, step: Step | None) -> AsyncIterator[AsyncStepContext]:
        block = self.sync.step(step)
        fut: asyncio.Future[runs.StepContext]
        async with self.store._locks.hold((self.workspace, self.sync.task.id)):
            fut = call_in(self.store._pool, block.__enter__)
            cancelled = await settle(fut)
        failed = fut.exception()
        if failed is not None:
            if cancelled is not None:
                raise cancelled from failed  # nothing was entered; the cancellation still goes on
            raise failed
        ctx = AsyncStepContext(self, fut.result())
        if cancelled is not None:
            await self._leave(block, cancelled)
            raise cancelled
        try:
            yield ctx
        except BaseException as exc:
            await self._leave(block, exc)
            raise
        await self._leave(block, None)

    async def _leave(self, block: AbstractContextManager[Any], exc: BaseException | None) -> None:
        """End a step's blocking context with ``exc``: a cancellation is recorded as a stop (never torn: shielded)."""
        if isinstance(exc, asyncio.CancelledError):
            stopped = runs.StepStopped(cancelled_stop())
            await _shielded(self._call(lambda: block.__exit__(runs.StepStopped, stopped, None)))
        elif exc is not None:
            await _shielded(self._call(lambda: block.__exit__(type(exc), exc, exc.__traceback__)))
        else:
            await _shielded(self._call(lambda: block.__exit__(None, None, None)))


def _close_run(run: runs.Run, block: AbstractContextManager[Any], exc: BaseException | None) -> None:
    """Leave ``runs.run``'s block (which releases the lease); a cancelled run still active is halted first."""
    try:
        cancelled = isinstance(exc, asyncio.CancelledError)
        if cancelled and not run.stopped and run.task.status in runs.ACTIVE_STATUSES:
            run.halt(cancelled_stop())
    finally:
        if exc is None:
            block.__exit__(None, None, None)
        else:
            block.__exit__(type(exc), exc, exc.__traceback__)


@contextlib.asynccontextmanager
async def open_run(store: AsyncStore, workspace: str, task_id: str) -> AsyncIterator[AsyncRun]:
    """See :meth:`atlas_tasks.aio.AsyncStore.run`."""
    block = store.sync_store.run(workspace, task_id)
    fut: asyncio.Future[runs.Run]
    key = (workspace, task_id)
    async with store._locks.hold(key):
        fut = call_in(store._pool, block.__enter__)
        cancelled = await settle(fut)
    failed = fut.exception()
    if failed is not None:
        if cancelled is not None:
            raise cancelled from failed  # nothing was entered; the cancellation still goes on
        raise failed
    live = AsyncRun(store, fut.result())

    async def close(exc: BaseException | None) -> None:
        async with store._locks.hold(key):
            await complete(call_in(store._pool, _close_run, live.sync, block, exc))

    if cancelled is not None:
        await _shielded(close(cancelled))
        raise cancelled
    try:
        yield live
    except BaseException as exc:
        await _shielded(close(exc))
        raise
    await _shielded(close(None))


async def recover(store: AsyncStore, workspace: str) -> list[Task]:
    """:func:`atlas_tasks.runs.recover` off the loop: record every crashed run of the workspace as interrupted."""
    return await store._call(runs.recover, store.sync_store, workspace)


async def approve(store: AsyncStore, workspace: str, task_id: str, reason: str = "approved") -> Task:
    """:func:`atlas_tasks.runs.approve` off the loop."""
    return await store._task_call(workspace, task_id, runs.approve, store.sync_store, workspace, task_id, reason)


async def reject(store: AsyncStore, workspace: str, task_id: str, reason: str = "rejected") -> Task:
    """:func:`atlas_tasks.runs.reject` off the loop."""
    return await store._task_call(workspace, task_id, runs.reject, store.sync_store, workspace, task_id, reason)


async def abandon(store: AsyncStore, workspace: str, task_id: str, reason: str = "abandoned") -> Task:
    """:func:`atlas_tasks.runs.abandon` off the loop."""
    return await store._task_call(workspace, task_id, runs.abandon, store.sync_store, workspace, task_id, reason)


async def is_interrupted(store: AsyncStore, workspace: str, task: Task) -> bool:
    """:func:`atlas_tasks.runs.is_interrupted` off the loop."""
    return await store._call(runs.is_interrupted, store.sync_store, workspace, task)


__all__ = [
    "CANCELLED_KIND",
    "AsyncRun",
    "AsyncStepContext",
    "abandon",
    "approve",
    "cancelled_stop",
    "is_interrupted",
    "open_run",
    "recover",
    "reject",
]
