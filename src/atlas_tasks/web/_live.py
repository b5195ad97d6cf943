"""Live updates: Server-Sent Events that push a task's status and step changes and its new log lines.

A :class:`LiveSource` tells cheaply whether a task changed and what was appended to its log. The file store's
watches the ``task.json`` inode/mtime and the run lease (a runner that dies writes nothing, but its task must turn
into "interrupted (crashed)"), and follows ``task.log`` by byte offset, as ``logs --follow`` does. Any other
store gets :class:`StoreLiveSource`, which polls through the Store protocol; a PostgreSQL source can implement
:meth:`LiveSource.wait` with LISTEN/NOTIFY instead of sleeping.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import anyio
import anyio.to_thread

from atlas_tasks.cli import _render
from atlas_tasks.errors import AtlasTasksError
from atlas_tasks.runs import is_interrupted
from atlas_tasks.web import _views

if TYPE_CHECKING:
    from starlette.requests import Request

    from atlas_tasks.backends.file import FileStore
    from atlas_tasks.runs import LeasingStore

T = TypeVar("T")

#: A comment line that keeps proxies and the browser from closing an idle stream.
KEEPALIVE = ": keepalive\n\n"


@dataclass
class LogCursor:
    """Where a log follower stands: intact entries seen so far, and (file store) the bytes consumed."""

    count: int = 0
    offset: int = -1  # -1: not positioned yet; the first read takes the whole file and skips ``count`` entries


@dataclass(frozen=True)
class LiveSettings:
    """How often streams look for changes, how long one stream lives (the browser reconnects), keepalives."""

    poll: float = 0.5
    lifetime: float = 600.0
    keepalive: float = 15.0


class LiveSource(Protocol):
    """Change detection for one backend."""

    def task_stamp(self, workspace: str, task_id: str) -> object:
        """A cheap value that changes whenever the task (or whether a live runner holds it) changes."""
        ...

    def log_since(self, workspace: str, task_id: str, cursor: LogCursor) -> list[dict[str, Any]]:
        """The intact log entries after ``cursor`` (which is advanced past them)."""
        ...

    async def wait(self, workspace: str | None, task_id: str | None, timeout: float) -> None:
        """Return after ``timeout`` seconds, or earlier when the backend knows something changed."""
        ...


class StoreLiveSource:
    """Polling through the Store protocol: works with any backend, costs one read per task per poll."""

    def __init__(self, store: LeasingStore) -> None:
        self.store = store

    def task_stamp(self, workspace: str, task_id: str) -> object:
        """The task's revision and whether a live runner holds it."""
        task = self.store.get(workspace, task_id)
        return (task.revision, task.updated_at, self.store.lease_holder(workspace, task_id) is not None)

    def log_since(self, workspace: str, task_id: str, cursor: LogCursor) -> list[dict[str, Any]]:
        """Everything after the first ``cursor.count`` entries."""
        log = self.store.read_log(workspace, task_id)
        new = list(log[cursor.count :])
        cursor.count = max(cursor.count, len(log))
        return new

    async def wait(self, workspace: str | None, task_id: str | None, timeout: float) -> None:
        """Sleep (a backend with notifications would wake up early)."""
        await anyio.sleep(timeout)


class FileLiveSource(StoreLiveSource):
    """The file store: ``stat`` of task.json instead of decoding it, and the log followed by byte offset."""

    def __init__(self, store: FileStore) -> None:
        super().__init__(store)
        self.file_store = store

    def task_stamp(self, workspace: str, task_id: str) -> object:
        """task.json's inode, mtime and size (it is replaced by rename on every write) and the lease state."""
        path = self.file_store.task_path(workspace, task_id) / "task.json"  # validates both names
        try:
            st = path.lstat()
            file: object = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            file = None
        return (file, self.store.lease_holder(workspace, task_id) is not None)

    def log_since(self, workspace: str, task_id: str, cursor: LogCursor) -> list[dict[str, Any]]:
        """New complete lines of task.log; a line still being written is read on the next call."""
        from atlas_tasks.backends.file import parse_log

        path = self.file_store.log_path(workspace, task_id)
        chunk = _read_from(str(path), max(cursor.offset, 0))
        if chunk is None:  # the log shrank (doctor cut a torn tail): read it again, skip what was sent
            cursor.offset = -1
            chunk = _read_from(str(path), 0) or b""
        complete = chunk[: chunk.rfind(b"\n") + 1]
        records = list(parse_log(complete, workspace, task_id, str(path)))
        if cursor.offset < 0:
            records = records[cursor.count :]
            cursor.offset = 0
        cursor.offset += len(complete)
        cursor.count += len(records)
        return records


