"""Listing a workspace's tasks: the scan, the one-call read, summaries through the cache, the newest N.

Every entry of ``tasks/`` is classified the same way wherever it is listed: a task (its bytes), an error that makes
it unreadable (a CorruptTaskError, an IncompleteTaskError, ...), or nothing at all (a creation in progress, the Go
ATLAS's hook files of a task it keeps elsewhere, an entry deleted while we listed).
"""

from __future__ import annotations

import builtins
import errno
import os
import re
from collections.abc import Iterator
from typing import Any

from atlas_tasks import names as N
from atlas_tasks._fs import ops
from atlas_tasks._fs.dirs import Dir, UnsafePathError, walk
from atlas_tasks._gcpause import gc_paused
from atlas_tasks.backends.file import _layout
from atlas_tasks.backends.file import _summary_cache as cache_format
from atlas_tasks.backends.file._layout import TASK_FILE, Layout, hook_only
from atlas_tasks.backends.file._summary_cache import SummaryCache
from atlas_tasks.documents.summaries import newest_first_key, summary_and_times
from atlas_tasks.errors import (
    AtlasTasksError,
    CorruptTaskError,
    IncompleteTaskError,
    InvalidNameError,
    SchemaVersionError,
)
from atlas_tasks.models import Task
from atlas_tasks.store.base import decode_stored
from atlas_tasks.store.types import SummaryList, TaskList, TaskSummary

#: A task's bytes as a listing found them: (id, task.json bytes, where).
Found = tuple[str, bytes, str]

# Task ids that check_task_id accepts without a second look (every id this library or the Go ATLAS makes).
_PLAIN_TASK_ID = re.compile(r"task-[A-Za-z0-9_-]{1,123}")


def read_quick(dir_fd: int, relative: str, path: str) -> bytes | None:
    """task.json read in one call (openat2, no symlink anywhere); None if that call declined.

    The common case of get and list. Anything unusual (no openat2, a missing file or directory, a symlink, a FIFO)
    returns None and the caller takes the component walk, which tells exactly what is wrong.
    """
    try:
        return ops.read_file_beneath(relative, dir_fd, path)
    except ops.NotRegularFileError:
        return None  # a FIFO, device or directory: the walk says so in the caller's terms


def scan(layout: Layout, workspace: str) -> Iterator[Found | AtlasTasksError]:
    """Every entry of the workspace's ``tasks/`` as its bytes or the error that makes it unreadable."""
    with layout.ws_dir(workspace) as wsd:
        try:
            tasks = walk(wsd, ["tasks"])
        except FileNotFoundError:
            return
        with tasks:
            for entry in ops.scandir(tasks.fd, tasks.path):
                name = entry.name
                if name.startswith("."):
                    continue
                # The usual task-style id needs no further name check: straight to the one-call read.
                plain = _PLAIN_TASK_ID.fullmatch(name) is not None
                if plain:
                    path = f"{tasks.path}/{name}/{TASK_FILE}"
                    raw = read_quick(tasks.fd, f"{name}/{TASK_FILE}", path)
                    if raw is not None:
                        yield name, raw, path
                        continue
                outcome = load_raw(layout, tasks, workspace, name, quick=not plain)
                if outcome is not None:
                    yield outcome


def _walked_bytes(d: Dir, workspace: str, name: str) -> Found:
    # _layout.task_bytes looked up at each call: the reliability control "odd-entry-aborts" replaces it.
    return name, _layout.task_bytes(d, workspace, name), d.child(TASK_FILE)


def load_raw(
    layout: Layout, tasks: Dir, workspace: str, name: str, *, quick: bool = True
) -> Found | AtlasTasksError | None:
    """One entry of a listing; ``quick=False`` when the one-call read was already tried (and declined)."""
    path = tasks.child(name)
    try:
        N.check_task_id(name)
    except InvalidNameError as exc:
        return CorruptTaskError(workspace, name, path, f"not a valid task id ({exc.reason})")
    if quick:
        raw = read_quick(tasks.fd, f"{name}/{TASK_FILE}", f"{path}/{TASK_FILE}")
        if raw is not None:
            return name, raw, f"{path}/{TASK_FILE}"
    try:
        # One component below an already-walked directory: opened directly (O_NOFOLLOW), no walk() machinery.
        try:
            d = Dir(ops.open_dir(name, tasks.fd, path), path)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise UnsafePathError(exc.errno, "a symlink or a file", path) from None
            raise
        with d:
            return _walked_bytes(d, workspace, name)
    except IncompleteTaskError as exc:
        # A creation in progress holds the task lock between mkdir and its first write: not an error.
        if not layout.lock_free(workspace, name):
            return None
        if hook_only(tasks, name):
            return None  # the Go ATLAS's hook files of a task it keeps under repos/<key>/: no task of this store
        try:  # the creator may have finished between our read and the lock check
            with walk(tasks, [name]) as d:
                return _walked_bytes(d, workspace, name)
        except (IncompleteTaskError, FileNotFoundError):
            return exc
    except (CorruptTaskError, SchemaVersionError) as exc:
        return exc
    except FileNotFoundError:
        return None  # deleted while we listed
    except UnsafePathError:
        return CorruptTaskError(workspace, name, path, "is a symlink or a file, not a task directory")


