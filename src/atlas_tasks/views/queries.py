"""What a listing shows, asked of the store once for both front ends: the list rows with their crash flags, the
``list --json`` / ``/api/tasks`` document, and a task's artifacts with their sizes.

``atlas-tasks list`` and the dashboard both call :func:`list_rows`, so a run whose runner died is found by one
algorithm (:func:`atlas_tasks.views.display.display_states`) and the document has the same keys in the same order
everywhere. The dashboard passes its own ``tasks`` (a cached index) and ``unchanged`` (a cheap "is this copy still
the stored one?"); the CLI lets the store list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from atlas_tasks.store.capabilities import RunLeases
from atlas_tasks.views import display
from atlas_tasks.views.display import DisplayState
from atlas_tasks.views.documents import Artifact, task_list_document

if TYPE_CHECKING:
    from atlas_tasks.errors import AtlasTasksError
    from atlas_tasks.models import Task
    from atlas_tasks.store import Store, TaskList

_OLDEST = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ListRow:
    """One listed task: the workspace it belongs to and its display state (crashed, live runner)."""

    workspace: str
    state: DisplayState

    @property
    def task(self) -> Task:
        """The task as listed."""
        return self.state.task


@dataclass
class Listing:
    """A task listing, newest first.

    Attributes:
        rows: The tasks that pass the text search and the status filter (at most ``limit``).
        searched: The display state of every task the text search keeps, before the status filter (what the
            per-status counts are over).
        total: How many tasks were listed before any filter.
        errors: The unreadable tasks (never hidden).
    """

    rows: list[ListRow]
    searched: list[ListRow]
    total: int
    errors: list[AtlasTasksError] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """How many searched tasks each status filter would show (a crashed run counts as crashed/interrupted)."""
        return display.count_statuses([row.state for row in self.searched])


def newest_first(task: Task) -> tuple[datetime, str]:
    """The listing order's key (reversed): creation time, then id."""
    return (task.created_at or _OLDEST, task.id)


def _forked_from(task: Task) -> str:
    origin = task.metadata.get("forked_from")
    return str(origin.get("task_id", "")) if isinstance(origin, dict) else ""


def list_rows(
    store: Store,
    workspaces: Iterable[str],
    statuses: Sequence[str] = (),
    *,
    search: str = "",
    limit: int | None = None,
    tasks: Callable[[str], TaskList] | None = None,
    now: datetime | None = None,
    forked_from: str = "",
) -> Listing:
    """The tasks of ``workspaces``, newest first, with their display states, filtered and cut to ``limit``.

    Args:
        store: The store (crash detection needs :class:`~atlas_tasks.store.capabilities.RunLeases`; a store
            without it has no runs, so nothing in it shows as crashed).
        workspaces: The workspaces to list.
        statuses: Status filters (``crashed`` included); empty: every status.
        search: Only tasks whose id, description, template or workspace contains it (any case).
        limit: At most this many rows (the newest). Without a filter the store itself stops at the newest N.
        tasks: How to list one workspace (default ``store.list``); the dashboard passes its cached index.
        now: The time crash detection judges staleness at (default: now).
        forked_from: Only the forks of this task id (``metadata.forked_from.task_id``).
    """
    needle = search.strip().lower()
    cut = limit if limit is not None and tasks is None and not statuses and not needle and not forked_from else None
    listed: list[tuple[str, Task]] = []
    errors: list[AtlasTasksError] = []
    total = 0
    for ws in workspaces:
        found = tasks(ws) if tasks is not None else store.list(ws, limit=cut)
        total += len(found)
        errors.extend(found.errors)
        listed.extend(
            (ws, task)
            for task in found
            if (not needle or display.matches_text(ws, task, needle))
            and (not forked_from or _forked_from(task) == forked_from)
        )
    # Sorted again across workspaces (each listing is newest first already, which timsort merges cheaply).
    listed.sort(key=lambda row: newest_first(row[1]), reverse=True)
    # Probed before the status filter: whether a running task crashed decides whether `-s running` keeps it.
    states = display_states(store, listed, now=now)
    searched = [ListRow(ws, display.state_of(states, ws, task)) for ws, task in listed]
    rows = [row for row in searched if display.matches_status(row.state, statuses)][:limit]
    return Listing(rows=rows, searched=searched, total=total, errors=errors)


def display_states(
    store: Store, rows: Iterable[tuple[str, Task]], *, now: datetime | None = None
) -> dict[tuple[str, str], DisplayState]:
    """:func:`atlas_tasks.views.display.display_states` for any store (none crashed without run leases)."""
    if not isinstance(store, RunLeases):
        return {}
    return display.display_states(store, rows, now=now)


def list_document(
    workspace: str,
    rows: Sequence[ListRow],
    errors: Sequence[AtlasTasksError],
    *,
    unchanged: Callable[[str, Task], bool] | None = None,
) -> dict[str, Any]:
    """``list --json`` and ``/api/tasks``: ``{"workspace", "tasks", "errors", "workspaces", "interrupted",
    "runners", "pinned"}``.

    Ids are unique per workspace only: ``workspaces`` says which workspace each listed task belongs to,
    ``interrupted`` which runs died and ``runners`` which are held by a live runner (and whose). ``unchanged``
    confirms a crashed row is still the stored copy (a runner that finished between the listing and the lease
    probe would otherwise look crashed).
    """
    document = task_list_document(workspace, [row.task for row in rows], errors)
    document["workspaces"] = [row.workspace for row in rows]
    document["interrupted"] = [
        {"workspace": row.workspace, "task_id": row.task.id}
        for row in rows
        if row.state.crashed and (unchanged is None or unchanged(row.workspace, row.task))
    ]
    document["runners"] = [
        {"workspace": row.workspace, "task_id": row.task.id, "holder": row.state.holder}
        for row in rows
        if row.state.holder
    ]
    # Added key: the pinned tasks and their pins (gc never deletes them); the pin is also in each task's metadata.
    document["pinned"] = [
        {"workspace": row.workspace, "task_id": row.task.id, "pin": row.task.metadata["pinned"]}
        for row in rows
        if isinstance(row.task.metadata.get("pinned"), dict)
    ]
    return document


def artifact_list(store: Store, workspace: str, task_id: str) -> list[Artifact]:
    """The task's artifacts in natural order, each with its size (``store.artifact_sizes``: nothing is read)."""
    return [Artifact(name, size) for name, size in store.artifact_sizes(workspace, task_id).items()]


__all__ = [
    "ListRow",
    "Listing",
    "artifact_list",
    "display_states",
    "list_document",
    "list_rows",
    "newest_first",
]