def _read_from(path: str, offset: int) -> bytes | None:
    """The file's bytes from ``offset``; empty if it does not exist yet; None if it is now shorter than that."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return b""
    with os.fdopen(fd, "rb") as f:
        if os.fstat(fd).st_size < offset:
            return None
        f.seek(offset)
        return f.read()


def source_for(store: LeasingStore) -> LiveSource:
    """The cheapest change detection for this store."""
    from atlas_tasks.backends.file import FileStore

    return FileLiveSource(store) if isinstance(store, FileStore) else StoreLiveSource(store)


# -- the SSE wire format --------------------------------------------------------------------------------------------


def sse(event: str, data: Any, event_id: int | None = None) -> str:
    """One event: ``event:``, optional ``id:``, and the data as one line of JSON (ASCII, so never a raw newline)."""
    head = f"event: {event}\n" + (f"id: {event_id}\n" if event_id is not None else "")
    return f"{head}data: {json.dumps(data, ensure_ascii=True)}\n\n"


async def _off_thread(fn: Callable[..., T], *args: Any) -> T:
    # The store's calls block on the disk (or the network): keep them off the event loop.
    return await anyio.to_thread.run_sync(fn, *args)


class _Clock:
    """When the stream must end (the browser reconnects) and when it needs a keepalive."""

    def __init__(self, settings: LiveSettings) -> None:
        self.settings = settings
        self.deadline = time.monotonic() + settings.lifetime
        self.last_sent = time.monotonic()

    def sent(self) -> None:
        self.last_sent = time.monotonic()

    def expired(self) -> bool:
        return time.monotonic() >= self.deadline

    def keepalive_due(self) -> bool:
        return time.monotonic() - self.last_sent >= self.settings.keepalive


async def task_events(
    request: Request,
    store: LeasingStore,
    source: LiveSource,
    workspace: str,
    task_id: str,
    log_from: int,
    settings: LiveSettings,
) -> AsyncIterator[str]:
    """The event stream of one task page: ``task`` (state), ``log`` (one new line each), ``end``, ``gone``."""
    clock = _Clock(settings)
    cursor = LogCursor(count=log_from)
    last: object = object()
    yield "retry: 2000\n\n"
    while True:
        try:
            stamp = await _off_thread(source.task_stamp, workspace, task_id)
            terminal = False
            if stamp != last:
                task = await _off_thread(store.get, workspace, task_id)
                state = await _off_thread(_views.task_state, store, workspace, task)
                terminal = bool(state["terminal"])
                yield sse("task", state)
                clock.sent()
                last = stamp
            records = await _off_thread(source.log_since, workspace, task_id, cursor)
            # The id is the number of lines shown once this one is: what a reconnect passes as Last-Event-ID.
            for number, record in enumerate(records, cursor.count - len(records) + 1):
                yield sse("log", {"pieces": _views.log_line(record, workspace, task_id)}, number)
                clock.sent()
        except AtlasTasksError as exc:  # deleted or damaged while watched: say so once and stop
            yield sse("gone", {"message": exc.message})
            return
        if terminal:
            yield sse("end", {})
            return
        if clock.expired() or await request.is_disconnected():
            return
        if clock.keepalive_due():
            yield KEEPALIVE
            clock.sent()
        await source.wait(workspace, task_id, settings.poll)


def row_state(store: LeasingStore, workspace: str, task_id: str) -> dict[str, Any]:
    """A listing row as the live list redraws it (the ``row`` event)."""
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    task = store.get(workspace, task_id)
    crashed = is_interrupted(store, workspace, task, now=now)
    return {
        "key": f"{workspace}/{task_id}",
        "status": _views.display_status(task, crashed),
        "status_class": _views.status_class(_views.CRASHED if crashed else str(task.status)),
        "step": _render.step_progress(task),
        "updated": _render.ago(task.updated_at, now),
    }


async def row_events(
    request: Request,
    store: LeasingStore,
    source: LiveSource,
    keys: Sequence[tuple[str, str]],
    settings: LiveSettings,
) -> AsyncIterator[str]:
    """The event stream of a listing page: a ``row`` event whenever one of the listed tasks changes."""
    clock = _Clock(settings)
    seen: dict[tuple[str, str], object] = {}
    yield "retry: 5000\n\n"
    while True:
        for key in keys:
            try:
                stamp = await _off_thread(source.task_stamp, *key)
                if seen.get(key, ...) == stamp:
                    continue
                seen[key] = stamp
                yield sse("row", await _off_thread(row_state, store, *key))
                clock.sent()
            except AtlasTasksError:
                seen[key] = None  # deleted or unreadable: the next full page load shows why
        if clock.expired() or await request.is_disconnected():
            return
        if clock.keepalive_due():
            yield KEEPALIVE
            clock.sent()
        await source.wait(None, None, settings.poll)


__all__ = [
    "FileLiveSource",
    "LiveSettings",
    "LiveSource",
    "LogCursor",
    "StoreLiveSource",
    "row_events",
    "row_state",
    "source_for",
    "sse",
    "task_events",
]
