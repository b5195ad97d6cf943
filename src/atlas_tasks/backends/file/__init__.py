"""FileStore: the embedded default backend, one directory tree per home, readable by the Go ATLAS.

Layout (the Go ATLAS's, plus one hidden directory of our own)::

    <home>/workspaces/<ws>/workspace.json            Go format; task refs kept in step on create/delete
    <home>/workspaces/<ws>/tasks/<id>/task.json       the task, replaced atomically and durably
    <home>/workspaces/<ws>/tasks/<id>/task.json.lock  Go's lock file, taken too so Go and Python writers exclude
    <home>/workspaces/<ws>/tasks/<id>/task.log        JSON lines, fsynced per line
    <home>/workspaces/<ws>/tasks/<id>/artifacts/...   step outputs; versions are write-once
    <home>/.atlas-tasks/locks/<ws>/<id>.lock          our task lock: outside the task, so delete cannot remove it
    <home>/.atlas-tasks/trash/                        where delete moves a task before removing it

Reads take no lock: task.json is only ever replaced by rename, so a reader sees a whole committed version.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import functools
import gc
import json
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar, cast

from pydantic_core import from_json

from atlas_tasks import go_daemon
from atlas_tasks import names as N
from atlas_tasks._codec import (
    current_step_error,
    decode_task,
    decode_workspace,
    encode_task,
    encode_workspace,
    patch_workspace_refs,
    ref_document,
)
from atlas_tasks._fs import atomic, locks, ops
from atlas_tasks._fs.dirs import Dir, UnsafePathError, odd_kind, open_home, refused, walk
from atlas_tasks.backends import _summaries
from atlas_tasks.backends._file_check import check_store
from atlas_tasks.errors import (
    ArtifactNotFoundError,
    AtlasTasksError,
    ConflictError,
    CorruptLogError,
    CorruptTaskError,
    CorruptWorkspaceError,
    IncompleteTaskError,
    InvalidLogEntryError,
    InvalidNameError,
    SchemaVersionError,
    StorageError,
    TaskExistsError,
    TaskNotFoundError,
    TaskRunningError,
    UnsafeTaskFileError,
    WorkspaceExistsError,
    WorkspaceNotFoundError,
)
from atlas_tasks.go_hooks import is_hook_only
from atlas_tasks.ids import IdStyle, resolve_style, timestamp_candidates, uuid_id
from atlas_tasks.models import Task, TaskRef, Workspace, WorkspaceStatus, parse_time, utcnow
from atlas_tasks.store import LogEntry, LogLines, LogTail, SummaryList, TaskList, TaskSummary, WorkspaceList
from atlas_tasks.store.types import CheckReport
from atlas_tasks.transitions import check_status_change, is_terminal

if TYPE_CHECKING:
    from atlas_tasks.runs import Run

P = ParamSpec("P")
R = TypeVar("R")

TASK_FILE = "task.json"
LOG_FILE = "task.log"
ARTIFACTS_DIR = "artifacts"
WORKSPACE_FILE = "workspace.json"
PRIVATE_DIR = ".atlas-tasks"
_DIGITS = re.compile(r"(\d+)")


@contextlib.contextmanager
def _os_errors(default_op: str) -> Iterator[None]:
    """Turn an OSError into a StorageError that names the operation and the path; typed errors pass through."""
    try:
        yield
    except AtlasTasksError:
        raise
    except UnsafePathError as exc:
        raise StorageError(
            "open (a symlink or file inside the store was refused)",
            str(exc.filename),
            exc.errno,
            exc.strerror,
        ) from exc
    except OSError as exc:
        op = getattr(exc, "atlas_op", default_op)
        raise StorageError(op, str(exc.filename or "?"), exc.errno, exc.strerror) from exc


def _storage_errors(method: Callable[P, R]) -> Callable[P, R]:
    """Decorate a public method so no bare OSError escapes it (see :func:`_os_errors`)."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with _os_errors(method.__name__):
            return method(*args, **kwargs)

    return wrapper


def _natural_key(name: str) -> tuple[Any, ...]:
    # "validation.10.json" after "validation.9.json": digit runs compare as numbers.
    parts: builtins.list[Any] = _DIGITS.split(name)
    if len(parts) > 1:
        parts[1::2] = map(int, parts[1::2])
    return tuple(parts)


# Natural keys by name, shared by every store of the process: a key is a pure function of the name, and building
# one (a regex split in Python) costs several times the scandir entry it sorts. Cleared when it grows past the cap.
_NATURAL_KEYS: dict[str, tuple[Any, ...]] = {}
_NATURAL_KEYS_CAP = 1 << 16


def _natural_sorted(names: builtins.list[str]) -> builtins.list[str]:
    """``names`` in natural order (stable for names with equal keys, as ``sorted(names, key=_natural_key)``)."""
    keys = _NATURAL_KEYS
    try:
        return sorted(names, key=keys.__getitem__)
    except KeyError:
        pass
    if len(keys) + len(names) > _NATURAL_KEYS_CAP:
        keys.clear()
    for name in names:
        if name not in keys:
            keys[name] = _natural_key(name)
    get = keys.get
    return sorted(names, key=lambda name: get(name) or _natural_key(name))


# The version hint: an extended attribute of the directory holding the versions, ``user.atlas-tasks.v.<leaf>``,
# the number of the last version saved there. Only a cache, never trusted: a save uses it only if that version
# exists (one stat), and the version is still claimed with link() + EEXIST, so a stale, lost or planted hint costs a
# rescan, never an overwrite. An attribute rather than a file: it is metadata of the directory the claim has just
# changed anyway (no data block for the journal commit to flush, no file to list, copy or check), read and written
# with one call on the walked directory's descriptor. Set without fsync (nothing is acknowledged on it) and with
# plain os calls, outside the durable protocols the _fs.ops hooks watch; where attributes are unsupported (or the
# name too long) there is no hint and a fresh store scans, as it always did.
_HINT_PREFIX = "user.atlas-tasks.v."


def _read_version_hint(d: Dir, leaf: str) -> int | None:
    try:
        raw = os.getxattr(d.fd, _HINT_PREFIX + leaf)
    except (OSError, ValueError):
        return None
    if not (0 < len(raw) <= 20 and raw.isdigit()):
        return None
    version = int(raw)
    return version if version > 0 else None


def _write_version_hint(d: Dir, leaf: str, version: int) -> None:
    with contextlib.suppress(OSError, ValueError):
        os.setxattr(d.fd, _HINT_PREFIX + leaf, b"%d" % version)


def _to_bytes(data: bytes | str) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


