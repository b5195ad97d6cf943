"""How the async API runs blocking store calls: off the loop, in order per task, never torn by a cancellation."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import os
import queue
import threading
from collections.abc import AsyncIterator, Callable, Hashable
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar

T = TypeVar("T")

#: Threads of an async store's pool unless told otherwise: two per CPU (one in Python, one waiting in the kernel for
#: an fsync), few enough that 10,000 waiting coroutines do not become 10,000 threads. More threads than that only
#: queue for the GIL and the loop waits behind them: on 2 CPUs, 64 coroutines updating the file store measured a
#: loop p99 lag of 2.1-2.4 ms and 0.91-0.98x the sync store on 8 threads with 4 threads, against 4.9 ms and 0.84x
#: with 8 and 3.5 ms and 0.74x with 6. A disk or database whose waits are long (network storage) wants more.
DEFAULT_MAX_THREADS = min(32, (os.cpu_count() or 1) * 2)


async def settle(fut: asyncio.Future[T]) -> asyncio.CancelledError | None:
    """Wait until ``fut`` is done, whatever cancellations arrive meanwhile; return the first one (or None).

    Work handed to a thread cannot be taken back: returning before it ends would let the caller release a lease or
    a lock while the thread still writes. So the caller sees a cancellation only once the work is over.
    """
    cancelled: asyncio.CancelledError | None = None
    while not fut.done():
        # A waiter of our own rather than asyncio.wait (which builds a set, a coroutine and a callback per call, the
        # largest share of a call's offload cost): cancelling it, unlike `await fut`, leaves fut running.
        waiter: asyncio.Future[None] = fut.get_loop().create_future()

        def wake(_: asyncio.Future[T], waiter: asyncio.Future[None] = waiter) -> None:
            if not waiter.done():
                waiter.set_result(None)

        fut.add_done_callback(wake)
        try:
            await waiter
        except asyncio.CancelledError as exc:
            fut.remove_done_callback(wake)
            cancelled = cancelled or exc
    return cancelled


async def complete(fut: asyncio.Future[T]) -> T:
    """``fut``'s result once it is done; a cancellation that arrived meanwhile is raised after it (see settle)."""
    cancelled = await settle(fut)
    if cancelled is not None:
        if not fut.cancelled() and fut.exception() is not None:
            raise cancelled from fut.exception()
        raise cancelled
    return fut.result()


#: The (TaskLocks, key) pairs the current context holds: code inside ``async with astore.edit(...)`` (and the tasks it
#: starts) holds its task's lock, and its own calls about that task must not wait for it.
_HELD: contextvars.ContextVar[frozenset[tuple[int, Hashable]]] = contextvars.ContextVar(
    "atlas_aio_held", default=frozenset()
)


class TaskLocks:
    """One asyncio lock per key (workspace, task), made on first use and dropped when nobody holds or waits for it.

    asyncio locks wake their waiters first come, first served, so calls for one task reach the store in the order
    they were issued even when the pool has a free thread for each of them. A context that holds a key (an ``edit``
    block) passes through its own lock.
    """

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, list[int]]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    @contextlib.asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        mine = (id(self), key)
        held = _HELD.get()
        if mine in held:
            yield
            return
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = (asyncio.Lock(), [0])
        lock, users = entry
        users[0] += 1
        try:
            async with lock:
                token = _HELD.set(held | {mine})
                try:
                    yield
                finally:
                    _HELD.reset(token)
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._locks[key]


class Pinned(Generic[T]):
    """A blocking context manager entered and left on one thread of its own, while a coroutine runs its block.

    Some stores' locks belong to the thread that took them (the memory store's RLock), so ``edit``'s lock cannot be
    taken on one pool thread and given back on another; and a pool thread parked for the length of a block would
    starve the pool. A short-lived thread per block avoids both.
    """

    class _BlockFailed(Exception):
        """Raised inside the blocking ``with`` so it sees the block fail (and saves nothing)."""

    def __init__(self, make: Callable[[], AbstractContextManager[T]], name: str) -> None:
        self._make = make
        self.entered: concurrent.futures.Future[T] = concurrent.futures.Future()
        self.exited: concurrent.futures.Future[None] = concurrent.futures.Future()
        # Calls to run on this thread while the block runs, then the block's outcome (True: it failed).
        self._work: queue.SimpleQueue[tuple[Callable[[], Any], concurrent.futures.Future[Any]] | bool] = (
            queue.SimpleQueue()
        )
        self._left = False
        self._leaving = threading.Lock()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, fn: Callable[[], Any]) -> concurrent.futures.Future[Any] | None:
        """Run ``fn`` on this thread, inside the ``with`` (the block's own store calls: the memory store's lock is
        held by this thread, and another thread would wait for it until the block ends); None once the block has
        ended (a task the block started may outlive it: its calls go to the pool again)."""
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._leaving:
            if self._left:
                return None
            self._work.put((fn, fut))
        return fut

    def leave(self, *, failed: bool) -> None:
        """Let the thread leave the ``with``: cleanly (the block succeeded) or by the block's failure."""
        with self._leaving:
            self._left = True
            self._work.put(failed)

    def _serve(self) -> bool:
        while True:
            item = self._work.get()
            if isinstance(item, bool):
                return item
            fn, fut = item
            try:
                fut.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
                fut.set_exception(exc)

    def _main(self) -> None:
        try:
            with self._make() as value:
                self.entered.set_result(value)
                if self._serve():
                    raise Pinned._BlockFailed
        except Pinned._BlockFailed:
            self.exited.set_result(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the coroutine, which raises it
            if not self.entered.done():
                self.entered.set_exception(exc)
            else:
                self.exited.set_exception(exc)
        else:
            self.exited.set_result(None)


#: The pinned block the current context runs inside (per store, by id): its calls go to the block's thread.
PINNED: contextvars.ContextVar[tuple[int, Pinned[Any]] | None] = contextvars.ContextVar(
    "atlas_aio_pinned", default=None
)


@contextlib.asynccontextmanager
async def pinned(owner: object, make: Callable[[], AbstractContextManager[T]], name: str) -> AsyncIterator[T]:
    """``async with pinned(store, lambda: store.edit(ws, id)) as task``: see :class:`Pinned`; the exit always
    completes. While the block runs, ``owner``'s calls made in this context run on the block's thread."""
    pin: Pinned[T] = Pinned(make, name)
    pin.start()
    entered = asyncio.wrap_future(pin.entered)
    cancelled = await settle(entered)
    failed = entered.exception()
    if failed is not None:
        if cancelled is not None:
            raise cancelled from failed  # nothing was entered; the cancellation still goes on
        raise failed
    if cancelled is not None:
        pin.leave(failed=True)
        await settle(asyncio.wrap_future(pin.exited))
        raise cancelled
    token = PINNED.set((id(owner), pin))
    try:
        yield entered.result()
    except BaseException:
        PINNED.reset(token)
        pin.leave(failed=True)
        await settle(asyncio.wrap_future(pin.exited))
        raise
    PINNED.reset(token)
    pin.leave(failed=False)
    await complete(asyncio.wrap_future(pin.exited))


def call_in(pool: concurrent.futures.Executor, fn: Callable[..., T], *args: Any, **kwargs: Any) -> asyncio.Future[T]:
    """Hand ``fn(*args, **kwargs)`` to ``pool``; the future of its result, on the running loop."""
    loop = asyncio.get_running_loop()
    return asyncio.wrap_future(pool.submit(fn, *args, **kwargs), loop=loop)
