"""What each page shows, gathered from the store: plain data for the templates, the JSON API and the live feed.

Nothing here knows about HTTP. Formatting (times, durations, sizes, log lines) is the CLI's, from
:mod:`atlas_tasks.cli._render`, so the dashboard and the terminal describe a task in the same words.
"""

from __future__ import annotations

import heapq
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from atlas_tasks.cli import _render
from atlas_tasks.errors import ArtifactNotFoundError, AtlasTasksError
from atlas_tasks.models import TaskStatus
from atlas_tasks.runs import ACTIVE_STATUSES, LeasingStore, is_interrupted, ready_to_continue

if TYPE_CHECKING:
    from atlas_tasks.models import Task
    from atlas_tasks.store import LogLines
    from atlas_tasks.web._index import TaskIndex

#: The pseudo-status of a run whose runner died (running, but no live lease).
CRASHED = "crashed"
CRASHED_LABEL = "interrupted (crashed)"
STATUS_FILTERS = (*[str(s) for s in TaskStatus], CRASHED)
PER_PAGE = 50
MAX_PER_PAGE = 500
#: The log lines a task page shows (the latest ones); the API serves the whole log.
LOG_TAIL = 2000

# rich styles of the CLI's log segments -> CSS classes (a fixed set, so no stored text reaches a class attribute).
_STYLE_CLASSES = {"dim": "s-dim", "bold": "s-bold", "red": "s-red", "yellow": "s-yellow", "bold red": "s-bold s-red"}


@dataclass(frozen=True)
class Row:
    """One task in a listing, with the workspace it belongs to and whether its runner died."""

    workspace: str
    task: Task
    crashed: bool


@dataclass
class ListPage:
    """A page of a task listing: the rows, the counts per status, and where the page stands."""

    workspace: str | None
    rows: list[Row]
    searched: int
    matched: int
    total: int
    counts: dict[str, int]
    statuses: list[str]
    query: str
    page: int
    pages: int
    per_page: int
    errors: list[dict[str, Any]] = field(default_factory=list)


def _created_key(row: tuple[str, Task]) -> tuple[float, str]:
    created = row[1].created_at
    return (created.timestamp() if created else float("-inf"), row[1].id)


def scoped_tasks(index: TaskIndex, workspace: str | None) -> tuple[list[tuple[str, Task]], list[AtlasTasksError]]:
    """Every task of one workspace (or of all), newest first, with the errors of the unreadable ones."""
    names = [workspace] if workspace is not None else index.workspace_names()
    listings = []
    errors: list[AtlasTasksError] = []
    for name in names:
        found = index.tasks(name)
        listings.append([(name, task) for task in found])
        errors.extend(found.errors)
    # Each listing is already newest first: merging keeps it O(n log k) instead of sorting everything again.
    merged = list(heapq.merge(*listings, key=_created_key, reverse=True))
    return merged, errors


def _matches(workspace: str, task: Task, needle: str) -> bool:
    return any(needle in text.lower() for text in (task.id, task.description, task.template, workspace))


