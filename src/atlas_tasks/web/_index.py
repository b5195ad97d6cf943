"""Listing tasks for the dashboard fast: a page of 10,000 tasks must not decode 10,000 task.json files each time.

The file store's ``list`` reads and validates every task (seconds for 10,000). :class:`FileTaskIndex` keeps the
decoded tasks and, on each request, only ``stat``s each ``task.json``: a task is read again (through the store,
which validates names and refuses symlinks) when its file changed. ``task.json`` is only ever replaced by rename,
so a changed task always has a new inode or mtime. Other backends (PostgreSQL) get :class:`SummaryTaskIndex`:
one ``list_summaries`` query per listing gives each task's revision, and only the tasks whose revision changed are
read in full. :class:`StoreTaskIndex` (``store.list`` every time) is for stores with neither.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from atlas_tasks import names as N
from atlas_tasks.errors import (
    AtlasTasksError,
    CorruptTaskError,
    InvalidNameError,
    SchemaVersionError,
    TaskNotFoundError,
    WorkspaceNotFoundError,
)
from atlas_tasks.store import TaskList

if TYPE_CHECKING:
    from atlas_tasks.backends.file import FileStore
    from atlas_tasks.models import Task
    from atlas_tasks.store import Store

#: Above this many changed tasks one ``store.list`` is cheaper (and exactly the store's semantics).
FULL_RELOAD_AFTER = 64

# What identifies one committed version of a task.json; None when the file is missing.
Stamp = tuple[int, int, int, int] | None


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
    stamps: dict[str, Stamp]
    # A Task, the error that made it unreadable, or None for an entry the store's listing leaves out
    # (a creation in progress).
    items: dict[str, Task | AtlasTasksError | None]
    listing: TaskList


class FileTaskIndex:
    """A FileStore index that re-reads only the tasks whose ``task.json`` changed since the last call."""

    def __init__(self, store: FileStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._cache: dict[str, _Cached] = {}

    def workspace_names(self) -> list[str]:
        """Workspace directories with valid names, sorted (no workspace.json is decoded)."""
        try:
            entries = list(os.scandir(self.store.home / "workspaces"))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(
            e.name for e in entries if _valid(N.check_workspace_name, e.name) and e.is_dir(follow_symlinks=False)
        )

    def tasks(self, workspace: str) -> TaskList:
        """The workspace's tasks as ``store.list`` would return them, re-reading only what changed."""
        N.check_workspace_name(workspace)
        stamps = self._stamps(workspace)
        # One loader at a time: two requests racing on a cold cache would both spend seconds decoding.
        with self._lock:
            cached = self._cache.get(workspace)
            if cached is not None and cached.stamps == stamps:
                return cached.listing
            previous = cached.items if cached is not None else {}
            stale = [tid for tid, stamp in stamps.items() if cached is None or cached.stamps.get(tid, ()) != stamp]
            if len(stale) > FULL_RELOAD_AFTER or any(not _valid(N.check_task_id, t) for t in stale):
                items = self._load_all(workspace, stamps)
            else:
                items = {tid: previous.get(tid) for tid in stamps}
                items.update({tid: _load_one(self.store, workspace, tid) for tid in stale})
            fresh = _Cached(stamps, items, _listing(items))
            self._cache[workspace] = fresh
            return fresh.listing

    def unchanged(self, workspace: str, task: Task) -> bool:
        """Whether task.json is still the file this copy of the task was read from (one ``stat``)."""
        with self._lock:
            cached = self._cache.get(workspace)
            known = cached.stamps.get(task.id) if cached is not None and cached.items.get(task.id) is task else None
        if known is None:
            return reread_unchanged(self.store, workspace, task)
        try:
            st = (self.store.task_path(workspace, task.id) / "task.json").lstat()
        except OSError:
            return False
        return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size) == known

    def _stamps(self, workspace: str) -> dict[str, Stamp]:
        with self._tasks_dir(workspace) as fd:
            if fd is None:
                return {}
            stamps: dict[str, Stamp] = {}
            for entry in os.scandir(fd):
                if entry.name.startswith("."):
                    continue  # the store's own temp entries
                stamps[entry.name] = _stamp(entry.name, fd)
            return stamps

    @contextmanager
    def _tasks_dir(self, workspace: str) -> Iterator[int | None]:
        ws_path = self.store.workspace_path(workspace)
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(ws_path / "tasks", flags)
        except (FileNotFoundError, NotADirectoryError):
            if not ws_path.is_dir():
                raise WorkspaceNotFoundError(workspace, str(ws_path)) from None
            yield None  # a workspace without tasks yet
            return
        try:
            yield fd
        finally:
            os.close(fd)

    def _load_all(self, workspace: str, stamps: dict[str, Stamp]) -> dict[str, Task | AtlasTasksError | None]:
        # Stamps were taken before this read: a task written in between is read again on the next call.
        listing = self.store.list(workspace)
        items: dict[str, Task | AtlasTasksError | None] = dict.fromkeys(stamps)
        items.update({task.id: task for task in listing})
        for exc in listing.errors:
            items[_error_task_id(exc)] = exc
        return items


def _stamp(name: str, tasks_fd: int) -> Stamp:
    try:
        st = os.stat(f"{name}/task.json", dir_fd=tasks_fd, follow_symlinks=False)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)


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
    from atlas_tasks.cli._render import task_error_document

    return str(task_error_document(exc)["task_id"])


def _valid(check: Callable[[object], str], name: str) -> bool:
    """Whether ``check`` (a validator of :mod:`atlas_tasks.names`) accepts ``name``."""
    try:
        check(name)
    except InvalidNameError:
        return False
    return True


def index_for(store: Store) -> TaskIndex:
    """The fastest index for this store: file stamps for a FileStore, summaries for a database, else plain."""
    from atlas_tasks.backends.file import FileStore

    if isinstance(store, FileStore):
        return FileTaskIndex(store)
    if callable(getattr(store, "list_summaries", None)):
        return SummaryTaskIndex(store)
    return StoreTaskIndex(store)


__all__ = [
    "FULL_RELOAD_AFTER",
    "FileTaskIndex",
    "StoreTaskIndex",
    "SummaryTaskIndex",
    "TaskIndex",
    "index_for",
    "reread_unchanged",
]