def load_entry(
    layout: Layout, tasks: Dir, workspace: str, name: str, *, quick: bool = True
) -> Task | AtlasTasksError | None:
    """:func:`load_raw`, decoded."""
    outcome = load_raw(layout, tasks, workspace, name, quick=quick)
    if outcome is None or isinstance(outcome, AtlasTasksError):
        return outcome
    try:
        return decode_stored(outcome[1], workspace, name, outcome[2])
    except (CorruptTaskError, SchemaVersionError) as exc:
        return exc


def _summary_entry(
    layout: Layout, tasks: Dir, workspace: str, name: str, dir_inode: int
) -> tuple[TaskSummary, builtins.list[Any]] | AtlasTasksError | None:
    """Read one task's summary (and its cache entry); an unreadable task is classified as ``list`` does."""
    try:
        N.check_task_id(name)
        path = tasks.child(f"{name}/{TASK_FILE}")
        with walk(tasks, [name]) as d:
            fd = ops.open_file(TASK_FILE, ops.READ_FLAGS, d.fd, path)
            try:
                st = ops.fstat(fd)
                raw = ops.read_all(fd, path)
            finally:
                ops.close(fd)
        summary, created, updated = summary_and_times(raw, workspace, name, path)
        return summary, cache_format.entry_of(cache_format.stamp_of(dir_inode, st), summary, created, updated)
    except (OSError, InvalidNameError, CorruptTaskError, SchemaVersionError):
        # The full reader classifies the failure exactly as list() does (a creation in progress is no error).
        outcome = load_entry(layout, tasks, workspace, name)
        return None if isinstance(outcome, Task) else outcome


def _all_stamps_hold(entries: builtins.list[os.DirEntry[str]], stamps: dict[str, Any], fd: int) -> bool:
    """Whether the entries are exactly the cached tasks, each task.json with its cached stamp (the warm path of
    :func:`list_summaries`: no entry is kept or built, the first difference ends it)."""
    stat = os.stat
    count = 0
    for entry in entries:
        name = entry.name
        if name[0] == ".":
            continue
        known = stamps.get(name)
        if known is None or not entry.is_dir(follow_symlinks=False):
            return False
        try:
            st = stat(known[0], dir_fd=fd, follow_symlinks=False)
        except OSError:
            return False
        if (entry.inode(), st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size) != known[1]:
            return False
        count += 1
    return count == len(stamps)


