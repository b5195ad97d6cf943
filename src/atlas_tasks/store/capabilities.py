"""What only some stores can do, as protocols: check with ``isinstance(store, RunLeases)`` before using one.

Every method of :class:`atlas_tasks.store.Store` works on every store. The abilities below depend on the backend;
a front end asks for them explicitly, so a new backend without one degrades cleanly (the feature says it does not
apply) instead of tripping over a missing attribute:

=================  ==================================  ===========================================================
capability         file / PostgreSQL / memory          used by
=================  ==================================  ===========================================================
:class:`RunLeases`     yes / yes / yes                 ``store.run``, approve/reject/abandon, crash detection
:class:`ChangeStamps`  yes / no / no                   the dashboard's index (re-read only what changed)
:class:`Repairable`    yes / no / no                   ``doctor`` (file sweeps: temp files, torn logs, refs)
:class:`Importable`    yes / yes / yes                 ``copy_store`` (``atlas-tasks db copy``), bundles
:class:`LocalFiles`    yes / no / no                   paths shown to people, ``$EDITOR``, the Go tool's hooks
:class:`CollectorLocks` yes / yes / yes                ``gc`` (one garbage collector at a time per store)
:class:`Tombstones`    yes / yes / yes                 deleted ids never reused; ``show`` of a deleted task
=================  ==================================  ===========================================================
"""

from __future__ import annotations

import builtins
from collections.abc import Hashable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from atlas_tasks.models import Task, TaskRef, Workspace
    from atlas_tasks.store.types import CheckReport, LogEntry, Tombstone


class LeaseHandle(Protocol):
    """A run lease held by this process; ``release()`` gives it back (a dead process gives it back by dying)."""

    def release(self) -> None: ...


@runtime_checkable
class RunLeases(Protocol):
    """One live runner per task: a lease that dies with its holder (a file lock, a database session)."""

    def acquire_lease(self, workspace: str, task_id: str, holder: Mapping[str, Any]) -> LeaseHandle:
        """Take the task's run lease; ``holder`` (pid, host, started_at) is what others see while it is held.

        Raises:
            TaskRunningError: a live runner holds it (the error names it).
        """
        ...

    def lease_holder(self, workspace: str, task_id: str) -> dict[str, Any] | None:
        """Who holds the task's run lease (the ``holder`` it was taken with), or None when no live runner does."""
        ...

    def lease_candidates(self, workspace: str) -> builtins.set[str] | None:
        """Ids of the workspace's tasks that may have a live runner, found cheaply; None when the store cannot tell.

        A task not in the set certainly has no live runner, so a listing asks ``lease_holder`` only for these
        (the file store: one directory listing instead of one lease probe per task).
        """
        ...


@runtime_checkable
class ChangeStamps(Protocol):
    """A cheap "did this task change?": a stamp per task, read without reading the task (a ``stat``)."""

    def workspace_names(self) -> builtins.list[str]:
        """The names of every workspace, sorted, without decoding any workspace document."""
        ...

    def task_stamps(self, workspace: str) -> dict[str, Hashable | None]:
        """A stamp for each entry of the workspace's task list (None: no readable task there now).

        Equal stamps mean the task was not written in between. Entries may include names that are not tasks (a
        creation in progress): ``get`` tells.

        Raises:
            InvalidNameError, WorkspaceNotFoundError.
        """
        ...

    def task_stamp(self, workspace: str, task_id: str) -> Hashable | None:
        """The stamp of one task, as :meth:`task_stamps` would give it (None if it has none now)."""
        ...


@runtime_checkable
class Repairable(Protocol):
    """A consistency check of what crashes and hand edits leave behind, with safe repairs (``doctor``)."""

    def check(self, workspace: str | None = None, *, fix: bool = False) -> CheckReport:
        """Check one workspace (or all) and repair what is safe with ``fix``; see the backend for the findings."""
        ...


@runtime_checkable
class Importable(Protocol):
    """Writes that keep a task's identity and history exactly (id, revision, times): what a copy needs."""

    def import_workspace(self, workspace: Workspace, *, replace: bool = False) -> bool:
        """Store a workspace as given; True if it was not there before."""
        ...

    def import_task(
        self,
        workspace: str,
        task: Task,
        *,
        log_lines: Iterable[LogEntry] = (),
        artifacts: Mapping[str, bytes | str] | None = None,
        ref: TaskRef | None = None,
        replace: bool = False,
    ) -> Task:
        """Store a task as given (id, revision, timestamps kept) with its log and artifacts, all or nothing.

        A tombstoned id (see :class:`Tombstones`) takes back only the task that was deleted (same ``created_at``),
        lifting the tombstone; ``replace`` of a task that exists replaces it without leaving a tombstone.

        Raises:
            TaskExistsError: it exists and ``replace`` is off.
            TaskIdRetiredError: the id was deleted and this is another task (import it under a fresh id).
        """
        ...

    def import_tombstone(self, tombstone: Tombstone) -> bool:
        """Record a tombstone as given (times and info kept), so the id it names stays retired here too.

        What a copy of a store does with the source's tombstones. An id that already has a tombstone here keeps
        that one (a copy run again changes nothing).

        Returns:
            True if it was recorded, False if the id already had a tombstone.

        Raises:
            InvalidNameError: a bad workspace name or id in the tombstone.
            TaskExistsError: a task with that id is here (an id in use cannot be retired by a copy).
        """
        ...


@runtime_checkable
class CollectorLocks(Protocol):
    """One garbage collector at a time per store: a lock that dies with its holder, like a run lease."""

    def collector_lock(self, holder: Mapping[str, Any]) -> LeaseHandle:
        """Take the store's collector lock; ``holder`` (pid, host, since) is what a second collector is told.

        Raises:
            CollectorBusyError: another live collector holds it (the error names it).
        """
        ...


@runtime_checkable
class Tombstones(Protocol):
    """What ``delete`` leaves behind: one tombstone per deleted id, kept for good (workspace deletion included).

    While an id has a tombstone, ``create`` refuses it (TaskIdRetiredError), generated ids skip it, and
    ``import_task`` takes back only the very task that was deleted (same id and ``created_at``: an archive
    restored), which lifts the tombstone. See docs/retention.md, "Tombstones".
    """

    def tombstone(self, workspace: str, task_id: str) -> Tombstone | None:
        """The tombstone of a deleted id, or None if the id was never deleted (or was restored since).

        Raises:
            InvalidNameError: a bad workspace name or id.
        """
        ...

    def tombstones(self, workspace: str) -> builtins.list[Tombstone]:
        """Every tombstone of a workspace (it need not exist any more), oldest deletion first.

        Raises:
            InvalidNameError: a bad workspace name.
        """
        ...


@runtime_checkable
class LocalFiles(Protocol):
    """A store kept in files on this machine: paths a person can open, and the Go ATLAS home beside it."""

    @property
    def home(self) -> Path:
        """The store's home directory."""
        ...

    @property
    def go_home(self) -> Path:
        """The Go ATLAS home this store belongs to (its hook files and daemon socket live there)."""
        ...

    def workspace_path(self, workspace: str) -> Path:
        """The workspace's directory (for display; never opened by path)."""
        ...

    def task_path(self, workspace: str, task_id: str) -> Path:
        """The task's directory (for display and ``$EDITOR``)."""
        ...

    def log_path(self, workspace: str, task_id: str) -> Path:
        """The task's task.log (for display)."""
        ...


__all__ = [
    "ChangeStamps",
    "CollectorLocks",
    "Importable",
    "LeaseHandle",
    "LocalFiles",
    "Repairable",
    "RunLeases",
    "Tombstones",
]
