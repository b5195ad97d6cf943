"""Everything the CLI writes to stdout, in one place: the JSON documents and the human-readable views.

JSON goes through the standard ``json`` module straight to stdout, never through rich, so it is never wrapped or
coloured; its shapes are documented in docs/cli.md and are part of the CLI's stable interface. Human output uses
rich, imported on first use so that ``--json`` and ``--help`` never pay for it. Every piece of stored text passes
through :func:`~atlas_tasks.cli._text.printable` before it reaches a terminal.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, NamedTuple

from atlas_tasks.cli._text import printable

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    from atlas_tasks._display import DisplayState
    from atlas_tasks.errors import AtlasTasksError, CorruptLogError
    from atlas_tasks.models import Step, Task, Workspace
    from atlas_tasks.store import LogLines

#: How much of a description ``list`` shows.
DESCRIPTION_WIDTH = 60
#: Below this many columns a description says too little: on a narrow terminal ``list`` drops the relative times and
#: the template to give it at least this much, and drops the description itself when even that is not enough.
DESCRIPTION_MIN_WIDTH = 16
#: What a step in flight shows instead of a running time once its runner died.
STOPPED = "stopped (runner died)"

_STATUS_STYLES = {
    "pending": "dim",
    "running": "cyan",
    "validating": "cyan",
    "awaiting_approval": "magenta",
    "completed": "green",
    "success": "green",
    "no_changes": "green",
    "skipped": "dim",
    "abandoned": "dim",
    "interrupted": "yellow",
    "ci_timeout": "yellow",
    "validation_failed": "red",
    "rejected": "red",
    "gh_failed": "red",
    "ci_failed": "red",
    "failed": "red",
}
_SIZE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")
_LEVEL_STYLES = {"debug": "dim", "info": "", "warn": "yellow", "warning": "yellow", "error": "red", "fatal": "bold red"}


class Artifact(NamedTuple):
    """An artifact as the CLI reports it.

    Attributes:
        name: Its path relative to the task's ``artifacts/`` directory (``sdd/spec.md``).
        size: Its size in bytes, or ``None`` when it could not be read.
        step: The name of the step that produced it (from the step results that recorded it), or ``None``.
    """

    name: str
    size: int | None
    step: str | None = None


# -- writing to stdout -------------------------------------------------------------------------------------------


def write_json(document: Any) -> None:
    """Write one JSON document to stdout: UTF-8, indented by 2 spaces, with a trailing newline."""
    write_bytes(_dumps(document, indent=2) + b"\n")


def write_json_lines(records: Iterable[Mapping[str, Any]]) -> None:
    """Write JSON Lines to stdout: each record compact, on its own line."""
    write_bytes(b"".join(_dumps(record, separators=(",", ":")) + b"\n" for record in records))


def write_bytes(data: bytes) -> None:
    """Write bytes to stdout exactly as given (no encoding, newline translation, wrapping or colour)."""
    sys.stdout.flush()  # text written earlier must come first
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _dumps(document: Any, **layout: Any) -> bytes:
    try:
        return json.dumps(document, ensure_ascii=False, **layout).encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (legal as a JSON escape in a stored file) has no UTF-8 form: keep it escaped.
        return json.dumps(document, ensure_ascii=True, **layout).encode("ascii")


# -- JSON documents (the stable shapes of docs/cli.md) --------------------------------------------------------------


def task_document(task: Task) -> dict[str, Any]:
    """The task's JSON document, exactly as the store writes it to ``task.json`` (same keys, order and values)."""
    from atlas_tasks._codec import encode_task

    # The codec, not model_dump: it is what defines the on-disk shape (Go's key spelling, omitted empty fields).
    document: dict[str, Any] = json.loads(encode_task(task))
    return document


def workspace_document(workspace: Workspace) -> dict[str, Any]:
    """The workspace's JSON document, exactly as the store writes it to ``workspace.json``."""
    from atlas_tasks._codec import encode_workspace

    document: dict[str, Any] = json.loads(encode_workspace(workspace))
    return document


def task_error_document(exc: AtlasTasksError) -> dict[str, Any]:
    """An unreadable task: ``{"task_id", "path", "reason", "error", "message"}``."""
    path = exc.context.get("path")
    task_id = exc.context.get("task_id") or _owner_name(path, "task.json")
    return _error_document(exc, {"task_id": task_id, "path": path})


