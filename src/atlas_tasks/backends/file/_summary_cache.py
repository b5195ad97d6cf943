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

A store that computed that order keeps it in memory with the *tasks directory's* stamp (inode, mtime, ctime,
size) taken before its scan: a task directory added, removed or replaced by anyone changes that stamp, so while it
is unchanged the next ``list(limit=n)`` skips the scan (one ``fstat`` instead of listing 100,000 names). A stamp is
only kept once the directory's last change is :data:`SETTLED_AFTER_NS` old: file times come from a coarse clock, and
a change in the same tick as the one the stamp saw would not show in it.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pydantic_core import from_json, to_json

from atlas_tasks._fs import atomic, ops
from atlas_tasks._fs.dirs import Dir, walk
from atlas_tasks.backends.file._layout import TASK_FILE
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


#: (inode, mtime_ns, ctime_ns, size) of the tasks directory: any name added to, removed from or renamed in it
#: changes its mtime and ctime.
DirStamp = tuple[int, int, int, int]

#: How old a directory's ctime must be before its stamp is trusted to show the next change. File times come from a
#: coarse clock (a kernel tick, up to 10 ms): a change in the same tick as the one a stamp saw would leave the stamp
#: as it was ("racy" stamps, as git calls them). Two seconds also covers a file server's clock a little behind ours.
SETTLED_AFTER_NS = 2_000_000_000

#: (newest-first keys, unreadable names, task directory inodes) of a remembered order.
Order = tuple[list[tuple[float, str]], list[str], dict[str, int]]


@dataclass(frozen=True)
class _Order:
    inodes: dict[str, int]
    entries: dict[str, list[Any]]
    keys: list[tuple[float, str]]
    unreadable: list[str]
    #: The tasks directory's stamp taken before the scan, if it was settled then (None: list it again next time).
    dir_stamp: DirStamp | None


def settled_dir_stamp(st: os.stat_result, now_ns: int | None = None) -> DirStamp | None:
    """The tasks directory's stamp, or None while its last change is too recent for the stamp to show the next one."""
    now = time.time_ns() if now_ns is None else now_ns
    if st.st_ctime_ns > now - SETTLED_AFTER_NS or st.st_mtime_ns > now - SETTLED_AFTER_NS:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)


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
        #: The wall clock (ns) that judges whether a directory's stamp has settled; tests inject a fake one.
        self.clock: Callable[[], int] = time.time_ns
        self._lock = threading.Lock()
        # workspace -> (identity of the cache file decoded, its entries)
        self._memory: dict[str, tuple[tuple[int, int, int, int], dict[str, list[Any]]]] = {}
        # workspace -> name -> (the entry, the TaskSummary built from it): summaries are frozen, so shared.
        self._built: dict[str, dict[str, tuple[list[Any], TaskSummary]]] = {}
        # workspace -> (the entries, each one's stamp as a tuple): built once per entries object
        self._stamps: dict[str, tuple[dict[str, list[Any]], dict[str, tuple[str, Stamp]]]] = {}
        # workspace -> (the entries, the summaries list_summaries built from exactly them, newest first)
        self._listing: dict[str, tuple[dict[str, list[Any]], list[TaskSummary]]] = {}
        # workspace -> the last newest-first order and what it was computed from
        self._order: dict[str, _Order] = {}

    def summary(self, workspace: str, name: str, entry: list[Any]) -> TaskSummary:
        """The TaskSummary of a cached entry, built once per entry."""
        built = self._built.setdefault(workspace, {})
        known = built.get(name)
        if known is not None and known[0] is entry:
            return known[1]
        summary = summary_of(entry, workspace)
        built[name] = (entry, summary)
        return summary

    def stamps(self, workspace: str, entries: dict[str, list[Any]]) -> dict[str, tuple[str, Stamp]]:
        """Each entry's task.json path (relative to the tasks directory) and stamp as a tuple (what a stat is
        compared with), built once per entries object."""
        with self._lock:
            known = self._stamps.get(workspace)
        if known is not None and known[0] is entries:
            return known[1]
        stamps: dict[str, tuple[str, Stamp]] = {
            name: (f"{name}/{TASK_FILE}", tuple(entry[:_STAMP_LEN])) for name, entry in entries.items()
        }
        with self._lock:
            self._stamps[workspace] = (entries, stamps)
        return stamps

    def last_listing(self, workspace: str, entries: dict[str, list[Any]]) -> list[TaskSummary] | None:
        """The summaries (newest first) the last listing built from exactly these entries, if it was built so."""
        with self._lock:
            known = self._listing.get(workspace)
        return known[1] if known is not None and known[0] is entries else None

    def remember_listing(self, workspace: str, entries: dict[str, list[Any]], summaries: list[TaskSummary]) -> None:
        """Keep a listing built from ``entries`` (every task readable), as :meth:`last_listing` gives it back."""
        with self._lock:
            self._listing[workspace] = (entries, list(summaries))

    def remember(self, workspace: str, name: str, entry: list[Any], summary: TaskSummary) -> None:
        """Keep a summary just read with its new entry."""
        self._built.setdefault(workspace, {})[name] = (entry, summary)

    def order(self, workspace: str, inodes: dict[str, int], entries: dict[str, list[Any]]) -> Order | None:
        """The last newest-first order, if the task directories (names and inodes) and the entries are the same."""
        with self._lock:
            last = self._order.get(workspace)
        if last is None or last.entries is not entries or last.inodes != inodes:
            return None
        return last.keys, last.unreadable, last.inodes

    def order_unchanged(
        self, workspace: str, dir_stamp: DirStamp | None, entries: dict[str, list[Any]]
    ) -> Order | None:
        """The last newest-first order without listing the directory: the tasks directory's stamp is the one taken
        (settled) before that order's scan, so no task directory was added, removed or replaced since."""
        if dir_stamp is None:
            return None
        with self._lock:
            last = self._order.get(workspace)
        if last is None or last.entries is not entries or last.dir_stamp != dir_stamp:
            return None
        return last.keys, last.unreadable, last.inodes

    def remember_order(
        self,
        workspace: str,
        inodes: dict[str, int],
        entries: dict[str, list[Any]],
        keys: list[tuple[float, str]],
        unreadable: list[str],
        dir_stamp: DirStamp | None = None,
    ) -> None:
        with self._lock:
            self._order[workspace] = _Order(inodes, entries, keys, unreadable, dir_stamp)

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
            self._listing.pop(workspace, None)
            self._stamps.pop(workspace, None)
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
