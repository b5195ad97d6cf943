"""The Store contract, sync, by awaiting an :class:`~atlas_tasks.aio.AsyncStore` on an event loop in a helper thread.

It lets the sync conformance suite (:class:`~atlas_tasks.testing.StoreTests` and the capability mixins) test the
async store: every call of a test goes through a coroutine of the async store, awaited on the loop::

    loop = LoopThread()
    store = SyncOverAsync(AsyncStore.from_store(FileStore(home)), loop)   # capabilities follow the async store's

Only for tests: a real program that has a loop awaits the async store itself.
"""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from atlas_tasks.aio import (
    AsyncChangeStamps,
    AsyncCollectorLocks,
    AsyncImportable,
    AsyncLeaseHandle,
    AsyncLocalFiles,
    AsyncRepairable,
    AsyncRunLeases,
    AsyncStore,
    AsyncTombstones,
)
from atlas_tasks.errors import AtlasTasksError
from atlas_tasks.models import Task, TaskRef, Workspace
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
    from atlas_tasks.runs import Run

T = TypeVar("T")


class LoopThread:
    """An event loop running forever on a daemon thread; :meth:`run` awaits a coroutine there from any thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="atlas-test-loop", daemon=True)
        self._thread.start()

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class _Lease:
    def __init__(self, handle: AsyncLeaseHandle, loop: LoopThread) -> None:
        self._handle, self._loop = handle, loop

    def release(self) -> None:
        self._loop.run(self._handle.release())


class _BlockFailed(Exception):
    """Raised inside the async ``edit`` so it sees the sync block fail (and saves nothing)."""


class SyncOverAsync:
    """Each method of the Store contract as a sync call that awaits the async store's coroutine on ``loop``."""

    _mixins: ClassVar[builtins.list[tuple[type, type]]] = []
    _classes: ClassVar[dict[tuple[type, ...], type[SyncOverAsync]]] = {}

    def __new__(cls, store: AsyncStore, loop: LoopThread) -> SyncOverAsync:
        if cls is not SyncOverAsync:
            return super().__new__(cls)
        bases = tuple(mixin for capability, mixin in SyncOverAsync._mixins if isinstance(store, capability))
        made = cls._classes.get(bases)
        if made is None:
            made = cls._classes[bases] = cast(type[SyncOverAsync], type("SyncOverAsync", (*bases, cls), {}))
        return super().__new__(made)

    def __init__(self, store: AsyncStore, loop: LoopThread) -> None:
        self.astore = store
        self._loop = loop

    def _run(self, work: Coroutine[Any, Any, T]) -> T:
        return self._loop.run(work)

    def _iterate(self, items: AsyncIterator[T]) -> Iterator[T]:
        async def step() -> tuple[bool, T | None]:
            try:
                return True, await items.__anext__()
            except StopAsyncIteration:
                return False, None

        try:
            while True:
                more, item = self._run(step())
                if not more:
                    return
                yield cast(T, item)
        finally:
            aclose = getattr(items, "aclose", None)
            if aclose is not None:
                self._run(aclose())

    def close(self) -> None:
        self._run(self.astore.aclose())

    @property
    def url(self) -> str:
        return self.astore.url

    @property
    def delete_batch(self) -> int:
        return self.astore.delete_batch

    @property
    def id_clock(self) -> Any:
        """The wrapped store's clock for timestamp ids (a hook the conformance suite steps back)."""
        return getattr(self.astore.sync_store, "id_clock", None)

    @id_clock.setter
    def id_clock(self, clock: Any) -> None:
        self.astore.sync_store.id_clock = clock  # type: ignore[attr-defined]

    def create_workspace(
        self,
        name: str,
        *,
        path: str = "",
        worktree_path: str = "",
        branch: str = "",
        metadata: Mapping[str, Any] | None = None,
        exist_ok: bool = False,
    ) -> Workspace:
        return self._run(
            self.astore.create_workspace(
                name, path=path, worktree_path=worktree_path, branch=branch, metadata=metadata, exist_ok=exist_ok
            )
        )

    def get_workspace(self, name: str) -> Workspace:
        return self._run(self.astore.get_workspace(name))

    def list_workspaces(self) -> WorkspaceList:
        return self._run(self.astore.list_workspaces())

    def set_workspace_status(self, name: str, status: str) -> Workspace:
        return self._run(self.astore.set_workspace_status(name, status))

    def create(self, workspace: str, task: Task) -> Task:
        return self._run(self.astore.create(workspace, task))

    def get(self, workspace: str, task_id: str) -> Task:
        return self._run(self.astore.get(workspace, task_id))

    def update(self, workspace: str, task: Task) -> Task:
        return self._run(self.astore.update(workspace, task))

    @contextlib.contextmanager
    def edit(self, workspace: str, task_id: str) -> Iterator[Task]:
        entered: concurrent.futures.Future[tuple[Task, asyncio.Future[bool]]] = concurrent.futures.Future()

        async def hold() -> None:
            gate: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            async with self.astore.edit(workspace, task_id) as task:
                entered.set_result((task, gate))
                if await gate:
                    raise _BlockFailed

        held = asyncio.run_coroutine_threadsafe(hold(), self._loop.loop)
        waiting: builtins.list[concurrent.futures.Future[Any]] = [entered, held]
        concurrent.futures.wait(waiting, return_when=concurrent.futures.FIRST_COMPLETED)
        if not entered.done():
            held.result()  # raises what entering raised
        task, gate = entered.result()
        try:
            yield task
        except BaseException:
            self._loop.loop.call_soon_threadsafe(gate.set_result, True)
            with contextlib.suppress(_BlockFailed):
                held.result()
            raise
        self._loop.loop.call_soon_threadsafe(gate.set_result, False)
        held.result()

    def modify(self, workspace: str, task_id: str, fn: Callable[[Task], object]) -> Task:
        return self._run(self.astore.modify(workspace, task_id, fn))

    def list(self, workspace: str, *, strict: bool = False, limit: int | None = None) -> TaskList:
        return self._run(self.astore.list(workspace, strict=strict, limit=limit))

    def iter_tasks(self, workspace: str, *, errors: builtins.list[AtlasTasksError] | None = None) -> Iterator[Task]:
        return self._iterate(self.astore.iter_tasks(workspace, errors=errors))

    def list_summaries(self, workspace: str) -> SummaryList:
        return self._run(self.astore.list_summaries(workspace))

    def delete(self, workspace: str, task_id: str, *, reason: str | None = None) -> None:
        self._run(self.astore.delete(workspace, task_id, reason=reason))

    def delete_many(
        self, workspace: str, task_ids: Iterable[str], *, reason: str | None = None
    ) -> dict[str, AtlasTasksError]:
        return self._run(self.astore.delete_many(workspace, task_ids, reason=reason))

    def append_log(self, workspace: str, task_id: str, entry: LogEntry) -> None:
        self._run(self.astore.append_log(workspace, task_id, entry))

    def read_log(self, workspace: str, task_id: str, *, rotated: bool = False) -> LogLines:
        return self._run(self.astore.read_log(workspace, task_id, rotated=rotated))

    def iter_log(self, workspace: str, task_id: str) -> Iterator[dict[str, Any]]:
        return self._iterate(self.astore.iter_log(workspace, task_id))

    def tail_log(self, workspace: str, task_id: str, lines: int, *, after: int | None = None) -> LogTail:
        return self._run(self.astore.tail_log(workspace, task_id, lines, after=after))

    def follow_log(
        self,
        workspace: str,
        task_id: str,
        *,
        until: Callable[[], bool],
        poll: float = 1.0,
        after: int = 0,
        on_listen: Callable[[], None] | None = None,
        on_task: Callable[[str], None] | None = None,
    ) -> Iterator[dict[str, Any]]:
        return self._iterate(
            self.astore.follow_log(
                workspace, task_id, until=until, poll=poll, after=after, on_listen=on_listen, on_task=on_task
            )
        )

    def save_artifact(self, workspace: str, task_id: str, filename: str, data: bytes | str) -> str:
        return self._run(self.astore.save_artifact(workspace, task_id, filename, data))

    def save_versioned_artifact(self, workspace: str, task_id: str, base_name: str, data: bytes | str) -> str:
        return self._run(self.astore.save_versioned_artifact(workspace, task_id, base_name, data))

    def get_artifact(self, workspace: str, task_id: str, filename: str) -> bytes:
        return self._run(self.astore.get_artifact(workspace, task_id, filename))

    def list_artifacts(self, workspace: str, task_id: str) -> builtins.list[str]:
        return self._run(self.astore.list_artifacts(workspace, task_id))

    def open_artifact(self, workspace: str, task_id: str, filename: str) -> ArtifactReader:
        reader = self._run(self.astore.open_artifact(workspace, task_id, filename))

        async def whole() -> bytes:
            return b"".join([chunk async for chunk in reader.chunks()])

        return ArtifactReader(reader.size, lambda: self._run(whole()))

    def artifact_sizes(self, workspace: str, task_id: str) -> dict[str, int]:
        return self._run(self.astore.artifact_sizes(workspace, task_id))

    def delete_artifact(self, workspace: str, task_id: str, filename: str) -> None:
        self._run(self.astore.delete_artifact(workspace, task_id, filename))

    def rotate_log(
        self, workspace: str, task_id: str, *, max_bytes: int, keep_bytes: int | None = None, dry_run: bool = False
    ) -> LogRotation:
        return self._run(
            self.astore.rotate_log(workspace, task_id, max_bytes=max_bytes, keep_bytes=keep_bytes, dry_run=dry_run)
        )

    def run(self, workspace: str, task_id: str) -> contextlib.AbstractContextManager[Run]:
        """A sync run whose every store call goes through the async store (runs.run over this facade)."""
        from atlas_tasks import runs

        return runs.run(cast(runs.LeasingStore, self), workspace, task_id)