class FileStore:
    """The durable file store (see the module docstring for the layout and docs/ for the guarantees).

    Args:
        home: the store's root; default ``$ATLAS_HOME`` or ``~/.atlas``. Nothing is created until a first write.
        lock_timeout: seconds a writer waits for a task's lock before ``LockTimeoutError``.
        id_style: ``"auto"`` (uuid ids in a workspace that already has ``task-<uuid>`` tasks, the current Go
            format; timestamp ids otherwise), ``"timestamp"`` or ``"uuid"``.
        go_locks: also take the Go ATLAS's ``task.json.lock`` when writing, so Go writers are excluded too.
    """

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        *,
        lock_timeout: float = 10.0,
        id_style: IdStyle = "auto",
        go_locks: bool = True,
    ) -> None:
        if home is None:
            home = os.environ.get("ATLAS_HOME") or Path("~/.atlas").expanduser()
        self.home = Path(home).expanduser().absolute()
        if id_style not in ("auto", "timestamp", "uuid"):
            raise ValueError(f"id_style must be 'auto', 'timestamp' or 'uuid', not {id_style!r}")
        self.lock_timeout = lock_timeout
        self.id_style: IdStyle = id_style
        self.go_locks = go_locks
        self._uuid_workspaces: set[str] = set()
        self._next_version: dict[tuple[str, ...], int] = {}
        self._summaries = _summaries.SummaryCache(str(self.home))
        #: The Go home above this store: where the Go ATLAS keeps hook files and its daemon's socket (for a store from
        #: :meth:`for_repo`, the home that holds ``repos/``).
        self.go_home = self.home

    def __repr__(self) -> str:
        return f"FileStore({str(self.home)!r})"

    @classmethod
    def for_repo(
        cls,
        repo_path: str | os.PathLike[str],
        home: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> FileStore:
        """The store the current Go ATLAS uses for a git repository: ``<home>/repos/<key>/``.

        ``<key>`` is the first 12 hex digits of the SHA-256 of the repository's symlink-resolved path, as the Go
        tool computes it, so both tools open the same directory for the same repository (see
        :mod:`atlas_tasks.repos`).

        Args:
            repo_path: the repository's directory (any path to it: symlinks are resolved).
            home: the home that holds ``repos/``; default ``$ATLAS_HOME`` or ``~/.atlas``.
            **kwargs: as for :class:`FileStore` (``lock_timeout``, ``id_style``, ``go_locks``).

        Raises:
            RepoNotFoundError: ``repo_path`` does not exist or is not a directory.
        """
        from atlas_tasks.repos import default_home, repo_home

        store = cls(repo_home(repo_path, home), **kwargs)
        store.go_home = default_home() if home is None else Path(home).expanduser().absolute()
        return store

    # -- paths (for people and tools; the store itself never opens by path below home) ----------------------------
    def workspace_path(self, workspace: str) -> Path:
        """The directory of a workspace."""
        return self.home / "workspaces" / N.check_workspace_name(workspace)

    def task_path(self, workspace: str, task_id: str) -> Path:
        """The directory of a task."""
        return self.workspace_path(workspace) / "tasks" / N.check_task_id(task_id)

    # -- opening directories ---------------------------------------------------------------------------------------
    def _open_home(self, *, create: bool = False) -> Dir:
        return open_home(str(self.home), create=create)

    @contextlib.contextmanager
    def _ws_dir(self, workspace: str) -> Iterator[Dir]:
        N.check_workspace_name(workspace)
        try:
            with self._open_home() as home:
                d = walk(home, ["workspaces", workspace])
        except FileNotFoundError:
            raise WorkspaceNotFoundError(workspace, str(self.workspace_path(workspace))) from None
        with d:
            yield d

    @contextlib.contextmanager
    def _task_dir(self, workspace: str, task_id: str) -> Iterator[Dir]:
        N.check_workspace_name(workspace)
        N.check_task_id(task_id)
        try:
            with self._open_home() as home:
                d = walk(home, ["workspaces", workspace, "tasks", task_id])
        except FileNotFoundError:
            # Again in two steps, to say which is missing: the workspace or the task.
            with self._ws_dir(workspace) as wsd:
                try:
                    d = walk(wsd, ["tasks", task_id])
                except FileNotFoundError:
                    raise TaskNotFoundError(workspace, task_id, str(self.task_path(workspace, task_id))) from None
        with d:
            yield d

    def _require_task_file(self, d: Dir, workspace: str, task_id: str) -> None:
        try:
            ops.stat_at(TASK_FILE, d.fd)
        except FileNotFoundError:
            raise IncompleteTaskError(workspace, task_id, d.path) from None

    # -- locks ------------------------------------------------------------------------------------------------------
    def _private_dir(self, kind: str, workspace: str, *, create: bool) -> Dir:
        """``.atlas-tasks/<kind>/<workspace>``, walked from the home with O_NOFOLLOW on every call.

        Never a cached path: a symlink planted there later must not lead a lock or lease file outside the home.
        """
        with self._open_home(create=create) as home:
            return walk(home, [PRIVATE_DIR, kind, workspace], create=create, mode=0o700)

    def _lock_free(self, workspace: str, task_id: str) -> bool:
        """True if no writer holds the task's lock right now."""
        try:
            lock_dir = self._private_dir("locks", workspace, create=False)
        except FileNotFoundError:
            return True
        with lock_dir:
            return locks.try_hold_free(lock_dir.child(f"{task_id}.lock"), dir_fd=lock_dir.fd)

    @contextlib.contextmanager
    def _write_lock(self, workspace: str, task_id: str, task_dir: Dir | None) -> Iterator[None]:
        what = f"task {task_id!r} in workspace {workspace!r}"
        with (
            self._private_dir("locks", workspace, create=True) as lock_dir,
            locks.hold(lock_dir.child(f"{task_id}.lock"), what, self.lock_timeout, dir_fd=lock_dir.fd, fair=True),
        ):
            if task_dir is not None:
                self._still_there(task_dir, workspace, task_id)
            if not (self.go_locks and task_dir is not None):
                yield
                return
            # Go's lock sits inside the task directory; taken second, so Go writers wait for us too.
            with locks.hold(task_dir.child(f"{TASK_FILE}.lock"), what, self.lock_timeout, dir_fd=task_dir.fd):
                yield

    @contextlib.contextmanager
    def _temp_writer(self, workspace: str, task_id: str) -> Iterator[None]:
        """Held (shared) by a write that keeps a temp file in the task without holding the task lock.

        Artifact saves run concurrently and outside the task lock, so the task lock cannot tell ``doctor --fix``
        whether a temp file of theirs is being written. Each holds this shared flock while its temp file exists;
        the sweep removes temp files only while it holds the same flock exclusively, i.e. when no such write is
        under way (see :func:`atlas_tasks.backends._file_check._sweep_temp_files`).
        """
        what = f"artifacts of task {task_id!r} in workspace {workspace!r}"
        with (
            self._private_dir("locks", workspace, create=True) as lock_dir,
            locks.hold_shared(lock_dir.child(f"{task_id}.writers"), what, self.lock_timeout, dir_fd=lock_dir.fd),
        ):
            yield

    @contextlib.contextmanager
    def _temp_sweep(self, workspace: str, task_id: str) -> Iterator[bool]:
        """Try (never wait) to exclude every :meth:`_temp_writer` of the task; yields whether it did."""
        with (
            self._private_dir("locks", workspace, create=True) as lock_dir,
            locks.try_hold_exclusive(lock_dir.child(f"{task_id}.writers"), dir_fd=lock_dir.fd) as held,
        ):
            yield held

    def _still_there(self, d: Dir, workspace: str, task_id: str) -> None:
        """After waiting for the lock, make sure ``d`` is still the task's directory (not deleted meanwhile)."""
        opened = os.fstat(d.fd)
        try:
            with self._task_dir(workspace, task_id) as again:
                now = os.fstat(again.fd)
        except TaskNotFoundError:
            now = None
        if now is None or (now.st_dev, now.st_ino) != (opened.st_dev, opened.st_ino):
            raise TaskNotFoundError(workspace, task_id, d.path)

    # -- reading tasks ----------------------------------------------------------------------------------------------
    def _decode(self, raw: bytes, workspace: str, task_id: str, path: str) -> Task:
        try:
            task = decode_task(raw, path=path)
        except SchemaVersionError:
            raise
        except ValueError as exc:
            raise CorruptTaskError(workspace, task_id, path, str(exc).splitlines()[0]) from None
        if not task.id:
            task.id = task_id
        elif task.id != task_id:
            raise CorruptTaskError(workspace, task_id, path, f"task.json names a different task, {task.id!r}")
        return task

    def _read_task(self, d: Dir, workspace: str, task_id: str) -> Task:
        return self._decode(self._task_bytes(d, workspace, task_id), workspace, task_id, d.child(TASK_FILE))

    def _task_bytes(self, d: Dir, workspace: str, task_id: str) -> bytes:
        """task.json's bytes; IncompleteTaskError if missing, UnsafeTaskFileError if not a regular file."""
        try:
            return atomic.read(d, TASK_FILE)
        except FileNotFoundError:
            raise IncompleteTaskError(workspace, task_id, d.path) from None
        except OSError as exc:
            kind = odd_kind(exc)
            if kind is None:
                raise
            raise UnsafeTaskFileError(workspace, task_id, d.child(TASK_FILE), kind) from exc

    def _read_quick(
        self, dir_fd: int, relative: str, path: str, workspace: str, task_id: str
    ) -> Task | AtlasTasksError | None:
        """task.json opened in one call (openat2, no symlink anywhere) and decoded; None if that call declined.

        The common case of get and list. Anything unusual (no openat2, a missing file or directory, a symlink)
        returns None and the caller takes the component walk, which tells exactly what is wrong.
        """
        try:
            raw = ops.read_file_beneath(relative, dir_fd, path)
        except ops.NotRegularFileError:
            return None  # a FIFO, device or directory: the walk says so in the caller's terms
        if raw is None:
            return None
        try:
            return self._decode(raw, workspace, task_id, path)
        except (CorruptTaskError, SchemaVersionError) as exc:
            return exc

    @_storage_errors
    def get(self, workspace: str, task_id: str) -> Task:
        """Return the last committed state of a task. See :meth:`atlas_tasks.store.Store.get`."""
        N.check_workspace_name(workspace)
        N.check_task_id(task_id)
        try:
            with self._open_home() as home:
                quick = self._read_quick(
                    home.fd,
                    f"workspaces/{workspace}/tasks/{task_id}/{TASK_FILE}",
                    f"{home.path}/workspaces/{workspace}/tasks/{task_id}/{TASK_FILE}",
                    workspace,
                    task_id,
                )
        except FileNotFoundError:
            quick = None  # no home: the walk below says so
        if isinstance(quick, AtlasTasksError):
            raise quick
        if quick is not None:
            return quick
        with self._task_dir(workspace, task_id) as d:
            return self._read_task(d, workspace, task_id)

    @_storage_errors
    def list(self, workspace: str, *, strict: bool = False, limit: int | None = None) -> TaskList:
        """Return the workspace's tasks, newest first. See :meth:`atlas_tasks.store.Store.list`.

        ``limit`` keeps only the newest ``limit`` tasks. Without ``strict``, the order comes from the summary cache
        (see :mod:`atlas_tasks.backends._summaries`) and only those tasks are read in full; ``errors`` then holds
        the tasks unreadable as summaries plus any of the newest that cannot be decoded in full.
        """
        if limit is not None and not strict:
            newest = self._list_newest(workspace, max(0, limit))
            if newest is not None:
                return newest
        result = TaskList()
        with _gc_paused():
            for outcome in self._scan_tasks(workspace):
                if isinstance(outcome, Task):
                    result.append(outcome)
                elif strict:
                    raise outcome
                else:
                    result.errors.append(outcome)
            result.sort(key=_newest_first_key, reverse=True)
        if limit is not None:
            del result[limit:]
        return result

    def iter_tasks(self, workspace: str, *, errors: builtins.list[AtlasTasksError] | None = None) -> Iterator[Task]:
        """Yield the workspace's tasks one at a time, in directory order, holding one in memory at a time.

        Unreadable tasks are appended to ``errors`` when a list is given; otherwise the first one is raised.
        """
        with _os_errors("iter_tasks"):
            for outcome in self._scan_tasks(workspace):
                if isinstance(outcome, Task):
                    yield outcome
                elif errors is None:
                    raise outcome
                else:
                    errors.append(outcome)

    @_storage_errors
    def list_summaries(self, workspace: str) -> SummaryList:
        """Summaries of the workspace's tasks, newest first, read without building full typed tasks.

        Unreadable tasks are reported in ``.errors`` exactly as ``list`` reports them. A summary whose task.json
        is unchanged since it was last read (same inode, mtime, ctime and size) comes from the summary cache
        (:mod:`atlas_tasks.backends._summaries`); every other task is read.
        """
        result = SummaryList()
        with self._ws_dir(workspace) as wsd:
            try:
                tasks = walk(wsd, ["tasks"])
            except FileNotFoundError:
                return result
            with tasks, _gc_paused():
                cached = self._summaries.load(workspace)
                fresh: dict[str, builtins.list[Any]] = {}
                for entry in ops.scandir(tasks.fd, tasks.path):
                    name = entry.name
                    if name.startswith("."):
                        continue
                    item = cached.get(name)
                    if item is not None and entry.is_dir(follow_symlinks=False):
                        try:
                            st = os.stat(f"{name}/{TASK_FILE}", dir_fd=tasks.fd, follow_symlinks=False)
                        except OSError:
                            pass
                        else:
                            if _summaries.stamp_of(entry.inode(), st) == tuple(item[:6]):
                                fresh[name] = item
                                result.append(self._summaries.summary(workspace, name, item))
                                continue
                    outcome = self._summary_entry(tasks, workspace, name, entry.inode())
                    if isinstance(outcome, AtlasTasksError):
                        result.errors.append(outcome)
                    elif outcome is not None:
                        result.append(outcome[0])
                        fresh[name] = outcome[1]
                        self._summaries.remember(workspace, name, outcome[1], outcome[0])
                result.sort(key=_newest_first_key, reverse=True)
        if fresh != cached:
            self._summaries.save(workspace, fresh)
        return result

    def _list_newest(self, workspace: str, limit: int) -> TaskList | None:
        """The ``limit`` newest tasks, ordered by the cached created_at; None if the cache proved stale."""
        with self._ws_dir(workspace) as wsd:
            try:
                tasks = walk(wsd, ["tasks"])
            except FileNotFoundError:
                return TaskList()
            with tasks:
                cached = self._summaries.load(workspace)
                inodes = {e.name: e.inode() for e in ops.scandir(tasks.fd, tasks.path) if e.name[0] != "."}
                result = TaskList()
                order = self._summaries.order(workspace, inodes, cached)
                if order is not None:
                    keys, unreadable = order
                    for name in unreadable:  # never cached: classified again, as list() would
                        outcome = self._summary_entry(tasks, workspace, name, inodes[name])
                        if isinstance(outcome, AtlasTasksError):
                            result.errors.append(outcome)
                    return self._read_newest(tasks, workspace, keys, limit, result)
                fresh: dict[str, builtins.list[Any]] = {}
                keys = []
                unreadable = []
                for name, inode in inodes.items():
                    item = cached.get(name)
                    if item is None or item[0] != inode:
                        outcome = self._summary_entry(tasks, workspace, name, inode)
                        if isinstance(outcome, AtlasTasksError):
                            result.errors.append(outcome)
                            unreadable.append(name)
                            continue
                        if outcome is None:
                            continue
                        item = outcome[1]
                    fresh[name] = item
                    keys.append(_summaries.sort_key(item, name))
                keys.sort(reverse=True)
                if fresh != cached:
                    self._summaries.save(workspace, fresh)
                else:
                    fresh = cached  # the object load() hands out while the file is unchanged
                self._summaries.remember_order(workspace, inodes, fresh, keys, unreadable)
                return self._read_newest(tasks, workspace, keys, limit, result)

    def _read_newest(
        self, tasks: Dir, workspace: str, keys: builtins.list[tuple[float, str]], limit: int, result: TaskList
    ) -> TaskList | None:
        """Read the tasks of ``keys`` (newest first) in full until ``limit`` are in; None if an order proved stale."""
        for key in keys:
            if len(result) >= limit:
                break
            loaded = self._load_entry(tasks, workspace, key[1])
            if isinstance(loaded, Task):
                if _newest_first_key(loaded) != key:
                    self._summaries.drop(workspace)  # created_at was rewritten behind our back
                    return None
                result.append(loaded)
            elif loaded is not None:
                result.errors.append(loaded)
        return result

    def reindex(self, workspace: str) -> None:
        """Rebuild the workspace's summary cache now (listings also keep it up to date as they go)."""
        self._summaries.drop(workspace)
        self.list_summaries(workspace)

    def _summary_entry(
        self, tasks: Dir, workspace: str, name: str, dir_inode: int
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
            summary, created, updated = _summary_and_times(raw, workspace, name, path)
            return summary, _summaries.entry_of(_summaries.stamp_of(dir_inode, st), summary, created, updated)
        except (OSError, InvalidNameError, CorruptTaskError, SchemaVersionError):
            # The full reader classifies the failure exactly as list() does (a creation in progress is no error).
            outcome = self._load_entry(tasks, workspace, name)
            return None if isinstance(outcome, Task) else outcome

    def _scan_tasks(self, workspace: str) -> Iterator[Task | AtlasTasksError]:
        with self._ws_dir(workspace) as wsd:
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
                    outcome = (
                        self._read_quick(
                            tasks.fd, f"{name}/{TASK_FILE}", f"{tasks.path}/{name}/{TASK_FILE}", workspace, name
                        )
                        if plain
                        else None
                    )
                    if outcome is None:
                        outcome = self._load_entry(tasks, workspace, name, quick=not plain)
                    if outcome is not None:
                        yield outcome

    def _load_entry(
        self, tasks: Dir, workspace: str, name: str, *, quick: bool = True
    ) -> Task | AtlasTasksError | None:
        """One entry of a listing; ``quick=False`` when the one-call read was already tried (and declined)."""
        path = tasks.child(name)
        try:
            N.check_task_id(name)
        except InvalidNameError as exc:
            return CorruptTaskError(workspace, name, path, f"not a valid task id ({exc.reason})")
        if quick:
            outcome = self._read_quick(tasks.fd, f"{name}/{TASK_FILE}", f"{path}/{TASK_FILE}", workspace, name)
            if outcome is not None:
                return outcome
        try:
            # One component below an already-walked directory: opened directly (O_NOFOLLOW), no walk() machinery.
            try:
                d = Dir(ops.open_dir(name, tasks.fd, path), path)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise UnsafePathError(exc.errno, "a symlink or a file", path) from None
                raise
            with d:
                return self._read_task(d, workspace, name)
        except IncompleteTaskError as exc:
            # A creation in progress holds the task lock between mkdir and its first write: not an error.
            if not self._lock_free(workspace, name):
                return None
            if self._hook_only(tasks, name):
                return None  # the Go ATLAS's hook files of a task it keeps under repos/<key>/: no task of this store
            try:  # the creator may have finished between our read and the lock check
                with walk(tasks, [name]) as d:
                    return self._read_task(d, workspace, name)
            except (IncompleteTaskError, FileNotFoundError):
                return exc
        except (CorruptTaskError, SchemaVersionError) as exc:
            return exc
        except FileNotFoundError:
            return None  # deleted while we listed
        except UnsafePathError:
            return CorruptTaskError(workspace, name, path, "is a symlink or a file, not a task directory")

    @staticmethod
    def _hook_only(tasks: Dir, name: str) -> bool:
        try:
            with walk(tasks, [name]) as d:
                return is_hook_only(entry.name for entry in ops.scandir(d.fd, d.path))
        except (FileNotFoundError, UnsafePathError):
            return False

    # -- creating ---------------------------------------------------------------------------------------------------
    @_storage_errors
    def create(self, workspace: str, task: Task) -> Task:
        """Store a new task. See :meth:`atlas_tasks.store.Store.create`."""
        explicit = N.check_task_id(task.id) if task.id else ""
        now = utcnow()
        with self._ws_dir(workspace) as wsd, walk(wsd, ["tasks"], create=True) as tasks:
            task_id = self._reserve(tasks, workspace, explicit)
            try:
                with self._write_lock(workspace, task_id, None), walk(tasks, [task_id]) as d:
                    ops.fchmod(d.fd, ops.DIR_MODE, d.path)
                    # A shallow copy to encode; the task handed back is decoded from the bytes written (as
                    # update does), which shares nothing with the caller's and costs less than a deep copy.
                    stored = task.model_copy(
                        update={
                            "id": task_id,
                            "workspace_name": task.workspace_name or workspace,
                            "created_at": task.created_at or now,
                            "updated_at": now,
                            "revision": 1,
                            "schema_version": "1.0",
                        }
                    )
                    data = encode_task(stored)
                    atomic.replace(d, TASK_FILE, data)
                    new = self._decode(data, workspace, task_id, d.child(TASK_FILE))
                # The reserved directory's entry, written by mkdir, must be durable before we acknowledge.
                ops.fsync(tasks.fd, tasks.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    ops.rmtree(task_id, tasks.fd, tasks.child(task_id))
                raise
        self._sync_ref(workspace, new)
        return new

    def _reserve(self, tasks: Dir, workspace: str, explicit: str) -> str:
        if explicit:
            try:
                ops.mkdir(explicit, tasks.fd, tasks.child(explicit))
            except FileExistsError:
                raise TaskExistsError(workspace, explicit, tasks.child(explicit)) from None
            return explicit
        while True:
            if self._style_for(tasks, workspace) == "uuid":
                candidates: Iterator[str] = iter([uuid_id()])
            else:
                candidates = timestamp_candidates()
            for candidate in candidates:
                try:
                    ops.mkdir(candidate, tasks.fd, tasks.child(candidate))
                except FileExistsError:
                    continue
                return candidate
            # Over a thousand creations within one second in this workspace: wait for the next second.
            time.sleep(1.0 - (time.time() % 1.0))

    def _style_for(self, tasks: Dir, workspace: str) -> Literal["timestamp", "uuid"]:
        if self.id_style != "auto":
            return self.id_style
        if workspace in self._uuid_workspaces:
            return "uuid"
        style = resolve_style("auto", (e.name for e in ops.scandir(tasks.fd, tasks.path)))
        if style == "uuid":
            self._uuid_workspaces.add(workspace)
        return style

    # -- updating ---------------------------------------------------------------------------------------------------
    @_storage_errors
    def update(self, workspace: str, task: Task) -> Task:
        """Save ``task`` unless somebody saved it first. See :meth:`atlas_tasks.store.Store.update`."""
        task_id = N.check_task_id(task.id)
        with self._task_dir(workspace, task_id) as d, self._write_lock(workspace, task_id, d):
            current = self._head(d, workspace, task_id)
            stored = self._commit(d, workspace, current, task)
        self._after_status_change(workspace, current, stored)
        return stored

    def _head(self, d: Dir, workspace: str, task_id: str) -> _Head:
        """What update needs of the stored task (revision, status, transition count), without a full decode."""
        return _Head.parse(self._task_bytes(d, workspace, task_id), workspace, task_id, d.child(TASK_FILE))

    def _commit(self, d: Dir, workspace: str, current: _Head, task: Task, *, decode: bool = True) -> Task:
        """Write ``task`` as the next revision; returns what was written.

        With ``decode`` (update), the result is decoded from the bytes written: an object that shares nothing with
        the caller's. Without it (edit, which only needs the new revision and time), the shallow copy encoded.
        """
        if task.revision != current.revision:
            raise ConflictError(workspace, task.id, task.revision, current.revision)
        check_status_change(task.id, current.status, task.status, task.transitions[current.transition_count :])
        if _created_moved(current.created_at, task.created_at):
            self._summaries.drop(workspace)  # list(limit=) orders by the cached created_at
        stored = task.model_copy(update={"revision": current.revision + 1, "updated_at": utcnow()})
        data = encode_task(stored)
        atomic.replace(d, TASK_FILE, data)
        if not decode:
            return stored
        # Hand back an object that shares nothing with the caller's: exactly what get() would now return.
        return self._decode(data, workspace, task.id, d.child(TASK_FILE))

    @contextlib.contextmanager
    def edit(self, workspace: str, task_id: str) -> Iterator[Task]:
        """Locked read-modify-write; saves on a clean exit. See :meth:`atlas_tasks.store.Store.edit`.

        The yielded task's ``revision`` and ``updated_at`` are brought up to date after the save. Exceptions
        raised by the block itself pass through untouched (and nothing is saved).
        """
        stack = contextlib.ExitStack()
        try:
            with _os_errors("edit"):
                d = stack.enter_context(self._task_dir(workspace, task_id))
                stack.enter_context(self._write_lock(workspace, task_id, d))
                work = self._read_task(d, workspace, task_id)  # freshly decoded: ours to hand out
        except BaseException:
            stack.close()
            raise
        current = _Head(work.revision, str(work.status), len(work.transitions), work.created_at)
        with stack:
            yield work
            with _os_errors("update"):
                stored = self._commit(d, workspace, current, work, decode=False)
            work.revision, work.updated_at = stored.revision, stored.updated_at
        self._after_status_change(workspace, current, stored)

    def modify(self, workspace: str, task_id: str, fn: Callable[[Task], object]) -> Task:
        """Locked read-modify-write with ``fn(task)``; returns the stored task."""
        with self.edit(workspace, task_id) as task:
            fn(task)
        return task

    # -- deleting ---------------------------------------------------------------------------------------------------
    @_storage_errors
    def delete(self, workspace: str, task_id: str) -> None:
        """Remove a task with its log and artifacts. See :meth:`atlas_tasks.store.Store.delete`.

        The Go ATLAS's hook files go with it: in the task's directory, and for a repo-scoped store in the legacy
        tree of its Go home. A task the Go daemon is running is refused (``TaskRunningError``).
        """
        daemon = go_daemon.running_holder(self.go_home, N.check_task_id(task_id))
        if daemon is not None:
            raise TaskRunningError(workspace, task_id, daemon)
        with (
            self._task_dir(workspace, task_id) as d,
            self._write_lock(workspace, task_id, d),
            self._open_home() as home,
            walk(home, [PRIVATE_DIR, "trash"], create=True, mode=0o700) as trash,
            self._ws_dir(workspace) as wsd,
            walk(wsd, ["tasks"]) as tasks,
        ):
            # Rename first, so no reader or writer ever sees a half-deleted task, then remove at leisure.
            # Cut to fit NAME_MAX (255 bytes) with the longest names; the random part keeps it unique.
            parked = f"{workspace[:100]}--{task_id[:100]}--{secrets.token_hex(4)}"
            ops.rename(task_id, parked, tasks.fd, trash.fd, tasks.child(task_id))
            ops.fsync(tasks.fd, tasks.path)
            ops.fsync(trash.fd, trash.path)
            ops.rmtree(parked, trash.fd, trash.child(parked))
        self._summaries.forget(workspace, task_id)
        self._drop_ref(workspace, task_id)
        for key in [k for k in self._next_version if k[1:3] == (workspace, task_id)]:
            del self._next_version[key]
        if self.go_home != self.home:
            self._drop_legacy_hook(workspace, task_id)

    def _drop_legacy_hook(self, workspace: str, task_id: str) -> None:
        # Go keeps a repo-scoped task's hook files in <go home>/workspaces/<ws>/tasks/<id>/: removed only when that
        # directory holds hook files and nothing else, so a legacy task of the same id is never touched.
        try:
            with (
                open_home(str(self.go_home), create=False) as root,
                walk(root, ["workspaces", workspace, "tasks"]) as tasks,
            ):
                if self._hook_only(tasks, task_id):
                    ops.rmtree(task_id, tasks.fd, tasks.child(task_id))
                    ops.fsync(tasks.fd, tasks.path)
        except (FileNotFoundError, UnsafePathError):
            return

    # -- logs -------------------------------------------------------------------------------------------------------
    def _log_line(self, workspace: str, task_id: str, entry: LogEntry) -> bytes:
        if isinstance(entry, Mapping):
            record = dict(entry)
            record.setdefault("ts", utcnow().isoformat().replace("+00:00", "Z"))
            record.setdefault("workspace_name", workspace)
            record.setdefault("task_id", task_id)
            try:
                text = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str)
            except ValueError as exc:
                raise InvalidLogEntryError(workspace, task_id, str(exc)) from None
            except RecursionError:
                raise InvalidLogEntryError(workspace, task_id, _TOO_DEEP) from None
            return text.encode("utf-8") + b"\n"
        raw = _to_bytes(entry)
        if raw.endswith(b"\n"):
            raw = raw[:-1]
        if b"\n" in raw or b"\r" in raw:
            raise InvalidLogEntryError(workspace, task_id, "it contains a line break (one entry is one line)")
        if b"\x00" in raw:
            raise InvalidLogEntryError(workspace, task_id, "it contains a NUL byte")
        try:
            json.loads(raw)
        except ValueError as exc:
            raise InvalidLogEntryError(workspace, task_id, f"not valid JSON ({exc})") from None
        except RecursionError:
            # Valid JSON, but one that no reader of this library could parse back: refused rather than stored.
            raise InvalidLogEntryError(workspace, task_id, _TOO_DEEP) from None
        return raw + b"\n"

    @_storage_errors
    def append_log(self, workspace: str, task_id: str, entry: LogEntry) -> None:
        """Append one JSON line to the task's log, durably. See :meth:`atlas_tasks.store.Store.append_log`."""
        line = self._log_line(workspace, task_id, entry)
        with self._task_dir(workspace, task_id) as d, self._write_lock(workspace, task_id, d):
            self._require_task_file(d, workspace, task_id)
            atomic.append_line(d, LOG_FILE, line)

    @_storage_errors
    def read_log(self, workspace: str, task_id: str) -> LogLines:
        """Return the log's entries. See :meth:`atlas_tasks.store.Store.read_log`."""
        with self._task_dir(workspace, task_id) as d:
            try:
                raw = atomic.read(d, LOG_FILE)
            except FileNotFoundError:
                self._require_task_file(d, workspace, task_id)
                return LogLines()
            return parse_log(raw, workspace, task_id, d.child(LOG_FILE))

    def iter_log(self, workspace: str, task_id: str) -> Iterator[dict[str, Any]]:
        """Yield the log's intact entries in order."""
        yield from self.read_log(workspace, task_id)

    @_storage_errors
    def tail_log(self, workspace: str, task_id: str, lines: int, *, after: int | None = None) -> LogTail:
        """The last ``lines`` entries of the log, or with ``after`` the first ``lines`` entries after that position.

        Reads only the window, never the whole file: backwards from the end of task.log in 64 KiB blocks, or
        forwards from the byte offset ``after``, and never more than :data:`LOG_WINDOW_BYTES` (a line longer than
        that is counted in ``skipped`` and left out). Positions are byte offsets: ``after`` continues just after
        the line that ended there; one in the middle of a line continues at the next line, and one past the end
        (the log was replaced) starts over from the beginning. Damaged lines in the window are counted in
        ``skipped`` only (``read_log`` names them with their line numbers).
        """
        with self._task_dir(workspace, task_id) as d:
            path = d.child(LOG_FILE)
            try:
                fd = ops.open_file_noatime(LOG_FILE, d.fd, path)
            except FileNotFoundError:
                self._require_task_file(d, workspace, task_id)
                return LogTail()
            try:
                info = ops.fstat(fd)
                ops.require_regular(info, path)  # opened without blocking: a FIFO or device is refused here
                size = info.st_size
                if after is None:
                    return _tail_window(fd, size, max(lines, 0), path)
                return _forward_window(fd, size, max(after, 0), max(lines, 0), path)
            finally:
                ops.close(fd)

    # -- artifacts --------------------------------------------------------------------------------------------------
    @_storage_errors
    def save_artifact(self, workspace: str, task_id: str, filename: str, data: bytes | str) -> str:
        """Durably write an artifact. See :meth:`atlas_tasks.store.Store.save_artifact`."""
        parts = N.check_plain_artifact_name(filename)
        payload = _to_bytes(data)
        with self._task_dir(workspace, task_id) as d:
            self._require_task_file(d, workspace, task_id)
            with (
                self._temp_writer(workspace, task_id),
                walk(d, [ARTIFACTS_DIR, *parts[:-1]], create=True) as adir,
            ):
                atomic.replace(adir, parts[-1], payload)
        return "/".join(parts)

    @_storage_errors
    def save_versioned_artifact(self, workspace: str, task_id: str, base_name: str, data: bytes | str) -> str:
        """Write the next version of an artifact. See :meth:`atlas_tasks.store.Store.save_versioned_artifact`."""
        parts = N.artifact_parts(base_name)
        payload = _to_bytes(data)
        leaf = parts[-1]
        key = (str(self.home), workspace, task_id, *parts)
        with self._task_dir(workspace, task_id) as d:
            self._require_task_file(d, workspace, task_id)
            with (
                self._temp_writer(workspace, task_id),
                walk(d, [ARTIFACTS_DIR, *parts[:-1]], create=True) as adir,
            ):
                won = atomic.claim_first(adir, self._version_candidates(adir, key, leaf), payload)
                if won is None:  # pragma: no cover - the candidate stream is endless
                    raise StorageError("claim artifact version", f"{base_name}", None, "no free version")
                version = N.version_of(won, leaf) or 0
                _write_version_hint(adir, leaf, version)
        self._next_version[key] = version + 1
        return "/".join([*parts[:-1], won])

    def _version_candidates(self, adir: Dir, key: tuple[str, ...], leaf: str) -> Iterator[str]:
        # O(1) per save: start from where this process left off. On a collision (another process saved, or the
        # process is new), scan once for the highest existing version, so a deleted number is never reused
        # below a higher one and retries stay bounded.
        cached = self._next_version.get(key)
        if cached is None:
            # A fresh store (a resumed run, a CLI call): the hint left by the last save, validated the same way.
            hinted = _read_version_hint(adir, leaf)
            cached = None if hinted is None else hinted + 1
        if cached is not None and self._exists(adir, N.versioned_name(leaf, cached - 1)):
            # One stat proves the cache still describes this directory (the task may have been deleted and
            # re-created under the same id since, by us or by another process).
            yield N.versioned_name(leaf, cached)
        highest = 0
        for entry in ops.scandir(adir.fd, adir.path):
            version = N.version_of(entry.name, leaf)
            if version is not None and version > highest:
                highest = version
        n = highest + 1
        while True:
            yield N.versioned_name(leaf, n)
            n += 1

    @staticmethod
    def _exists(d: Dir, name: str) -> bool:
        try:
            ops.stat_at(name, d.fd)
        except FileNotFoundError:
            return False
        return True

    @_storage_errors
    def get_artifact(self, workspace: str, task_id: str, filename: str) -> bytes:
        """Return an artifact's bytes. See :meth:`atlas_tasks.store.Store.get_artifact`."""
        parts = N.artifact_parts(filename)
        with self._task_dir(workspace, task_id) as d:
            try:
                with walk(d, [ARTIFACTS_DIR, *parts[:-1]]) as adir:
                    return atomic.read(adir, parts[-1])
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError, UnsafePathError):
                path = f"{d.path}/{ARTIFACTS_DIR}/{filename}"
                raise ArtifactNotFoundError(workspace, task_id, filename, path) from None

    @_storage_errors
    def list_artifacts(self, workspace: str, task_id: str) -> builtins.list[str]:
        """Relative paths of the task's artifacts in natural order. See :meth:`Store.list_artifacts`."""
        with self._task_dir(workspace, task_id) as d:
            try:
                adir = walk(d, [ARTIFACTS_DIR])
            except FileNotFoundError:
                return []
            with adir:
                found: builtins.list[str] = []
                self._walk_artifacts(adir, "", found)
        return _natural_sorted(found)

    def _walk_artifacts(self, d: Dir, prefix: str, found: builtins.list[str]) -> None:
        for entry in ops.list_dir(d.fd, d.path):
            name = entry.name
            if name[0] == ".":
                continue  # temp files and anything hidden are never artifacts
            if entry.is_dir(follow_symlinks=False):
                with walk(d, [name]) as sub:
                    self._walk_artifacts(sub, f"{prefix}{name}/", found)
            elif entry.is_file(follow_symlinks=False):
                found.append(prefix + name)

    # -- run leases -------------------------------------------------------------------------------------------------
    def _lease_dir(self, workspace: str, task_id: str, *, create: bool) -> Dir:
        N.check_workspace_name(workspace)
        N.check_task_id(task_id)
        return self._private_dir("leases", workspace, create=create)

    @_storage_errors
    def acquire_lease(self, workspace: str, task_id: str, holder: Mapping[str, Any]) -> locks.Lease:
        """Take the task's run lease (one live runner per task); released by ``lease.release()`` or by death.

        Raises:
            TaskRunningError: a live runner holds it (the error names its pid, host and start time).
        """
        daemon = go_daemon.running_holder(self.go_home, N.check_task_id(task_id))
        if daemon is not None:
            raise TaskRunningError(workspace, task_id, daemon)
        with self._lease_dir(workspace, task_id, create=True) as lease_dir:
            path, data = lease_dir.child(f"{task_id}.lease"), json.dumps(dict(holder), default=str).encode()
            lease = locks.try_lease(path, data, dir_fd=lease_dir.fd)
        if lease is None:
            raise TaskRunningError(workspace, task_id, self.lease_holder(workspace, task_id) or {})
        return lease

    @_storage_errors
    def lease_holder(self, workspace: str, task_id: str) -> dict[str, Any] | None:
        """Who holds the task's run lease (pid, host, started_at), or None when no live runner does.

        A task the Go ATLAS daemon of this home reports as running counts as held, by the daemon
        (``{"daemon": socket path, ...}``): its runs take no lease of ours.
        """
        try:
            lease_dir = self._lease_dir(workspace, task_id, create=False)
        except FileNotFoundError:
            return go_daemon.running_holder(self.go_home, task_id)
        with lease_dir:
            raw = locks.lease_holder(lease_dir.child(f"{task_id}.lease"), dir_fd=lease_dir.fd)
        if raw is None:
            return go_daemon.running_holder(self.go_home, task_id)
        try:
            holder = json.loads(raw)
        except (ValueError, RecursionError):
            return {}  # held, but the holder is still writing its description (or wrote nonsense)
        return holder if isinstance(holder, dict) else {}

    def run(self, workspace: str, task_id: str) -> contextlib.AbstractContextManager[Run]:
        """Run a task step by step under its run lease; see :mod:`atlas_tasks.runs`."""
        from atlas_tasks import runs  # runs imports the store protocol; importing it lazily keeps this module light

        return runs.run(self, workspace, task_id)

    @_storage_errors
    def lease_candidates(self, workspace: str) -> builtins.set[str] | None:
        """The ids of the workspace's tasks that have a run-lease file at all (see :class:`RunLeases`).

        A runner creates its lease file before it moves the task to running, and the file is never removed, so a
        running task without one has no live runner: one directory listing instead of one lease probe per task.
        """
        N.check_workspace_name(workspace)
        try:
            lease_dir = self._private_dir("leases", workspace, create=False)
        except FileNotFoundError:
            return set()
        with lease_dir:
            return {
                e.name[: -len(".lease")] for e in ops.scandir(lease_dir.fd, lease_dir.path) if e.name.endswith(".lease")
            }

    # -- change stamps (ChangeStamps: the dashboard's index re-reads only what changed) ---------------------------
    @_storage_errors
    def workspace_names(self) -> builtins.list[str]:
        """Workspace directories with valid names, sorted (no workspace.json is decoded)."""
        try:
            home = self._open_home()
        except FileNotFoundError:
            return []
        with home:
            try:
                wdir = walk(home, ["workspaces"])
            except (FileNotFoundError, NotADirectoryError, UnsafePathError):
                return []
            with wdir:
                return sorted(
                    e.name
                    for e in ops.scandir(wdir.fd, wdir.path)
                    if _valid_name(N.check_workspace_name, e.name) and e.is_dir(follow_symlinks=False)
                )

    @_storage_errors
    def task_stamps(self, workspace: str) -> dict[str, Any]:
        """One stamp per entry of the workspace's tasks directory: task.json's (inode, mtime, ctime, size) or None.

        task.json is only ever replaced by rename, so a changed task always has a new inode or mtime.
        """
        with self._ws_dir(workspace) as wsd:
            try:
                tasks = walk(wsd, ["tasks"])
            except FileNotFoundError:
                return {}  # a workspace without tasks yet
            with tasks:
                return {
                    e.name: _stat_stamp(f"{e.name}/{TASK_FILE}", tasks.fd)
                    for e in ops.scandir(tasks.fd, tasks.path)
                    if not e.name.startswith(".")
                }

    @_storage_errors
    def task_stamp(self, workspace: str, task_id: str) -> Any:
        """The stamp of one task as :meth:`task_stamps` gives it (None if it has no task.json now)."""
        N.check_task_id(task_id)
        try:
            with self._ws_dir(workspace) as wsd:
                return _stat_stamp(f"tasks/{task_id}/{TASK_FILE}", wsd.fd)
        except (WorkspaceNotFoundError, FileNotFoundError):
            return None

    # -- log following and artifact sizes ---------------------------------------------------------------------------
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
        """Yield the log's entries after byte ``after``, then new ones as they are appended, until ``until()``.

        Reads through :meth:`tail_log` a window at a time (never a path opened here, so a FIFO or symlink planted
        as task.log is refused like everywhere else). See :meth:`atlas_tasks.store.Store.follow_log`.
        """
        from atlas_tasks.store.base import BaseStore

        return BaseStore.follow_log(
            cast(BaseStore, self),  # the interim: FileStore is not a BaseStore subclass yet
            workspace,
            task_id,
            until=until,
            poll=poll,
            after=after,
            on_listen=on_listen,
            on_task=on_task,
        )

    def _announce_revision(self, workspace: str, task_id: str, known: int, on_task: Callable[[str], None]) -> int:
        from atlas_tasks.store.base import BaseStore

        return BaseStore._announce_revision(cast(BaseStore, self), workspace, task_id, known, on_task)

    @_storage_errors
    def artifact_sizes(self, workspace: str, task_id: str) -> dict[str, int]:
        """Each artifact's size in bytes, by a stat beneath the task's directory (nothing is read)."""
        names = self.list_artifacts(workspace, task_id)
        sizes: dict[str, int] = {}
        with self._task_dir(workspace, task_id) as d:
            for name in names:
                try:
                    sizes[name] = ops.stat_at(f"{ARTIFACTS_DIR}/{name}", d.fd).st_size
                except OSError:
                    continue  # removed since it was listed
        return sizes

    @property
    def url(self) -> str:
        """``file:///path/to/home``: :func:`atlas_tasks.store.urls.open_store` opens this store again."""
        from atlas_tasks.store.urls import file_url

        return file_url(self.home)

    def log_path(self, workspace: str, task_id: str) -> Path:
        """The task.log file of a task (for display)."""
        return self.task_path(workspace, task_id) / LOG_FILE

    # -- consistency ------------------------------------------------------------------------------------------------
    @_storage_errors
    def check(self, workspace: str | None = None, *, fix: bool = False) -> CheckReport:
        """Find what crashes or hand edits left behind (one workspace, or all); repair what is safe with ``fix``.

        Reports temp files, incomplete creations, corrupt or newer-format tasks, torn or damaged logs,
        unfinished deletes and workspace.json refs out of step; see :mod:`atlas_tasks.backends._file_check`.
        """
        return check_store(self, workspace, fix)

    # -- workspaces -------------------------------------------------------------------------------------------------
    @_storage_errors
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
        """Create a workspace. See :meth:`atlas_tasks.store.Store.create_workspace`."""
        N.check_workspace_name(name)
        with self._open_home(create=True) as home:
            try:
                walk(home, ["workspaces", name]).close()
                new_dir = False
            except FileNotFoundError:
                new_dir = True
            try:
                return self._create_workspace(home, name, path, worktree_path, branch, metadata, exist_ok=exist_ok)
            except BaseException as exc:
                if new_dir and not isinstance(exc, WorkspaceExistsError):
                    self._unmake_workspace_dir(home, name)
                raise

    def _unmake_workspace_dir(self, home: Dir, name: str) -> None:
        """Remove the directory a failed create_workspace made (a full disk, say), so no half workspace "exists".

        Only if it holds nothing but the workspace lock file and temp files: anything else is another writer's.
        Best effort; the failure being reported is the create's own. The removal is not fsynced: the failure may
        have been the fsync of this very parent, and a failed fsync is never followed by another on the same file
        (it could report success for writes the kernel already dropped). After a power cut the empty directory
        may come back; it holds no workspace.json, so nothing was acknowledged by it.
        """
        with contextlib.suppress(OSError), walk(home, ["workspaces"]) as parent, walk(parent, [name]) as wsd:
            entries = [e.name for e in ops.list_dir(wsd.fd, wsd.path)]
            if not all(e == f"{WORKSPACE_FILE}.lock" or atomic.is_temp_name(e) for e in entries):
                return
            for entry in entries:
                ops.unlink(entry, wsd.fd, wsd.child(entry))
            ops.rmdir(name, parent.fd, wsd.path)

    def _create_workspace(
        self,
        home: Dir,
        name: str,
        path: str,
        worktree_path: str,
        branch: str,
        metadata: Mapping[str, Any] | None,
        *,
        exist_ok: bool,
    ) -> Workspace:
        with (
            walk(home, ["workspaces", name], create=True) as wsd,
            locks.hold(wsd.child(f"{WORKSPACE_FILE}.lock"), f"workspace {name!r}", self.lock_timeout, dir_fd=wsd.fd),
        ):
            existing = self._read_workspace(wsd, name)
            if existing is not None and existing.created_at is not None:
                if exist_ok:
                    return existing
                raise WorkspaceExistsError(name, wsd.child(WORKSPACE_FILE))
            now = utcnow()
            ws = Workspace(
                name=name,
                path=path,
                worktree_path=worktree_path,
                branch=branch,
                created_at=now,
                updated_at=now,
                metadata=dict(metadata or {}),
            )
            atomic.replace(wsd, WORKSPACE_FILE, encode_workspace(ws))
            return ws

    def _read_workspace(self, wsd: Dir, name: str) -> Workspace | None:
        try:
            raw = atomic.read(wsd, WORKSPACE_FILE)
        except FileNotFoundError:
            return None
        try:
            return decode_workspace(raw, path=wsd.child(WORKSPACE_FILE))
        except SchemaVersionError:
            raise
        except ValueError as exc:
            raise CorruptWorkspaceError(name, wsd.child(WORKSPACE_FILE), str(exc).splitlines()[0]) from None

    @_storage_errors
    def get_workspace(self, name: str) -> Workspace:
        """Return a workspace; a hand-made directory without workspace.json gives a bare Workspace."""
        with self._ws_dir(name) as wsd:
            ws = self._read_workspace(wsd, name)
        return ws if ws is not None else Workspace(name=name)

    @_storage_errors
    def list_workspaces(self) -> WorkspaceList:
        """Return every workspace, sorted by name. See :meth:`atlas_tasks.store.Store.list_workspaces`."""
        result = WorkspaceList()
        try:
            home = self._open_home()
        except FileNotFoundError:
            return result
        with home:
            try:
                wdir = walk(home, ["workspaces"])
            except FileNotFoundError:
                return result
            with wdir:
                names = sorted(
                    e.name
                    for e in ops.scandir(wdir.fd, wdir.path)
                    if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)
                )
        for name in names:
            try:
                result.append(self._workspace_entry(name))
            except (
                InvalidNameError,
                CorruptWorkspaceError,
                SchemaVersionError,
                WorkspaceNotFoundError,
            ) as exc:
                if not isinstance(exc, WorkspaceNotFoundError):
                    result.errors.append(exc)
        return result

    def _workspace_entry(self, name: str) -> Workspace:
        """One workspace of a listing: a workspace.json of the wrong kind (a FIFO, a symlink) is a corrupt one."""
        try:
            with self._ws_dir(name) as wsd:
                try:
                    ws = self._read_workspace(wsd, name)
                except OSError as exc:
                    kind = odd_kind(exc)
                    if kind is None:
                        raise
                    raise CorruptWorkspaceError(
                        name, wsd.child(WORKSPACE_FILE), refused(WORKSPACE_FILE, kind)
                    ) from None
        except UnsafePathError:
            raise WorkspaceNotFoundError(name, str(self.workspace_path(name))) from None  # swapped for a symlink
        return ws if ws is not None else Workspace(name=name)

    @_storage_errors
    def set_workspace_status(self, name: str, status: str) -> Workspace:
        """Set a workspace's status (active, paused, closed) in its workspace.json.

        Raises:
            ValueError: not one of the statuses.
        """
        with (
            self._ws_dir(name) as wsd,
            locks.hold(wsd.child(f"{WORKSPACE_FILE}.lock"), f"workspace {name!r}", self.lock_timeout, dir_fd=wsd.fd),
        ):
            ws = self._read_workspace(wsd, name) or Workspace(name=name, created_at=utcnow())
            ws.status = WorkspaceStatus(status)
            ws.updated_at = utcnow()
            atomic.replace(wsd, WORKSPACE_FILE, encode_workspace(ws))
            return ws

    # -- workspace.json task refs (a convenience index for the Go ATLAS; doctor resyncs it) -------------------------
    def _edit_refs(
        self,
        workspace: str,
        change: Callable[[builtins.list[TaskRef]], bool],
        raw_change: Callable[[builtins.list[dict[str, Any]]], bool] | None = None,
    ) -> None:
        # The task itself is already committed when this runs: a failure here must not turn an acknowledged
        # create/delete into a reported error (the caller would retry and duplicate), so it is swallowed.
        # ``raw_change`` does the same on the refs as plain JSON objects: no model is built for the other refs,
        # which made every create O(tasks in the workspace) in Python (256 ms at 10,000 tasks).
        with (
            contextlib.suppress(AtlasTasksError, OSError),
            self._ws_dir(workspace) as wsd,
            locks.hold(
                wsd.child(f"{WORKSPACE_FILE}.lock"), f"workspace {workspace!r}", self.lock_timeout, dir_fd=wsd.fd
            ),
        ):
            if raw_change is not None:
                try:
                    raw = atomic.read(wsd, WORKSPACE_FILE)
                except FileNotFoundError:
                    return
                try:
                    patched = patch_workspace_refs(raw, raw_change, utcnow(), path=wsd.child(WORKSPACE_FILE))
                except (ValueError, AtlasTasksError):
                    pass  # not a document the raw edit can keep exact: the model path below decides
                else:
                    if patched is not None:
                        atomic.replace(wsd, WORKSPACE_FILE, patched)
                    return
            ws = self._read_workspace(wsd, workspace)
            if ws is None or not change(ws.tasks):
                return
            ws.updated_at = utcnow()
            atomic.replace(wsd, WORKSPACE_FILE, encode_workspace(ws))

    def _sync_ref(self, workspace: str, task: Task) -> None:
        ref = TaskRef(
            id=task.id,
            status=str(task.status),
            started_at=task.created_at,
            completed_at=task.completed_at if is_terminal(task.status) else None,
        )

        def change(refs: builtins.list[TaskRef]) -> bool:
            for i, old in enumerate(refs):
                if old.id == task.id:
                    refs[i] = ref
                    return True
            refs.append(ref)
            return True

        def raw_change(refs: builtins.list[dict[str, Any]]) -> bool:
            doc = ref_document(ref)
            for i, old in enumerate(refs):
                if old.get("id") == task.id:
                    refs[i] = doc
                    return True
            refs.append(doc)
            return True

        self._edit_refs(workspace, change, raw_change)

    def _drop_ref(self, workspace: str, task_id: str) -> None:
        def change(refs: builtins.list[TaskRef]) -> bool:
            kept = [r for r in refs if r.id != task_id]
            changed = len(kept) != len(refs)
            refs[:] = kept
            return changed

        def raw_change(refs: builtins.list[dict[str, Any]]) -> bool:
            kept = [r for r in refs if r.get("id") != task_id]
            changed = len(kept) != len(refs)
            refs[:] = kept
            return changed

        self._edit_refs(workspace, change, raw_change)

    def _after_status_change(self, workspace: str, before: _Head, after: Task) -> None:
        if after.status != before.status and is_terminal(after.status):
            self._sync_ref(workspace, after)