def list_summaries(layout: Layout, cache: SummaryCache, workspace: str) -> SummaryList:
    """See :meth:`atlas_tasks.backends.file.FileStore.list_summaries`.

    Every task.json is ``stat``ed and its stamp compared with its cache entry's; a task whose stamp differs (or that
    has no entry) is read. When nothing was read and the entries are the very ones the last listing was built from,
    that listing's order and summaries are handed out again (sorting 100,000 summaries costs more than the check).
    """
    result = SummaryList()
    with layout.ws_dir(workspace) as wsd:
        try:
            tasks = walk(wsd, ["tasks"])
        except FileNotFoundError:
            return result
        with tasks, gc_paused():
            cached = cache.load(workspace)
            stamps = cache.stamps(workspace, cached)
            entries = ops.list_dir(tasks.fd, tasks.path)
            last = cache.last_listing(workspace, cached)
            if last is not None and _all_stamps_hold(entries, stamps, tasks.fd):
                result.extend(last)
                return result
            fresh: dict[str, builtins.list[Any]] = {}
            read: builtins.list[TaskSummary] = []
            stat, fd = os.stat, tasks.fd
            for entry in entries:
                name = entry.name
                if name.startswith("."):
                    continue
                known = stamps.get(name)
                if known is not None and entry.is_dir(follow_symlinks=False):
                    try:
                        st = stat(known[0], dir_fd=fd, follow_symlinks=False)
                    except OSError:
                        pass
                    else:
                        if (entry.inode(), st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size) == known[
                            1
                        ]:
                            fresh[name] = cached[name]
                            continue
                outcome = _summary_entry(layout, tasks, workspace, name, entry.inode())
                if isinstance(outcome, AtlasTasksError):
                    result.errors.append(outcome)
                elif outcome is not None:
                    read.append(outcome[0])
                    fresh[name] = outcome[1]
                    cache.remember(workspace, name, outcome[1], outcome[0])
            if not read and last is not None and len(fresh) == len(cached):
                # Every entry validated, and there are as many as the last listing had: the same tasks.
                result.extend(last)
                return result
            # The cache file keeps its entries newest first: in that order the sort below is one linear pass.
            ordered = {name: fresh[name] for name in cached if name in fresh}
            ordered.update(fresh)
            keyed = [(cache_format.sort_key(item, name), name, item) for name, item in ordered.items()]
            keyed.sort(reverse=True)
            result.extend(cache.summary(workspace, name, item) for _, name, item in keyed)
    final = cached
    if fresh != cached or list(cached) != [name for _, name, _ in keyed]:
        final = {name: item for _, name, item in keyed}
        cache.save(workspace, final)
    if not result.errors:
        cache.remember_listing(workspace, final, result)
    return result


def list_newest(layout: Layout, cache: SummaryCache, workspace: str, limit: int) -> TaskList | None:
    """The ``limit`` newest tasks, ordered by the cached created_at; None if the cache proved stale."""
    with layout.ws_dir(workspace) as wsd:
        try:
            tasks = walk(wsd, ["tasks"])
        except FileNotFoundError:
            return TaskList()
        with tasks:
            cached = cache.load(workspace)
            result = TaskList()
            # Taken before the scan: a name added or removed after it changes the directory's stamp.
            dir_stamp = cache_format.settled_dir_stamp(ops.fstat(tasks.fd), cache.clock())
            order = cache.order_unchanged(workspace, dir_stamp, cached)
            if order is None:
                inodes = {e.name: e.inode() for e in ops.scandir(tasks.fd, tasks.path) if e.name[0] != "."}
                order = cache.order(workspace, inodes, cached)
            if order is not None:
                keys, unreadable, inodes = order
                for name in unreadable:  # never cached: classified again, as list() would
                    outcome = _summary_entry(layout, tasks, workspace, name, inodes[name])
                    if isinstance(outcome, AtlasTasksError):
                        result.errors.append(outcome)
                return _read_newest(layout, cache, tasks, workspace, keys, limit, result)
            fresh: dict[str, builtins.list[Any]] = {}
            keys = []
            unreadable = []
            for name, inode in inodes.items():
                item = cached.get(name)
                if item is None or item[0] != inode:
                    outcome = _summary_entry(layout, tasks, workspace, name, inode)
                    if isinstance(outcome, AtlasTasksError):
                        result.errors.append(outcome)
                        unreadable.append(name)
                        continue
                    if outcome is None:
                        continue
                    item = outcome[1]
                fresh[name] = item
                keys.append(cache_format.sort_key(item, name))
            keys.sort(reverse=True)
            if fresh != cached:
                fresh = {name: fresh[name] for _, name in keys}  # saved newest first, as list_summaries saves
                cache.save(workspace, fresh)
            else:
                fresh = cached  # the object load() hands out while the file is unchanged
            cache.remember_order(workspace, inodes, fresh, keys, unreadable, dir_stamp)
            return _read_newest(layout, cache, tasks, workspace, keys, limit, result)


def _read_newest(
    layout: Layout,
    cache: SummaryCache,
    tasks: Dir,
    workspace: str,
    keys: builtins.list[tuple[float, str]],
    limit: int,
    result: TaskList,
) -> TaskList | None:
    """Read the tasks of ``keys`` (newest first) in full until ``limit`` are in; None if an order proved stale."""
    for key in keys:
        if len(result) >= limit:
            break
        loaded = load_entry(layout, tasks, workspace, key[1])
        if isinstance(loaded, Task):
            if newest_first_key(loaded) != key:
                cache.drop(workspace)  # created_at was rewritten behind our back
                return None
            result.append(loaded)
        elif loaded is not None:
            result.errors.append(loaded)
    return result


__all__ = ["Found", "list_newest", "list_summaries", "load_entry", "load_raw", "read_quick", "scan"]
