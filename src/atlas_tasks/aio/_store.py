"""AsyncStore: the Store contract as coroutines, over any sync store (see :mod:`atlas_tasks.aio`)."""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import contextlib
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, cast, runtime_checkable

from atlas_tasks.aio._greenlet import GreenletOffload, pinned_bridged
from atlas_tasks.aio._offload import DEFAULT_MAX_THREADS, PINNED, TaskLocks, call_in, complete, pinned, settle
from atlas_tasks.errors import AtlasTasksError
from atlas_tasks.models import Task, TaskRef, Workspace
from atlas_tasks.store import Store
from atlas_tasks.store.capabilities import (
    ChangeStamps,
    CollectorLocks,
    Importable,
    LeaseHandle,
    LocalFiles,
    Repairable,
    RunLeases,
    Tombstones,
)
from atlas_tasks.store.types import (
    ArtifactReader,
    CheckReport,
    LogEntry,
    LogLines,
    LogRotation,
    LogTail,
    SummaryList,
    TaskList,
    Tombstone,
    WorkspaceList,
)

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from atlas_tasks.aio._runs import AsyncRun

T = TypeVar("T")
_END = object()


@runtime_checkable
class _Closable(Protocol):
    def close(self) -> None: ...


class AsyncLeaseHandle:
    """A run lease (or the collector lock) held through an async store: ``await lease.release()``.

    The release always completes once started, even if the awaiting coroutine is cancelled meanwhile.
    """

    def __init__(self, handle: LeaseHandle, store: AsyncStore) -> None:
        self.handle = handle
        self._store = store

    async def release(self) -> None:
        await complete(call_in(self._store._pool, self.handle.release))

    async def __aenter__(self) -> AsyncLeaseHandle:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.release()


