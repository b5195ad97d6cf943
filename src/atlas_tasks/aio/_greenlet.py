"""The native offload: store calls run in greenlets on the event loop's thread, their I/O awaited on the loop.

The twin of the thread pool in :mod:`atlas_tasks.aio._offload`, for a store whose connections are async (the
PostgreSQL store opened with ``native=True``, see :mod:`atlas_tasks.backends.postgres._bridge`). A call is a plain
sync function of the store, run by ``run_bridged`` in an asyncio task of its own: the awaiting coroutine is a
bystander, so cancelling it cannot tear the call (``complete`` waits for the task, then raises the cancellation),
exactly as a call handed to a thread. No thread is started.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar, cast

from atlas_tasks.aio._offload import complete, settle

T = TypeVar("T")


class GreenletOffload(concurrent.futures.Executor):
    """An "executor" whose ``submit`` runs the function bridged on the running loop (an asyncio task, not a thread).

    ``call_in`` accepts it as it is: ``asyncio.wrap_future`` passes an asyncio future through unchanged.
    """

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[T]:
        from atlas_tasks.backends.postgres._bridge import run_bridged

        # Typed as the Executor's future for call_in; it is the asyncio task that call_in hands back as is.
        return cast("concurrent.futures.Future[T]", asyncio.ensure_future(run_bridged(fn, *args, **kwargs)))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Nothing to stop: the calls are the loop's tasks (the async store awaits its own before closing)."""


class _BlockFailed(Exception):
    """Raised inside the sync ``with`` so it sees the async block fail (and saves nothing)."""


@contextlib.asynccontextmanager
async def pinned_bridged(make: Callable[[], AbstractContextManager[T]]) -> AsyncIterator[T]:
    """``async with pinned_bridged(lambda: store.edit(ws, id)) as task``: one greenlet enters the sync ``with``,
    waits (switched out to the loop) while the async block runs, then leaves it: saved on a clean exit, rolled back
    otherwise. The exit always completes, even when the coroutine is cancelled meanwhile."""
    from atlas_tasks.backends.postgres._bridge import run_bridged, wait_for

    loop = asyncio.get_running_loop()
    entered: asyncio.Future[T] = loop.create_future()
    outcome: asyncio.Future[bool] = loop.create_future()  # True: the block failed

    def hold() -> None:
        with make() as value:
            entered.set_result(value)
            if wait_for(outcome):
                raise _BlockFailed

    async def drive() -> None:
        with contextlib.suppress(_BlockFailed):
            await run_bridged(hold)

    runner = asyncio.ensure_future(drive())
    cancelled: asyncio.CancelledError | None = None
    while not entered.done() and not runner.done():
        try:
            await asyncio.wait([cast(asyncio.Future[Any], entered), runner], return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError as exc:
            cancelled = cancelled or exc
    if not entered.done():  # the sync `with` failed to enter: nothing is held
        failed = runner.exception()
        if cancelled is not None:
            raise cancelled from failed
        raise cast(BaseException, failed)
    if cancelled is not None:
        outcome.set_result(True)
        await settle(runner)
        raise cancelled
    try:
        yield entered.result()
    except BaseException:
        outcome.set_result(True)
        await settle(runner)
        raise
    outcome.set_result(False)
    await complete(runner)


__all__ = ["GreenletOffload", "pinned_bridged"]