@dataclass(frozen=True)
class _Head:
    """The parts of a stored task that a revision-checked write compares against."""

    revision: int
    status: str
    transition_count: int
    #: As stored (text or datetime); only compared, never trusted to be valid.
    created_at: object = None

    @classmethod
    def parse(cls, raw: bytes, workspace: str, task_id: str, path: str) -> _Head:
        try:
            # pydantic-core's parser, about 3x faster than json.loads on a 10 KB task; NaN/Infinity accepted as
            # json.loads accepts them (this only reads the head; a full decode judges the rest).
            doc = from_json(raw, allow_inf_nan=True)
            if not isinstance(doc, dict):
                raise ValueError("not a JSON object")
            _check_major(doc, path)
            return cls(
                int(doc.get("revision") or 0),
                str(doc.get("status") or "pending"),
                len(doc.get("transitions") or ()),
                doc.get("created_at"),
            )
        except SchemaVersionError:
            raise
        except (ValueError, TypeError) as exc:
            raise CorruptTaskError(workspace, task_id, path, str(exc).splitlines()[0]) from None


# Task ids that check_task_id accepts without a second look (every id this library or the Go ATLAS makes).
_PLAIN_TASK_ID = re.compile(r"task-[A-Za-z0-9_-]{1,123}")


def _check_major(doc: dict[str, Any], path: str) -> None:
    version = str(doc.get("schema_version") or "1").split(".", 1)[0]
    if version.isdigit() and int(version) > 1:
        raise SchemaVersionError(path, str(doc.get("schema_version")), "1.x")