class AsyncArtifactReader:
    """An artifact opened for reading through an async store: ``size`` first, then ``await read()`` or
    ``async for chunk in reader.chunks()`` (the file store streams a big one in pieces, off the loop)."""

    def __init__(self, reader: ArtifactReader, store: AsyncStore) -> None:
        self.reader = reader
        self.size = reader.size
        self._store = store

    async def read(self) -> bytes:
        return await complete(call_in(self._store._pool, self.reader.read))

    async def chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self._store._drain(self.reader.chunks()):
            yield chunk

    async def close(self) -> None:
        await complete(call_in(self._store._pool, self.reader.close))

    async def __aenter__(self) -> AsyncArtifactReader:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class AsyncStore:
    """Every method of :class:`atlas_tasks.store.Store` as a coroutine of the same name, arguments and errors.

    Made by :func:`open_async_store` (from a URL) or :meth:`from_store` (around a sync store you have). The sync
    store's blocking calls run in a bounded thread pool (``max_threads``), never on the event loop; calls about one
    task (a workspace and task id) reach the store one at a time, in the order they were issued. A call handed to
    a thread always finishes, even when the awaiting coroutine is cancelled: the cancellation is raised after it.

    The capabilities of the sync store carry over (``isinstance(astore, AsyncRunLeases)`` and so on, with the same
    method names as :mod:`atlas_tasks.store.capabilities`, as coroutines).

    Use one async store from one event loop at a time (the order locks are asyncio locks); several loops in several
    threads each wrap the sync store themselves (sync stores are thread-safe).
    """

    #: The capability each mixin brings (filled in below the mixins); from_store picks those the sync store has.
    _mixins: ClassVar[list[tuple[type, type]]] = []
    _classes: ClassVar[dict[tuple[type, ...], type[AsyncStore]]] = {}
    _classes_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        store: Store,
        *,
        max_threads: int | None = None,
        owns_store: bool = False,
        offload: concurrent.futures.Executor | None = None,
    ) -> None:
        self.sync_store = store
        self._owns_store = owns_store
        self.max_threads = max_threads or DEFAULT_MAX_THREADS
        #: True when the store's calls run in greenlets on the loop (a native PostgreSQL store), not in threads.
        self.native = isinstance(offload, GreenletOffload)
        self._pool: concurrent.futures.Executor = offload or concurrent.futures.ThreadPoolExecutor(
            self.max_threads, thread_name_prefix="atlas-aio"
        )
        self._locks = TaskLocks()
        self._closed = False

    # -- making and closing ---------------------------------------------------------------------------------------
    @classmethod
    def from_store(
        cls,
        store: Store,
        *,
        max_threads: int | None = None,
        owns_store: bool = False,
        offload: concurrent.futures.Executor | None = None,
    ) -> AsyncStore:
        """An async store over ``store``, with the capabilities ``store`` has.

        ``max_threads``: the pool's size (default :data:`DEFAULT_MAX_THREADS`). ``owns_store``: ``aclose`` also
        closes ``store`` (what :func:`open_async_store` sets, since it opened it). ``offload``: how the store's
        calls run (default: that thread pool; :func:`open_async_store` passes the greenlet offload for a native
        PostgreSQL store).
        """
        bases = tuple(mixin for capability, mixin in cls._mixins if isinstance(store, capability))
        with cls._classes_lock:
            made = cls._classes.get(bases)
            if made is None:
                if bases:
                    names = "".join(b.__name__.removeprefix("Async") for b in bases)
                    made = cast(type[AsyncStore], type(f"AsyncStore_{names}", (*bases, cls), {}))
                else:
                    made = cls
                cls._classes[bases] = made
        return made(store, max_threads=max_threads, owns_store=owns_store, offload=offload)

    async def aclose(self) -> None:
        """Wait for the calls in flight, stop the pool, and close the sync store if this async store opened it."""
        if self._closed:
            return
        self._closed = True
        if self.native:
            if self._owns_store and isinstance(self.sync_store, _Closable):
                await complete(call_in(self._pool, self.sync_store.close))  # the async pool closes on the loop
            return
        loop = asyncio.get_running_loop()
        await complete(loop.run_in_executor(None, self._shutdown))

    def _shutdown(self) -> None:
        self._pool.shutdown(wait=True)
        if self._owns_store and isinstance(self.sync_store, _Closable):
            self.sync_store.close()  # the PostgreSQL store owns a connection pool when opened from a URL

    async def __aenter__(self) -> AsyncStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} over {self.sync_store!r}>"

    # -- plumbing -------------------------------------------------------------------------------------------------
    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        inside = PINNED.get()
        if inside is not None and inside[0] == id(self):
            # Inside an ``edit`` block: run on the thread holding the sync store's lock, as the sync block would.
            on_block = inside[1].submit(lambda: fn(*args, **kwargs))
            if on_block is not None:
                return cast(T, await complete(asyncio.wrap_future(on_block)))
        return await complete(call_in(self._pool, fn, *args, **kwargs))

    async def _task_call(self, workspace: str, task_id: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        async with self._locks.hold((workspace, task_id)):
            return await self._call(fn, *args, **kwargs)

    async def _drain(self, items: Iterator[T]) -> AsyncIterator[T]:
        """A blocking iterator as an async one: each ``next`` in the pool; closed in the pool when abandoned."""
        try:
            while True:
                item = await self._call(next, items, _END)
                if item is _END:
                    return
                yield cast(T, item)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                await self._call(close)

    # -- workspaces -----------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The sync store's URL (``open_async_store(astore.url)`` opens the same store again)."""
        return self.sync_store.url

    @property
    def delete_batch(self) -> int:
        return self.sync_store.delete_batch

    async def create_workspace(
        self,
        name: str,
        *,
        path: str = "",
        worktree_path: str = "",
        branch: str = "",
        metadata: Mapping[str, Any] | None = None,
        exist_ok: bool = False,
    ) -> Workspace:
        return await self._call(
            self.sync_store.create_workspace,
            name,
            path=path,
            worktree_path=worktree_path,
            branch=branch,
            metadata=metadata,
            exist_ok=exist_ok,
        )

    async def get_workspace(self, name: str) -> Workspace:
        return await self._call(self.sync_store.get_workspace, name)

    async def list_workspaces(self) -> WorkspaceList:
        return await self._call(self.sync_store.list_workspaces)

    async def set_workspace_status(self, name: str, status: str) -> Workspace:
        return await self._call(self.sync_store.set_workspace_status, name, status)

    # -- tasks ----------------------------------------------------------------------------------------------------
    async def create(self, workspace: str, task: Task) -> Task:
        if task.id:
            return await self._task_call(workspace, task.id, self.sync_store.create, workspace, task)
        return await self._call(self.sync_store.create, workspace, task)

    async def get(self, workspace: str, task_id: str) -> Task:
        return await self._task_call(workspace, task_id, self.sync_store.get, workspace, task_id)

    async def update(self, workspace: str, task: Task) -> Task:
        return await self._task_call(workspace, task.id, self.sync_store.update, workspace, task)

    def edit(self, workspace: str, task_id: str) -> AbstractAsyncContextManager[Task]:
        """``async with astore.edit(ws, id) as task: task.x = ...`` saves on a clean exit (locked, as ``edit``).

        The block may await. Its own store calls (and those of tasks it starts) run on the thread that holds the sync
        store's lock, as in a sync ``with store.edit(...)`` block; other callers' calls about this task wait until
        the block ends (they would wait for the sync store's lock anyway).
        """
        return self._edit(workspace, task_id)

    @contextlib.asynccontextmanager
    async def _edit(self, workspace: str, task_id: str) -> AsyncIterator[Task]:
        make = lambda: self.sync_store.edit(workspace, task_id)  # noqa: E731
        edit = pinned_bridged(make) if self.native else pinned(self, make, "atlas-aio-edit")
        async with self._locks.hold((workspace, task_id)), edit as task:
            yield task

    async def modify(self, workspace: str, task_id: str, fn: Callable[[Task], object]) -> Task:
        """Locked read-modify-write; ``fn`` is a plain function (it runs in the pool, under the task's lock)."""
        return await self._task_call(workspace, task_id, self.sync_store.modify, workspace, task_id, fn)

    async def list(self, workspace: str, *, strict: bool = False, limit: int | None = None) -> TaskList:
        return await self._call(self.sync_store.list, workspace, strict=strict, limit=limit)

    async def iter_tasks(
        self, workspace: str, *, errors: builtins.list[AtlasTasksError] | None = None
    ) -> AsyncIterator[Task]:
        """``async for task in astore.iter_tasks(ws)``: one task at a time, each read in the pool."""
        async for task in self._drain(self.sync_store.iter_tasks(workspace, errors=errors)):
            yield task

    async def list_summaries(self, workspace: str) -> SummaryList:
        return await self._call(self.sync_store.list_summaries, workspace)

    async def delete(self, workspace: str, task_id: str, *, reason: str | None = None) -> None:
        await self._task_call(workspace, task_id, self.sync_store.delete, workspace, task_id, reason=reason)

    async def delete_many(
        self, workspace: str, task_ids: Iterable[str], *, reason: str | None = None
    ) -> dict[str, AtlasTasksError]:
        return await self._call(self.sync_store.delete_many, workspace, builtins.list(task_ids), reason=reason)

    # -- logs -----------------------------------------------------------------------------------------------------
    async def append_log(self, workspace: str, task_id: str, entry: LogEntry) -> None:
        await self._task_call(workspace, task_id, self.sync_store.append_log, workspace, task_id, entry)

    async def read_log(self, workspace: str, task_id: str, *, rotated: bool = False) -> LogLines:
        return await self._task_call(workspace, task_id, self.sync_store.read_log, workspace, task_id, rotated=rotated)

    async def iter_log(self, workspace: str, task_id: str) -> AsyncIterator[dict[str, Any]]:
        """``async for entry in astore.iter_log(ws, id)``: the log's intact entries in order."""
        async for entry in self._drain(self.sync_store.iter_log(workspace, task_id)):
            yield entry

    async def tail_log(self, workspace: str, task_id: str, lines: int, *, after: int | None = None) -> LogTail:
        return await self._task_call(
            workspace, task_id, self.sync_store.tail_log, workspace, task_id, lines, after=after
        )

    async def follow_log(
        self,
        workspace: str,
        task_id: str,
        *,
        until: Callable[[], bool],
        poll: float = 1.0,
        after: int = 0,
        on_listen: Callable[[], None] | None = None,
        on_task: Callable[[str], None] | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """``async for entry in astore.follow_log(ws, id, until=...)``: as the sync ``follow_log``.

        The follower waits on a thread of its own (not the pool's: it may wait for hours); ``until``, ``on_listen``
        and ``on_task`` are called on that thread. Leaving the loop early stops the follower within ``poll``.
        On a native PostgreSQL store there is no thread: the wait is the async connection's ``notifies`` and the
        three callbacks run on the event loop's thread (keep them quick).
        """
        if self.native:
            native = self.sync_store.follow_log(
                workspace, task_id, until=until, poll=poll, after=after, on_listen=on_listen, on_task=on_task
            )
            # aclosing: leaving the loop early closes the sync generator (and its connection) now, not at collection.
            drained = cast(AsyncGenerator[dict[str, Any], None], self._drain(native))
            async with contextlib.aclosing(drained) as lines:
                async for entry in lines:
                    yield entry
            return
        stopped = threading.Event()
        entries = self.sync_store.follow_log(
            workspace,
            task_id,
            until=lambda: stopped.is_set() or until(),
            poll=poll,
            after=after,
            on_listen=on_listen,
            on_task=on_task,
        )
        follower = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="atlas-aio-follow")
        try:
            while True:
                item = await complete(call_in(follower, next, entries, _END))
                if item is _END:
                    return
                yield cast(dict[str, Any], item)
        finally:
            stopped.set()
            close = getattr(entries, "close", None)
            if close is not None:
                await settle(call_in(follower, close))
            follower.shutdown(wait=False)

    # -- artifacts ------------------------------------------------------------------------------------------------
    async def save_artifact(self, workspace: str, task_id: str, filename: str, data: bytes | str) -> str:
        return await self._task_call(
            workspace, task_id, self.sync_store.save_artifact, workspace, task_id, filename, data
        )

    async def save_versioned_artifact(self, workspace: str, task_id: str, base_name: str, data: bytes | str) -> str:
        return await self._task_call(
            workspace, task_id, self.sync_store.save_versioned_artifact, workspace, task_id, base_name, data
        )

    async def get_artifact(self, workspace: str, task_id: str, filename: str) -> bytes:
        return await self._task_call(workspace, task_id, self.sync_store.get_artifact, workspace, task_id, filename)

    async def list_artifacts(self, workspace: str, task_id: str) -> builtins.list[str]:
        return await self._task_call(workspace, task_id, self.sync_store.list_artifacts, workspace, task_id)

    async def open_artifact(self, workspace: str, task_id: str, filename: str) -> AsyncArtifactReader:
        reader = await self._task_call(workspace, task_id, self.sync_store.open_artifact, workspace, task_id, filename)
        return AsyncArtifactReader(reader, self)

    async def artifact_sizes(self, workspace: str, task_id: str) -> dict[str, int]:
        return await self._task_call(workspace, task_id, self.sync_store.artifact_sizes, workspace, task_id)

    async def delete_artifact(self, workspace: str, task_id: str, filename: str) -> None:
        await self._task_call(workspace, task_id, self.sync_store.delete_artifact, workspace, task_id, filename)

    async def rotate_log(
        self, workspace: str, task_id: str, *, max_bytes: int, keep_bytes: int | None = None, dry_run: bool = False
    ) -> LogRotation:
        return await self._task_call(
            workspace,
            task_id,
            self.sync_store.rotate_log,
            workspace,
            task_id,
            max_bytes=max_bytes,
            keep_bytes=keep_bytes,
            dry_run=dry_run,
        )

    # -- runs -----------------------------------------------------------------------------------------------------
    def run(self, workspace: str, task_id: str) -> AbstractAsyncContextManager[AsyncRun]:
        """``async with astore.run(ws, id) as run``: the task's run lease, held until the block ends however it
        ends (cancellation included); see :class:`atlas_tasks.aio.AsyncRun`.

        Raises:
            NotRunnableError: the store takes no run leases, or the task cannot run now (as ``store.run``).
        """
        from atlas_tasks.aio._runs import open_run

        return open_run(self, workspace, task_id)


# -- capabilities: each a mixin that from_store adds when the sync store has the capability ---------------------------


class AsyncRunLeases(AsyncStore):
    """:class:`~atlas_tasks.store.capabilities.RunLeases` as coroutines."""

    async def acquire_lease(self, workspace: str, task_id: str, holder: Mapping[str, Any]) -> AsyncLeaseHandle:
        leases = cast(RunLeases, self.sync_store)
        handle = await self._task_call(workspace, task_id, leases.acquire_lease, workspace, task_id, holder)
        return AsyncLeaseHandle(handle, self)

    async def lease_holder(self, workspace: str, task_id: str) -> dict[str, Any] | None:
        leases = cast(RunLeases, self.sync_store)
        return await self._task_call(workspace, task_id, leases.lease_holder, workspace, task_id)

    async def lease_candidates(self, workspace: str) -> builtins.set[str] | None:
        return await self._call(cast(RunLeases, self.sync_store).lease_candidates, workspace)


class AsyncChangeStamps(AsyncStore):
    """:class:`~atlas_tasks.store.capabilities.ChangeStamps` as coroutines."""

    async def workspace_names(self) -> builtins.list[str]:
        return await self._call(cast(ChangeStamps, self.sync_store).workspace_names)

    async def task_stamps(self, workspace: str) -> dict[str, Any]:
        return await self._call(cast(ChangeStamps, self.sync_store).task_stamps, workspace)

    async def task_stamp(self, workspace: str, task_id: str) -> Any:
        stamps = cast(ChangeStamps, self.sync_store)
        return await self._task_call(workspace, task_id, stamps.task_stamp, workspace, task_id)


class AsyncRepairable(AsyncStore):
    """:class:`~atlas_tasks.store.capabilities.Repairable` as a coroutine."""

    async def check(self, workspace: str | None = None, *, fix: bool = False) -> CheckReport:
        return await self._call(cast(Repairable, self.sync_store).check, workspace, fix=fix)


class AsyncImportable(AsyncStore):
    """:class:`~atlas_tasks.store.capabilities.Importable` as coroutines."""

    async def import_workspace(self, workspace: Workspace, *, replace: bool = False) -> bool:
        return await self._call(cast(Importable, self.sync_store).import_workspace, workspace, replace=replace)

    async def import_task(
        self,
        workspace: str,
        task: Task,
        *,
        log_lines: Iterable[LogEntry] = (),
        artifacts: Mapping[str, bytes | str] | None = None,
        ref: TaskRef | None = None,
        replace: bool = False,
    ) -> Task:
        imports = cast(Importable, self.sync_store)
        return await self._task_call(
            workspace,
            task.id,
            imports.import_task,
            workspace,
            task,
            log_lines=log_lines,
            artifacts=artifacts,
            ref=ref,
            replace=replace,
        )

    async def import_tombstone(self, tombstone: Tombstone) -> bool:
        imports = cast(Importable, self.sync_store)
        return await self._task_call(tombstone.workspace, tombstone.id, imports.import_tombstone, tombstone)


class AsyncCollectorLocks(AsyncStore):
    """:class:`~atlas_tasks.store.capabilities.CollectorLocks` as a coroutine."""

    async def collector_lock(self, holder: Mapping[str, Any]) -> AsyncLeaseHandle:
        handle = await self._call(cast(CollectorLocks, self.sync_store).collector_lock, holder)
        return AsyncLeaseHandle(handle, self)


class AsyncTombstones(AsyncStore):
    """:class:`~atlas_tasks.store.capabilities.Tombstones` as coroutines."""

    async def tombstone(self, workspace: str, task_id: str) -> Tombstone | None:
        stones = cast(Tombstones, self.sync_store)
        return await self._task_call(workspace, task_id, stones.tombstone, workspace, task_id)

    async def tombstones(self, workspace: str) -> builtins.list[Tombstone]:
        return await self._call(cast(Tombstones, self.sync_store).tombstones, workspace)


class AsyncLocalFiles(AsyncStore):
    """:class:`~atlas_tasks.store.capabilities.LocalFiles`: paths only (no I/O), so plain properties and methods."""

    @property
    def home(self) -> Path:
        return cast(LocalFiles, self.sync_store).home

    @property
    def go_home(self) -> Path:
        return cast(LocalFiles, self.sync_store).go_home

    def workspace_path(self, workspace: str) -> Path:
        return cast(LocalFiles, self.sync_store).workspace_path(workspace)

    def task_path(self, workspace: str, task_id: str) -> Path:
        return cast(LocalFiles, self.sync_store).task_path(workspace, task_id)

    def log_path(self, workspace: str, task_id: str) -> Path:
        return cast(LocalFiles, self.sync_store).log_path(workspace, task_id)


AsyncStore._mixins = [
    (RunLeases, AsyncRunLeases),
    (ChangeStamps, AsyncChangeStamps),
    (Repairable, AsyncRepairable),
    (Importable, AsyncImportable),
    (CollectorLocks, AsyncCollectorLocks),
    (Tombstones, AsyncTombstones),
    (LocalFiles, AsyncLocalFiles),
]


def open_async_store(
    url: str | None = None, *, max_threads: int | None = None, native: bool = True, **kwargs: Any
) -> AsyncStore:
    """Open the store ``url`` names (as :func:`atlas_tasks.store.urls.open_store`, same arguments) as an async
    store that owns it: ``aclose()`` (or leaving ``async with``) closes both.

    A ``postgresql://`` URL opens a native async store (psycopg's async pool, no thread; ``pool=`` may be a
    ``psycopg_pool.AsyncConnectionPool``); ``native=False`` wraps the sync PostgreSQL store in the thread pool
    instead. Other stores always use the thread pool.

    Opening is quick (no I/O beyond what ``open_store`` does); call it from a coroutine or not.
    """
    from atlas_tasks.store.urls import open_store

    if native and url is not None and url.startswith(("postgresql://", "postgres://")):
        store = open_store(url, native=True, **kwargs)
        return AsyncStore.from_store(store, max_threads=max_threads, owns_store=True, offload=GreenletOffload())
    store = open_store(url, **kwargs)
    return AsyncStore.from_store(store, max_threads=max_threads, owns_store=True)


def wrap(store: Store, *, max_threads: int | None = None) -> AsyncStore:
    """``AsyncStore.from_store(store)``: an async store over a sync store you keep owning (and closing)."""
    return AsyncStore.from_store(store, max_threads=max_threads)
