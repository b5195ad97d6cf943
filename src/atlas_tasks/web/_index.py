"""Listing tasks for the dashboard fast: a page of 10,000 tasks must not decode 10,000 task.json files each time.

The file store's ``list`` reads and validates every task (seconds for 10,000). :class:`StampTaskIndex` keeps the
decoded tasks and, on each request, asks the store only for its change stamps
(:class:`~atlas_tasks.store.capabilities.ChangeStamps`; the file store ``stat``s each ``task.json``): a task is
read again when its stamp changed. Other backends (PostgreSQL) get :class:`SummaryTaskIndex`:
one ``list_summaries`` query per listing gives each task's revision, and only the tasks whose revision changed are
read in full. :class:`StoreTaskIndex` (``store.list`` every time) is for stores with neither.
"""

from __future__ import annotations

import operator
import threading
from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from atlas_tasks import names as N
from atlas_tasks._gcpause import gc_paused
from atlas_tasks.errors import (
    AtlasTasksError,
    CorruptTaskError,
    SchemaVersionError,
    TaskNotFoundError,
)
from atlas_tasks.runs import ACTIVE_STATUSES
from atlas_tasks.store import SummaryList, TaskList, TaskSummary
from atlas_tasks.store.capabilities import ChangeStamps

if TYPE_CHECKING:
    from atlas_tasks.models import Task, Workspace
    from atlas_tasks.store import Store

    class ChangeStampStore(Store, ChangeStamps, Protocol):
        """A store with change stamps."""


#: Above this many changed tasks one ``store.list`` is cheaper (and exactly the store's semantics).
FULL_RELOAD_AFTER = 64


def _load_one(store: Store, workspace: str, task_id: str) -> Task | AtlasTasksError | None:
    """One task for the index: the task, its read error, or None if it was deleted since the listing."""
    try:
        return store.get(workspace, task_id)
    except (CorruptTaskError, SchemaVersionError) as exc:
        return exc
    except TaskNotFoundError:
        return None


class TaskIndex(Protocol):
    """Where the dashboard gets workspace names and task listings from."""

    def workspace_names(self) -> list[str]:
        """The names of every workspace, sorted (unreadable ones are left to the workspaces page)."""
        ...

    def tasks(self, workspace: str) -> TaskList:
        """The workspace's tasks, newest first, with ``.errors`` (what ``store.list`` returns)."""
        ...

    def unchanged(self, workspace: str, task: Task) -> bool:
        """Whether ``task`` (from :meth:`tasks`) is still the stored version (False if unsure)."""
        ...


@runtime_checkable
class WorkspaceStamps(Protocol):
    """A store that tells cheaply whether a workspace document changed (the file store; not part of the contract:
    only the dashboard's header cache asks, and any other store is simply read each time)."""

    def workspace_stamp(self, workspace: str) -> Hashable | None:
        """A value that changes whenever the workspace document does (None: none now)."""
        ...


@runtime_checkable
class PagedIndex(TaskIndex, Protocol):
    """An index whose listing pages are built from summaries: only the tasks a page shows, and the running ones
    (whose crash flags need the full task), are read in full."""

    def overview(self, workspace: str) -> Overview:
        """The workspace's summaries, newest first, and what every page of it needs."""
        ...

    def task_for(self, workspace: str, summary: TaskSummary) -> Task | AtlasTasksError | None:
        """The full task of a listed summary (None if it was deleted since)."""
        ...

    def workspace_info(self, workspace: str) -> Workspace:
        """``store.get_workspace``, kept while the workspace document is unchanged where that can be told cheaply."""
        ...

    def tasks_for(self, summaries: list[TaskSummary]) -> list[Task | AtlasTasksError | None]:
        """:meth:`task_for` of many summaries at once."""
        ...


#: Statuses (as stored text) whose tasks may be crashed runs.
ACTIVE_TEXT = frozenset(str(status) for status in ACTIVE_STATUSES)
#: At most this many full tasks kept for pages (the shown rows and the running tasks); more clears the cache.
MAX_FULL_TASKS = 20_000