def task_list_page(
    index: TaskIndex,
    store: LeasingStore,
    workspace: str | None,
    *,
    statuses: Sequence[str] = (),
    query: str = "",
    page: int = 1,
    per_page: int = PER_PAGE,
) -> ListPage:
    """Filter (status, text), count per status and cut out one page of a listing, newest first.

    The counts are over the tasks the text search keeps, before the status filter, so each status link says how
    many tasks it would show.
    """
    everything, errors = scoped_tasks(index, workspace)
    needle = query.strip().lower()
    searched = [(ws, t) for ws, t in everything if _matches(ws, t, needle)] if needle else everything
    crashed = crashed_keys(store, searched)
    counts = Counter(str(t.status) for _, t in searched)
    counts[CRASHED] = len(crashed)
    wanted = set(statuses)
    if wanted:
        searched = [
            (ws, t) for ws, t in searched if str(t.status) in wanted or (CRASHED in wanted and (ws, t.id) in crashed)
        ]
    pages = max(1, -(-len(searched) // per_page))
    page = min(max(page, 1), pages)
    chunk = searched[(page - 1) * per_page : page * per_page]
    return ListPage(
        workspace=workspace,
        # A runner that finished between the listing's read and the lease probe looks crashed: the rows shown
        # are checked again (the counts may be off by one for that moment).
        rows=[Row(ws, t, (ws, t.id) in crashed and index.unchanged(ws, t)) for ws, t in chunk],
        searched=sum(counts[str(s)] for s in TaskStatus),
        matched=len(searched),
        total=len(everything),
        counts={status: counts.get(status, 0) for status in STATUS_FILTERS},
        statuses=list(statuses),
        query=query,
        page=page,
        pages=pages,
        per_page=per_page,
        errors=[_render.task_error_document(exc) for exc in errors],
    )


class _Unleased:
    """A store view whose answer to "who holds this lease?" is "nobody" (for tasks known to have no lease file)."""

    def lease_holder(self, workspace: str, task_id: str) -> dict[str, Any] | None:
        return None


def leased_ids(store: LeasingStore, workspace: str) -> set[str] | None:
    """The ids of the workspace's tasks that have a run-lease file at all (file store), or None when unknown.

    A runner creates its lease file before it moves the task to running, and the file is never removed, so a
    running task without one has no live runner: one directory listing instead of one lease probe per task
    (which, for thousands of active tasks, is most of a listing's time).
    """
    from atlas_tasks.backends.file import FileStore

    if not isinstance(store, FileStore):
        return None
    try:
        lease_dir = store._private_dir("leases", workspace, create=False)
    except FileNotFoundError:
        return set()
    except (OSError, AtlasTasksError):
        return None
    with lease_dir:
        return {entry.name[: -len(".lease")] for entry in os.scandir(lease_dir.fd) if entry.name.endswith(".lease")}


def crashed_keys(store: LeasingStore, tasks: Sequence[tuple[str, Task]]) -> set[tuple[str, str]]:
    """The ``(workspace, id)`` of the tasks whose run is interrupted (running/validating, no live runner)."""
    now = datetime.now(UTC)
    leased: dict[str, set[str] | None] = {}
    unleased = cast("LeasingStore", _Unleased())
    found = set()
    for ws, task in tasks:
        if task.status not in ACTIVE_STATUSES:
            continue  # only these can have crashed; asking the lease of the others would cost a file open each
        if ws not in leased:
            leased[ws] = leased_ids(store, ws)
        known = leased[ws]
        # Without a lease file no runner of ours ever ran the task, so no finishing runner can race this read.
        never_leased = known is not None and task.id not in known
        probe = unleased if never_leased else store
        if is_interrupted(probe, ws, task, now=now, confirm=not never_leased):
            found.add((ws, task.id))
    return found


def list_document(
    index: TaskIndex, store: LeasingStore, workspace: str | None, statuses: Sequence[str] = ()
) -> dict[str, Any]:
    """``atlas-tasks list [WS] [--status S]... --json``: the same document, keys and order."""
    everything, errors = scoped_tasks(index, workspace)
    rows = [(ws, t) for ws, t in everything if not statuses or str(t.status) in statuses]
    document = _render.task_list_document(workspace or "", [t for _, t in rows], errors)
    # The two keys the CLI adds (see cli/_tasks.py): each task's workspace, and the runs whose runner died.
    document["workspaces"] = [ws for ws, _ in rows]
    crashed = crashed_keys(store, rows)
    document["interrupted"] = [
        {"workspace": ws, "task_id": t.id} for ws, t in rows if (ws, t.id) in crashed and index.unchanged(ws, t)
    ]
    return document


# -- one task --------------------------------------------------------------------------------------------------------


def artifact_list(store: LeasingStore, workspace: str, task_id: str) -> list[_render.Artifact]:
    """The task's artifacts with their sizes (the CLI's helper for a file store; reading each one otherwise)."""
    from atlas_tasks.backends.file import FileStore

    if isinstance(store, FileStore):
        from atlas_tasks.cli._tasks import artifact_list as file_artifacts

        return file_artifacts(store, workspace, task_id)
    found = []
    for name in store.list_artifacts(workspace, task_id):
        try:
            found.append(_render.Artifact(name, len(store.get_artifact(workspace, task_id, name))))
        except ArtifactNotFoundError:
            found.append(_render.Artifact(name, None))
    return found


def display_status(task: Task, crashed: bool) -> str:
    """The status as people should read it: a run whose runner died says so."""
    return CRASHED_LABEL if crashed else str(task.status)


def status_class(status: str) -> str:
    """The CSS class of a task or step status (unknown statuses from a newer engine get the plain one)."""
    known = {*STATUS_FILTERS, "success", "failed", "skipped", "no_changes"}
    return f"st-{status}" if status in known else "st-other"


def _ms(value: datetime | None) -> int | None:
    return int(value.timestamp() * 1000) if value is not None else None


def task_state(store: LeasingStore, workspace: str, task: Task, now: datetime | None = None) -> dict[str, Any]:
    """What the live page needs to redraw a task: status, steps, transitions, artifacts (the ``task`` event)."""
    now = now or datetime.now(UTC)
    artifacts = artifact_list(store, workspace, task.id)
    holder = store.lease_holder(workspace, task.id) if task.status in ACTIVE_STATUSES else None
    crashed = holder is None and is_interrupted(store, workspace, task, now=now, confirm=False)
    if crashed:
        # The task was read before the lease: a runner that finished in between (final write, then lease given
        # back) looks crashed. Only the same revision read again with the lease free is a crash.
        latest = store.get(workspace, task.id)
        if latest.revision != task.revision:
            return task_state(store, workspace, latest, now)
    status = display_status(task, crashed)
    return {
        "status": status,
        "status_class": status_class(CRASHED if crashed else str(task.status)),
        "crashed": crashed,
        "revision": task.revision,
        "step": _render.step_progress(task),
        "updated": _render.when(task.updated_at, now),
        "completed": _render.when(task.completed_at, now) if task.completed_at else "",
        "awaiting_approval": task.status == TaskStatus.AWAITING_APPROVAL,
        "ready_to_continue": ready_to_continue(task),
        "terminal": task.is_terminal,
        "runner": runner_text(holder),
        "steps": [_step_state(task, i, now) for i in range(len(task.steps))],
        "transitions": [
            {
                "time": _render.iso(move.timestamp),
                "from": str(move.from_status),
                "to": str(move.to_status),
                "reason": move.reason,
            }
            for move in task.transitions
        ],
        "artifacts": [{"name": a.name, "size": _render.size(a.size)} for a in artifacts],
    }


def _step_state(task: Task, index: int, now: datetime) -> dict[str, Any]:
    step = task.steps[index]
    running = step.status == "running" and step.completed_at is None
    return {
        "status": str(step.status),
        "status_class": status_class(str(step.status)),
        "attempts": step.attempts,
        "duration": _render.step_duration(step, now),
        # For a running step the page counts the duration up itself, from here.
        "running_since": _ms(step.started_at) if running else None,
        "error": step.error,
        "current": index == task.current_step and not task.is_terminal,
    }


def runner_text(holder: dict[str, Any] | None) -> str:
    """The live runner as ``pid 123 on host since T``, or empty when none holds the task."""
    if holder is None:
        return ""
    parts = [f"pid {holder.get('pid', '?')}", f"on {holder.get('host', '?')}"]
    if holder.get("started_at"):
        parts.append(f"since {holder['started_at']}")
    return " ".join(str(p) for p in parts)


def step_results(task: Task, index: int) -> list[dict[str, Any]]:
    """The recorded attempts of one step (a retried step has several results)."""
    return [
        {
            "status": str(result.status),
            "status_class": status_class(str(result.status)),
            "started": _render.iso(result.started_at),
            "duration": _render.duration(result.completed_at - result.started_at)
            if result.completed_at and result.started_at
            else "-",
            "error": result.error,
            "output": result.output,
            "artifact": result.artifact_path.removeprefix("artifacts/") if result.artifact_path else "",
        }
        for result in task.step_results
        if result.step_index == index
    ]


def log_line(record: dict[str, Any], workspace: str, task_id: str) -> list[tuple[str, str]]:
    """One log entry as ``(text, css classes)`` pieces: the CLI's ``logs`` line, made of plain text."""
    return [(text, _STYLE_CLASSES.get(style, "")) for text, style in _render.log_segments(record, workspace, task_id)]


def log_lines(records: Iterable[dict[str, Any]], workspace: str, task_id: str) -> list[list[tuple[str, str]]]:
    """Several log entries, each as :func:`log_line` pieces."""
    return [log_line(record, workspace, task_id) for record in records]


def log_tail(log: LogLines) -> tuple[int, list[dict[str, Any]]]:
    """How many entries are left out, and the last :data:`LOG_TAIL` entries."""
    hidden = max(0, len(log) - LOG_TAIL)
    return hidden, list(log[hidden:])


__all__ = [
    "CRASHED",
    "CRASHED_LABEL",
    "MAX_PER_PAGE",
    "PER_PAGE",
    "STATUS_FILTERS",
    "ListPage",
    "Row",
    "artifact_list",
    "display_status",
    "list_document",
    "log_line",
    "log_lines",
    "log_tail",
    "runner_text",
    "scoped_tasks",
    "status_class",
    "step_results",
    "task_list_page",
    "task_state",
]