class _SyncRunLeases(SyncOverAsync):
    def acquire_lease(self, workspace: str, task_id: str, holder: Mapping[str, Any]) -> _Lease:
        store = cast(AsyncRunLeases, self.astore)
        return _Lease(self._run(store.acquire_lease(workspace, task_id, holder)), self._loop)

    def lease_holder(self, workspace: str, task_id: str) -> dict[str, Any] | None:
        return self._run(cast(AsyncRunLeases, self.astore).lease_holder(workspace, task_id))

    def lease_candidates(self, workspace: str) -> builtins.set[str] | None:
        return self._run(cast(AsyncRunLeases, self.astore).lease_candidates(workspace))


class _SyncChangeStamps(SyncOverAsync):
    def workspace_names(self) -> builtins.list[str]:
        return self._run(cast(AsyncChangeStamps, self.astore).workspace_names())

    def task_stamps(self, workspace: str) -> dict[str, Any]:
        return self._run(cast(AsyncChangeStamps, self.astore).task_stamps(workspace))

    def task_stamp(self, workspace: str, task_id: str) -> Any:
        return self._run(cast(AsyncChangeStamps, self.astore).task_stamp(workspace, task_id))


class _SyncRepairable(SyncOverAsync):
    def check(self, workspace: str | None = None, *, fix: bool = False) -> CheckReport:
        return self._run(cast(AsyncRepairable, self.astore).check(workspace, fix=fix))