@dataclass(frozen=True)
class Overview:
    """One workspace's listing as summaries, with what the pages derive from it (computed once per listing).

    Attributes:
        summaries: Newest first, with ``.errors`` (the unreadable tasks).
        statuses: How many summaries have each stored status.
        active: The running/validating summaries (the candidates for a crashed run), newest first.
    """

    summaries: SummaryList
    statuses: Counter[str]
    active: list[TaskSummary]


class SummaryPages:
    """Listing pages from ``store.list_summaries``: every request lists summaries (the file store checks each
    task.json's stamp against its summary cache), and reads in full only the tasks a page shows and the running ones,
    each once per version (a task is read again when its summary changes)."""

    def __init__(self, store: Store, *, stamped: bool = False) -> None:
        """``stamped``: the store hands back the very same summary object while a task's stamp holds (the file
        store), so a kept task is reused only for that object; otherwise for an equal summary (same revision,
        update time, status...)."""
        self.store = store
        self.stamped = stamped
        self._lock = threading.Lock()
        self._overviews: dict[str, Overview] = {}
        self._full: dict[tuple[str, str], tuple[TaskSummary, Task]] = {}
        self._workspaces: dict[str, tuple[Hashable, Workspace]] = {}

    def workspace_info(self, workspace: str) -> Workspace:
        """``store.get_workspace``; for a store with workspace stamps (the file store), kept while the stamp holds.

        workspace.json may hold a ref for every task (13 MB at 100,000 tasks, over a second to decode), and a listing
        page only shows the workspace's name, status, branch and path. The document is only ever replaced by rename
        (ours and the Go ATLAS's), so an unchanged (inode, mtime, ctime, size) is an unchanged document; the stamp
        is taken before the read, so a change during it is seen next time.
        """
        stamp = self._workspace_stamp(workspace)
        if stamp is not None:
            with self._lock:
                known = self._workspaces.get(workspace)
            if known is not None and known[0] == stamp:
                return known[1]
        info = self.store.get_workspace(workspace)
        if stamp is not None:
            with self._lock:
                self._workspaces[workspace] = (stamp, info)
        return info

    def _workspace_stamp(self, workspace: str) -> Hashable | None:
        if not isinstance(self.store, WorkspaceStamps):
            return None
        try:
            return self.store.workspace_stamp(workspace)
        except AtlasTasksError:
            return None  # the read says what is wrong

    def overview(self, workspace: str) -> Overview:
        """The summaries of a workspace; when they are the same as last time, the same overview (nothing recounted)."""
        found = self.store.list_summaries(workspace)
        with self._lock:
            last = self._overviews.get(workspace)
        # The file store hands back the very same summary objects while nothing changed, and a new object for a task
        # read again (even when equal: a hand edit that kept revision and times), so it is compared by identity;
        # errors are new objects every time, so a listing with errors is new.
        if last is not None and not found.errors and not last.summaries.errors and self._same(last.summaries, found):
            return last
        overview = Overview(
            summaries=found,
            statuses=Counter(summary.status for summary in found),
            active=[summary for summary in found if summary.status in ACTIVE_TEXT],
        )
        with self._lock:
            self._overviews[workspace] = overview
        return overview

    def tasks_for(self, summaries: list[TaskSummary]) -> list[Task | AtlasTasksError | None]:
        """:meth:`task_for` of each summary (by its workspace), with the cyclic collector paused while the tasks not
        kept yet are read: thousands of new models would otherwise be walked by collection after collection."""
        with gc_paused():
            return [self.task_for(summary.workspace, summary) for summary in summaries]

    def _same(self, before: list[TaskSummary], now: list[TaskSummary]) -> bool:
        if self.stamped:
            return len(before) == len(now) and all(map(operator.is_, before, now))
        return before == now

    def task_for(self, workspace: str, summary: TaskSummary) -> Task | AtlasTasksError | None:
        """The task of ``summary``, read once per version of its summary."""
        key = (workspace, summary.id)
        with self._lock:
            known = self._full.get(key)
        if known is not None and (known[0] is summary or (not self.stamped and known[0] == summary)):
            return known[1]
        item = _load_one(self.store, workspace, summary.id)
        if item is not None and not isinstance(item, AtlasTasksError):
            with self._lock:
                if len(self._full) >= MAX_FULL_TASKS:
                    self._full.clear()
                self._full[key] = (summary, item)
        return item


