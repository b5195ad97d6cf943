"""Everything the CLI writes to stdout, in one place: the JSON documents and the human-readable views.

The documents and the neutral text formatting are :mod:`atlas_tasks.views` (the dashboard shares them); they are
re-exported here for the CLI's modules. JSON goes through the standard ``json`` module straight to stdout, never
through rich, so it is never wrapped or coloured; its shapes are documented in docs/cli.md and are part of the
CLI's stable interface. Human output uses rich, imported on first use so that ``--json`` and ``--help`` never pay
for it. Every piece of stored text passes through :func:`~atlas_tasks.views.text.printable` before it reaches a
terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from atlas_tasks.cli._listview import STATUS_STYLES as _STATUS_STYLES
from atlas_tasks.views.documents import (
    Artifact,
    artifact_documents,
    artifacts_document,
    dumps,
    log_error_document,
    log_summary_document,
    show_document,
    task_document,
    task_error_document,
    task_list_document,
    with_steps,
    workspace_document,
    workspace_error_document,
    workspace_list_document,
)
from atlas_tasks.views.text import (
    DESCRIPTION_WIDTH,
    LEVEL_STYLES,
    STOPPED,
    ago,
    duration,
    iso,
    log_field,
    log_segments,
    printable,
    size,
    step_duration,
    step_progress,
    truncate,
    when,
)

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    from atlas_tasks.models import Task, Workspace
    from atlas_tasks.store import LogLines
    from atlas_tasks.views.display import DisplayState

#: Below this many columns a description says too little: on a narrow terminal ``list`` drops the relative times and
#: the template to give it at least this much, and drops the description itself when even that is not enough.
DESCRIPTION_MIN_WIDTH = 16


# -- writing to stdout -------------------------------------------------------------------------------------------


def write_json(document: Any) -> None:
    """Write one JSON document to stdout: UTF-8, indented by 2 spaces, with a trailing newline."""
    write_bytes(dumps(document, indent=2) + b"\n")


def write_json_lines(records: Iterable[Mapping[str, Any]]) -> None:
    """Write JSON Lines to stdout: each record compact, on its own line."""
    write_bytes(b"".join(dumps(record, separators=(",", ":")) + b"\n" for record in records))


def write_bytes(data: bytes) -> None:
    """Write bytes to stdout exactly as given (no encoding, newline translation, wrapping or colour)."""
    sys.stdout.flush()  # text written earlier must come first
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


# -- human output ---------------------------------------------------------------------------------------------------


class _Output:
    """Human output on stdout through rich: colour only on a terminal (never with ``NO_COLOR``), no markup parsing.

    Markup and highlighting are off because everything shown is data: ``[red]`` in a description is text. Into a
    pipe or a file, lines are never cut or wrapped (rich would assume 80 columns) and carry no trailing padding.
    With ``NO_COLOR`` set (to anything but the empty string, as no-color.org says) a terminal gets no escape at all:
    rich's own ``NO_COLOR`` handling drops colours but keeps bold and dim, so styles are switched off entirely.
    """

    def __init__(self) -> None:
        import os

        from rich.console import Console

        no_style = os.environ.get("NO_COLOR", "") != ""
        self.console = Console(highlight=False, markup=False, emoji=False, color_system=None if no_style else "auto")
        self.plain = not self.console.is_terminal
        if self.plain:
            # Even with COLUMNS set (GNU readline exports it in any process that loads it): a pipe gets whole lines.
            self.console.width = 100_000

    @property
    def width(self) -> int | None:
        """The terminal's width in columns, or None into a pipe or a file (no limit)."""
        return None if self.plain else self.console.width

    def print(self, *renderables: RenderableType | str, soft_wrap: bool = False, width: int | None = None) -> None:
        """Print renderables, each followed by a newline; ``soft_wrap`` leaves long lines to the terminal.

        ``width`` wider than the terminal renders that wide and lets the terminal wrap (nothing is cut).
        """
        if not self.plain:
            if width is not None and width > self.console.width:
                self.console.print(*renderables, soft_wrap=soft_wrap, width=width, crop=False)
            else:
                self.console.print(*renderables, soft_wrap=soft_wrap)
            return
        with self.console.capture() as captured:
            self.console.print(*renderables, soft_wrap=soft_wrap)
        sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def _table(*headers: str) -> Table:
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold", padding=(0, 2, 0, 0))
    for header in headers:
        # Only these columns give way on a narrow terminal: rich shrinks wrappable columns first.
        table.add_column(header, no_wrap=header not in ("DESCRIPTION", "ERROR"), overflow="ellipsis")
    return table