def _created_moved(before: object, after: datetime | None) -> bool:
    try:
        return parse_time(before) != after
    except ValueError:
        return True


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a listing builds thousands of objects that all stay alive.

    Each collection would walk every model built so far: 10,000 tasks took 4-5 times longer with it running.
    Nothing built here is cyclic garbage; the collector is switched back on (if it was on) when the block ends.

    Switching it back on is not enough by itself: every object built meanwhile is still in the youngest
    generation, so the next allocation triggers a collection that walks them all (~30 us per 10 KB task, 0.3 s
    for 10,000). They are about to be handed to the caller, who keeps them, so they are moved straight to the
    oldest generation instead (``freeze`` + ``unfreeze``: two list splices, no walk). Whatever else was young
    then is promoted too and is collected by the next full collection rather than a young one. Skipped when the
    application froze objects itself (``gc.freeze()`` before a fork): unfreezing would undo that.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        gc.enable()


def _newest_first_key(item: Task | TaskSummary) -> tuple[float, str]:
    created = item.created_at
    return (created.timestamp() if created is not None else float("-inf"), item.id)


def summarize(raw: bytes, workspace: str, task_id: str, path: str) -> TaskSummary:
    """A TaskSummary straight from task.json bytes (either key spelling), skipping full model validation."""
    return _summary_and_times(raw, workspace, task_id, path)[0]