def reread_unchanged(store: Store, workspace: str, task: Task) -> bool:
    """Whether the store still holds this revision of the task (one read)."""
    try:
        return store.get(workspace, task.id).revision == task.revision
    except AtlasTasksError:
        return False


class StoreTaskIndex:
    """The plain index: every call goes to the store (for backends whose listing is already cheap)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def workspace_names(self) -> list[str]:
        """The names of the readable workspaces, sorted."""
        return [ws.name for ws in self.store.list_workspaces()]

    def tasks(self, workspace: str) -> TaskList:
        """``store.list(workspace)``."""
        return self.store.list(workspace)

    def unchanged(self, workspace: str, task: Task) -> bool:
        """Read the task again and compare revisions."""
        return reread_unchanged(self.store, workspace, task)


class SummaryTaskIndex:
    """A cache of decoded tasks kept fresh by ``store.list_summaries`` (revision and update time of every task).

    A listing costs one summaries query; a task is decoded again only when its revision or update time changed.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._cache: dict[str, dict[str, tuple[object, Task]]] = {}
        self._pages = SummaryPages(store)

    def overview(self, workspace: str) -> Overview:
        """:meth:`SummaryPages.overview`."""
        return self._pages.overview(workspace)

    def task_for(self, workspace: str, summary: TaskSummary) -> Task | AtlasTasksError | None:
        """:meth:`SummaryPages.task_for`."""
        return self._pages.task_for(workspace, summary)

    def workspace_info(self, workspace: str) -> Workspace:
        """:meth:`SummaryPages.workspace_info`."""
        return self._pages.workspace_info(workspace)

    def tasks_for(self, summaries: list[TaskSummary]) -> list[Task | AtlasTasksError | None]:
        """:meth:`SummaryPages.tasks_for`."""
        return self._pages.tasks_for(summaries)

    def workspace_names(self) -> list[str]:
        """The names of the readable workspaces, sorted."""
        return sorted(ws.name for ws in self.store.list_workspaces())

    def tasks(self, workspace: str) -> TaskList:
        """The workspace's tasks as ``store.list`` would return them, decoding only what changed."""
        summaries = self.store.list_summaries(workspace)
        with self._lock:
            cached = self._cache.get(workspace, {})
            stale = [s.id for s in summaries if cached.get(s.id, (None,))[0] != (s.revision, s.updated_at)]
            fresh: dict[str, tuple[object, Task]] = {s.id: cached[s.id] for s in summaries if s.id not in stale}
            result = TaskList()
            result.errors.extend(summaries.errors)
            if len(stale) > FULL_RELOAD_AFTER:
                listing = self.store.list(workspace)
                result.errors = list(listing.errors)
                loaded = {task.id: task for task in listing}
            else:
                loaded = {}
                for task_id in stale:
                    item = _load_one(self.store, workspace, task_id)
                    if isinstance(item, AtlasTasksError):
                        result.errors.append(item)
                    elif item is not None:
                        loaded[task_id] = item
            fresh.update({tid: ((task.revision, task.updated_at), task) for tid, task in loaded.items()})
            self._cache[workspace] = fresh
            # The summaries' order: newest first (a task that appeared since is picked up on the next call).
            result.extend(fresh[s.id][1] for s in summaries if s.id in fresh)
            return result

    def unchanged(self, workspace: str, task: Task) -> bool:
        """Read the task again and compare revisions."""
        return reread_unchanged(self.store, workspace, task)


@dataclass
class _Cached:
    stamps: dict[str, Hashable | None]
    # A Task, the error that made it unreadable, or None for an entry the store's listing leaves out
    # (a creation in progress).
    items: dict[str, Task | AtlasTasksError | None]
    listing: TaskList


