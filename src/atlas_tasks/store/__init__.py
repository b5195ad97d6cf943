"""The Store contract: what every backend (file, PostgreSQL, memory) promises, and what some can do besides.

* :class:`Store` — the methods every store has. The conformance suite in :mod:`atlas_tasks.testing` checks each
  promise below, ``Raises:`` sections included, so a backend that passes it can stand in for any other.
* :mod:`atlas_tasks.store.base` — :class:`~atlas_tasks.store.base.BaseStore`, which writes every one of those
  methods once on a few primitives; a new backend subclasses it and writes only the primitives.
* :mod:`atlas_tasks.store.capabilities` — what only some stores can do (run leases, cheap change stamps, a
  consistency check, imports, files on a local disk), as protocols checked with ``isinstance``.
* :mod:`atlas_tasks.store.types` — the value types (TaskList, LogLines, TaskSummary, CheckReport, ...).
* :mod:`atlas_tasks.store.urls` — ``open_store(url)``: one registry of URL schemes for every way to name a store.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from atlas_tasks.errors import AtlasTasksError
from atlas_tasks.models import Task, Workspace
from atlas_tasks.store.capabilities import (
    ChangeStamps,
    CollectorLocks,
    Importable,
    LeaseHandle,
    LocalFiles,
    Repairable,
    RunLeases,
    Tombstones,
)
from atlas_tasks.store.types import (
    ArtifactReader,
    CheckReport,
    Finding,
    LogEntry,
    LogLines,
    LogRotation,
    LogTail,
    SummaryList,
    TaskList,
    TaskSummary,
    Tombstone,
    WorkspaceList,
)

if TYPE_CHECKING:
    from atlas_tasks.runs import Run


@runtime_checkable
class Store(Protocol):
    """Durable storage of tasks, their logs and artifacts, grouped in workspaces.

    Every method validates names first (``InvalidNameError``) and never touches anything outside the store.
    Every write is durable when the method returns: an acknowledged change survives a crash or power cut.
    """

    #: How many tasks a caller that holds each task's run lease while deleting it (``gc``) hands to
    #: :meth:`delete_many` at once (BaseStore: 1; the file store: 256).
    delete_batch: int

    # -- workspaces ---------------------------------------------------------------------------------------------
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
        """Create a workspace (and its workspace.json in the Go format).

        Raises:
            InvalidNameError: the name is not allowed.
            WorkspaceExistsError: it exists already and ``exist_ok`` is false.
        """
        ...

    def get_workspace(self, name: str) -> Workspace:
        """Return a workspace.

        Raises:
            InvalidNameError: the name is not allowed.
            WorkspaceNotFoundError: no such workspace.
            CorruptWorkspaceError: its workspace.json cannot be read.
        """
        ...

    def list_workspaces(self) -> WorkspaceList:
        """Return every workspace, sorted by name; unreadable ones are in ``.errors``."""
        ...

    def set_workspace_status(self, name: str, status: str) -> Workspace:
        """Set a workspace's status (``active``, ``paused``, ``closed``) and return it.

        Raises:
            InvalidNameError, WorkspaceNotFoundError, CorruptWorkspaceError,
            ValueError: not a workspace status.
        """
        ...

    # -- tasks --------------------------------------------------------------------------------------------------
    def create(self, workspace: str, task: Task) -> Task:
        """Store a new task and return the stored copy (the argument is not modified).

        An empty ``task.id`` gets a fresh id, reserved atomically. The copy has ``schema_version``,
        ``workspace_name``, ``created_at`` (if unset), ``updated_at`` and ``revision`` 1.

        Raises:
            InvalidNameError: the workspace name or the given id is not allowed.
            WorkspaceNotFoundError: the workspace does not exist.
            TaskExistsError: the given id is taken.
            TaskIdRetiredError: the given id belonged to a deleted task (it has a tombstone); generated ids never
                hit this, they skip tombstoned ids.
        """
        ...

    def get(self, workspace: str, task_id: str) -> Task:
        """Return the last committed state of a task (never a partial one; takes no lock).

        Raises:
            InvalidNameError, WorkspaceNotFoundError, TaskNotFoundError,
            CorruptTaskError: the stored task cannot be read (IncompleteTaskError for a creation cut short),
            SchemaVersionError: it was written by a newer format.
        """
        ...

    def update(self, workspace: str, task: Task) -> Task:
        """Save ``task`` if nobody saved it since it was read, and return the stored copy.

        The copy has ``revision`` + 1 and a new ``updated_at``; the argument is not modified, so keep using
        the returned task. A status change must be recorded by ``task.transition`` (a valid chain of transitions).

        Raises:
            InvalidNameError, WorkspaceNotFoundError, TaskNotFoundError, CorruptTaskError,
            ConflictError: ``task.revision`` is not the stored revision,
            InvalidTransitionError: the status changed without a valid chain of transitions,
            LockTimeoutError: another writer held the task too long.
        """
        ...

    def edit(self, workspace: str, task_id: str) -> AbstractContextManager[Task]:
        """Locked read-modify-write: ``with store.edit(ws, id) as task: task.x = ...`` saves on a clean exit.

        Nothing is saved if the block raises. Raises what ``get`` and ``update`` raise.
        """
        ...

    def modify(self, workspace: str, task_id: str, fn: Callable[[Task], object]) -> Task:
        """Locked read-modify-write with a function that changes the task in place; returns the stored copy."""
        ...

    def list(self, workspace: str, *, strict: bool = False, limit: int | None = None) -> TaskList:
        """Return the workspace's tasks, newest first by ``created_at`` (ties: by id, descending).

        Unreadable tasks are reported in ``.errors``, never dropped silently. ``limit`` keeps only the newest
        ``limit`` tasks (a backend may then read only those in full).

        Raises:
            InvalidNameError, WorkspaceNotFoundError,
            CorruptTaskError: with ``strict=True``, the first unreadable task.
        """
        ...

    def iter_tasks(self, workspace: str, *, errors: builtins.list[AtlasTasksError] | None = None) -> Iterator[Task]:
        """Yield the workspace's tasks one at a time (in no promised order), holding few in memory.

        Unreadable tasks are appended to ``errors`` when a list is given; otherwise the first one is raised.

        Raises:
            InvalidNameError, WorkspaceNotFoundError, CorruptTaskError (without ``errors``).
        """
        ...

    def list_summaries(self, workspace: str) -> SummaryList:
        """The workspace's tasks as :class:`TaskSummary` rows, newest first, without building full tasks.

        Raises:
            InvalidNameError, WorkspaceNotFoundError.
        """
        ...

    def delete(self, workspace: str, task_id: str, *, reason: str | None = None) -> None:
        """Remove a task with its log and artifacts, leaving a tombstone so its id is never handed out again.

        The tombstone (see :class:`~atlas_tasks.store.capabilities.Tombstones`) is durable before the task goes:
        a crash in between leaves the tombstone and the whole task, and deleting again finishes. ``reason`` (who
        or why: ``"gc"``, ``"cli"``) is kept in the tombstone's ``info``.

        Raises:
            InvalidNameError, WorkspaceNotFoundError, TaskNotFoundError, LockTimeoutError.
        """
        ...

    def delete_many(
        self, workspace: str, task_ids: Iterable[str], *, reason: str | None = None
    ) -> dict[str, AtlasTasksError]:
        """Delete several tasks of one workspace, each exactly as :meth:`delete` does (tombstone first, each task
        whole or gone), with the workspace's bookkeeping done once for all of them rather than once per task.

        Returns the tasks that could not be deleted, by id, with the error each raised (the others are gone).

        Raises:
            InvalidNameError: a bad workspace name (a bad task id is reported in the result).
        """
        ...

    # -- logs ---------------------------------------------------------------------------------------------------
    def append_log(self, workspace: str, task_id: str, entry: LogEntry) -> None:
        """Append one JSON line to the task's log, durably.

        A mapping gets ``ts``, ``workspace_name`` and ``task_id`` filled in when absent (the keys the Go ATLAS's
        log reader expects).

        Raises:
            InvalidNameError, WorkspaceNotFoundError, TaskNotFoundError, LockTimeoutError,
            InvalidLogEntryError: not JSON, or a newline or NUL inside.
        """
        ...

    def read_log(self, workspace: str, task_id: str, *, rotated: bool = False) -> LogLines:
        """Return the log's entries; a torn final line is skipped and counted, damaged lines are reported.

        With ``rotated``, the older lines ``rotate_log`` (``atlas-tasks compact``) moved into gzip segments come
        first, oldest first, then the live log: the whole log as it was written.

        Raises:
            InvalidNameError, WorkspaceNotFoundError, TaskNotFoundError.
        """
        ...

    def iter_log(self, workspace: str, task_id: str) -> Iterator[dict[str, Any]]:
        """Yield the log's intact entries in order (what ``read_log`` returns, one at a time)."""
        ...

    def tail_log(self, workspace: str, task_id: str, lines: int, *, after: int | None = None) -> LogTail:
        """The last ``lines`` entries of the log, or with ``after`` the first ``lines`` entries after that position.

        Positions (``LogTail.positions``, ``.end``) are opaque whole numbers to hand back as ``after``; one past the
        end of the log (the task was re-created) starts over from the beginning.

        Raises:
            InvalidNameError, WorkspaceNotFoundError, TaskNotFoundError.
        """
        ...

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
        """Yield the log's entries after ``after``, then each new one as it is written, until ``until()`` is true.

        ``until`` is asked at least every ``poll`` seconds; once it returns true, the entries written before it
        was asked are still yielded. ``on_listen`` is called once the follower is watching, before the log is
        first read; ``on_task`` is called with the task's new revision (as text, or ``"deleted"``) when the task
        itself changes while it is followed (a backend may call it late, never for a change made before
        ``on_listen``).

        Raises:
            InvalidNameError, WorkspaceNotFoundError, TaskNotFoundError.
        """
        ...

    # -- artifacts ----------------------------------------------------------------------------------------------
    def save_artifact(self, workspace: str, task_id: str, filename: str, data: bytes | str) -> str:
        """Durably write (or replace) an artifact; ``filename`` may hold subdirectories (``sdd/spec.md``).

        Raises:
            InvalidNameError: a bad path, or a versioned-looking name (``x.2.json``: those are write-once),
            WorkspaceNotFoundError, TaskNotFoundError.
        """
        ...

    def save_versioned_artifact(self, workspace: str, task_id: str, base_name: str, data: bytes | str) -> str:
        """Write ``data`` as the next version of ``base_name`` and return its name (``validation.3.json``).

        Versions are write-once and numbered upward; concurrent savers never share or overwrite a version and
        deleted numbers are never handed out again while a higher one exists.

        Raises:
            InvalidNameError, WorkspaceNotFoundError, TaskNotFoundError.
        """
        ...

    def get_artifact(self, workspace: str, task_id: str, filename: str) -> bytes:
        """Return an artifact's bytes.

        Raises:
            InvalidNameError, WorkspaceNotFoundError, TaskNotFoundError, ArtifactNotFoundError.
        """
        ...

    def list_artifacts(self, workspace: str, task_id: str) -> builtins.list[str]:
        """Relative POSIX paths of the task's artifacts, subdirectories included, in natural order.

        Raises:
            InvalidNameError, WorkspaceNotFoundError, TaskNotFoundError.
        """
        ...

    def open_artifact(self, workspace: str, task_id: str, filename: str) -> ArtifactReader:
        """An artifact opened for reading: ``size`` first, then its bytes whole or in chunks (see ArtifactReader).

        Raises:
            InvalidNameError, WorkspaceNotFoundError, TaskNotFoundError, ArtifactNotFoundError.
        """
        ...

    def artifact_sizes(self, workspace: str, task_id: str) -> dict[str, int]:
        """Each artifact's size in bytes, by the names ``list_artifacts`` returns (in that order).

        Raises:
            InvalidNameError, WorkspaceNotFoundError, TaskNotFoundError.
        """
        ...

    # -- compaction (retention) -----------------------------------------------------------------------------------
    def delete_artifact(self, workspace: str, task_id: str, filename: str) -> None:
        """Remove one artifact, durably (versioned ones included).

        A deleted version's number is never handed out again while a higher version of the name exists (so
        :mod:`atlas_tasks.retention.compact` never deletes the newest).

        Raises:
            InvalidNameError, WorkspaceNotFoundError, TaskNotFoundError, ArtifactNotFoundError.
        """
        ...

    def rotate_log(
        self, workspace: str, task_id: str, *, max_bytes: int, keep_bytes: int | None = None, dry_run: bool = False
    ) -> LogRotation:
        """When the log is over ``max_bytes``, move its older whole lines into the next gzip segment.

        The segment is the next version of ``logs/task.log.gz`` (``logs/task.log.1.gz``, ...; oldest first); the
        live log keeps the newest whole lines within ``keep_bytes`` (default ``max_bytes // 2``, and always its
        last line). The segment is durable before the log changes; the log is then rewritten atomically under the
        lock ``append_log`` takes, so segments + live log always hold every line once, byte for byte, appends made
        meanwhile included. A rotation cut short by a crash is finished by the next call (``resumed``). With
        ``dry_run`` nothing is written and the report says what a real call would do.

        Raises:
            InvalidNameError, WorkspaceNotFoundError, TaskNotFoundError, LockTimeoutError,
            ValueError: ``max_bytes`` below 1.
        """
        ...

    # -- runs ---------------------------------------------------------------------------------------------------
    def run(self, workspace: str, task_id: str) -> AbstractContextManager[Run]:
        """Run a task step by step under its run lease (see :mod:`atlas_tasks.runs`).

        Raises:
            NotRunnableError: the store takes no run leases, or the task cannot run now.
        """
        ...

    # -- identity -----------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The URL that opens this store again (``open_store(store.url)``), e.g. ``file:///home/me/.atlas``.

        It may hold a password: show :func:`atlas_tasks.store.urls.redact` of it, never the URL itself.
        """
        ...


__all__ = [
    "ArtifactReader",
    "ChangeStamps",
    "CheckReport",
    "CollectorLocks",
    "Finding",
    "Importable",
    "LeaseHandle",
    "LocalFiles",
    "LogEntry",
    "LogLines",
    "LogRotation",
    "LogTail",
    "Repairable",
    "RunLeases",
    "Store",
    "SummaryList",
    "TaskList",
    "TaskSummary",
    "Tombstone",
    "Tombstones",
    "WorkspaceList",
]
