"""FileStore: the embedded default backend, one directory tree per home, readable by the Go ATLAS.

Layout (the Go ATLAS's, plus one hidden directory of our own)::

    <home>/workspaces/<ws>/workspace.json            Go format; task refs: none added on create by default (task_refs)
    <home>/workspaces/<ws>/tasks/<id>/task.json       the task, replaced atomically and durably
    <home>/workspaces/<ws>/tasks/<id>/task.json.lock  Go's lock file, taken too so Go and Python writers exclude
    <home>/workspaces/<ws>/tasks/<id>/task.log        JSON lines, fsynced per line
    <home>/workspaces/<ws>/tasks/<id>/artifacts/...   step outputs; versions are write-once
    <home>/.atlas-tasks/locks/<ws>/<id>.lock          our task lock: outside the task, so delete cannot remove it
    <home>/.atlas-tasks/leases/<ws>/<id>.lease        run leases (held by the live runner)
    <home>/.atlas-tasks/summaries/<ws>.json           the summary cache (rebuildable, never trusted)
    <home>/.atlas-tasks/trash/                        where delete moves a task before removing it
    <home>/.atlas-tasks/tombstones/<ws>/<id>.json     one per deleted id, so it is never handed out again

Reads take no lock: task.json is only ever replaced by rename, so a reader sees a whole committed version.

:class:`FileStore` is a :class:`~atlas_tasks.store.base.BaseStore`: this module holds the primitives and the few
overrides that are faster on files. What the layout means lives in the package's modules, all through ``_fs``:
``_layout`` (directories, locks), ``_listing`` (scan, newest N, summaries), ``_summary_cache``, ``_versions``,
``_workspaces`` (workspace.json and its refs), ``_leases``, ``_stamps``, ``_logs`` (tail windows) and ``check``.
Each primitive turns an OSError into a StorageError naming the public operation the caller used.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import secrets
import stat
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from atlas_tasks import go_daemon
from atlas_tasks import names as N
from atlas_tasks._codec import encode_task
from atlas_tasks._fs import atomic, locks, ops
from atlas_tasks._fs.dirs import Dir, UnsafePathError, open_home, walk
from atlas_tasks._gcpause import gc_paused
from atlas_tasks.backends.file import (
    _artifacts,
    _collector,
    _idstyle,
    _layout,
    _leases,
    _listing,
    _logs,
    _stamps,
    _tombstones,
    _versions,
    _workspaces,
)
from atlas_tasks.backends.file._layout import (
    ARTIFACTS_DIR,
    IMPORT_MARKER,
    LOG_FILE,
    PRIVATE_DIR,
    TASK_FILE,
    Layout,
    os_errors,
    require_task_file,
)
from atlas_tasks.backends.file._layout import WORKSPACE_FILE as WORKSPACE_FILE
from atlas_tasks.backends.file._logs import LOG_WINDOW_BYTES as LOG_WINDOW_BYTES
from atlas_tasks.backends.file._summary_cache import SummaryCache
from atlas_tasks.documents.head import TaskHead
from atlas_tasks.documents.logs import encode_line, to_bytes
from atlas_tasks.errors import (
    AtlasTasksError,
    StorageError,
    TaskExistsError,
    TaskIdRetiredError,
    TaskNotFoundError,
    TaskRunningError,
    WorkspaceExistsError,
    WorkspaceNotFoundError,
)
from atlas_tasks.ids import IdStyle, is_uuid_id, timestamp_candidates, uuid_id
from atlas_tasks.models import Task, TaskRef, Workspace
from atlas_tasks.store.base import BaseStore, new_tombstone, refuse_import
from atlas_tasks.store.types import (
    ArtifactReader,
    CheckReport,
    LogEntry,
    LogTail,
    SummaryList,
    TaskList,
    Tombstone,
    WorkspaceList,
)
from atlas_tasks.transitions import is_terminal


def _translate(exc: OSError, op: str) -> StorageError:
    """The StorageError :func:`~._layout.os_errors` would raise for ``exc`` (for code that cannot use a ``with``)."""
    try:
        with os_errors(op):
            raise exc
    except StorageError as translated:
        return translated


class _Slot:
    """One task held for a read-modify-write: its directory open, its lock and Go's lock held.

    Opened on the first ``read`` (edit) or ``head`` (update), so that a failure to open or lock it names the
    operation the caller used, as it always has; :meth:`FileStore._locked_task` releases it.
    """

    __slots__ = ("_d", "_id", "_layout", "_lock", "_ws", "path")

    def __init__(self, layout: Layout, workspace: str, task_id: str) -> None:
        self._layout, self._ws, self._id = layout, workspace, task_id
        self._d: Dir | None = None
        self._lock: contextlib.AbstractContextManager[None] | None = None
        self.path = ""

    def _open(self, op: str) -> Dir:
        d = self._d
        if d is None:
            try:
                d = self._layout.open_task_dir(self._ws, self._id)
                try:
                    lock = self._layout.write_lock(self._ws, self._id, d)
                    lock.__enter__()
                except BaseException:
                    d.close()
                    raise
            except AtlasTasksError:
                raise
            except OSError as exc:
                raise _translate(exc, op) from exc
            self._d, self._lock, self.path = d, lock, d.child(TASK_FILE)
        return d

    def release(self) -> None:
        """Release the locks, then close the directory (whatever the block did)."""
        lock, d = self._lock, self._d
        self._lock = self._d = None
        try:
            if lock is not None:
                lock.__exit__(None, None, None)
        finally:
            if d is not None:
                d.close()

    def read(self) -> bytes:
        d = self._open("edit")
        try:
            return _layout.task_bytes(d, self._ws, self._id)
        except AtlasTasksError:
            raise
        except OSError as exc:
            raise _translate(exc, "edit") from exc

    def head(self) -> TaskHead:
        d = self._open("update")
        try:
            raw = _layout.task_bytes(d, self._ws, self._id)
        except AtlasTasksError:
            raise
        except OSError as exc:
            raise _translate(exc, "update") from exc
        return TaskHead.parse(raw, self._ws, self._id, self.path)

    def write(self, data: bytes) -> None:
        d = self._open("update")
        try:
            atomic.replace(d, TASK_FILE, data)
        except AtlasTasksError:
            raise
        except OSError as exc:
            raise _translate(exc, "update") from exc


class FileStore(BaseStore):
    """The durable file store (see the module docstring for the layout and docs/ for the guarantees).

    Args:
        home: the store's root; default ``$ATLAS_HOME`` or ``~/.atlas``. Nothing is created until a first write.
        lock_timeout: seconds a writer waits for a task's lock before ``LockTimeoutError``.
        id_style: ``"auto"`` (uuid ids in a workspace that already has ``task-<uuid>`` tasks, the current Go
            format; timestamp ids otherwise), ``"timestamp"`` or ``"uuid"``.
        go_locks: also take the Go ATLAS's ``task.json.lock`` when writing, so Go writers are excluded too.
        task_refs: which task refs workspace.json keeps (an index for the Go tool; see docs/durability.md).
            ``"existing"`` (default): a create adds none, as the current Go ATLAS, so a create costs the same in a
            workspace of any size; a ref already there is kept as before (delete drops it, a terminal status
            refreshes it). ``"all"``: every create adds its ref, as the story-era Go ATLAS did, for legacy Go
            tooling that reads them; each create then rewrites workspace.json, which grows with the workspace.
    """

    #: Tasks per delete_many while a collector holds their leases (one open file each): workspace.json and the
    #: summary cache are rewritten once per batch.
    delete_batch = 256

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        *,
        lock_timeout: float = 10.0,
        id_style: IdStyle = "auto",
        go_locks: bool = True,
        task_refs: _workspaces.TaskRefs = "existing",
    ) -> None:
        if home is None:
            home = os.environ.get("ATLAS_HOME") or Path("~/.atlas").expanduser()
        self.home = Path(home).expanduser().absolute()
        if id_style not in ("auto", "timestamp", "uuid"):
            raise ValueError(f"id_style must be 'auto', 'timestamp' or 'uuid', not {id_style!r}")
        self._layout = Layout(self.home, lock_timeout, go_locks)
        self.id_style: IdStyle = id_style
        self.task_refs: _workspaces.TaskRefs = _workspaces.check_mode(task_refs)
        self._uuid_workspaces: set[str] = set()
        # workspace -> time.monotonic() of the last scan that found no uuid id in it (see _style_for)
        self._timestamp_workspaces: dict[str, float] = {}
        self._next_version: dict[tuple[str, ...], int] = {}
        self._summaries = SummaryCache(str(self.home))
        #: The Go home above this store: where the Go ATLAS keeps hook files and its daemon's socket (for a store from
        #: :meth:`for_repo`, the home that holds ``repos/``).
        self.go_home = self.home

    # The layout holds the settings its locks use; these keep them attributes of the store, as they always were.
    @property
    def lock_timeout(self) -> float:
        """Seconds a writer waits for a task's lock before ``LockTimeoutError``."""
        return self._layout.lock_timeout

    @lock_timeout.setter
    def lock_timeout(self, value: float) -> None:
        self._layout.lock_timeout = value

    @property
    def go_locks(self) -> bool:
        """Whether writers also take the Go ATLAS's ``task.json.lock``."""
        return self._layout.go_locks

    @go_locks.setter
    def go_locks(self, value: bool) -> None:
        self._layout.go_locks = value

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
            **kwargs: as for :class:`FileStore` (``lock_timeout``, ``id_style``, ``go_locks``, ``task_refs``).

        Raises:
            RepoNotFoundError: ``repo_path`` does not exist or is not a directory.
        """
        from atlas_tasks.repos import default_home, repo_home

        store = cls(repo_home(repo_path, home), **kwargs)
        store.go_home = default_home() if home is None else Path(home).expanduser().absolute()
        return store

    # ========================================================================= identity and paths (LocalFiles)
    @property
    def url(self) -> str:
        """``file:///path/to/home`` (``?task_refs=all`` in that mode): ``open_store`` opens this store again."""
        from atlas_tasks.store.urls import file_url

        return file_url(self.home) + ("?task_refs=all" if self.task_refs == "all" else "")

    def workspace_path(self, workspace: str) -> Path:
        """The directory of a workspace."""
        return self._layout.workspace_path(workspace)

    def task_path(self, workspace: str, task_id: str) -> Path:
        """The directory of a task."""
        return self._layout.task_path(workspace, task_id)

    def log_path(self, workspace: str, task_id: str) -> Path:
        """The task.log file of a task (for display)."""
        return self.task_path(workspace, task_id) / LOG_FILE

    # ================================================================================ workspace primitives
    def _insert_workspace(self, workspace: Workspace, *, exist_ok: bool) -> Workspace:
        with os_errors("create_workspace"):
            return _workspaces.insert(self._layout, workspace, exist_ok=exist_ok)

    def _get_workspace(self, name: str) -> Workspace:
        with os_errors("get_workspace"):
            return _workspaces.get(self._layout, name)

    def _list_workspaces(self) -> WorkspaceList:
        with os_errors("list_workspaces"):
            return _workspaces.list_all(self._layout)

    def _edit_workspace(self, name: str, change: Callable[[Workspace], None]) -> Workspace:
        with os_errors("set_workspace_status"):
            return _workspaces.edit(self._layout, name, change)

    # ===================================================================================== task primitives
    def _insert_task(
        self, workspace: str, task_id: str | None, build: Callable[[str], bytes]
    ) -> tuple[str, bytes, str]:
        layout = self._layout
        with os_errors("create"), layout.ws_dir(workspace) as wsd, walk(wsd, ["tasks"], create=True) as tasks:
            chosen = self._reserve(tasks, workspace, task_id or "")
            try:
                with layout.write_lock(workspace, chosen, None), walk(tasks, [chosen]) as d:
                    ops.fchmod(d.fd, ops.DIR_MODE, d.path)
                    data = build(chosen)
                    atomic.replace(d, TASK_FILE, data)
                    path = d.child(TASK_FILE)
                # The reserved directory's entry, written by mkdir, must be durable before we acknowledge.
                ops.fsync(tasks.fd, tasks.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    ops.rmtree(chosen, tasks.fd, tasks.child(chosen))
                raise
        return chosen, data, path

    def _claim(self, tasks: Dir, workspace: str, task_id: str) -> None:
        """Claim one id's directory by mkdir; TaskExistsError if it is taken."""
        try:
            ops.mkdir(task_id, tasks.fd, tasks.child(task_id))
        except FileExistsError:
            raise TaskExistsError(workspace, task_id, tasks.child(task_id)) from None

    def _reserve(self, tasks: Dir, workspace: str, explicit: str) -> str:
        """Claim the task's directory by mkdir (EEXIST: taken). The "no-mkdir-reservation" control replaces it.

        A tombstoned id is given up again: an explicit one raises TaskIdRetiredError, a generated one is skipped.
        The tombstone is looked for after the mkdir: a delete writes it before it moves the directory away, so the
        mkdir cannot succeed before the tombstone is there.
        """
        if explicit:
            self._claim(tasks, workspace, explicit)
            stone = _tombstones.get(self._layout, workspace, explicit)
            if stone is not None:
                ops.rmdir(explicit, tasks.fd, tasks.child(explicit))
                raise TaskIdRetiredError(workspace, explicit, stone.deleted_at, self._tombstone_path(stone))
            return explicit
        while True:
            if self._style_for(tasks, workspace) == "uuid":
                candidates: Iterator[str] = iter([uuid_id()])
            else:
                candidates = timestamp_candidates(self._now())
            for candidate in candidates:
                try:
                    ops.mkdir(candidate, tasks.fd, tasks.child(candidate))
                except FileExistsError:
                    continue
                if _tombstones.is_retired(self._layout, workspace, candidate):
                    ops.rmdir(candidate, tasks.fd, tasks.child(candidate))
                    continue  # a deleted task's id (a clock stepped back): never handed out again
                return candidate
            # Over a thousand creations within one second in this workspace: wait for the next second.
            time.sleep(1.0 - (time.time() % 1.0))

    #: Seconds a scan that found no uuid id in a workspace stands for this store (see :meth:`_style_for`).
    style_recheck = 60.0

    def _style_for(self, tasks: Dir, workspace: str) -> Literal["timestamp", "uuid"]:
        """The id form for a new task in ``workspace`` ("auto": uuid once the workspace holds a ``task-<uuid>``).

        Finding out reads the whole tasks directory, O(tasks in the workspace), so its answer is kept: a uuid
        workspace stays one (ids are never renamed), and "no uuid id" stands for :attr:`style_recheck` seconds.
        Without that every create in a timestamp workspace paid the scan (~25 ms at 100,000 tasks). The answer is
        also left in a small hint file for the next process (see :mod:`._idstyle`), so a CLI ``create`` scans at
        most once a minute too. The cost of the shortcut: a task the current Go ATLAS adds meanwhile turns our ids
        to uuid up to a minute late.
        """
        if self.id_style != "auto":
            return self.id_style
        if workspace in self._uuid_workspaces:
            return "uuid"
        now = time.monotonic()
        seen = self._timestamp_workspaces.get(workspace)
        if seen is not None and now - seen < self.style_recheck:
            return "timestamp"
        # Another process's answer (each CLI create is a new process): see _idstyle.
        hint = _idstyle.load(self._layout, workspace, tasks, self.style_recheck)
        if hint is not None:
            style, age = hint
        else:
            witness = next((e.name for e in ops.scandir(tasks.fd, tasks.path) if is_uuid_id(e.name)), None)
            style, age = ("timestamp" if witness is None else "uuid"), 0.0
            _idstyle.save(self._layout, workspace, witness)
        if style == "uuid":
            self._uuid_workspaces.add(workspace)
            self._timestamp_workspaces.pop(workspace, None)
        else:
            self._timestamp_workspaces[workspace] = now - age
        return style

    def _read_task(self, workspace: str, task_id: str) -> tuple[bytes, str]:
        with os_errors("get"):
            try:
                with self._layout.open_home() as home:
                    # The common case in one call (openat2, no symlink anywhere); anything unusual takes the walk.
                    path = f"{home.path}/workspaces/{workspace}/tasks/{task_id}/{TASK_FILE}"
                    raw = _listing.read_quick(home.fd, f"workspaces/{workspace}/tasks/{task_id}/{TASK_FILE}", path)
            except FileNotFoundError:
                raw = None  # no home: the walk below says so
            if raw is not None:
                return raw, path
            with self._layout.task_dir(workspace, task_id) as d:
                return _layout.task_bytes(d, workspace, task_id), d.child(TASK_FILE)

    @contextlib.contextmanager
    def _locked_task(self, workspace: str, task_id: str) -> Iterator[_Slot]:
        # Released whatever happens; an exception from the caller's block passes through untranslated.
        slot = _Slot(self._layout, workspace, task_id)
        try:
            yield slot
        finally:
            slot.release()

    def _scan_tasks(self, workspace: str) -> Iterator[tuple[str, bytes, str] | AtlasTasksError]:
        return _listing.scan(self._layout, workspace)

    def _delete_task(self, workspace: str, task_id: str, info: Mapping[str, Any] | None) -> None:
        with os_errors("delete"):
            self._delete(workspace, task_id, info)
            self._summaries.forget(workspace, task_id)
            _workspaces.drop_ref(self._layout, workspace, task_id)

    def _delete_tasks(
        self, workspace: str, task_ids: builtins.list[str], info: Mapping[str, Any] | None
    ) -> dict[str, AtlasTasksError]:
        # Each task goes as in delete (tombstone, rename into the trash, removal); the summary cache and
        # workspace.json, each a file holding every task of the workspace, are rewritten once at the end instead
        # of once per task, which made deleting n tasks O(n^2). A crash before that leaves refs and cache entries
        # of deleted tasks: the cache is checked against the directories on every read, and doctor --fix resyncs
        # the refs (stale_ref).
        failed: dict[str, AtlasTasksError] = {}
        gone: builtins.list[str] = []
        try:
            for start in range(0, len(task_ids), self.delete_group):
                group = task_ids[start : start + self.delete_group]
                try:
                    with os_errors("delete"):
                        self._delete_group(workspace, group, info, failed, gone)
                except AtlasTasksError as exc:
                    # The workspace's own directories failed (gone, unreadable): every task of the group left
                    # undone is reported with that error.
                    for task_id in group:
                        if task_id not in failed and task_id not in gone:
                            failed[task_id] = exc
        finally:
            if gone:
                with os_errors("delete"):
                    self._summaries.forget_many(workspace, gone)
                    _workspaces.drop_refs(self._layout, workspace, gone)
        return failed

    #: Tasks ``delete_many`` takes through each phase together. Deleting one task costs four fsyncs (its
    #: tombstone, the tombstone directory, the tasks directory, the trash); a group shares the three directory
    #: fsyncs, so n tasks cost n + 3 per group. No task lock is held across tasks (only one at a time, as delete).
    delete_group = 64

    def _delete_group(
        self,
        workspace: str,
        task_ids: builtins.list[str],
        info: Mapping[str, Any] | None,
        failed: dict[str, AtlasTasksError],
        gone: builtins.list[str],
    ) -> None:
        """Delete a group of tasks as ``_delete`` deletes one, in three phases, each task under its own lock.

        1. Each task's tombstone is written (its data fsynced), then the tombstone directory is fsynced once: every
           tombstone is durable before any task is moved.
        2. Each task still there is renamed into the trash, then the tasks directory and the trash are fsynced once:
           the deletes are durable before any is acknowledged or any tree is removed.
        3. The trees are removed from the trash.

        A crash in phase 1 leaves whole tasks (with or without their tombstone: deleting again finishes); in phase
        2, each task whole in its place or in the trash, which ``doctor --fix`` empties; the order the protocol
        needs (tombstone durable, then rename durable) holds for each task as in ``delete``. Per-task failures go
        to ``failed``; the tasks whose delete is durable to ``gone``.
        """
        layout = self._layout
        marked: builtins.list[str] = []
        parked: builtins.list[tuple[str, str]] = []
        with (
            layout.open_home() as home,
            walk(home, [PRIVATE_DIR, "trash"], create=True, mode=0o700) as trash,
            layout.ws_dir(workspace) as wsd,
            walk(wsd, ["tasks"]) as tasks,
            layout.private_dir("locks", workspace, create=True) as lock_dir,
            contextlib.ExitStack() as stack,
        ):

            @contextlib.contextmanager
            def locked(task_id: str) -> Iterator[Dir]:
                try:
                    d = walk(tasks, [task_id])
                except FileNotFoundError:
                    raise TaskNotFoundError(workspace, task_id, tasks.child(task_id)) from None
                with d, layout.write_lock_in(lock_dir, workspace, task_id, d):
                    yield d

            stones = None
            if info is not None:
                stones = stack.enter_context(layout.private_dir(_tombstones.KIND, workspace, create=True))
            for task_id in task_ids:
                try:
                    with os_errors("delete"):
                        self._refuse_daemon_task(workspace, task_id)
                        with locked(task_id) as d:
                            if stones is not None and info is not None:
                                try:
                                    raw: bytes | None = _layout.task_bytes(d, workspace, task_id)
                                except AtlasTasksError:
                                    raw = None  # no task.json, or an odd file: deleted too, no created_at kept
                                stone = new_tombstone(workspace, task_id, raw, info)
                                _tombstones.record_in(stones, stone, sync_dir=False)
                except AtlasTasksError as exc:
                    failed[task_id] = exc
                else:
                    marked.append(task_id)
            if stones is not None and marked:
                ops.fsync(stones.fd, stones.path)
                _tombstones.crash_point("tombstoned")
            for task_id in marked:
                # Cut to fit NAME_MAX (255 bytes) with the longest names; the random part keeps it unique.
                name = f"{workspace[:100]}--{task_id[:100]}--{secrets.token_hex(4)}"
                try:
                    with os_errors("delete"), locked(task_id):
                        ops.rename(task_id, name, tasks.fd, trash.fd, tasks.child(task_id))
                except AtlasTasksError as exc:
                    failed[task_id] = exc
                else:
                    parked.append((task_id, name))
            if not parked:
                return
            try:
                with os_errors("delete"):
                    ops.fsync(tasks.fd, tasks.path)
                    ops.fsync(trash.fd, trash.path)
            except AtlasTasksError as exc:
                for task_id, _ in parked:
                    failed[task_id] = exc  # moved, but not known durable: reported, as a failed delete is
                return
            for task_id, name in parked:
                try:
                    with os_errors("delete"):
                        ops.rmtree(name, trash.fd, trash.child(name))
                except AtlasTasksError as exc:
                    failed[task_id] = exc  # durably out of the tasks directory; doctor --fix empties the trash
                    continue
                gone.append(task_id)
                self._forget_deleted(workspace, task_id)

    def _refuse_daemon_task(self, workspace: str, task_id: str) -> None:
        # A task the Go daemon is running is refused: its runs take no lock or lease of ours.
        daemon = go_daemon.running_holder(self.go_home, task_id)
        if daemon is not None:
            raise TaskRunningError(workspace, task_id, daemon)

    def _forget_deleted(self, workspace: str, task_id: str) -> None:
        for key in [k for k in self._next_version if k[1:3] == (workspace, task_id)]:
            del self._next_version[key]
        if self.go_home != self.home:
            self._drop_legacy_hook(workspace, task_id)

    def _tombstone_path(self, stone: Tombstone) -> str:
        return str(self.home / PRIVATE_DIR / _tombstones.KIND / stone.workspace / f"{stone.id}{_tombstones.SUFFIX}")

    def _get_tombstone(self, workspace: str, task_id: str) -> Tombstone | None:
        with os_errors("tombstone"):
            return _tombstones.get(self._layout, workspace, task_id)

    def _list_tombstones(self, workspace: str) -> builtins.list[Tombstone]:
        with os_errors("tombstones"):
            return _tombstones.list_all(self._layout, workspace)

    def _delete(self, workspace: str, task_id: str, info: Mapping[str, Any] | None) -> None:
        self._refuse_daemon_task(workspace, task_id)
        layout = self._layout
        with (
            layout.task_dir(workspace, task_id) as d,
            layout.write_lock(workspace, task_id, d),
            layout.open_home() as home,
            walk(home, [PRIVATE_DIR, "trash"], create=True, mode=0o700) as trash,
            layout.ws_dir(workspace) as wsd,
            walk(wsd, ["tasks"]) as tasks,
        ):
            if info is not None:
                # The tombstone first, durably, under the task's lock: a crash after it leaves the tombstone and
                # the whole task (deleting again finishes), never a task gone without one.
                try:
                    raw: bytes | None = _layout.task_bytes(d, workspace, task_id)
                except AtlasTasksError:
                    raw = None  # no task.json, or an odd file there: deleted too, the tombstone has no created_at
                _tombstones.record(layout, new_tombstone(workspace, task_id, raw, info))
                _tombstones.crash_point("tombstoned")
            # Rename first, so no reader or writer ever sees a half-deleted task, then remove at leisure.
            # Cut to fit NAME_MAX (255 bytes) with the longest names; the random part keeps it unique.
            parked = f"{workspace[:100]}--{task_id[:100]}--{secrets.token_hex(4)}"
            ops.rename(task_id, parked, tasks.fd, trash.fd, tasks.child(task_id))
            ops.fsync(tasks.fd, tasks.path)
            ops.fsync(trash.fd, trash.path)
            ops.rmtree(parked, trash.fd, trash.child(parked))
        self._forget_deleted(workspace, task_id)

    def _drop_legacy_hook(self, workspace: str, task_id: str) -> None:
        # Go keeps a repo-scoped task's hook files in <go home>/workspaces/<ws>/tasks/<id>/: removed only when that
        # directory holds hook files and nothing else, so a legacy task of the same id is never touched.
        try:
            with (
                open_home(str(self.go_home), create=False) as root,
                walk(root, ["workspaces", workspace, "tasks"]) as tasks,
            ):
                if _layout.hook_only(tasks, task_id):
                    ops.rmtree(task_id, tasks.fd, tasks.child(task_id))
                    ops.fsync(tasks.fd, tasks.path)
        except (FileNotFoundError, UnsafePathError):
            return

    # ============================================================================================ imports
    def import_workspace(self, workspace: Workspace, *, replace: bool = False) -> bool:
        """Store a workspace as given (Importable); True if it was not there before.

        The refs are not copied: with ``task_refs="all"`` the file store derives each ref from its task when the
        task is imported; by default imported tasks get none, as created ones.
        """
        N.check_workspace_name(workspace.name)
        doc = workspace.model_copy(update={"tasks": []})
        with os_errors("import_workspace"):
            try:
                _workspaces.insert(self._layout, doc, exist_ok=False)
                return True
            except WorkspaceExistsError:
                if not replace:
                    return False

            def change(ws: Workspace) -> None:
                for name in ("path", "worktree_path", "branch", "metadata", "status", "created_at", "updated_at"):
                    setattr(ws, name, getattr(workspace, name))

            _workspaces.edit(self._layout, workspace.name, change)
            return False

    def import_tombstone(self, tombstone: Tombstone) -> bool:
        """Record a tombstone as given (Importable); False if the id already has one.

        The id's directory is claimed by mkdir while the tombstone is written, as ``create`` claims it, so no
        create can take the id meanwhile; an id whose directory exists is a task here (TaskExistsError), unless
        the directory holds only the Go ATLAS's hook files.
        """
        stone = Tombstone(
            N.check_workspace_name(tombstone.workspace),
            N.check_task_id(tombstone.id),
            tombstone.deleted_at,
            tombstone.created_at,
            dict(tombstone.info),
        )
        layout = self._layout
        with os_errors("import_tombstone"):
            try:
                with layout.ws_dir(stone.workspace) as wsd, walk(wsd, ["tasks"], create=True) as tasks:
                    return self._retire(tasks, stone)
            except WorkspaceNotFoundError:
                pass  # no workspace, so no task holds the id: the tombstone alone (tombstones outlive workspaces)
            if _tombstones.is_retired(layout, stone.workspace, stone.id):
                return False
            _tombstones.record(layout, stone)
            return True

    def _retire(self, tasks: Dir, stone: Tombstone) -> bool:
        try:
            self._claim(tasks, stone.workspace, stone.id)
            claimed = True
        except TaskExistsError:
            if not _layout.hook_only(tasks, stone.id):
                raise
            claimed = False
        try:
            if _tombstones.is_retired(self._layout, stone.workspace, stone.id):
                return False
            _tombstones.record(self._layout, stone)
            return True
        finally:
            if claimed:
                ops.rmdir(stone.id, tasks.fd, tasks.child(stone.id))

    def import_task(
        self,
        workspace: str,
        task: Task,
        *,
        log_lines: Iterable[LogEntry] = (),
        artifacts: Mapping[str, bytes | str] | None = None,
        ref: TaskRef | None = None,
        replace: bool = False,
        hook_files: Mapping[str, bytes] | None = None,
    ) -> Task:
        """Store a task exactly as given (id, revision, times) with its log and artifacts (Importable).

        The directory is claimed by mkdir (an existing id is refused), the log, artifacts and ``hook_files`` (the
        Go ATLAS's ``hook.json``/``HOOK.md``, which it keeps in the task directory when this store's home is its
        home) are written first and task.json last: until task.json exists the directory is no task to any
        reader, so a crash half-way leaves nothing visible (``doctor --fix`` sweeps the directory) and a failure
        removes it. ``ref`` is ignored: the file store derives the ref from the task, as ``create`` does (a new one only
        with ``task_refs="all"``; an existing ref of the id is refreshed).
        ``replace`` deletes the old task first.
        """
        from atlas_tasks.go_hooks import HOOK_FILES

        N.check_workspace_name(workspace)
        task_id = N.check_task_id(task.id)
        hooks = dict(hook_files or {})
        for name in hooks:
            if name not in HOOK_FILES or name.endswith(".lock"):
                raise ValueError(f"import_task: {name!r} is not a Go hook file (hook.json, HOOK.md)")
        log = b"".join(encode_line(workspace, task_id, line, fill_defaults=False) for line in log_lines)
        files = [(N.artifact_parts(name), to_bytes(data)) for name, data in (artifacts or {}).items()]
        data = encode_task(task)
        replaced = False
        if replace:
            # Replaced, not deleted: the id stays in use, so no tombstone is written (and none is looked at).
            with contextlib.suppress(TaskNotFoundError), os_errors("import_task"):
                self._delete(workspace, task_id, None)
                self._summaries.forget(workspace, task_id)
                replaced = True
        layout = self._layout
        with os_errors("import_task"), layout.ws_dir(workspace) as wsd, walk(wsd, ["tasks"], create=True) as tasks:
            self._claim(tasks, workspace, task_id)
            try:
                stone = None if replaced else _tombstones.get(layout, workspace, task_id)
                if refuse_import(stone, task, self._tombstone_path(stone) if stone else ""):
                    # The deleted task itself, restored. Lifted while our directory holds the id (nobody can take
                    # it), before task.json: a crash now leaves an unfinished import (doctor sweeps it) and no
                    # tombstone, so importing again restores it.
                    _tombstones.lift(layout, workspace, task_id)
                with layout.write_lock(workspace, task_id, None), walk(tasks, [task_id]) as d:
                    ops.fchmod(d.fd, ops.DIR_MODE, d.path)
                    # The marker first: a crash before task.json leaves a directory doctor --fix knows it may
                    # remove whole (an import cut short), rather than one it cannot tell from a damaged task.
                    atomic.replace(d, IMPORT_MARKER, b"")
                    if log:
                        atomic.replace(d, LOG_FILE, log)
                    for parts, content in files:
                        with walk(d, [ARTIFACTS_DIR, *parts[:-1]], create=True) as adir:
                            atomic.replace(adir, parts[-1], content)
                    for name, content in sorted(hooks.items()):
                        atomic.replace(d, name, content)
                    atomic.replace(d, TASK_FILE, data)
                    # A crash before this unlink leaves a whole task with a stray marker: doctor --fix removes it.
                    ops.unlink(IMPORT_MARKER, d.fd, d.child(IMPORT_MARKER))
                    ops.fsync(d.fd, d.path)
                ops.fsync(tasks.fd, tasks.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    ops.rmtree(task_id, tasks.fd, tasks.child(task_id))
                raise
        new = self.get(workspace, task_id)
        _workspaces.sync_ref(layout, workspace, new, add=self.task_refs == "all")
        return new

    # ============================================================================================== hooks
    def _after_create(self, workspace: str, task: Task) -> None:
        # "existing": nothing to do. A new id has no ref (a delete drops its id's ref), and reading workspace.json
        # at all would make a create cost grow with the refs a legacy workspace holds.
        if self.task_refs == "all":
            _workspaces.sync_ref(self._layout, workspace, task)

    def _after_update(self, workspace: str, before: TaskHead, after: Task) -> None:
        if after.status != before.status and is_terminal(after.status):
            _workspaces.sync_ref(self._layout, workspace, after, add=self.task_refs == "all")

    def _created_moved(self, workspace: str, task_id: str) -> None:
        self._summaries.drop(workspace)  # list(limit=) orders by the cached created_at

    # ====================================================================================== log primitives
    def _append_log_line(self, workspace: str, task_id: str, line: bytes) -> None:
        layout = self._layout
        with (
            os_errors("append_log"),
            layout.open_task_dir(workspace, task_id) as d,
            layout.write_lock(workspace, task_id, d),
        ):
            require_task_file(d, workspace, task_id)
            atomic.append_line(d, LOG_FILE, line)

    def _read_log(self, workspace: str, task_id: str) -> tuple[bytes, str]:
        with os_errors("read_log"), self._layout.task_dir(workspace, task_id) as d:
            try:
                return atomic.read(d, LOG_FILE), d.child(LOG_FILE)
            except FileNotFoundError:
                require_task_file(d, workspace, task_id)
                return b"", d.child(LOG_FILE)

    # ================================================================================= artifact primitives
    def _put_artifact(self, workspace: str, task_id: str, parts: builtins.list[str], data: bytes) -> None:
        layout = self._layout
        with os_errors("save_artifact"), layout.task_dir(workspace, task_id) as d:
            require_task_file(d, workspace, task_id)
            with layout.temp_writer(workspace, task_id), walk(d, [ARTIFACTS_DIR, *parts[:-1]], create=True) as adir:
                atomic.replace(adir, parts[-1], data)

    def _put_versioned_artifact(self, workspace: str, task_id: str, parts: builtins.list[str], data: bytes) -> str:
        layout = self._layout
        leaf = parts[-1]
        key = (str(self.home), workspace, task_id, *parts)
        with os_errors("save_versioned_artifact"), layout.task_dir(workspace, task_id) as d:
            require_task_file(d, workspace, task_id)
            with layout.temp_writer(workspace, task_id), walk(d, [ARTIFACTS_DIR, *parts[:-1]], create=True) as adir:
                names = _versions.candidates(adir, leaf, self._next_version.get(key))
                won = atomic.claim_first(adir, names, data)
                if won is None:  # pragma: no cover - the candidate stream is endless
                    raise StorageError("claim artifact version", "/".join(parts), None, "no free version")
                version = N.version_of(won, leaf) or 0
                _versions.write_hint(adir, leaf, version)
        self._next_version[key] = version + 1
        return "/".join([*parts[:-1], won])

    def _get_artifact(self, workspace: str, task_id: str, parts: builtins.list[str]) -> bytes:
        from atlas_tasks.errors import ArtifactNotFoundError

        with os_errors("get_artifact"), self._layout.task_dir(workspace, task_id) as d:
            try:
                with walk(d, [ARTIFACTS_DIR, *parts[:-1]]) as adir:
                    return atomic.read(adir, parts[-1])
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError, UnsafePathError):
                name = "/".join(parts)
                raise ArtifactNotFoundError(workspace, task_id, name, f"{d.path}/{ARTIFACTS_DIR}/{name}") from None

    def _artifact_names(self, workspace: str, task_id: str) -> builtins.list[str]:
        with os_errors("list_artifacts"), self._layout.task_dir(workspace, task_id) as d:
            try:
                adir = walk(d, [ARTIFACTS_DIR])
            except FileNotFoundError:
                return []
            with adir:
                found: builtins.list[str] = []
                _walk_artifacts(adir, "", found)
                return found

    # ============================================================== overrides: the same results, faster on files
    def list(self, workspace: str, *, strict: bool = False, limit: int | None = None) -> TaskList:
        """Return the workspace's tasks, newest first. See :meth:`atlas_tasks.store.Store.list`.

        ``limit`` keeps only the newest ``limit`` tasks. Without ``strict``, the order comes from the summary cache
        (see :mod:`atlas_tasks.backends.file._summary_cache`) and only those tasks are read in full; ``errors``
        then holds the tasks unreadable as summaries plus any of the newest that cannot be decoded in full.
        """
        with os_errors("list"):
            if limit is not None and not strict:
                N.check_workspace_name(workspace)
                newest = _listing.list_newest(self._layout, self._summaries, workspace, max(0, limit))
                if newest is not None:
                    return newest
            with gc_paused():
                return super().list(workspace, strict=strict, limit=limit)

    def iter_tasks(self, workspace: str, *, errors: builtins.list[AtlasTasksError] | None = None) -> Iterator[Task]:
        """Yield the workspace's tasks one at a time, in directory order, holding one in memory at a time.

        Unreadable tasks are appended to ``errors`` when a list is given; otherwise the first one is raised.
        """
        with os_errors("iter_tasks"):
            yield from super().iter_tasks(workspace, errors=errors)

    def list_summaries(self, workspace: str) -> SummaryList:
        """Summaries of the workspace's tasks, newest first, read without building full typed tasks.

        Unreadable tasks are reported in ``.errors`` exactly as ``list`` reports them. A summary whose task.json
        is unchanged since it was last read (same inode, mtime, ctime and size) comes from the summary cache
        (:mod:`atlas_tasks.backends.file._summary_cache`); every other task is read.
        """
        N.check_workspace_name(workspace)
        with os_errors("list_summaries"):
            return _listing.list_summaries(self._layout, self._summaries, workspace)

    def reindex(self, workspace: str) -> None:
        """Rebuild the workspace's summary cache now (listings also keep it up to date as they go)."""
        self._summaries.drop(workspace)
        self.list_summaries(workspace)

    def tail_log(self, workspace: str, task_id: str, lines: int, *, after: int | None = None) -> LogTail:
        """The last ``lines`` entries of the log, or with ``after`` the first ``lines`` entries after that position.

        Reads only the window, never the whole file: backwards from the end of task.log in 64 KiB blocks, or
        forwards from the byte offset ``after``, and never more than :data:`LOG_WINDOW_BYTES` (a line longer than
        that is counted in ``skipped`` and left out). Positions are byte offsets: ``after`` continues just after
        the line that ended there; one in the middle of a line continues at the next line, and one past the end
        (the log was replaced) starts over from the beginning. Damaged lines in the window are counted in
        ``skipped`` only (``read_log`` names them with their line numbers).
        """
        with os_errors("tail_log"):
            return _logs.tail_log(self._layout, workspace, task_id, lines, after)

    def open_artifact(self, workspace: str, task_id: str, filename: str) -> ArtifactReader:
        """An artifact as an open file, streamed in chunks. See :meth:`atlas_tasks.store.Store.open_artifact`."""
        N.check_workspace_name(workspace)
        N.check_task_id(task_id)
        with os_errors("open_artifact"):
            return _artifacts.open_artifact(self._layout, workspace, task_id, filename)

    def artifact_sizes(self, workspace: str, task_id: str) -> dict[str, int]:
        """Each artifact's size in bytes, by a stat beneath the task's directory (nothing is read)."""
        names = self.list_artifacts(workspace, task_id)
        sizes: dict[str, int] = {}
        with os_errors("artifact_sizes"), self._layout.task_dir(workspace, task_id) as d:
            for name in names:
                try:
                    sizes[name] = ops.stat_at(f"{ARTIFACTS_DIR}/{name}", d.fd).st_size
                except OSError:
                    continue  # removed since it was listed
        return sizes

    # ============================================================================== compaction primitives
    def _delete_artifact(self, workspace: str, task_id: str, parts: builtins.list[str]) -> None:
        from atlas_tasks.errors import ArtifactNotFoundError

        layout = self._layout
        name = "/".join(parts)
        with (
            os_errors("delete_artifact"),
            layout.task_dir(workspace, task_id) as d,
            layout.write_lock(workspace, task_id, d),
        ):
            require_task_file(d, workspace, task_id)
            path = f"{d.path}/{ARTIFACTS_DIR}/{name}"
            try:
                with walk(d, [ARTIFACTS_DIR, *parts[:-1]]) as adir:
                    info = ops.stat_at(parts[-1], adir.fd)
                    if not stat.S_ISREG(info.st_mode):
                        raise FileNotFoundError(path)  # a directory or anything else is not an artifact
                    ops.unlink(parts[-1], adir.fd, path)
                    ops.fsync(adir.fd, adir.path)  # the removal itself is durable when we return
            except (FileNotFoundError, NotADirectoryError, UnsafePathError):
                raise ArtifactNotFoundError(workspace, task_id, name, path) from None

    def _drop_log_head(self, workspace: str, task_id: str, head: bytes) -> bool:
        layout = self._layout
        with (
            os_errors("rotate_log"),
            layout.task_dir(workspace, task_id) as d,
            layout.write_lock(workspace, task_id, d),  # the lock append_log takes: no append can slip in meanwhile
        ):
            require_task_file(d, workspace, task_id)
            try:
                raw = atomic.read(d, LOG_FILE)
            except FileNotFoundError:
                return not head
            if not raw.startswith(head):
                return False
            # temp + fsync + rename + directory fsync: a crash leaves the old log or the new one, whole.
            atomic.replace(d, LOG_FILE, raw[len(head) :])
            return True

    # ================================================================================= run leases (RunLeases)
    def acquire_lease(self, workspace: str, task_id: str, holder: Mapping[str, Any]) -> locks.Lease:
        """Take the task's run lease (one live runner per task); released by ``lease.release()`` or by death.

        Raises:
            TaskRunningError: a live runner holds it (the error names its pid, host and start time).
        """
        N.check_workspace_name(workspace)
        N.check_task_id(task_id)
        with os_errors("acquire_lease"):
            with self._layout.task_dir(workspace, task_id):
                pass  # WorkspaceNotFoundError / TaskNotFoundError, as every backend: no lease of a task that is not
            return _leases.acquire(self._layout, self.go_home, workspace, task_id, holder)

    def lease_holder(self, workspace: str, task_id: str) -> dict[str, Any] | None:
        """Who holds the task's run lease (pid, host, started_at), or None when no live runner does.

        A task the Go ATLAS daemon of this home reports as running counts as held, by the daemon
        (``{"daemon": socket path, ...}``): its runs take no lease of ours.
        """
        N.check_workspace_name(workspace)
        N.check_task_id(task_id)
        with os_errors("lease_holder"):
            return _leases.holder_of(self._layout, self.go_home, workspace, task_id)

    def lease_candidates(self, workspace: str) -> builtins.set[str] | None:
        """The ids of the workspace's tasks that have a run-lease file at all (see :class:`RunLeases`).

        A runner creates its lease file before it moves the task to running, and the file is never removed, so a
        running task without one has no live runner: one directory listing instead of one lease probe per task.
        """
        N.check_workspace_name(workspace)
        with os_errors("lease_candidates"):
            return _leases.candidates(self._layout, workspace)

    def collector_lock(self, holder: Mapping[str, Any]) -> _collector.FileCollectorLock:
        """Take the home's collector lock (an flock that dies with its holder): one ``gc`` at a time.

        Raises:
            CollectorBusyError: another live collector holds it (the error names its pid, host and start).
        """
        with os_errors("collector_lock"):
            return _collector.acquire(self._layout, str(self.home), holder)

    # ========================================== change stamps (ChangeStamps: the dashboard re-reads what changed)
    def workspace_names(self) -> builtins.list[str]:
        """Workspace directories with valid names, sorted (no workspace.json is decoded)."""
        with os_errors("workspace_names"):
            return _stamps.workspace_names(self._layout)

    def task_stamps(self, workspace: str) -> dict[str, Hashable | None]:
        """One stamp per entry of the workspace's tasks directory: task.json's (inode, mtime, ctime, size) or None.

        task.json is only ever replaced by rename, so a changed task always has a new inode or mtime.
        """
        with os_errors("task_stamps"):
            return _stamps.task_stamps(self._layout, workspace)

    def task_stamp(self, workspace: str, task_id: str) -> Hashable | None:
        """The stamp of one task as :meth:`task_stamps` gives it (None if it has no task.json now)."""
        with os_errors("task_stamp"):
            return _stamps.task_stamp(self._layout, workspace, task_id)

    def workspace_stamp(self, workspace: str) -> Hashable | None:
        """workspace.json's (inode, mtime, ctime, size), or None if the workspace has none now: it is only ever
        replaced by rename, so an unchanged stamp is an unchanged workspace document (the dashboard's header)."""
        with os_errors("workspace_stamp"):
            return _stamps.workspace_stamp(self._layout, workspace)

    # ========================================================================== consistency (Repairable)
    def check(self, workspace: str | None = None, *, fix: bool = False) -> CheckReport:
        """Find what crashes or hand edits left behind (one workspace, or all); repair what is safe with ``fix``.

        Reports temp files, incomplete creations, corrupt or newer-format tasks, torn or damaged logs,
        unfinished deletes and workspace.json refs out of step; see :mod:`atlas_tasks.backends.file.check`.
        """
        from atlas_tasks.backends.file.check import check_store

        with os_errors("check"):
            return check_store(self, self._layout, workspace, fix)


def _walk_artifacts(d: Dir, prefix: str, found: builtins.list[str]) -> None:
    for entry in ops.list_dir(d.fd, d.path):
        name = entry.name
        if name[0] == ".":
            continue  # temp files and anything hidden are never artifacts
        if entry.is_dir(follow_symlinks=False):
            with walk(d, [name]) as sub:
                _walk_artifacts(sub, f"{prefix}{name}/", found)
        elif entry.is_file(follow_symlinks=False):
            found.append(prefix + name)


__all__ = ["ARTIFACTS_DIR", "LOG_WINDOW_BYTES", "WORKSPACE_FILE", "FileStore"]