class _SyncImportable(SyncOverAsync):
    def import_workspace(self, workspace: Workspace, *, replace: bool = False) -> bool:
        return self._run(cast(AsyncImportable, self.astore).import_workspace(workspace, replace=replace))

    def import_task(
        self,
        workspace: str,
        task: Task,
        *,
        log_lines: Iterable[LogEntry] = (),
        artifacts: Mapping[str, bytes | str] | None = None,
        ref: TaskRef | None = None,
        replace: bool = False,
    ) -> Task:
        store = cast(AsyncImportable, self.astore)
        return self._run(
            store.import_task(workspace, task, log_lines=log_lines, artifacts=artifacts, ref=ref, replace=replace)
        )

    def import_tombstone(self, tombstone: Tombstone) -> bool:
        return self._run(cast(AsyncImportable, self.astore).import_tombstone(tombstone))


class _SyncCollectorLocks(SyncOverAsync):
    def collector_lock(self, holder: Mapping[str, Any]) -> _Lease:
        return _Lease(self._run(cast(AsyncCollectorLocks, self.astore).collector_lock(holder)), self._loop)


class _SyncTombstones(SyncOverAsync):
    def tombstone(self, workspace: str, task_id: str) -> Tombstone | None:
        return self._run(cast(AsyncTombstones, self.astore).tombstone(workspace, task_id))

    def tombstones(self, workspace: str) -> builtins.list[Tombstone]:
        return self._run(cast(AsyncTombstones, self.astore).tombstones(workspace))


class _SyncLocalFiles(SyncOverAsync):
    @property
    def home(self) -> Path:
        return cast(AsyncLocalFiles, self.astore).home

    @property
    def go_home(self) -> Path:
        return cast(AsyncLocalFiles, self.astore).go_home

    def workspace_path(self, workspace: str) -> Path:
        return cast(AsyncLocalFiles, self.astore).workspace_path(workspace)

    def task_path(self, workspace: str, task_id: str) -> Path:
        return cast(AsyncLocalFiles, self.astore).task_path(workspace, task_id)

    def log_path(self, workspace: str, task_id: str) -> Path:
        return cast(AsyncLocalFiles, self.astore).log_path(workspace, task_id)


SyncOverAsync._mixins = [
    (AsyncRunLeases, _SyncRunLeases),
    (AsyncChangeStamps, _SyncChangeStamps),
    (AsyncRepairable, _SyncRepairable),
    (AsyncImportable, _SyncImportable),
    (AsyncCollectorLocks, _SyncCollectorLocks),
    (AsyncTombstones, _SyncTombstones),
    (AsyncLocalFiles, _SyncLocalFiles),
]

__all__ = ["LoopThread", "SyncOverAsync"]
