"""Live updates: Server-Sent Events that push a task's status and step changes and its new log lines.

A :class:`LiveSource` tells cheaply whether a task changed and what was appended to its log. A store with change
stamps (:class:`~atlas_tasks.store.capabilities.ChangeStamps`, the file store) gets :class:`StampLiveSource`: it
watches the task's stamp (a ``stat`` of task.json) and the run lease (a runner that dies writes nothing, but its
task must turn into "interrupted (crashed)"), and reads the log after the last position sent, as ``logs --follow``
does. :class:`StoreLiveSource` polls through the Store protocol alone. Any other store gets
:class:`FollowingLiveSource`, driven by its ``follow_log`` (PostgreSQL's LISTEN/NOTIFY): new log lines are
pushed the moment they commit, and so is every task write (status, steps, transitions): a stream waiting between
polls wakes up at once to re-read the task. The poll is then only the fallback for what sends no notification (a
runner that died: its lease is gone, and nothing was written).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import anyio
import anyio.to_thread

from atlas_tasks.errors import AtlasTasksError
from atlas_tasks.runs import ACTIVE_STATUSES
from atlas_tasks.store import LogTail
from atlas_tasks.store.capabilities import ChangeStamps
from atlas_tasks.views import text as _text
from atlas_tasks.views.display import display_state
from atlas_tasks.web import _views

if TYPE_CHECKING:
    from starlette.requests import Request

    from atlas_tasks.runs import LeasingStore
    from atlas_tasks.store import Store

T = TypeVar("T")

#: A comment line that keeps proxies and the browser from closing an idle stream.
KEEPALIVE = ": keepalive\n\n"


@dataclass
class LogCursor:
    """Where a log follower stands: the position after the last line sent (a ``tail_log`` position).

    Positions are opaque: byte offsets into task.log (file store), line sequence numbers (PostgreSQL), or entry
    counts (any other store). They are what a ``log`` event's ``id`` carries, so a reconnect resumes from one.
    """

    position: int = 0


#: Log lines one read of a stream takes (then they go out as one write): what one step of a stream may hold.
LOG_BATCH = 500


def log_window(store: Store, workspace: str, task_id: str, lines: int, after: int | None = None) -> LogTail:
    """``store.tail_log``: only the window is read where the backend can (file store, PostgreSQL)."""
    return store.tail_log(workspace, task_id, lines, after=after)


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

    def log_since(self, workspace: str, task_id: str, cursor: LogCursor) -> LogTail:
        """Up to :data:`LOG_BATCH` intact log entries after ``cursor`` (which is advanced past them)."""
        ...

    def mark(self, workspace: str, task_id: str) -> object:
        """Taken before reading the task: ``wait(…, since=mark)`` returns at once if a change was announced since."""
        ...

    async def wait(self, workspace: str | None, task_id: str | None, timeout: float, since: object = None) -> None:
        """Return after ``timeout`` seconds, or earlier when the backend knows something changed (since ``since``)."""
        ...


class StoreLiveSource:
    """Polling through the Store protocol: works with any backend, costs one read per task per poll."""

    def __init__(self, store: LeasingStore) -> None:
        self.store = store

    def task_stamp(self, workspace: str, task_id: str) -> object:
        """The task's revision and update time, and (running tasks only) whether a live runner holds it."""
        task = self.store.get(workspace, task_id)
        held = task.status in ACTIVE_STATUSES and self.store.lease_holder(workspace, task_id) is not None
        return (task.revision, task.updated_at, held)

    def log_since(self, workspace: str, task_id: str, cursor: LogCursor) -> LogTail:
        """The next window of the log after ``cursor.position`` (``window.more``: another one follows at once)."""
        window = log_window(self.store, workspace, task_id, LOG_BATCH, after=cursor.position)
        cursor.position = window.end
        return window

    def mark(self, workspace: str, task_id: str) -> object:
        """Nothing: without notifications there is nothing to miss between a read and the next wait."""
        return None

    async def wait(self, workspace: str | None, task_id: str | None, timeout: float, since: object = None) -> None:
        """Sleep (a backend with notifications would wake up early)."""
        await anyio.sleep(timeout)


class StampLiveSource(StoreLiveSource):
    """A store with :class:`~atlas_tasks.store.capabilities.ChangeStamps` (the file store): the task's change stamp
    (a ``stat`` of task.json) instead of decoding it; the log is read a window at a time after the last position
    sent (``tail_log(after=…)``: only the new lines are read; a line still being written waits for its newline)."""

    def __init__(self, store: LeasingStore) -> None:
        super().__init__(store)
        if not isinstance(store, ChangeStamps):
            raise TypeError(f"{store!r} has no change stamps; use StoreLiveSource")
        self.stamps: ChangeStamps = store

    def task_stamp(self, workspace: str, task_id: str) -> object:
        """The task's change stamp (it changes on every write) and whether a live runner holds it."""
        return (self.stamps.task_stamp(workspace, task_id), self.store.lease_holder(workspace, task_id) is not None)


