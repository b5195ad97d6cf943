"""What each page shows, gathered from the store: plain data for the templates, the JSON API and the live feed.

Nothing here knows about HTTP. The listing, its crash flags and the documents are :mod:`atlas_tasks.views` (the
CLI's ``list``, ``show`` and ``artifacts`` build theirs there too), and so is the formatting (times, durations,
sizes, log lines): the dashboard and the terminal describe a task in the same words.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from atlas_tasks.documents.summaries import newest_first_key
from atlas_tasks.errors import AtlasTasksError
from atlas_tasks.models import TaskStatus
from atlas_tasks.runs import LeasingStore, ready_to_continue
from atlas_tasks.views import display as _display
from atlas_tasks.views import documents as _docs
from atlas_tasks.views import queries
from atlas_tasks.views import text as _text
from atlas_tasks.views.display import CRASHED, CRASHED_LABEL, STATUS_FILTERS, DisplayState, runner_text
from atlas_tasks.web._index import ACTIVE_TEXT, PagedIndex

if TYPE_CHECKING:
    from atlas_tasks.models import Task
    from atlas_tasks.store import LogLines, Store, TaskSummary
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


def _workspaces(index: TaskIndex, workspace: str | None) -> list[str]:
    return [workspace] if workspace is not None else index.workspace_names()


def task_list_page(
    index: TaskIndex,
    store: Store,
    workspace: str | None,
    *,
    statuses: Sequence[str] = (),
    query: str = "",
    page: int = 1,
    per_page: int = PER_PAGE,
) -> ListPage:
    """Filter (status, text), count per status and cut out one page of a listing, newest first.

    The counts are over the tasks the text search keeps, before the status filter, so each status link says how
    many tasks it would show. An index that lists summaries (:class:`~atlas_tasks.web._index.PagedIndex`) builds
    the page from them (:func:`summary_list_page`).
    """
    if isinstance(index, PagedIndex):
        return summary_list_page(index, store, workspace, statuses=statuses, query=query, page=page, per_page=per_page)
    listing = queries.list_rows(store, _workspaces(index, workspace), statuses, search=query, tasks=index.tasks)
    kept = listing.rows
    pages = max(1, -(-len(kept) // per_page))
    page = min(max(page, 1), pages)
    chunk = kept[(page - 1) * per_page : page * per_page]
    return ListPage(
        workspace=workspace,
        # A runner that finished between the listing's read and the lease probe looks crashed: the rows shown
        # are checked again (the counts may be off by one for that moment).
        rows=[
            Row(row.workspace, row.task, row.state.crashed and index.unchanged(row.workspace, row.task))
            for row in chunk
        ],
        searched=len(listing.searched),
        matched=len(kept),
        total=listing.total,
        counts=listing.counts(),
        statuses=list(statuses),
        query=query,
        page=page,
        pages=pages,
        per_page=per_page,
        errors=[_docs.task_error_document(exc) for exc in listing.errors],
    )


def _summary_matches(workspace: str, summary: TaskSummary, needle: str) -> bool:
    """:func:`atlas_tasks.views.display.matches_text` on a summary (the same fields: id, description, template)."""
    return any(needle in text.lower() for text in (summary.id, summary.description, summary.template, workspace))


def summary_list_page(
    index: PagedIndex,
    store: Store,
    workspace: str | None,
    *,
    statuses: Sequence[str] = (),
    query: str = "",
    page: int = 1,
    per_page: int = PER_PAGE,
) -> ListPage:
    """:func:`task_list_page` from summaries: the same rows, counts and filters, reading in full only the tasks
    the page shows and the running/validating ones (whether a run crashed is decided on the full task, as
    :func:`atlas_tasks.views.display.display_states` decides it for ``list``)."""
    needle = query.strip().lower()
    names = _workspaces(index, workspace)
    # Summaries carry their workspace: the rows are the summaries themselves (no tuple per task, which at 100,000
    # tasks costs more than everything else here).
    listed: list[TaskSummary] = []
    active: list[TaskSummary] = []
    errors: list[AtlasTasksError] = []
    counts = dict.fromkeys(STATUS_FILTERS, 0)
    total = 0
    for ws in names:
        overview = index.overview(ws)
        found = overview.summaries
        total += len(found)
        errors.extend(found.errors)
        if needle:
            kept = [summary for summary in found if _summary_matches(ws, summary, needle)]
            for summary in kept:
                counts[summary.status] = counts.get(summary.status, 0) + 1
            active.extend(summary for summary in kept if summary.status in ACTIVE_TEXT)
        else:
            kept = found
            for status, n in overview.statuses.items():
                counts[status] = counts.get(status, 0) + n
            active.extend(overview.active)
        if len(names) == 1:
            listed = kept
        else:
            listed.extend(kept)
    if len(names) > 1:
        listed.sort(key=newest_first_key, reverse=True)
    # Crashed runs, decided on the full tasks of the running/validating summaries only.
    full: list[tuple[str, Task]] = []
    stored: dict[tuple[str, str], str] = {}
    for summary, item in zip(active, index.tasks_for(active), strict=True):
        if item is not None and not isinstance(item, AtlasTasksError):
            full.append((summary.workspace, item))
            stored[summary.workspace, summary.id] = summary.status
    crashed = {key for key, state in queries.display_states(store, full).items() if state.crashed}
    for key in crashed:  # counted as the filters match them (display.count_statuses)
        counts[stored[key]] -= 1
        counts[CRASHED] += 1
        counts[str(TaskStatus.INTERRUPTED)] += 1
    wanted = set(statuses)
    if wanted:
        dead = CRASHED in wanted or str(TaskStatus.INTERRUPTED) in wanted
        kept_rows = [
            summary
            for summary in listed
            if (dead if (summary.workspace, summary.id) in crashed else summary.status in wanted)
        ]
    else:
        kept_rows = listed
    pages = max(1, -(-len(kept_rows) // per_page))
    page = min(max(page, 1), pages)
    rows: list[Row] = []
    for summary in kept_rows[(page - 1) * per_page : page * per_page]:
        ws = summary.workspace
        item = index.task_for(ws, summary)
        if isinstance(item, AtlasTasksError):
            errors.append(item)
        elif item is not None:  # None: deleted since the listing
            # As task_list_page: a runner that finished since the lease probe would look crashed; checked again.
            rows.append(Row(ws, item, (ws, summary.id) in crashed and index.unchanged(ws, item)))
    return ListPage(
        workspace=workspace,
        rows=rows,
        searched=len(listed),
        matched=len(kept_rows),
        total=total,
        counts=counts,
        statuses=list(statuses),
        query=query,
        page=page,
        pages=pages,
        per_page=per_page,
        errors=[_docs.task_error_document(exc) for exc in errors],
    )


def crashed_keys(store: Store, tasks: Sequence[tuple[str, Task]]) -> set[tuple[str, str]]:
    """The ``(workspace, id)`` of the tasks whose run is interrupted (running/validating, no live runner)."""
    return {key for key, state in queries.display_states(store, tasks).items() if state.crashed}


def list_document(
    index: TaskIndex, store: Store, workspace: str | None, statuses: Sequence[str] = ()
) -> dict[str, Any]:
    """``atlas-tasks list [WS] [--status S]... --json``: the same document, built by the same code.

    ``statuses`` may hold ``crashed``; the filter works as the CLI's (a crashed run is interrupted, not running).
    """
    listing = queries.list_rows(store, _workspaces(index, workspace), statuses, tasks=index.tasks)
    return queries.list_document(workspace or "", listing.rows, listing.errors, unchanged=index.unchanged)


def show_document(store: LeasingStore, workspace: str, task_id: str) -> dict[str, Any]:
    """``atlas-tasks show WS TASK --json``: the same document (with ``crashed`` and ``runner``)."""
    from atlas_tasks.go_hooks import hook_for

    shown = _display.display_state(store, workspace, store.get(workspace, task_id))
    found = _docs.with_steps(shown.task, artifact_list(store, workspace, task_id))
    log = store.read_log(workspace, task_id)
    return _docs.show_document(workspace, shown, found, log, hook_for(store, workspace, task_id))


def artifacts_document(store: LeasingStore, workspace: str, task_id: str) -> dict[str, Any]:
    """``atlas-tasks artifacts WS TASK --json``: the same document (each artifact with the step that produced it)."""
    found = _docs.with_steps(store.get(workspace, task_id), artifact_list(store, workspace, task_id))
    return _docs.artifacts_document(workspace, task_id, found)


# -- one task --------------------------------------------------------------------------------------------------------


def artifact_list(store: Store, workspace: str, task_id: str) -> list[_docs.Artifact]:
    """The task's artifacts with their sizes (:func:`atlas_tasks.views.queries.artifact_list`)."""
    return queries.artifact_list(store, workspace, task_id)


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
    artifacts = _docs.with_steps(task, artifact_list(store, workspace, task.id))
    return {
        "status": shown.label,
        "status_class": status_class(shown.status),
        "crashed": shown.crashed,
        "revision": task.revision,
        "step": _text.step_progress(task),
        "updated": _text.when(task.updated_at, now),
        "completed": _text.when(task.completed_at, now) if task.completed_at else "",
        "awaiting_approval": task.status == TaskStatus.AWAITING_APPROVAL,
        "ready_to_continue": ready_to_continue(task),
        "terminal": task.is_terminal,
        "runner": runner_text(shown.holder),
        "steps": [_step_state(task, i, now, stopped=shown.crashed) for i in range(len(task.steps))],
        "transitions": [
            {
                "time": _text.iso(move.timestamp),
                "from": str(move.from_status),
                "to": str(move.to_status),
                "reason": move.reason,
            }
            for move in task.transitions
        ],
        "artifacts": [{"name": a.name, "size": _text.size(a.size), "step": a.step or ""} for a in artifacts],
    }


def _step_state(task: Task, index: int, now: datetime, *, stopped: bool = False) -> dict[str, Any]:
    step = task.steps[index]
    running = step.status == "running" and step.completed_at is None
    return {
        "status": str(step.status),
        "status_class": status_class(str(step.status)),
        "attempts": step.attempts,
        "duration": _text.step_duration(step, now, stopped=stopped),
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
            "started": _text.iso(result.started_at),
            "duration": _text.duration(result.completed_at - result.started_at)
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
    return [(text, _STYLE_CLASSES.get(style, "")) for text, style in _text.log_segments(record, workspace, task_id)]


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
    "show_document",
    "status_class",
    "step_results",
    "summary_list_page",
    "task_list_page",
    "task_state",
]