def _summary_and_times(raw: bytes, workspace: str, task_id: str, path: str) -> tuple[TaskSummary, Any, Any]:
    """:func:`summarize`, plus the created_at and updated_at values as stored (for the summary cache)."""
    try:
        # pydantic-core's parser, as decode_task uses: the same verdict on excessive nesting (a ValueError, where
        # json.loads raises RecursionError) and on invalid UTF-8; NaN/Infinity accepted as _Head accepts them.
        doc = from_json(raw, allow_inf_nan=True)
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        _check_major(doc, path)
        steps = doc.get("steps") or []
        created, updated = doc.get("created_at"), doc.get("updated_at")
        current_step = int(doc.get("current_step") or 0)
        total_steps = len(steps) if isinstance(steps, builtins.list) else 0
        if not 0 <= current_step <= total_steps:
            raise ValueError(current_step_error(current_step, total_steps))
        summary = TaskSummary(
            id=str(doc.get("id") or task_id),
            workspace=workspace,
            status=str(doc.get("status") or "pending"),
            template=str(doc.get("template", doc.get("template_id", "")) or ""),
            description=str(doc.get("description") or ""),
            current_step=current_step,
            total_steps=total_steps,
            created_at=parse_time(created),
            updated_at=parse_time(updated),
            revision=int(doc.get("revision") or 0),
        )
        return summary, created, updated
    except SchemaVersionError:
        raise
    except (ValueError, TypeError) as exc:
        raise CorruptTaskError(workspace, task_id, path, str(exc).splitlines()[0]) from None


