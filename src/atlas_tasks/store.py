"""The Store contract: what every backend (the file store, later PostgreSQL) promises.

The conformance suite in :mod:`atlas_tasks.testing` checks each promise below, ``Raises:`` sections included, so a
backend that passes it can stand in for any other.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar, runtime_checkable

from atlas_tasks.errors import AtlasTasksError, CorruptLogError
from atlas_tasks.models import Task, Workspace

T = TypeVar("T")


class TaskList(list[Task]):
    """The tasks ``list`` could read, newest first, plus ``errors``: one CorruptTaskError per unreadable task.

    A listing never silently drops a task: check ``errors`` (or pass ``strict=True``) to see what was skipped.
    """

    errors: list[AtlasTasksError]

    def __init__(self, tasks: list[Task] | None = None, errors: list[AtlasTasksError] | None = None) -> None:
        super().__init__(tasks or [])
        self.errors = errors or []


class WorkspaceList(list[Workspace]):
    """The workspaces ``list_workspaces`` could read, by name, plus ``errors`` for unreadable ones."""

    errors: list[AtlasTasksError]

    def __init__(self, workspaces: list[Workspace] | None = None, errors: list[AtlasTasksError] | None = None) -> None:
        super().__init__(workspaces or [])
        self.errors = errors or []


class LogLines(list[dict[str, Any]]):
    """The parsed lines of a task.log, in order.

    Attributes:
        skipped: lines left out: a torn or NUL-padded final line (an append cut short by a crash, never
            acknowledged) plus every damaged line listed in ``errors``.
        torn_tail: True if the final line was torn.
        errors: one CorruptLogError per damaged line that is followed by intact lines.
    """

    skipped: int
    torn_tail: bool
    errors: list[CorruptLogError]

    def __init__(self, lines: list[dict[str, Any]] | None = None) -> None:
        super().__init__(lines or [])
        self.skipped = 0
        self.torn_tail = False
        self.errors = []


class LogTail(LogLines):
    """A window of a task's log read by ``tail_log``: its intact entries in order, and where each one ends.

    Positions are opaque whole numbers to hand back to ``tail_log(after=...)``: byte offsets into task.log in the
    file store, line sequence numbers in PostgreSQL. ``skipped``, ``torn_tail`` and ``errors`` describe the
    window only.

    Attributes:
        positions: for each entry, the position just after it (what to continue from once it was shown).
        start: the position the window begins at; 0 when nothing of the log comes before it.
        end: the position just after the last whole line the window covers (damaged ones included).
        more: whether whole lines after ``end`` were left for another call (the window was full).
    """

    positions: list[int]
    start: int
    end: int
    more: bool

    def __init__(self, lines: list[dict[str, Any]] | None = None) -> None:
        super().__init__(lines)
        self.positions = []
        self.start = 0
        self.end = 0
        self.more = False


@dataclass(frozen=True)
class TaskSummary:
    """The few fields a listing or a dashboard shows, read without building the full typed task."""

    id: str
    workspace: str
    status: str
    template: str
    description: str
    current_step: int
    total_steps: int
    created_at: datetime | None
    updated_at: datetime | None
    revision: int


class SummaryList(list[TaskSummary]):
    """Task summaries, newest first, plus ``errors`` (one per unreadable task), as :class:`TaskList`."""

    errors: list[AtlasTasksError]

    def __init__(self) -> None:
        super().__init__()
        self.errors = []


LogEntry = Mapping[str, Any] | str | bytes
"""A log entry: a mapping (encoded as one JSON object), or one line of JSON as str/bytes."""


@runtime_checkable
class Store(Protocol):
    """Durable storage of tasks, their logs and artifacts, grouped in workspaces.

    Every method validates names first (``InvalidNameError``) and never touches anything outside the store.
    Every write is durable when the method returns: an acknowledged change survives a crash or power cut.
    """

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

    # -- tasks --------------------------------------------------------------------------------------------------
    def create(self, workspace: str, task: Task) -> Task:
        """Store a new task and return the stored copy (the argument is not modified).

        An empty ``task.id`` gets a fresh id, reserved atomically. The copy has ``schema_version``,
        ``workspace_name``, ``created_at`` (if unset), ``updated_at`` and ``revision`` 1.

        Raises:
            InvalidNameError: the workspace name or the given id is not allowed.
            WorkspaceNotFoundError: the workspace does not exist.
            TaskExistsError: the given id is taken.
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

    def list(self, workspace: str, *, strict: bool = False) -> TaskList:
        """Return the workspace's tasks, newest first by ``created_at`` (ties: by id, descending).

        Unreadable tasks are reported in ``.errors``, never dropped silently.

        Raises:
            InvalidNameError, WorkspaceNotFoundError,
            CorruptTaskError: with ``strict=True``, the first unreadable task.
        """
        ...

    def delete(self, workspace: str, task_id: str) -> None:
        """Remove a task with its log and artifacts.

        Raises:
            InvalidNameError, WorkspaceNotFoundError, TaskNotFoundError, LockTimeoutError.
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

    def read_log(self, workspace: str, task_id: str) -> LogLines:
        """Return the log's entries; a torn final line is skipped and counted, damaged lines are reported.

        Raises:
            InvalidNameError, WorkspaceNotFoundError, TaskNotFoundError.
        """
        ...

    def iter_log(self, workspace: str, task_id: str) -> Iterator[dict[str, Any]]:
        """Yield the log's intact entries in order (what ``read_log`` returns, one at a time)."""
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
