"""BaseStore: every public method of the Store contract, written once, on a few primitives per backend.

A backend subclasses :class:`BaseStore` and writes only the primitives (the ``_``-methods marked abstract below):
how to reserve and write a task's bytes, hold one task for a read-modify-write, scan a workspace, append a log
line, store an artifact, keep a workspace. Everything with meaning is here, so every backend behaves the same:

* names are checked (``InvalidNameError``) before a primitive is called: a primitive may assume valid names;
* a new task is stamped once (id, ``workspace_name``, times, revision 1, schema version) and what ``create``
  returns is decoded from the bytes stored, exactly what ``get`` will return;
* an update is checked once (revision, then the transition chain) inside the backend's atomic section, and what
  it returns shares nothing with the caller's object;
* ``edit``, ``modify``, ``iter_log``, ``run`` and the listing defaults are written here and nowhere else.

Primitives translate their own low-level errors (OSError, database errors) into the library's typed errors and
let any exception raised inside a ``with`` block they manage pass through untouched.

Default methods that a backend may override for speed, keeping the same results: ``list`` (the newest
``limit`` without reading the rest), ``list_summaries``, ``iter_tasks``, ``tail_log``, ``follow_log`` (a database
can be told about new lines instead of polling), ``artifact_sizes`` (a stat instead of a read).
"""

from __future__ import annotations

import builtins
import contextlib
import gzip
import json
import os
import signal
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from atlas_tasks import names as N
from atlas_tasks._codec import decode_task, encode_task
from atlas_tasks.documents.head import TaskHead, created_moved
from atlas_tasks.documents.logs import encode_line, parse_log, to_bytes
from atlas_tasks.documents.summaries import natural_sorted, newest_first_key, summarize
from atlas_tasks.errors import (
    AtlasTasksError,
    ConflictError,
    CorruptTaskError,
    NotRunnableError,
    SchemaVersionError,
    StorageError,
    TaskIdRetiredError,
    TaskNotFoundError,
)
from atlas_tasks.ids import IdStyle
from atlas_tasks.models import Task, Workspace, WorkspaceStatus, format_time, utcnow
from atlas_tasks.store.types import (
    ArtifactReader,
    LogEntry,
    LogLines,
    LogRotation,
    LogTail,
    SummaryList,
    TaskList,
    Tombstone,
    WorkspaceList,
)
from atlas_tasks.transitions import check_status_change

if TYPE_CHECKING:
    from atlas_tasks.runs import Run

#: Log entries read per round by the default ``follow_log``.
FOLLOW_WINDOW = 1000

#: The base name ``rotate_log`` saves a log's older lines under, as versions: ``logs/task.log.1.gz``, ``.2.gz``...
#: (oldest first; the live task.log continues after the newest). The Go ATLAS ignores artifacts it does not know.
LOG_SEGMENT = "logs/task.log.gz"
_SEGMENT_PARTS = LOG_SEGMENT.split("/")
_SEGMENT_FOLDER, _SEGMENT_LEAF = "/".join(_SEGMENT_PARTS[:-1]), _SEGMENT_PARTS[-1]
#: How often ``rotate_log`` plans again when a concurrent rotation moved the log's head first.
_ROTATION_ATTEMPTS = 8


#: Environment variable naming a crash point (see :func:`crash_point`): how the kill -9 tests stop a real process
#: exactly between two durable writes of a compaction.
CRASH_AT_ENV = "ATLAS_TASKS_CRASH_AT"