_TOO_DEEP = "JSON nested too deeply to parse (more levels than Python's parser follows, about 1,000)"


def _parse_line(line: bytes) -> tuple[dict[str, Any] | None, str]:
    try:
        record = json.loads(line)
    except ValueError as exc:
        return None, f"not valid JSON ({exc})"
    except RecursionError:
        # A NUL inside says it is the zero-filled remains of a cut append (possibly torn), not a whole document.
        return None, _TOO_DEEP if b"\x00" not in line else "not valid JSON (NUL bytes in a deeply nested line)"
    if not isinstance(record, dict):
        return None, "not a JSON object"
    return record, ""


#: The most a ``tail_log`` window reads, whatever its line count: what one dashboard request may cost.
LOG_WINDOW_BYTES = 8 * 1024 * 1024
_BLOCK = 64 * 1024


def _tail_window(fd: int, size: int, lines: int, path: str) -> LogTail:
    """The last ``lines`` whole lines (and a torn tail after them), read backwards block by block."""
    end = atomic.clean_end(fd, size, path)  # just after the last newline: beyond it only a torn tail
    blocks: list[bytes] = []
    pos, newlines, held = end, 0, 0
    # One newline more than lines: the one that ends the line before the window (unless the file begins first).
    while pos > 0 and lines > 0 and newlines <= lines and held < LOG_WINDOW_BYTES:
        take = min(_BLOCK, pos)
        pos -= take
        block = ops.pread(fd, take, pos, path)
        blocks.append(block)
        newlines += block.count(b"\n")
        held += len(block)
    raw = b"".join(reversed(blocks))
    blocks.clear()
    cut = 0
    if pos > 0:  # the first bytes belong to a line that began before the window: not a whole line
        cut = raw.find(b"\n") + 1 if b"\n" in raw else len(raw)
    extra = raw.count(b"\n", cut) - lines
    for _ in range(max(extra, 0)):
        cut = raw.index(b"\n", cut) + 1
    window = _parse_window(raw[cut:], pos + cut)
    if pos > 0 and cut == len(raw) and end > 0 and lines > 0:
        window.skipped += 1  # one line longer than the window: left out
    if size > end:  # bytes after the last newline: an append cut short (as read_log reports it)
        window.torn_tail = True
        window.skipped += 1
    return window