def _indented(table: Table) -> Padding:
    from rich.padding import Padding

    return Padding(table, (0, 0, 0, 2))


def _one_line(text: str) -> Text:
    # Shrunk to fit but never wrapped: one table row stays one line, cut with "…".
    from rich.text import Text

    return Text(text, no_wrap=True, overflow="ellipsis")


def _styled(text: str, style: str) -> Text:
    from rich.text import Text

    return Text(text, style=style)


def _status(status: object) -> Text:
    text = printable(str(status))
    return _styled(text, _STATUS_STYLES.get(text, ""))


def message(text: str) -> None:
    """Print a one-line confirmation (``created workspace ...``) to stdout."""
    _Output().print(_styled(text, ""), soft_wrap=True)


def _state_status(state: DisplayState) -> Text:
    from atlas_tasks.cli._listview import status_text

    return _styled(*status_text(state))


# The list columns that give way on a narrow terminal, first to go first (the description shrinks before any goes).
_LIST_DROP_ORDER = ("CREATED", "TEMPLATE", "UPDATED", "DESCRIPTION", "STEP")


def list_columns(widths: Mapping[str, int], available: int | None) -> tuple[list[str], int]:
    """Which ``list`` columns fit in ``available`` terminal columns, and how wide the description may be.

    The workspace, id and status are never dropped nor cut: they are what the other commands need. The
    description takes what room is left (at most :data:`DESCRIPTION_WIDTH`); when that is less than
    :data:`DESCRIPTION_MIN_WIDTH`, the columns of :data:`_LIST_DROP_ORDER` go one by one.

    Args:
        widths: Each column's natural width (its widest cell or header); ``DESCRIPTION`` included.
        available: The terminal's width, or None for no limit (a pipe).
    """
    columns = list(widths)
    description = min(widths.get("DESCRIPTION", 0), DESCRIPTION_WIDTH)
    if available is None:
        return columns, description

    def used(names: Sequence[str]) -> int:
        return sum(widths[name] for name in names if name != "DESCRIPTION") + 2 * (len(names) - 1)

    dropped: list[str] = []
    for drop in (None, *_LIST_DROP_ORDER):
        if drop is not None and drop in columns:
            columns.remove(drop)
            dropped.append(drop)
        room = available - used(columns)
        if "DESCRIPTION" not in columns:
            if room >= 0:
                break
        elif room >= min(DESCRIPTION_MIN_WIDTH, description):
            return columns, min(description, room)
    # The description is gone: the columns dropped to make room for it come back where they still fit.
    for name in reversed(dropped):
        if name != "DESCRIPTION":
            again = [column for column in widths if column in columns or column == name]
            if used(again) <= available:
                columns = again
    return columns, description


def print_task_list(
    states: Sequence[DisplayState],
    now: datetime,
    *,
    workspaces: Sequence[str] | None = None,
) -> None:
    """The ``list`` table: id, status, template, step, created, updated and a truncated description.

    ``states`` are the listed tasks with their display state (a run whose runner died shows as ``interrupted
    (crashed)``); ``workspaces``, parallel to it, adds a WORKSPACE column first. On a terminal the columns that
    do not fit give way (see :func:`list_columns`); into a pipe every column is written (without rich when
    :func:`atlas_tasks.cli._listview.plain_table` can: the same bytes).
    """
    from atlas_tasks.cli import _listview

    rows, status_styles = _listview.list_cells(states, now, workspaces=workspaces)
    if _listview.plain_stdout():
        text = _listview.plain_table(rows)
        if text is not None:
            sys.stdout.write(text)
            return
    print_rich_list(rows, status_styles)


def print_rich_list(rows: Sequence[Mapping[str, str]], status_styles: Sequence[str]) -> None:
    """The ``list`` table of :func:`atlas_tasks.cli._listview.list_cells` rows, laid out by rich (any stdout)."""
    from rich.cells import cell_len

    headers = list(rows[0]) if rows else []
    widths = {name: max([cell_len(name), *(cell_len(row[name]) for row in rows)]) for name in headers}
    out = _Output()
    columns, description = list_columns(widths, out.width)
    table = _table(*columns)
    for column in table.columns:
        name = str(column.header)
        column.no_wrap = True
        if name == "DESCRIPTION":
            column.width = description
        else:
            column.min_width = widths[name]
    for row, style in zip(rows, status_styles, strict=True):
        cells: list[str | Text] = []
        for name in columns:
            if name == "DESCRIPTION":
                cells.append(_one_line(row[name]))
            elif name == "STATUS":
                cells.append(_styled(row[name], style))
            else:
                cells.append(row[name])
        table.add_row(*cells)
    needed = sum(widths[name] for name in columns if name != "DESCRIPTION") + 2 * (len(columns) - 1)
    out.print(table, width=needed + (description if "DESCRIPTION" in columns else 0))


