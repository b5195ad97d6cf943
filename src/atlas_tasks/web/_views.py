"""What each page shows, gathered from the store: plain data for the templates, the JSON API and the live feed.

Nothing here knows about HTTP. Formatting (times, durations, sizes, log lines) is the CLI's, from
:mod:`atlas_tasks.cli._render`, so the dashboard and the terminal describe a task in the same words.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from atlas_tasks import _display
from atlas_tasks._display import CRASHED, CRASHED_LABEL, STATUS_FILTERS, DisplayState, runner_text
from atlas_tasks.cli import _render
from atlas_tasks.errors import ArtifactNotFoundError, AtlasTasksError
from atlas_tasks.models import TaskStatus
from atlas_tasks.runs import LeasingStore, ready_to_continue

if TYPE_CHECKING:
    from atlas_tasks.models import Task
    from atlas_tasks.store import LogLines
    from atlas_tasks.web._index import TaskIndex

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
    searched = [(ws, t) for ws, t in everything if _display.matches_text(ws, t, needle)] if needle else everything
    states = _display.display_states(store, searched)
    searched_states = [(ws, _display.state_of(states, ws, t)) for ws, t in searched]
    counts = _display.count_statuses([st for _, st in searched_states])
    kept = [(ws, st) for ws, st in searched_states if _display.matches_status(st, statuses)]
    pages = max(1, -(-len(kept) // per_page))
    page = min(max(page, 1), pages)
    chunk = kept[(page - 1) * per_page : page * per_page]
    return ListPage(
        workspace=workspace,
        # A runner that finished between the listing's read and the lease probe looks crashed: the rows shown
        # are checked again (the counts may be off by one for that moment).
        rows=[Row(ws, st.task, st.crashed and index.unchanged(ws, st.task)) for ws, st in chunk],
        searched=len(searched),
        matched=len(kept),
        total=len(everything),
        counts=counts,
        statuses=list(statuses),
        query=query,
        page=page,
        pages=pages,
        per_page=per_page,
        errors=[_render.task_error_document(exc) for exc in errors],
    )


def crashed_keys(store: LeasingStore, tasks: Sequence[tuple[str, Task]]) -> set[tuple[str, str]]:
    """The ``(workspace, id)`` of the tasks whose run is interrupted (running/validating, no live runner)."""
    return {key for key, state in _display.display_states(store, tasks).items() if state.crashed}


def list_document(
    index: TaskIndex, store: LeasingStore, workspace: str | None, statuses: Sequence[str] = ()
) -> dict[str, Any]:
    """``atlas-tasks list [WS] [--status S]... --json``: the same document, keys and order.

    ``statuses`` may hold ``crashed``; the filter works as the CLI's (a crashed run is interrupted, not running).
    """
    everything, errors = scoped_tasks(index, workspace)
    states = _display.display_states(store, everything)
    rows = [(ws, _display.state_of(states, ws, t)) for ws, t in everything]
    rows = [(ws, st) for ws, st in rows if _display.matches_status(st, statuses)]
    document = _render.task_list_document(workspace or "", [st.task for _, st in rows], errors)
    # The keys the CLI adds (see cli/_tasks.py): each task's workspace, the runs whose runner died, the live runners.
    document["workspaces"] = [ws for ws, _ in rows]
    document["interrupted"] = [
        {"workspace": ws, "task_id": st.task.id} for ws, st in rows if st.crashed and index.unchanged(ws, st.task)
    ]
    document["runners"] = [
        {"workspace": ws, "task_id": st.task.id, "holder": st.holder} for ws, st in rows if st.holder
    ]
    return document


def show_document(store: LeasingStore, workspace: str, task_id: str) -> dict[str, Any]:
    """``atlas-tasks show WS TASK --json``: the same document (with ``crashed`` and ``runner``)."""
    from atlas_tasks.go_hooks import hook_for

    shown = _display.display_state(store, workspace, store.get(workspace, task_id))
    found = _render.with_steps(shown.task, artifact_list(store, workspace, task_id))
    log = store.read_log(workspace, task_id)
    return _render.show_document(workspace, shown, found, log, hook_for(store, workspace, task_id))


def artifacts_document(store: LeasingStore, workspace: str, task_id: str) -> dict[str, Any]:
    """``atlas-tasks artifacts WS TASK --json``: the same document (each artifact with the step that produced it)."""
    found = _render.with_steps(store.get(workspace, task_id), artifact_list(store, workspace, task_id))
    return _render.artifacts_document(workspace, task_id, found)


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
    return DisplayState(task, crashed=crashed).label


def status_class(status: str) -> str:
    """The CSS class of a task or step status (unknown statuses from a newer engine get the plain one)."""
    known = {*STATUS_FILTERS, "success", "failed", "skipped", "no_changes"}
    return f"st-{status}" if status in known else "st-other"


def _ms(value: datetime | None) -> int | None:
    return int(value.timestamp() * 1000) if value is not None else None


def task_state(store: LeasingStore, workspace: str, task: Task, now: datetime | None = None) -> dict[str, Any]:
    """What the live page needs to redraw a task: status, steps, transitions, artifacts (the ``task`` event).

    ``task`` may be a copy read a moment ago: the state describes the latest copy the liveness probe saw.
    """
    now = now or datetime.now(UTC)
    shown = _display.display_state(store, workspace, task, now=now)
    task = shown.task
    artifacts = _render.with_steps(task, artifact_list(store, workspace, task.id))
    return {
        "status": shown.label,
        "status_class": status_class(shown.status),
        "crashed": shown.crashed,
        "revision": task.revision,
        "step": _render.step_progress(task),
        "updated": _render.when(task.updated_at, now),
        "completed": _render.when(task.completed_at, now) if task.completed_at else "",
        "awaiting_approval": task.status == TaskStatus.AWAITING_APPROVAL,
        "ready_to_continue": ready_to_continue(task),
        "terminal": task.is_terminal,
        "runner": runner_text(shown.holder),
        "steps": [_step_state(task, i, now, stopped=shown.crashed) for i in range(len(task.steps))],
        "transitions": [
            {
                "time": _render.iso(move.timestamp),
                "from": str(move.from_status),
                "to": str(move.to_status),
                "reason": move.reason,
            }
            for move in task.transitions
        ],
        "artifacts": [{"name": a.name, "size": _render.size(a.size), "step": a.step or ""} for a in artifacts],
    }


def _step_state(task: Task, index: int, now: datetime, *, stopped: bool = False) -> dict[str, Any]:
    step = task.steps[index]
    running = step.status == "running" and step.completed_at is None
    return {
        "status": str(step.status),
        "status_class": status_class(str(step.status)),
        "attempts": step.attempts,
        "duration": _render.step_duration(step, now, stopped=stopped),
        # For a running step the page counts the duration up itself, from here; not once its runner died.
        "running_since": _ms(step.started_at) if running and not stopped else None,
        "error": step.error,
        "current": index == task.current_step and not task.is_terminal,
    }


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
    "artifacts_document",
    "crashed_keys",
    "display_status",
    "list_document",
    "log_line",
    "log_lines",
    "log_tail",
    "runner_text",
    "scoped_tasks",
    "show_document",
    "status_class",
    "step_results",
    "task_list_page",
    "task_state",
]