def _forward_window(fd: int, size: int, after: int, lines: int, path: str) -> LogTail:
    """Up to ``lines`` whole lines from byte ``after`` on, read forwards block by block."""
    if after > size:
        after = 0  # the log is shorter than the position: it was replaced (a task re-created): start over
    pos = after
    if pos > 0 and ops.pread(fd, 1, pos - 1, path) != b"\n":
        pos = _next_line(fd, pos, size, path)  # inside a line: continue at the next whole one
    blocks: list[bytes] = []
    read, newlines, held = pos, 0, 0
    while read < size and newlines < lines and held < LOG_WINDOW_BYTES:
        block = ops.pread(fd, min(_BLOCK, size - read), read, path)
        if not block:
            break
        blocks.append(block)
        read += len(block)
        held += len(block)
        newlines += block.count(b"\n")
    raw = b"".join(blocks)
    blocks.clear()
    stop = 0
    for _ in range(min(newlines, lines)):
        stop = raw.index(b"\n", stop) + 1
    window = _parse_window(raw[:stop], pos)
    # More after the window: a whole line was read past it, or reading stopped (lines or bytes) before the end.
    window.more = newlines > lines or (lines > 0 and read < size)
    if lines > 0 and newlines == 0 and held >= LOG_WINDOW_BYTES:  # one line longer than the window: step over it
        window.end = _next_line(fd, pos, size, path)
        window.skipped += int(window.end > pos)
        window.more = window.end > pos
    return window