def workspace_error_document(exc: AtlasTasksError) -> dict[str, Any]:
    """An unreadable workspace: ``{"workspace", "path", "reason", "error", "message"}``."""
    path = exc.context.get("path")
    name = exc.context.get("workspace") or exc.context.get("name") or _owner_name(path, "workspace.json")
    return _error_document(exc, {"workspace": name, "path": path})


def log_error_document(exc: CorruptLogError) -> dict[str, Any]:
    """A damaged log line: ``{"line", "path", "reason", "error", "message"}``."""
    return _error_document(exc, {"line": exc.line_number, "path": exc.path})


def _error_document(exc: AtlasTasksError, where: dict[str, Any]) -> dict[str, Any]:
    reason = exc.context.get("reason") or exc.message
    return {**where, "reason": reason, "error": type(exc).__name__, "message": exc.message}


def _owner_name(path: str | None, file_name: str) -> str | None:
    # A SchemaVersionError names only the file; the task id or workspace is its directory's name.
    if not path:
        return None
    pure = PurePosixPath(path)
    return pure.parent.name if pure.name == file_name else pure.name


def task_list_document(workspace: str, tasks: Sequence[Task], errors: Sequence[AtlasTasksError]) -> dict[str, Any]:
    """``list --json``: ``{"workspace", "tasks": [task document...], "errors": [task error...]}``."""
    return {
        "workspace": workspace,
        "tasks": [task_document(task) for task in tasks],
        "errors": [task_error_document(exc) for exc in errors],
    }


def workspace_list_document(workspaces: Sequence[Workspace], errors: Sequence[AtlasTasksError]) -> dict[str, Any]:
    """``workspace list --json``: ``{"workspaces": [workspace document...], "errors": [workspace error...]}``."""
    return {
        "workspaces": [workspace_document(ws) for ws in workspaces],
        "errors": [workspace_error_document(exc) for exc in errors],
    }


def artifact_documents(artifacts: Sequence[Artifact]) -> list[dict[str, Any]]:
    """Artifacts as ``[{"name", "size", "step"}...]``."""
    return [{"name": a.name, "size": a.size, "step": a.step} for a in artifacts]


def log_summary_document(log: LogLines) -> dict[str, Any]:
    """A log's counts: ``{"lines", "skipped", "torn_tail", "errors": [log error...]}``."""
    return {
        "lines": len(log),
        "skipped": log.skipped,
        "torn_tail": log.torn_tail,
        "errors": [log_error_document(exc) for exc in log.errors],
    }