#: The source's name before it worked for any store with change stamps.
FileLiveSource = StampLiveSource


class _Follower:
    """One task's log and writes, followed in a thread of its own through ``store.follow_log`` (LISTEN/NOTIFY).

    Every stream of the task waits on it, so a task watched in ten tabs costs one database connection. Each new
    line and each task write bumps ``generation`` and wakes the waiting streams, which then read the new lines
    from their own positions (``tail_log``); the follower keeps none. It starts at the log's end, never reading
    the lines before it. It stops (and frees its connection) once no stream has asked for it or waited on it for
    ``idle`` seconds.
    """

    def __init__(self, follow: Callable[..., Iterator[dict[str, Any]]], idle: float, on_exit: Callable[[], None]):
        self.error: AtlasTasksError | None = None
        self.finished = False
        self._follow = follow
        self._idle = idle
        self._on_exit = on_exit
        self._lock = threading.Lock()
        self._used = time.monotonic()
        self._stop = False
        self.generation = 0
        self.listening = threading.Event()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()
        self._thread = threading.Thread(target=self._run, name="atlas-tasks-follow-log", daemon=True)
        self._thread.start()

    def touch(self) -> None:
        self._used = time.monotonic()

    def _idle_now(self) -> bool:
        with self._lock:
            waited_on = bool(self._waiters)
        if waited_on:
            self._used = time.monotonic()
        return self._stop or time.monotonic() - self._used > self._idle

    def stop(self, timeout: float) -> None:
        """Stop following (within the follower's poll interval) and wait up to ``timeout`` seconds for it."""
        self._stop = True
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            follow = self._follow(
                until=self._idle_now, poll=1.0, on_listen=self.listening.set, on_task=lambda _revision: self._wake()
            )
            for _entry in follow:  # each stream reads the new lines itself, from its own position
                self._wake()
        except AtlasTasksError as exc:  # deleted, or the server went away: the streams say so
            self.error = exc
        except Exception as exc:  # noqa: BLE001 - a thread must not die with a traceback: its streams say it
            self.error = AtlasTasksError(f"following the log failed: {type(exc).__name__}: {exc}")
        finally:
            self.finished = True
            self.listening.set()
            self._on_exit()
            self._wake()

    def _wake(self) -> None:
        with self._lock:
            self.generation += 1
            waiters, self._waiters = self._waiters, set()
        for loop, future in waiters:
            loop.call_soon_threadsafe(_resolve, future)

    async def wait(self, timeout: float, since: int | None = None) -> None:
        """Return when a new line or task write arrives (or one did after ``since``), or after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        waiter = (loop, future)
        with self._lock:
            if since is not None and since != self.generation and not self.finished:
                return  # something came after the caller's read began (a finished follower: wait, then retry)
            self._waiters.add(waiter)
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            pass
        finally:
            with self._lock:
                self._waiters.discard(waiter)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class FollowingLiveSource(StoreLiveSource):
    """A store with notifications (``follow_log``, PostgreSQL's LISTEN/NOTIFY): changes are pushed, not polled.

    A stream waiting for its next poll wakes up as soon as a log line or a task write (status, steps, transitions,
    delete) commits, and re-reads the task at once. The poll remains for what no notification announces: a runner
    that died holding the lease.
    """

    def __init__(self, store: LeasingStore, idle: float = 30.0) -> None:
        super().__init__(store)
        self.idle = idle
        self._lock = threading.Lock()
        self._followers: dict[tuple[str, str], _Follower] = {}

    def follower(self, workspace: str, task_id: str) -> _Follower:
        """The task's follower, started on first use (and again after it stopped)."""
        key = (workspace, task_id)
        with self._lock:
            current = self._followers.get(key)
            if current is None or current.finished:
                follow_log: Callable[..., Iterator[dict[str, Any]]] = self.store.follow_log

                def follow(**options: Any) -> Iterator[dict[str, Any]]:
                    options["after"] = log_window(self.store, workspace, task_id, 0).end  # start at the end
                    return follow_log(workspace, task_id, **options)

                current = _Follower(follow, self.idle, lambda: self._forget(key))
                self._followers[key] = current
            current.touch()
            return current

    def _forget(self, key: tuple[str, str]) -> None:
        with self._lock:
            follower = self._followers.get(key)
            if follower is not None and follower.finished:
                del self._followers[key]

    def log_since(self, workspace: str, task_id: str, cursor: LogCursor) -> LogTail:
        """The next window after ``cursor`` (the follower, kept alive by this call, only says when to look)."""
        follower = self.follower(workspace, task_id)
        window = super().log_since(workspace, task_id, cursor)
        if not window and follower.error is not None:
            raise follower.error
        return window

    def mark(self, workspace: str, task_id: str, listen_timeout: float = 10.0) -> object:
        """The task's follower (started, and listening, before the caller reads) and how many changes it has seen."""
        follower = self.follower(workspace, task_id)
        follower.listening.wait(listen_timeout)  # blocks: call it off the event loop
        return (follower, follower.generation)

    async def wait(self, workspace: str | None, task_id: str | None, timeout: float, since: object = None) -> None:
        """Until the task's next log line or write commits (or one did after ``since``), or ``timeout``."""
        if workspace is None or task_id is None:
            await anyio.sleep(timeout)
            return
        if isinstance(since, tuple) and len(since) == 2 and isinstance(since[0], _Follower):
            marked, generation = since
            marked.touch()
            await marked.wait(timeout, generation)
            return
        await self.follower(workspace, task_id).wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Stop every follower and give back their connections (the server is shutting down)."""
        with self._lock:
            followers = list(self._followers.values())
        deadline = time.monotonic() + timeout
        for follower in followers:
            follower.stop(max(0.0, deadline - time.monotonic()))

    def following(self) -> int:
        """How many task logs are being followed now (each holds one database connection)."""
        with self._lock:
            return sum(1 for follower in self._followers.values() if not follower.finished)


def source_for(store: LeasingStore) -> LiveSource:
    """The cheapest change detection for this store: change stamps where it has them (the file store), else its
    ``follow_log`` (PostgreSQL: LISTEN/NOTIFY pushes every line and write)."""
    if isinstance(store, ChangeStamps):
        return StampLiveSource(store)
    return FollowingLiveSource(store)


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
    """The event stream of one task page: ``task`` (state), ``log`` (one new line each), ``end``, ``gone``.

    Log lines are sent from the position ``log_from`` on (the end of what the page shows, or a reconnect's
    Last-Event-ID), read :data:`LOG_BATCH` at a time: the stream never reads the log whole.
    """
    clock = _Clock(settings)
    cursor = LogCursor(position=log_from)
    last: object = object()
    yield "retry: 2000\n\n"
    while True:
        try:
            mark = await _off_thread(source.mark, workspace, task_id)
            stamp = await _off_thread(source.task_stamp, workspace, task_id)
            terminal = False
            if stamp != last:
                task = await _off_thread(store.get, workspace, task_id)
                state = await _off_thread(_views.task_state, store, workspace, task)
                terminal = bool(state["terminal"])
                yield sse("task", state)
                clock.sent()
                last = stamp
            while True:
                # Never two writes without an await between them (here: the next window, read off the event
                # loop). The event loop then runs the server's connection_lost for a client that went away, and
                # later writes are dropped quietly. Writing line after line without awaiting made uvicorn write
                # into the closed socket, printing "socket.send() raised exception." for every line.
                window = await _off_thread(source.log_since, workspace, task_id, cursor)
                if window:
                    # One write per window. Each id is the position after its line: a reconnect's Last-Event-ID.
                    yield "".join(
                        sse("log", {"pieces": _views.log_line(record, workspace, task_id)}, position)
                        for record, position in zip(window, window.positions, strict=True)
                    )
                    clock.sent()
                if not window.more:
                    break
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
        await source.wait(workspace, task_id, settings.poll, mark)


def row_state(store: LeasingStore, workspace: str, task_id: str) -> dict[str, Any]:
    """A listing row as the live list redraws it (the ``row`` event)."""
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    shown = display_state(store, workspace, store.get(workspace, task_id), now=now)
    task = shown.task
    return {
        "key": f"{workspace}/{task_id}",
        "status": shown.label,
        "status_class": _views.status_class(shown.status),
        "step": _text.step_progress(task),
        "updated": _text.ago(task.updated_at, now),
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
    "LOG_BATCH",
    "FileLiveSource",
    "FollowingLiveSource",
    "LiveSettings",
    "LiveSource",
    "LogCursor",
    "StampLiveSource",
    "StoreLiveSource",
    "log_window",
    "row_events",
    "row_state",
    "source_for",
    "sse",
    "task_events",
]