class StampTaskIndex:
    """An index for a store with :class:`~atlas_tasks.store.capabilities.ChangeStamps`: each call asks for the
    workspace's change stamps (the file store: one ``stat`` per task) and re-reads only the tasks whose stamp
    changed since the last call."""

    def __init__(self, store: ChangeStampStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._cache: dict[str, _Cached] = {}
        # A task written behind the store with the same revision and times (a hand edit) still gets a new stamp,
        # so a new summary object: pages show it as read now.
        self._pages = SummaryPages(store, stamped=True)

    def overview(self, workspace: str) -> Overview:
        """:meth:`SummaryPages.overview` (the listing pages; :meth:`tasks` is for the full ``/api/tasks`` document)."""
        N.check_workspace_name(workspace)
        return self._pages.overview(workspace)

    def task_for(self, workspace: str, summary: TaskSummary) -> Task | AtlasTasksError | None:
        """:meth:`SummaryPages.task_for`."""
        return self._pages.task_for(workspace, summary)

    def workspace_info(self, workspace: str) -> Workspace:
        """:meth:`SummaryPages.workspace_info`."""
        return self._pages.workspace_info(workspace)

    def tasks_for(self, summaries: list[TaskSummary]) -> list[Task | AtlasTasksError | None]:
        """:meth:`SummaryPages.tasks_for`."""
        return self._pages.tasks_for(summaries)

    def workspace_names(self) -> list[str]:
        """The workspaces' names, sorted (no workspace document is decoded)."""
        return self.store.workspace_names()

    def tasks(self, workspace: str) -> TaskList:
        """The workspace's tasks as ``store.list`` would return them, re-reading only what changed."""
        N.check_workspace_name(workspace)
        stamps = self.store.task_stamps(workspace)
        # One loader at a time: two requests racing on a cold cache would both spend seconds decoding.
        with self._lock:
            cached = self._cache.get(workspace)
            if cached is not None and cached.stamps == stamps:
                return cached.listing
            previous = cached.items if cached is not None else {}
            stale = [tid for tid, stamp in stamps.items() if cached is None or cached.stamps.get(tid, ()) != stamp]
            if len(stale) > FULL_RELOAD_AFTER or any(not N.is_valid(N.check_task_id, t) for t in stale):
                items = self._load_all(workspace, stamps)
            else:
                items = {tid: previous.get(tid) for tid in stamps}
                items.update({tid: _load_one(self.store, workspace, tid) for tid in stale})
            fresh = _Cached(stamps, items, _listing(items))
            self._cache[workspace] = fresh
            return fresh.listing

    def unchanged(self, workspace: str, task: Task) -> bool:
        """Whether the stored task is still the version this copy was read from (one stamp)."""
        with self._lock:
            cached = self._cache.get(workspace)
            known = cached.stamps.get(task.id) if cached is not None and cached.items.get(task.id) is task else None
        if known is None:
            return reread_unchanged(self.store, workspace, task)
        try:
            return self.store.task_stamp(workspace, task.id) == known
        except AtlasTasksError:
            return False

    def _load_all(self, workspace: str, stamps: dict[str, Hashable | None]) -> dict[str, Task | AtlasTasksError | None]:
        # Stamps were taken before this read: a task written in between is read again on the next call.
        listing = self.store.list(workspace)
        items: dict[str, Task | AtlasTasksError | None] = dict.fromkeys(stamps)
        items.update({task.id: task for task in listing})
        for exc in listing.errors:
            items[_error_task_id(exc)] = exc
        return items


#: The index's name before it worked for any store with change stamps.
FileTaskIndex = StampTaskIndex


def _listing(items: dict[str, Task | AtlasTasksError | None]) -> TaskList:
    result = TaskList()
    for item in items.values():
        if isinstance(item, AtlasTasksError):
            result.errors.append(item)
        elif item is not None:
            result.append(item)
    # The store's order: newest first by created_at, ties by id, descending.
    result.sort(key=lambda t: (t.created_at.timestamp() if t.created_at else float("-inf"), t.id), reverse=True)
    return result


def _error_task_id(exc: AtlasTasksError) -> str:
    from atlas_tasks.views.documents import task_error_document

    return str(task_error_document(exc)["task_id"])


def index_for(store: Store) -> TaskIndex:
    """The fastest index for this store: change stamps where it has them (the file store), else its summaries."""
    if isinstance(store, ChangeStamps):
        return StampTaskIndex(store)
    return SummaryTaskIndex(store)


__all__ = [
    "ACTIVE_TEXT",
    "FULL_RELOAD_AFTER",
    "MAX_FULL_TASKS",
    "FileTaskIndex",
    "Overview",
    "PagedIndex",
    "StampTaskIndex",
    "StoreTaskIndex",
    "SummaryPages",
    "SummaryTaskIndex",
    "TaskIndex",
    "WorkspaceStamps",
    "index_for",
    "reread_unchanged",
]