def show_document(
    workspace: str,
    state: DisplayState,
    artifacts: Sequence[Artifact],
    log: LogLines,
    hook: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``show --json``: ``{"workspace", "task": task document, "artifacts": [...], "log": log summary, "crashed",
    "display_status", "runner"}``, plus ``"go_hook"`` (see :func:`atlas_tasks.go_hooks.read_hook`) when the Go
    ATLAS keeps a hook for the task."""
    extra = {} if hook is None else {"go_hook": hook}
    return {
        **extra,
        "workspace": workspace,
        "task": task_document(state.task),
        "artifacts": artifact_documents(artifacts),
        "log": log_summary_document(log),
        "crashed": state.crashed,
        "display_status": state.label,
        "runner": state.holder,
    }


def artifacts_document(workspace: str, task_id: str, artifacts: Sequence[Artifact]) -> dict[str, Any]:
    """``artifacts --json``: ``{"workspace", "task_id", "artifacts": [{"name", "size"}...]}``."""
    return {"workspace": workspace, "task_id": task_id, "artifacts": artifact_documents(artifacts)}


def with_steps(task: Task, artifacts: Sequence[Artifact]) -> list[Artifact]:
    """The artifacts, each labelled with the step that produced it.

    The step is taken from the task's step results: a step's result records the artifact it saved last
    (``artifact_path``), which is the one artifact every built-in executor saves. This costs no read (names and
    contents are not guessed from: ``validation.2.json`` may come from any validation step). An artifact no result
    refers to (saved by a step still in flight, or a second artifact of one step) has no step (``None``, ``-``).
    """
    producers: dict[str, str] = {}
    for result in task.step_results:
        if result.artifact_path:
            name = result.step_name or (
                task.steps[result.step_index].name if 0 <= result.step_index < len(task.steps) else ""
            )
            producers[result.artifact_path.removeprefix("artifacts/")] = name
    return [artifact._replace(step=producers.get(artifact.name, artifact.step)) for artifact in artifacts]


# -- formatting helpers ---------------------------------------------------------------------------------------------


def iso(value: datetime | None) -> str:
    """A time as ISO 8601 in UTC to the second (``2025-12-28T10:00:00Z``), or ``-`` when unset."""
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ago(value: datetime | None, now: datetime) -> str:
    """A time relative to ``now`` (``12s ago``, ``5m ago``, ``3h ago``, ``4d ago``), or its date when older.

    A time in the future (clock skew between machines) is shown as ISO rather than as a negative age.
    """
    if value is None:
        return "-"
    seconds = (now - value).total_seconds()
    if seconds < 0:
        return iso(value)
    for limit, unit, size in ((60, "s", 1), (3600, "m", 60), (2 * 86400, "h", 3600), (14 * 86400, "d", 86400)):
        if seconds < limit:
            return f"{int(seconds // size)}{unit} ago"
    return value.astimezone(UTC).strftime("%Y-%m-%d")


def when(value: datetime | None, now: datetime) -> str:
    """A time as ISO followed by its age when recent: ``2025-12-28T10:00:00Z (3d ago)``."""
    if value is None:
        return "-"
    age = ago(value, now)
    return f"{iso(value)} ({age})" if age.endswith(" ago") else iso(value)


def duration(delta: timedelta) -> str:
    """A duration for people: ``0.4s``, ``42s``, ``2m12s``, ``1h08m``, ``3d04h``."""
    total = delta.total_seconds()
    if total < 0:
        return "-"
    if total < 10:
        return f"{total:.1f}s"
    minutes, seconds = divmod(int(total), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def step_duration(step: Step, now: datetime, *, stopped: bool = False) -> str:
    """How long a step took (from ``started_at`` to ``completed_at``), or has been running so far.

    ``stopped``: the task's runner died, so a step still marked in flight is not running any more: it says so
    instead of counting up a time that no runner is spending.
    """
    if step.started_at is None:
        return "-"
    if step.completed_at is None:
        return STOPPED if stopped and step.status == "running" else f"{duration(now - step.started_at)} so far"
    return duration(step.completed_at - step.started_at)


def step_progress(task: Task) -> str:
    """The current step as ``2/5 validate``; ``5/5`` once past the last step, ``-`` without steps."""
    total = len(task.steps)
    if total == 0 or task.current_step < 0:
        return "-"
    current = task.current
    if current is None:
        return f"{total}/{total}"
    return f"{task.current_step + 1}/{total} {printable(current.name)}"


def truncate(text: str, width: int) -> str:
    """The first line of ``text``, made printable and cut to ``width`` characters with an ellipsis."""
    lines = text.strip().splitlines()
    first = printable(lines[0]) if lines else ""
    if len(first) > width or len(lines) > 1:
        return first[: width - 1].rstrip() + "…"
    return first


def size(num_bytes: int | None) -> str:
    """A byte count for people: ``512 B``, ``1.2 KiB``, ``3.4 MiB``; ``?`` when unknown."""
    if num_bytes is None:
        return "?"
    value, unit = float(num_bytes), 0
    while value >= 1024 and unit < len(_SIZE_UNITS) - 1:
        value, unit = value / 1024, unit + 1
    return f"{num_bytes} B" if unit == 0 else f"{value:.1f} {_SIZE_UNITS[unit]}"


def log_field(value: Any) -> str:
    """A log value as one printable token: plain words stay bare, anything else is JSON (quoted/escaped)."""
    if isinstance(value, str) and value and not any(c.isspace() or c in "\"'=" for c in value):
        return printable(value)
    return printable(json.dumps(value, ensure_ascii=False))


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
    return _styled(state.label, "bold red") if state.crashed else _status(state.task.status)


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
    do not fit give way (see :func:`list_columns`); into a pipe every column is written.
    """
    from rich.cells import cell_len

    rows: list[dict[str, str | Text]] = []
    for index, state in enumerate(states):
        task = state.task
        row: dict[str, str | Text] = {"WORKSPACE": printable(workspaces[index])} if workspaces is not None else {}
        row |= {
            "ID": printable(task.id),
            "STATUS": _state_status(state),
            "TEMPLATE": printable(task.template) or "-",
            "STEP": step_progress(task),
            "CREATED": ago(task.created_at, now),
            "UPDATED": ago(task.updated_at, now),
            "DESCRIPTION": truncate(task.description, DESCRIPTION_WIDTH),
        }
        rows.append(row)
    headers = list(rows[0]) if rows else []
    widths = {name: max([cell_len(name), *(cell_len(str(row[name])) for row in rows)]) for name in headers}
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
    for row in rows:
        table.add_row(*(_one_line(str(row[name])) if name == "DESCRIPTION" else row[name] for name in columns))
    needed = sum(widths[name] for name in columns if name != "DESCRIPTION") + 2 * (len(columns) - 1)
    out.print(table, width=needed + (description if "DESCRIPTION" in columns else 0))


def print_workspaces(workspaces: Sequence[Workspace], now: datetime, *, repos: Sequence[str] | None = None) -> None:
    """The ``workspace list`` table; a REPOSITORY column when a workspace records its git repository (the Go
    ATLAS's repo-scoped ones do) or ``repos`` (parallel to ``workspaces``: the store each lives in) is given."""
    shown = list(repos) if repos is not None else [ws.repo_path for ws in workspaces]
    with_repo = any(shown)
    table = _table("NAME", "STATUS", "BRANCH", "TASKS", "PATH", *(["REPOSITORY"] if with_repo else []), "CREATED")
    for ws, repo in zip(workspaces, shown, strict=True):
        table.add_row(
            printable(ws.name),
            _status(ws.status),
            printable(ws.branch) or "-",
            str(len(ws.tasks)),
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
    out.print(_log_summary(workspace, task.id, log), soft_wrap=True)
    if hook is not None:
        from atlas_tasks.go_hooks import describe as describe_hook

        out.print()
        out.print(_styled("Go hook", "bold"))
        out.print(_one_line("  " + describe_hook(hook)))


def resume_hint(workspace: str, task_id: str) -> str:
    """What a crashed run's status line adds: that no runner holds it, and the command that resumes it."""
    command = f"atlas-tasks run {printable(workspace)} {printable(task_id)}"
    return f"no live runner holds it (its runner died): `{command}` resumes it"


def _header(workspace: str, state: DisplayState, now: datetime) -> Table:
    from rich.table import Table
    from rich.text import Text

    from atlas_tasks._display import runner_text

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


def log_segments(record: Mapping[str, Any], workspace: str, task_id: str) -> list[tuple[str, str]]:
    """One log entry as ``(text, style)`` pieces of ``ts level step_name event key=value...`` (``-`` when missing).

    ``time``/``message``/``msg`` stand in for a missing ``ts``/``event`` (other loggers' spellings), and the
    ``workspace_name``/``task_id`` keys the store adds are left out when they just repeat the task shown.
    """
    fields = dict(record)
    ts = _take(fields, "ts", "time")
    level = _plain(_take(fields, "level"))
    step = _take(fields, "step_name")
    event = _take(fields, "event", "message", "msg")
    for key, implied in (("workspace_name", workspace), ("task_id", task_id)):
        if fields.get(key) == implied:
            del fields[key]
    row = [
        (_plain(ts), "dim"),
        (" ", ""),
        (f"{level:<5}", _LEVEL_STYLES.get(level.lower(), "")),
        (" ", ""),
        (_plain(step), ""),
        (" ", ""),
        (_plain(event), "bold"),
    ]
    for key, value in fields.items():
        row += [(f" {printable(key)}=", "dim"), (log_field(value), "")]
    return row


def _take(fields: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if key in fields:
            return fields.pop(key)
    return None


def _plain(value: Any) -> str:
    if value is None or value == "":
        return "-"
    return printable(value) if isinstance(value, str) else log_field(value)
