"""A rebuildable, non-authoritative cache of task summaries, so a listing need not read 10,000 task.json files.

One file per workspace, ``<home>/.atlas-tasks/summaries/<ws>.json``, maps each task directory name to what
:class:`~atlas_tasks.store.TaskSummary` holds plus the *stamp* of the task.json it was read from: the task
directory's inode and the file's (device, inode, mtime_ns, ctime_ns, size), taken with ``fstat`` on the very
descriptor the summary was read from. task.json only changes by rename (ours and the Go ATLAS's), so a file whose
stamp is unchanged has unchanged bytes; anything else (a new task, an update by any writer, a restore, a hand
edit) shows as a different stamp and is read again. Tasks that are unreadable are never cached: they are
classified afresh by the store on every listing.

Nothing depends on this file for correctness. It is written by temp file + rename (so a reader sees a whole
version) without fsync: after a crash it may be old, empty or torn; it is then refused as a whole or its entries
fail their stamps, and the listing reads the tasks themselves. Delete it at any time.

The newest-first order of ``list(limit=n)`` uses only the cached ``created_at`` of each task directory (checked
by the directory's inode, which ``scandir`` gives without a system call): ``created_at`` is set when a task is
created, the store keeps it on every update (an update that changes it drops the cache), and the Go ATLAS never
rewrites it. The ``n`` tasks returned are read from disk in full, as ``get`` reads them.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable
from typing import Any

from pydantic_core import from_json, to_json

from atlas_tasks._fs import atomic, ops
from atlas_tasks._fs.dirs import Dir, walk
from atlas_tasks.models import parse_time
from atlas_tasks.store import TaskSummary

VERSION = 1
PRIVATE_DIR = ".atlas-tasks"
SUBDIR = "summaries"

#: (task directory inode, device, inode, mtime_ns, ctime_ns, size) of the task.json a summary was read from.
Stamp = tuple[int, int, int, int, int, int]

# Cached entry: [*stamp, id, status, template, description, current_step, total_steps, created_at, updated_at,
# revision, created_ts]; times as the RFC 3339 text read, created_ts the sort key (None: no created_at).
_STAMP_LEN = 6
_ENTRY_LEN = _STAMP_LEN + 10


def stamp_of(dir_inode: int, st: os.stat_result) -> Stamp:
    return (dir_inode, st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)


def entry_of(stamp: Stamp, summary: TaskSummary, created_text: str | None, updated_text: str | None) -> list[Any]:
    created = summary.created_at
    return [
        *stamp,
        summary.id,
        summary.status,
        summary.template,
        summary.description,
        summary.current_step,
        summary.total_steps,
        created_text,
        updated_text,
        summary.revision,
        created.timestamp() if created is not None else None,
    ]


def summary_of(entry: list[Any], workspace: str) -> TaskSummary:
    return TaskSummary(
        id=entry[6],
        workspace=workspace,
        status=entry[7],
        template=entry[8],
        description=entry[9],
        current_step=entry[10],
        total_steps=entry[11],
        created_at=parse_time(entry[12]),
        updated_at=parse_time(entry[13]),
        revision=entry[14],
    )


def sort_key(entry: list[Any], name: str) -> tuple[float, str]:
    ts = entry[15]
    return (ts if ts is not None else float("-inf"), name)


class SummaryCache:
    """The cache files of one store's home, with the last one decoded kept in memory per workspace."""

    def __init__(self, home: str) -> None:
        self.home = home
        self._lock = threading.Lock()
        # workspace -> (identity of the cache file decoded, its entries)
        self._memory: dict[str, tuple[tuple[int, int, int, int], dict[str, list[Any]]]] = {}
        # workspace -> name -> (the entry, the TaskSummary built from it): summaries are frozen, so shared.
        self._built: dict[str, dict[str, tuple[list[Any], TaskSummary]]] = {}
        # workspace -> (task directory inodes, the entries, newest-first keys, unreadable names) of the last order
        self._order: dict[str, tuple[dict[str, int], dict[str, list[Any]], list[tuple[float, str]], list[str]]] = {}

    def summary(self, workspace: str, name: str, entry: list[Any]) -> TaskSummary:
        """The TaskSummary of a cached entry, built once per entry."""
        built = self._built.setdefault(workspace, {})
        known = built.get(name)
        if known is not None and known[0] is entry:
            return known[1]
        summary = summary_of(entry, workspace)
        built[name] = (entry, summary)
        return summary

    def remember(self, workspace: str, name: str, entry: list[Any], summary: TaskSummary) -> None:
        """Keep a summary just read with its new entry."""
        self._built.setdefault(workspace, {})[name] = (entry, summary)

    def order(
        self, workspace: str, inodes: dict[str, int], entries: dict[str, list[Any]]
    ) -> tuple[list[tuple[float, str]], list[str]] | None:
        """The last newest-first order, if the task directories (names and inodes) and the entries are the same."""
        with self._lock:
            last = self._order.get(workspace)
        if last is None or last[1] is not entries or last[0] != inodes:
            return None
        return last[2], last[3]

    def remember_order(
        self,
        workspace: str,
        inodes: dict[str, int],
        entries: dict[str, list[Any]],
        keys: list[tuple[float, str]],
        unreadable: list[str],
    ) -> None:
        with self._lock:
            self._order[workspace] = (inodes, entries, keys, unreadable)

    def _dir(self, *, create: bool) -> Dir:
        from atlas_tasks._fs.dirs import open_home

        with open_home(self.home, create=create) as home:
            return walk(home, [PRIVATE_DIR, SUBDIR], create=create, mode=0o700)

    def load(self, workspace: str) -> dict[str, list[Any]]:
        """The cached entries of a workspace (empty when there is no usable cache file). Never raises OSError."""
        try:
            with self._dir(create=False) as d:
                fd = ops.open_file(f"{workspace}.json", ops.READ_FLAGS, d.fd, d.child(f"{workspace}.json"))
                try:
                    st = os.fstat(fd)
                    identity = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
                    with self._lock:
                        remembered = self._memory.get(workspace)
                    if remembered is not None and remembered[0] == identity:
                        return remembered[1]
                    raw = ops.read_all(fd, d.child(f"{workspace}.json"))
                finally:
                    ops.close(fd)
        except (OSError, ValueError):
            return {}
        entries = _parse(raw)
        with self._lock:
            self._memory[workspace] = (identity, entries)
        return entries

    def save(self, workspace: str, entries: dict[str, list[Any]]) -> None:
        """Replace the workspace's cache file (temp + rename, no fsync: see the module docstring); best effort."""
        data = to_json({"version": VERSION, "workspace": workspace, "tasks": entries})
        with contextlib.suppress(OSError, ValueError), self._dir(create=True) as d:
            name = f"{workspace}.json"
            tmp = atomic.temp_name(name)
            fd = ops.open_file(tmp, ops.NEW_FILE_FLAGS, d.fd, d.child(tmp))
            try:
                ops.write_all(fd, data, d.child(tmp))
                st = os.fstat(fd)
            finally:
                ops.close(fd)
            try:
                ops.rename(tmp, name, d.fd, d.fd, d.child(name))
            except OSError:
                with contextlib.suppress(OSError):
                    ops.unlink(tmp, d.fd, d.child(tmp))
                raise
            with self._lock:
                self._memory[workspace] = ((st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size), entries)

    def forget(self, workspace: str, name: str) -> None:
        """Remove one task's entry (it was deleted); best effort.

        Its directory's inode, which validates the entry, is free for reuse: a task created again under the same
        id can get the very same inode, and a kept entry would then order it by the deleted task's created_at.
        """
        entries = self.load(workspace)
        with self._lock:
            self._order.pop(workspace, None)
            self._built.get(workspace, {}).pop(name, None)
        if name in entries:
            self.save(workspace, {key: value for key, value in entries.items() if key != name})

    def forget_many(self, workspace: str, names: Iterable[str]) -> None:
        """Remove the entries of several deleted tasks with one rewrite of the cache file; best effort."""
        doomed = set(names)
        entries = self.load(workspace)
        with self._lock:
            self._order.pop(workspace, None)
            built = self._built.get(workspace, {})
            for name in doomed:
                built.pop(name, None)
        if doomed & entries.keys():
            self.save(workspace, {key: value for key, value in entries.items() if key not in doomed})

    def drop(self, workspace: str) -> None:
        """Forget a workspace's cache (file and memory); best effort."""
        with self._lock:
            self._memory.pop(workspace, None)
            self._order.pop(workspace, None)
            self._built.pop(workspace, None)
        with contextlib.suppress(OSError, ValueError), self._dir(create=False) as d:
            ops.unlink(f"{workspace}.json", d.fd, d.child(f"{workspace}.json"))


def _parse(raw: bytes) -> dict[str, list[Any]]:
    """The entries of a cache file; a file that is not exactly what :meth:`SummaryCache.save` writes gives {}."""
    try:
        doc = from_json(raw)
    except ValueError:
        return {}
    if not isinstance(doc, dict) or doc.get("version") != VERSION or not isinstance(doc.get("tasks"), dict):
        return {}
    entries: dict[str, list[Any]] = doc["tasks"]
    for entry in entries.values():
        if not isinstance(entry, list) or len(entry) != _ENTRY_LEN:
            return {}
    return entries


__all__ = ["SummaryCache", "entry_of", "sort_key", "stamp_of", "summary_of"]