def crash_point(name: str) -> None:
    """Kill this process with SIGKILL here if ``$ATLAS_TASKS_CRASH_AT`` names this point (a test aid; else nothing)."""
    if os.environ.get(CRASH_AT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def rotation_cut(raw: bytes, keep: int) -> int:
    """Where to cut a log so the newest whole lines within ``keep`` bytes stay (0: nothing to move).

    The cut is always at the start of a line; the last whole line always stays (even if longer than ``keep``), and
    so does a torn tail after it (an append cut short is not ours to move).
    """
    end = raw.rfind(b"\n") + 1  # just after the last whole line
    if end == 0:
        return 0
    last_start = raw.rfind(b"\n", 0, end - 1) + 1
    target = len(raw) - max(keep, 0)
    if target <= 0:
        return 0
    if target >= last_start:
        return last_start
    return min(raw.find(b"\n", target - 1) + 1, last_start)


class TaskSlot(Protocol):
    """One task held for a read-modify-write by :meth:`BaseStore._locked_task` (a lock, a row lock, a mutex).

    While the slot is open no other writer of the task can commit; readers still see the last committed version.
    """

    #: Where the task is, for error messages (a path, or a database location).
    path: str

    def read(self) -> bytes:
        """The stored task.json bytes. Raises what ``get`` raises for a task that is gone or unreadable."""
        ...

    def head(self) -> TaskHead:
        """What a revision-checked write compares (revision, status, transitions), cheaper than a full decode."""
        ...

    def write(self, data: bytes) -> None:
        """Replace the stored bytes, durably and atomically (all of ``data`` or none of it)."""
        ...


def decode_stored(raw: bytes, workspace: str, task_id: str, path: str) -> Task:
    """Decode stored task bytes as every backend must: CorruptTaskError for bad bytes or a task of another id.

    Raises:
        CorruptTaskError, SchemaVersionError.
    """
    try:
        task = decode_task(raw, path=path)
    except SchemaVersionError:
        raise
    except ValueError as exc:
        raise CorruptTaskError(workspace, task_id, path, str(exc).splitlines()[0]) from None
    if not task.id:
        task.id = task_id
    elif task.id != task_id:
        raise CorruptTaskError(workspace, task_id, path, f"it names a different task, {task.id!r}")
    return task


def stamp_new(task: Task, workspace: str, task_id: str, now: Any) -> bytes:
    """The bytes of a new task: the caller's fields plus id, workspace, times, revision 1 and schema version.

    A shallow copy is encoded; the caller's object is never changed.
    """
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
    return encode_task(stored)


def new_workspace(
    name: str, path: str, worktree_path: str, branch: str, metadata: Mapping[str, Any] | None
) -> Workspace:
    """A workspace as ``create_workspace`` stores it."""
    now = utcnow()
    return Workspace(
        name=name,
        path=path,
        worktree_path=worktree_path,
        branch=branch,
        created_at=now,
        updated_at=now,
        metadata=dict(metadata or {}),
    )


def new_tombstone(workspace: str, task_id: str, raw: bytes | None, info: Mapping[str, Any]) -> Tombstone:
    """The tombstone ``delete`` records for a task whose stored bytes are ``raw`` (None or damaged: no created_at).

    ``created_at`` is taken as the text stored, so a restore compares exactly what the task document says.
    """
    created = ""
    if raw is not None:
        try:
            value = json.loads(raw).get("created_at")
        except (ValueError, AttributeError):
            value = None
        created = value if isinstance(value, str) else ""
    return Tombstone(workspace, task_id, format_time(utcnow()), created, dict(info))


def delete_info(reason: str | None) -> dict[str, Any]:
    """A tombstone's ``info``: who deleted the task (pid) and, when the caller said, why."""
    info: dict[str, Any] = {"pid": os.getpid()}
    if reason:
        info["reason"] = reason
    return info


def restores(tombstone: Tombstone, task: Task) -> bool:
    """Whether importing ``task`` brings back the very task the tombstone is for (same id and ``created_at``)."""
    return (
        bool(tombstone.created_at)
        and task.created_at is not None
        and (format_time(task.created_at) == tombstone.created_at)
    )


def refuse_import(tombstone: Tombstone | None, task: Task, where: str) -> bool:
    """The import rule for a tombstoned id: True (lift the tombstone) for the same task, else TaskIdRetiredError.

    False when there is no tombstone (nothing to lift).
    """
    if tombstone is None:
        return False
    if restores(tombstone, task):
        return True
    raise TaskIdRetiredError(tombstone.workspace, tombstone.id, tombstone.deleted_at, where)


class BaseStore(ABC):
    """The Store contract written once. Subclass it and implement the abstract primitives (see the module doc)."""

    #: ``"timestamp"``, ``"uuid"`` or ``"auto"``: the ids ``create`` hands out (see :mod:`atlas_tasks.ids`).
    id_style: IdStyle = "auto"
    #: The clock timestamp ids are read from (None: the system clock). A test sets a fixed one to play a clock
    #: stepped back, the case where a generated timestamp id could repeat a deleted task's.
    id_clock: Callable[[], datetime] | None = None
    #: How many tasks a caller that holds each task's run lease while deleting it (``gc``) should hand to
    #: :meth:`delete_many` at once. 1 here: a PostgreSQL lease is a connection of its own, and per-task deletes
    #: share nothing to save. The file store says more: its leases are file descriptors, and its deletes share
    #: per-workspace files that a batch rewrites once.
    delete_batch: int = 1

    def _now(self) -> datetime | None:
        """The time for the next timestamp id (None: let :func:`atlas_tasks.ids.timestamp_candidates` read it)."""
        return self.id_clock() if self.id_clock is not None else None

    # ================================================================================================ identity
    @property
    @abstractmethod
    def url(self) -> str:
        """The URL that opens this store again; see :attr:`atlas_tasks.store.Store.url`."""

    # ============================================================================================== workspaces
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
        return self._insert_workspace(new_workspace(name, path, worktree_path, branch, metadata), exist_ok=exist_ok)

    def get_workspace(self, name: str) -> Workspace:
        """Return a workspace. See :meth:`atlas_tasks.store.Store.get_workspace`."""
        N.check_workspace_name(name)
        return self._get_workspace(name)

    def list_workspaces(self) -> WorkspaceList:
        """Every workspace, by name. See :meth:`atlas_tasks.store.Store.list_workspaces`."""
        return self._list_workspaces()

    def set_workspace_status(self, name: str, status: str) -> Workspace:
        """Set a workspace's status. See :meth:`atlas_tasks.store.Store.set_workspace_status`."""
        N.check_workspace_name(name)
        new_status = WorkspaceStatus(status)

        def change(ws: Workspace) -> None:
            ws.status, ws.updated_at = new_status, utcnow()

        return self._edit_workspace(name, change)

    # =================================================================================================== tasks
    def create(self, workspace: str, task: Task) -> Task:
        """Store a new task. See :meth:`atlas_tasks.store.Store.create`."""
        N.check_workspace_name(workspace)
        explicit = N.check_task_id(task.id) if task.id else None
        now = utcnow()
        task_id, data, path = self._insert_task(workspace, explicit, lambda tid: stamp_new(task, workspace, tid, now))
        new = decode_stored(data, workspace, task_id, path)
        self._after_create(workspace, new)
        return new

    def get(self, workspace: str, task_id: str) -> Task:
        """The last committed state of a task. See :meth:`atlas_tasks.store.Store.get`."""
        N.check_workspace_name(workspace)
        N.check_task_id(task_id)
        try:
            raw, path = self._read_task(workspace, task_id)
        except TaskNotFoundError as exc:
            stone = self._get_tombstone(workspace, task_id)  # only on a miss: the common read pays nothing
            if stone is None:
                raise
            raise TaskNotFoundError(workspace, task_id, exc.path, deleted_at=stone.deleted_at) from None
        return decode_stored(raw, workspace, task_id, path)

    def update(self, workspace: str, task: Task) -> Task:
        """Save ``task`` unless somebody saved it first. See :meth:`atlas_tasks.store.Store.update`."""
        N.check_workspace_name(workspace)
        task_id = N.check_task_id(task.id)
        with self._task_for_update(workspace, task_id) as slot:
            head = slot.head()
            stored = self._next_revision(workspace, head, task)
            data = encode_task(stored)
            slot.write(data)
            path = slot.path
        # What get() would now return: decoded from the bytes written, sharing nothing with the caller's object.
        new = decode_stored(data, workspace, task_id, path)
        self._after_update(workspace, head, new)
        return new

    @contextlib.contextmanager
    def edit(self, workspace: str, task_id: str) -> Iterator[Task]:
        """Locked read-modify-write; saves on a clean exit. See :meth:`atlas_tasks.store.Store.edit`.

        The yielded task's ``revision`` and ``updated_at`` are brought up to date after the save. Exceptions raised
        by the block itself pass through untouched (and nothing is saved).
        """
        N.check_workspace_name(workspace)
        N.check_task_id(task_id)
        with self._locked_task(workspace, task_id) as slot:
            work = decode_stored(slot.read(), workspace, task_id, slot.path)  # freshly decoded: ours to hand out
            head = TaskHead(work.revision, str(work.status), len(work.transitions), work.created_at)
            yield work
            stored = self._next_revision(workspace, head, work)
            slot.write(encode_task(stored))
            work.revision, work.updated_at = stored.revision, stored.updated_at
        self._after_update(workspace, head, stored)

    def modify(self, workspace: str, task_id: str, fn: Callable[[Task], object]) -> Task:
        """Locked read-modify-write with ``fn(task)``; returns the stored task."""
        with self.edit(workspace, task_id) as task:
            fn(task)
        return task

    def _next_revision(self, workspace: str, head: TaskHead, task: Task) -> Task:
        if task.revision != head.revision:
            raise ConflictError(workspace, task.id, task.revision, head.revision)
        check_status_change(task.id, head.status, task.status, task.transitions[head.transition_count :])
        if created_moved(head.created_at, task.created_at):
            self._created_moved(workspace, task.id)
        return task.model_copy(update={"revision": head.revision + 1, "updated_at": utcnow()})

    def delete(self, workspace: str, task_id: str, *, reason: str | None = None) -> None:
        """Remove a task with its log and artifacts, leaving a tombstone. See :meth:`atlas_tasks.store.Store.delete`."""
        N.check_workspace_name(workspace)
        N.check_task_id(task_id)
        self._delete_task(workspace, task_id, delete_info(reason))

    def delete_many(
        self, workspace: str, task_ids: Iterable[str], *, reason: str | None = None
    ) -> dict[str, AtlasTasksError]:
        """Delete several tasks of one workspace. See :meth:`atlas_tasks.store.Store.delete_many`."""
        N.check_workspace_name(workspace)
        failed: dict[str, AtlasTasksError] = {}
        valid: builtins.list[str] = []
        for task_id in task_ids:
            try:
                valid.append(N.check_task_id(task_id))
            except AtlasTasksError as exc:
                failed[str(task_id)] = exc
        failed.update(self._delete_tasks(workspace, valid, delete_info(reason)))
        return failed

    def _delete_tasks(
        self, workspace: str, task_ids: builtins.list[str], info: Mapping[str, Any] | None
    ) -> dict[str, AtlasTasksError]:
        """Delete each task as :meth:`_delete_task` does; the ones that failed, with their errors. A backend whose
        deletes share per-workspace bookkeeping overrides this to do that bookkeeping once."""
        failed: dict[str, AtlasTasksError] = {}
        for task_id in task_ids:
            try:
                self._delete_task(workspace, task_id, info)
            except AtlasTasksError as exc:
                failed[task_id] = exc
        return failed

    # ============================================================================================== tombstones
    def tombstone(self, workspace: str, task_id: str) -> Tombstone | None:
        """The tombstone of a deleted id, or None. See :class:`atlas_tasks.store.capabilities.Tombstones`."""
        N.check_workspace_name(workspace)
        N.check_task_id(task_id)
        return self._get_tombstone(workspace, task_id)

    def tombstones(self, workspace: str) -> builtins.list[Tombstone]:
        """Every tombstone of a workspace, oldest deletion first (ties by id)."""
        N.check_workspace_name(workspace)
        return sorted(self._list_tombstones(workspace), key=lambda t: (t.deleted_at, t.id))

    # ================================================================================================ listings
    def list(self, workspace: str, *, strict: bool = False, limit: int | None = None) -> TaskList:
        """The workspace's tasks, newest first. See :meth:`atlas_tasks.store.Store.list`."""
        N.check_workspace_name(workspace)
        result = TaskList()
        for outcome in self._scan_tasks(workspace):
            if not isinstance(outcome, AtlasTasksError):
                task_id, raw, path = outcome
                try:
                    result.append(decode_stored(raw, workspace, task_id, path))
                    continue
                except (CorruptTaskError, SchemaVersionError) as exc:
                    outcome = exc
            if strict:
                raise outcome
            result.errors.append(outcome)
        result.sort(key=newest_first_key, reverse=True)
        if limit is not None:
            del result[max(0, limit) :]
        return result

    def iter_tasks(self, workspace: str, *, errors: builtins.list[AtlasTasksError] | None = None) -> Iterator[Task]:
        """Yield the workspace's tasks one at a time. See :meth:`atlas_tasks.store.Store.iter_tasks`."""
        N.check_workspace_name(workspace)
        for outcome in self._scan_tasks(workspace):
            if not isinstance(outcome, AtlasTasksError):
                task_id, raw, path = outcome
                try:
                    yield decode_stored(raw, workspace, task_id, path)
                    continue
                except (CorruptTaskError, SchemaVersionError) as exc:
                    outcome = exc
            if errors is None:
                raise outcome
            errors.append(outcome)

    def list_summaries(self, workspace: str) -> SummaryList:
        """Every task's summary, newest first. See :meth:`atlas_tasks.store.Store.list_summaries`."""
        N.check_workspace_name(workspace)
        result = SummaryList()
        for outcome in self._scan_tasks(workspace):
            if isinstance(outcome, AtlasTasksError):
                result.errors.append(outcome)
                continue
            task_id, raw, path = outcome
            try:
                result.append(summarize(raw, workspace, task_id, path))
            except (CorruptTaskError, SchemaVersionError) as exc:
                result.errors.append(exc)
        result.sort(key=newest_first_key, reverse=True)
        return result

    # ==================================================================================================== logs
    def append_log(self, workspace: str, task_id: str, entry: LogEntry) -> None:
        """Append one JSON line to the task's log, durably. See :meth:`atlas_tasks.store.Store.append_log`."""
        N.check_workspace_name(workspace)
        N.check_task_id(task_id)
        self._append_log_line(workspace, task_id, encode_line(workspace, task_id, entry))

    def read_log(self, workspace: str, task_id: str, *, rotated: bool = False) -> LogLines:
        """The log's entries. See :meth:`atlas_tasks.store.Store.read_log`."""
        N.check_workspace_name(workspace)
        N.check_task_id(task_id)
        if rotated:
            raw, path = self._read_whole_log(workspace, task_id)
        else:
            raw, path = self._read_log(workspace, task_id)
        return parse_log(raw, workspace, task_id, path) if raw else LogLines()

    def _read_whole_log(self, workspace: str, task_id: str) -> tuple[bytes, str]:
        """The rotated segments (oldest first) and the live log, as one consistent byte string.

        The segment names are listed before and after the live log is read: a rotation in between (a new segment)
        reads again. A rotation cut short after its segment was saved leaves those bytes at the head of the live
        log too; they are taken once, as ``rotate_log`` itself treats them.
        """
        where = ""
        for _attempt in range(_ROTATION_ATTEMPTS):
            before = self._log_segments(workspace, task_id)
            raw, where = self._read_log(workspace, task_id)
            if self._log_segments(workspace, task_id) != before:
                continue
            segments = [gzip.decompress(self._get_artifact(workspace, task_id, N.artifact_parts(n))) for _, n in before]
            if segments and segments[-1] and raw.startswith(segments[-1]):
                raw = raw[len(segments[-1]) :]
            return b"".join([*segments, raw]), where
        raise StorageError("read_log", where, None, "the log kept being rotated while it was read; try again")

    def _log_segments(self, workspace: str, task_id: str) -> builtins.list[tuple[int, str]]:
        """The log's rotated segments as (version, artifact name), oldest first."""
        found = []
        for name in self._artifact_names(workspace, task_id):
            folder, _, leaf = name.rpartition("/")
            version = N.version_of(leaf, _SEGMENT_LEAF) if folder == _SEGMENT_FOLDER else None
            if version is not None:
                found.append((version, name))
        return sorted(found)

    def iter_log(self, workspace: str, task_id: str) -> Iterator[dict[str, Any]]:
        """Yield the log's intact entries in order."""
        yield from self.read_log(workspace, task_id)

    def tail_log(self, workspace: str, task_id: str, lines: int, *, after: int | None = None) -> LogTail:
        """A window of the log. See :meth:`atlas_tasks.store.Store.tail_log`.

        This default reads the whole log; positions are line numbers (the number of entries before + 1).
        """
        entries = self.read_log(workspace, task_id)
        total, lines = len(entries), max(lines, 0)
        if after is None:
            start = max(total - lines, 0)
            stop = total
        else:
            start = max(after, 0)
            if start > total:
                start = 0  # the log is shorter than the position: it was replaced (a task re-created)
            stop = min(start + lines, total)
        window = LogTail(entries[start:stop])
        window.positions = builtins.list(range(start + 1, stop + 1))
        window.start, window.end = start, stop
        window.more = after is not None and stop < total
        if after is None:
            window.torn_tail, window.skipped = entries.torn_tail, int(entries.torn_tail)
        return window

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
        """Yield the log's entries, then new ones as they come. See :meth:`atlas_tasks.store.Store.follow_log`.

        This default polls :meth:`tail_log` after the last position shown (and ``get`` for ``on_task``).
        """
        position = max(after, 0)
        revision = self.get(workspace, task_id).revision if on_task is not None else 0
        if on_listen is not None:
            on_listen()
        while True:
            done = until()
            window = self.tail_log(workspace, task_id, FOLLOW_WINDOW, after=position)
            yield from window
            position = max(position, window.end)
            if window.more:
                continue  # a full window: the next one follows at once
            if on_task is not None:
                revision = self._announce_revision(workspace, task_id, revision, on_task)
            if done:
                return
            time.sleep(poll)

    def _announce_revision(self, workspace: str, task_id: str, known: int, on_task: Callable[[str], None]) -> int:
        try:
            now = self.get(workspace, task_id).revision
        except TaskNotFoundError:
            if known >= 0:
                on_task("deleted")
            return -1
        if now != known:
            on_task(str(now))
        return now

    # =============================================================================================== artifacts
    def save_artifact(self, workspace: str, task_id: str, filename: str, data: bytes | str) -> str:
        """Durably write an artifact. See :meth:`atlas_tasks.store.Store.save_artifact`."""
        parts = N.check_plain_artifact_name(filename)
        N.check_workspace_name(workspace)
        N.check_task_id(task_id)
        self._put_artifact(workspace, task_id, parts, to_bytes(data))
        return "/".join(parts)

    def save_versioned_artifact(self, workspace: str, task_id: str, base_name: str, data: bytes | str) -> str:
        """Write the next version of an artifact. See :meth:`atlas_tasks.store.Store.save_versioned_artifact`."""
        parts = N.artifact_parts(base_name)
        N.check_workspace_name(workspace)
        N.check_task_id(task_id)
        return self._put_versioned_artifact(workspace, task_id, parts, to_bytes(data))

    def get_artifact(self, workspace: str, task_id: str, filename: str) -> bytes:
        """An artifact's bytes. See :meth:`atlas_tasks.store.Store.get_artifact`."""
        parts = N.artifact_parts(filename)
        N.check_workspace_name(workspace)
        N.check_task_id(task_id)
        return self._get_artifact(workspace, task_id, parts)

    def list_artifacts(self, workspace: str, task_id: str) -> builtins.list[str]:
        """The task's artifacts in natural order. See :meth:`atlas_tasks.store.Store.list_artifacts`."""
        N.check_workspace_name(workspace)
        N.check_task_id(task_id)
        return natural_sorted(self._artifact_names(workspace, task_id))

    def open_artifact(self, workspace: str, task_id: str, filename: str) -> ArtifactReader:
        """An artifact opened for reading. See :meth:`atlas_tasks.store.Store.open_artifact`.

        This default takes the size from :meth:`artifact_sizes` and fetches the bytes whole when first read.
        """
        size = self.artifact_sizes(workspace, task_id).get(filename)
        if size is None:  # no such artifact (or one that vanished meanwhile): get_artifact says which
            data = self.get_artifact(workspace, task_id, filename)
            return ArtifactReader(len(data), lambda: data)
        return ArtifactReader(size, lambda: self.get_artifact(workspace, task_id, filename))

    def artifact_sizes(self, workspace: str, task_id: str) -> dict[str, int]:
        """Each artifact's size. See :meth:`atlas_tasks.store.Store.artifact_sizes` (this default reads each)."""
        return {
            name: len(self.get_artifact(workspace, task_id, name)) for name in self.list_artifacts(workspace, task_id)
        }

    # ============================================================================== compaction (retention)
    def delete_artifact(self, workspace: str, task_id: str, filename: str) -> None:
        """Remove one artifact, durably. See :meth:`atlas_tasks.store.Store.delete_artifact`."""
        parts = N.artifact_parts(filename)
        N.check_workspace_name(workspace)
        N.check_task_id(task_id)
        self._delete_artifact(workspace, task_id, parts)

    def rotate_log(
        self, workspace: str, task_id: str, *, max_bytes: int, keep_bytes: int | None = None, dry_run: bool = False
    ) -> LogRotation:
        """Move a long log's older lines into a gzip segment. See :meth:`atlas_tasks.store.Store.rotate_log`.

        Written once on two primitives: the segment is saved as the next version of :data:`LOG_SEGMENT` (durable
        before the log changes), then :meth:`_drop_log_head` removes exactly those bytes from the front of the log
        under the lock ``append_log`` takes, so a line appended meanwhile is never lost.
        """
        N.check_workspace_name(workspace)
        N.check_task_id(task_id)
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be at least 1, not {max_bytes}")
        keep = max_bytes // 2 if keep_bytes is None else keep_bytes
        for _attempt in range(_ROTATION_ATTEMPTS):
            raw, where = self._read_log(workspace, task_id)
            report = LogRotation()
            newest = self._newest_log_segment(workspace, task_id)
            if newest is not None:
                _name, data = newest
                # A rotation cut short after its segment was durable: those bytes still open the live log. Finish it
                # (drop them) instead of archiving them twice.
                if data and raw.startswith(data):
                    if not dry_run and not self._drop_log_head(workspace, task_id, data):
                        continue  # another rotation changed the log meanwhile: look again
                    report.resumed, report.resumed_lines, report.resumed_bytes = True, data.count(b"\n"), len(data)
                    raw = raw[len(data) :]
            cut = rotation_cut(raw, keep) if len(raw) > max_bytes else 0
            report.kept_lines, report.kept_bytes = raw.count(b"\n", cut), len(raw) - cut
            if cut == 0:
                return report
            head = raw[:cut]
            segment = gzip.compress(head, mtime=0)
            report.lines_moved, report.bytes_moved, report.segment_bytes = head.count(b"\n"), cut, len(segment)
            if dry_run:
                last = N.version_of(newest[0].rpartition("/")[2], _SEGMENT_LEAF) if newest else 0
                report.segment = "/".join([*_SEGMENT_PARTS[:-1], N.versioned_name(_SEGMENT_LEAF, (last or 0) + 1)])
                return report
            report.segment = self.save_versioned_artifact(workspace, task_id, LOG_SEGMENT, segment)
            crash_point("rotate_log:segment-saved")
            if self._drop_log_head(workspace, task_id, head):
                return report
            # Another rotation moved the head first: every line of ours is in its segment or still in the log, so
            # this segment only duplicates them. Withdraw it and plan again.
            self._delete_artifact(workspace, task_id, N.artifact_parts(report.segment))
        raise StorageError("rotate_log", where, None, "the log's head kept changing under concurrent rotations")

    def _newest_log_segment(self, workspace: str, task_id: str) -> tuple[str, bytes] | None:
        """The newest rotated segment of the log (name, uncompressed bytes), or None."""
        segments = self._log_segments(workspace, task_id)
        if not segments:
            return None
        name = segments[-1][1]
        return name, gzip.decompress(self._get_artifact(workspace, task_id, N.artifact_parts(name)))

    # ==================================================================================================== runs
    def run(self, workspace: str, task_id: str) -> contextlib.AbstractContextManager[Run]:
        """Run a task step by step under its run lease; see :mod:`atlas_tasks.runs`.

        Raises:
            NotRunnableError: this store takes no run leases (see :class:`atlas_tasks.store.RunLeases`).
        """
        from atlas_tasks import runs  # runs imports the store contract; importing it lazily keeps this module light
        from atlas_tasks.store.capabilities import RunLeases

        if not isinstance(self, RunLeases):
            raise NotRunnableError(workspace, task_id, "", f"{self!r} takes no run leases, so it cannot run tasks")
        return runs.run(self, workspace, task_id)

    # ============================================================================================== primitives
    @abstractmethod
    def _insert_workspace(self, workspace: Workspace, *, exist_ok: bool) -> Workspace:
        """Store a new workspace; with ``exist_ok`` return the existing one. Raises WorkspaceExistsError."""

    @abstractmethod
    def _get_workspace(self, name: str) -> Workspace:
        """Read one workspace. Raises WorkspaceNotFoundError, CorruptWorkspaceError."""

    @abstractmethod
    def _list_workspaces(self) -> WorkspaceList:
        """Every workspace, sorted by name; unreadable ones in ``.errors``."""

    @abstractmethod
    def _edit_workspace(self, name: str, change: Callable[[Workspace], None]) -> Workspace:
        """Apply ``change`` to the workspace under its lock and store it; returns it. Raises WorkspaceNotFoundError."""

    @abstractmethod
    def _insert_task(
        self, workspace: str, task_id: str | None, build: Callable[[str], bytes]
    ) -> tuple[str, bytes, str]:
        """Reserve ``task_id`` (None: a fresh id in :attr:`id_style`), store ``build(id)`` durably.

        Returns ``(id, the bytes stored, where)``. Raises WorkspaceNotFoundError, TaskExistsError, and
        TaskIdRetiredError for an explicit id with a tombstone (a generated id skips tombstoned candidates). The
        tombstone is looked at after the id is reserved, so a delete that completes meanwhile cannot slip past it.
        Nothing of the task may remain when it fails.
        """

    @abstractmethod
    def _read_task(self, workspace: str, task_id: str) -> tuple[bytes, str]:
        """The committed bytes of a task and where they are. Raises WorkspaceNotFoundError, TaskNotFoundError."""

    @abstractmethod
    def _locked_task(self, workspace: str, task_id: str) -> contextlib.AbstractContextManager[TaskSlot]:
        """Hold one task for a read-modify-write (see :class:`TaskSlot`). Raises what ``get`` raises."""

    def _task_for_update(self, workspace: str, task_id: str) -> contextlib.AbstractContextManager[TaskSlot]:
        """Hold one task for ``update``: :meth:`_locked_task` unless a backend knows a cheaper way.

        ``update`` reads only the head, checks it and writes once. A backend whose ``slot.write`` itself refuses to
        replace any revision but the one ``head()`` read (``UPDATE … WHERE revision = …``, raising ConflictError)
        may return a slot that takes no lock: the outcome is the same, for fewer round trips.
        """
        return self._locked_task(workspace, task_id)

    @abstractmethod
    def _scan_tasks(self, workspace: str) -> Iterator[tuple[str, bytes, str] | AtlasTasksError]:
        """Every task of a workspace as ``(id, bytes, where)``, or the error that makes one unreadable.

        Raises WorkspaceNotFoundError.
        """

    @abstractmethod
    def _delete_task(self, workspace: str, task_id: str, info: Mapping[str, Any] | None) -> None:
        """Remove a task, its log and artifacts, all or nothing. Raises TaskNotFoundError, TaskRunningError.

        With ``info``, first record the id's tombstone (:func:`new_tombstone`) durably, so that a crash leaves the
        tombstone and either the whole task or nothing. None (an import replacing the task) records none.
        """

    @abstractmethod
    def _get_tombstone(self, workspace: str, task_id: str) -> Tombstone | None:
        """The id's tombstone, or None (an unknown workspace has none)."""

    @abstractmethod
    def _list_tombstones(self, workspace: str) -> builtins.list[Tombstone]:
        """The workspace's tombstones, in any order (an unknown workspace has none)."""

    @abstractmethod
    def _append_log_line(self, workspace: str, task_id: str, line: bytes) -> None:
        """Append one encoded line (ending in a newline) durably. Raises TaskNotFoundError."""

    @abstractmethod
    def _read_log(self, workspace: str, task_id: str) -> tuple[bytes, str]:
        """The whole log as task.log bytes (``b""`` when empty) and where it is. Raises TaskNotFoundError."""

    @abstractmethod
    def _put_artifact(self, workspace: str, task_id: str, parts: builtins.list[str], data: bytes) -> None:
        """Durably write (or replace) an artifact at ``parts`` (its path, split). Raises TaskNotFoundError."""

    @abstractmethod
    def _put_versioned_artifact(self, workspace: str, task_id: str, parts: builtins.list[str], data: bytes) -> str:
        """Claim the next free version of ``parts`` for ``data`` (write-once); returns its relative name."""

    @abstractmethod
    def _get_artifact(self, workspace: str, task_id: str, parts: builtins.list[str]) -> bytes:
        """An artifact's bytes. Raises TaskNotFoundError, ArtifactNotFoundError."""

    @abstractmethod
    def _artifact_names(self, workspace: str, task_id: str) -> builtins.list[str]:
        """The task's artifacts as relative POSIX paths, in any order. Raises TaskNotFoundError."""

    @abstractmethod
    def _delete_artifact(self, workspace: str, task_id: str, parts: builtins.list[str]) -> None:
        """Remove one artifact durably. Raises TaskNotFoundError, ArtifactNotFoundError."""

    @abstractmethod
    def _drop_log_head(self, workspace: str, task_id: str, head: bytes) -> bool:
        """If the log begins with exactly ``head``, remove those bytes and keep the rest; say whether it did.

        Atomic and durable (the old log or the new one, never a mix), and holding the lock ``append_log`` takes (or
        an equivalent: no line appended concurrently may be lost). Raises TaskNotFoundError.
        """

    # ================================================================================================== hooks
    def _after_create(self, workspace: str, task: Task) -> None:  # noqa: B027 - a hook: doing nothing is the default
        """Called after a task was created (the file store records its workspace ref here)."""

    def _after_update(self, workspace: str, before: TaskHead, after: Task) -> None:  # noqa: B027 - a hook: doing nothing is the default
        """Called after an update or edit committed (the file store keeps workspace refs in step here)."""

    def _created_moved(self, workspace: str, task_id: str) -> None:  # noqa: B027 - a hook: doing nothing is the default
        """Called inside a write that changes a task's ``created_at`` (the order of listings)."""


__all__ = [
    "FOLLOW_WINDOW",
    "LOG_SEGMENT",
    "BaseStore",
    "TaskSlot",
    "decode_stored",
    "delete_info",
    "new_tombstone",
    "new_workspace",
    "refuse_import",
    "restores",
    "rotation_cut",
    "stamp_new",
]