def print_workspaces(
    workspaces: Sequence[Workspace],
    now: datetime,
    *,
    repos: Sequence[str] | None = None,
    counts: Sequence[int | None] | None = None,
) -> None:
    """The ``workspace list`` table; a REPOSITORY column when a workspace records its git repository (the Go
    ATLAS's repo-scoped ones do) or ``repos`` (parallel to ``workspaces``: the store each lives in) is given.
    TASKS: ``counts`` (parallel; None shows ``-``), else the number of refs in each workspace.json."""
    shown = list(repos) if repos is not None else [ws.repo_path for ws in workspaces]
    tally = list(counts) if counts is not None else [len(ws.tasks) for ws in workspaces]
    with_repo = any(shown)
    table = _table("NAME", "STATUS", "BRANCH", "TASKS", "PATH", *(["REPOSITORY"] if with_repo else []), "CREATED")
    for ws, repo, count in zip(workspaces, shown, tally, strict=True):
        table.add_row(
            printable(ws.name),
            _status(ws.status),
            printable(ws.branch) or "-",
            "-" if count is None else str(count),
            printable(ws.worktree_path or ws.path) or "-",
            *([printable(repo) or "-"] if with_repo else []),
            ago(ws.created_at, now),
        )
    _Output().print(table)


def print_workspace_tasks(states: Sequence[DisplayState]) -> None:
    """``workspace show``'s task lines: ``  ID  STATUS`` each, with the status read from the task itself."""
    if not states:
        return
    table = _table("ID", "STATUS")
    for state in states:
        table.add_row(printable(state.task.id), _state_status(state))
    _Output().print(_indented(table))


def print_task(
    workspace: str,
    state: DisplayState,
    artifacts: Sequence[Artifact],
    log: LogLines,
    now: datetime,
    hook: dict[str, Any] | None = None,
) -> None:
    """The ``show`` view: header, steps timeline, transitions, artifacts and the log's line count."""
    task = state.task
    out = _Output()
    out.print(_header(workspace, state, now))
    out.print()
    sections: list[tuple[str, int, Table]] = [
        ("Steps", len(task.steps), _steps(task, now, stopped=state.crashed)),
        ("Transitions", len(task.transitions), _transitions(task)),
        ("Artifacts", len(artifacts), _artifacts(artifacts)),
    ]
    for title, count, table in sections:
        out.print(_styled(f"{title} ({count})", "bold"))
        if count:
            out.print(_indented(table))
        out.print()
    control = _control(task)
    if control is not None:
        out.print(_styled("Control", "bold"))
        out.print(_indented(control))
        out.print()
    out.print(_log_summary(workspace, task.id, log), soft_wrap=True)
    if hook is not None:
        from atlas_tasks.go_hooks import describe as describe_hook

        out.print()
        out.print(_styled("Go hook", "bold"))
        out.print(_one_line("  " + describe_hook(hook)))


def _control(task: Task) -> Table | None:
    """What controls the run (stop reason, cancel, deadline, budget and spend, lineage), or None when nothing does."""
    from rich.table import Table

    from atlas_tasks import lifecycle

    lines = lifecycle.describe(task)
    if not lines:
        return None
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    for label, text in lines:
        grid.add_row(printable(label), printable(text))
    return grid


def resume_hint(workspace: str, task_id: str) -> str:
    """What a crashed run's status line adds: that no runner holds it, and the command that resumes it."""
    command = f"atlas-tasks run {printable(workspace)} {printable(task_id)}"
    return f"no live runner holds it (its runner died): `{command}` resumes it"