def _next_line(fd: int, pos: int, size: int, path: str) -> int:
    """The offset just after the next newline at or after ``pos`` (``pos`` itself if there is none yet)."""
    at = pos
    while at < size:
        block = ops.pread(fd, min(_BLOCK, size - at), at, path)
        if not block:
            break
        found = block.find(b"\n")
        if found >= 0:
            return at + found + 1
        at += len(block)
    return pos


def _parse_window(raw: bytes, start: int) -> LogTail:
    """Whole lines ``raw`` (each ending in a newline) found at byte ``start``: entries with their end offsets."""
    window = LogTail()
    window.start = window.end = start
    offset = start
    for line in raw.split(b"\n")[:-1] if raw else []:
        offset += len(line) + 1
        if not line.strip():
            continue
        record, _reason = _parse_line(line)
        if record is None:
            window.skipped += 1  # counted only: its line number is unknown without reading the lines before it
        else:
            window.append(record)
            window.positions.append(offset)
    window.end = offset
    return window


def parse_log(raw: bytes, workspace: str, task_id: str, path: str) -> LogLines:
    """Parse task.log bytes: intact lines kept; a torn final line skipped; damaged middle lines reported."""
    out = LogLines()
    lines = raw.split(b"\n")
    if lines.pop():  # bytes after the last newline: the remains of an append cut short by a crash
        out.torn_tail = True
        out.skipped += 1
    bad: list[tuple[int, str]] = []
    last_good = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        record, reason = _parse_line(line)
        if record is None:
            bad.append((number, reason))
        else:
            out.append(record)
            last_good = number
    for number, reason in bad:
        out.skipped += 1
        if number > last_good and reason is not _TOO_DEEP:
            # Nothing intact after it: also the remains of an interrupted append (e.g. NUL-filled by ext4).
            out.torn_tail = True
        else:
            out.errors.append(CorruptLogError(workspace, task_id, path, number, reason))
    return out


def _stat_stamp(relative: str, dir_fd: int) -> tuple[int, int, int, int] | None:
    try:
        st = ops.stat_at(relative, dir_fd)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)


def _valid_name(check: Callable[[str], str], name: str) -> bool:
    try:
        check(name)
    except InvalidNameError:
        return False
    return True


__all__ = ["FileStore", "parse_log"]