def _header(workspace: str, state: DisplayState, now: datetime) -> Table:
    from rich.table import Table
    from rich.text import Text

    from atlas_tasks.views.display import runner_text

    task = state.task
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    status = _state_status(state)
    if state.crashed:
        status = Text.assemble(status, " - ", _styled(resume_hint(workspace, task.id), "red"))
    rows: list[tuple[str, str | Text]] = [
        ("task", printable(task.id)),
        ("status", status),
    ]
    if state.holder is not None:
        rows.append(("runner", printable(runner_text(state.holder))))
    rows += [
        ("workspace", printable(workspace)),
        ("template", printable(task.template) or "-"),
        # Split on newlines only: str.splitlines would also break at U+2028/U+2029 and \x1c-\x1e, which must show
        # as escapes like any other control.
        ("description", "\n".join(printable(line.removesuffix("\r")) for line in _lines(task.description)) or "-"),
        ("step", step_progress(task)),
        ("created", when(task.created_at, now)),
        # For a dead run this is when its runner was last heard of (its last checkpoint).
        ("last seen" if state.crashed else "updated", when(task.updated_at, now)),
    ]
    if task.completed_at is not None:
        rows.append(("completed", when(task.completed_at, now)))
    from atlas_tasks.retention.pins import describe_pin

    pinned = describe_pin(task)
    if pinned is not None:
        rows.append(("pinned", printable(pinned)))
    rows += [("revision", str(task.revision)), ("schema_version", printable(task.schema_version))]
    for key, value in rows:
        grid.add_row(key, value)
    return grid


def _lines(text: str) -> list[str]:
    return text.strip("\r\n").split("\n") if text.strip("\r\n") else []


def _steps(task: Task, now: datetime, *, stopped: bool = False) -> Table:
    table = _table("", "#", "STEP", "TYPE", "STATUS", "ATTEMPTS", "DURATION", "ERROR")
    for index, step in enumerate(task.steps):
        # Mark where the task stands, unless it is over (then the index points past the end anyway).
        marker = ">" if index == task.current_step and not task.is_terminal else ""
        table.add_row(
            marker,
            str(index + 1),
            printable(step.name),
            printable(str(step.type)) or "-",
            _status(step.status),
            str(step.attempts),
            step_duration(step, now, stopped=stopped),
            _styled(printable(step.error), "red"),
        )
    return table


def _transitions(task: Task) -> Table:
    table = _table("TIME", "FROM → TO", "REASON")
    for move in task.transitions:
        arrow = f"{printable(str(move.from_status))} → {printable(str(move.to_status))}"
        table.add_row(iso(move.timestamp), arrow, printable(move.reason))
    return table


def _artifacts(artifacts: Sequence[Artifact]) -> Table:
    table = _table("NAME", "SIZE", "STEP")
    for artifact in artifacts:
        table.add_row(printable(artifact.name), size(artifact.size), printable(artifact.step or "-"))
    return table


def _log_summary(workspace: str, task_id: str, log: LogLines) -> Text:
    from rich.text import Text

    text = Text.assemble(("Log", "bold"), f": {len(log)} line{'' if len(log) == 1 else 's'}")
    if log.skipped:
        text.append(f", {log.skipped} skipped", style="yellow")
    text.append(f"  (atlas-tasks logs {printable(workspace)} {printable(task_id)})", style="dim")
    return text


def print_artifacts(artifacts: Sequence[Artifact]) -> None:
    """The ``artifacts`` table: name, size and the step that produced it."""
    _Output().print(_artifacts(artifacts))


def print_log(lines: Iterable[Mapping[str, Any]], workspace: str, task_id: str) -> None:
    """Log entries as ``ts level step_name event key=value...``, one per line (coloured on a terminal)."""
    out = _Output()
    rows = [log_segments(record, workspace, task_id) for record in lines]
    if not rows:
        return
    if out.plain:
        # Logs can be long: without colour, skip rich's per-line rendering (ten times slower) and write text.
        sys.stdout.write("".join("".join(text for text, _ in row) + "\n" for row in rows))
        return
    from rich.text import Text

    # One renderable for all lines: rich's fixed cost per print() call dominates otherwise.
    out.print(Text("\n").join(Text.assemble(*row) for row in rows), soft_wrap=True)


__all__ = [
    "DESCRIPTION_MIN_WIDTH",
    "DESCRIPTION_WIDTH",
    "LEVEL_STYLES",
    "STOPPED",
    "Artifact",
    "ago",
    "artifact_documents",
    "artifacts_document",
    "dumps",
    "duration",
    "iso",
    "list_columns",
    "log_error_document",
    "log_field",
    "log_segments",
    "log_summary_document",
    "message",
    "print_artifacts",
    "print_log",
    "print_task",
    "print_task_list",
    "print_workspace_tasks",
    "print_workspaces",
    "printable",
    "resume_hint",
    "show_document",
    "size",
    "step_duration",
    "step_progress",
    "task_document",
    "task_error_document",
    "task_list_document",
    "truncate",
    "when",
    "with_steps",
    "workspace_document",
    "workspace_error_document",
    "workspace_list_document",
    "write_bytes",
    "write_json",
    "write_json_lines",
]
