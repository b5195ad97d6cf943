"""The read-only task commands: ``list``, ``show``, ``logs`` and ``artifacts``.

Each command gathers what it shows through the store API and hands it to :mod:`atlas_tasks.cli._render`; the store
(and with it pydantic) and the renderer are imported inside the commands so that start-up and ``--help`` stay fast.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from atlas_tasks._status import TaskStatus
from atlas_tasks.cli._errors import note, warn
from atlas_tasks.cli._options import JsonOpt, TaskArg, WorkspaceArg
from atlas_tasks.cli._state import state

if TYPE_CHECKING:
    from atlas_tasks.cli._render import Artifact
    from atlas_tasks.errors import AtlasTasksError
    from atlas_tasks.models import Task
    from atlas_tasks.store import LogLines, Store

StatusOpt = Annotated[
    list[TaskStatus] | None,
    typer.Option(
        "--status",
        "-s",
        metavar="STATUS",
        help=f"Only tasks with this status (repeatable): {', '.join(TaskStatus)}.",
        case_sensitive=False,
        show_default=False,
    ),
]
GetOpt = Annotated[
    str | None,
    typer.Option("--get", metavar="NAME", help="Write this artifact's bytes to stdout, exactly.", show_default=False),
]


AllOpt = Annotated[bool, typer.Option("--all-workspaces", "-a", help="List the tasks of every workspace.")]
ListWs = Annotated[
    str | None,
    typer.Argument(metavar="[WS]", help="Workspace name (default: every workspace).", show_default=False),
]


def list_tasks(
    ctx: typer.Context,
    workspace: ListWs = None,
    status: StatusOpt = None,
    all_workspaces: AllOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """List tasks, newest first: one workspace's, or every workspace's.

    Crashed runs (running, but no live runner) show as interrupted. Unreadable tasks are never hidden: each is
    reported on stderr (and under "errors" with --json).
    """
    from atlas_tasks.cli import _render
    from atlas_tasks.runs import is_interrupted

    store = state(ctx).store()
    names = [workspace] if workspace and not all_workspaces else [w.name for w in store.list_workspaces()]
    rows: list[tuple[str, Task, bool]] = []
    errors: list[AtlasTasksError] = []
    total = 0
    for ws in names:
        tasks = store.list(ws)
        total += len(tasks)
        errors.extend(tasks.errors)
        rows.extend((ws, t, is_interrupted(store, ws, t)) for t in tasks if not status or t.status in status)
    rows.sort(key=lambda row: (row[1].created_at or datetime.min.replace(tzinfo=UTC), row[1].id), reverse=True)
    if as_json:
        document = _render.task_list_document(workspace or "", [t for _, t, _ in rows], errors)
        # Ids are unique per workspace only: these two keys say which workspace each listed task belongs to.
        document["workspaces"] = [ws for ws, _, _ in rows]
        document["interrupted"] = [{"workspace": ws, "task_id": t.id} for ws, t, crashed in rows if crashed]
        _render.write_json(document)
    elif rows:
        _render.print_task_list(
            [t for _, t, _ in rows],
            datetime.now(UTC),
            interrupted=[crashed for _, _, crashed in rows],
            workspaces=[ws for ws, _, _ in rows] if len(names) > 1 or not workspace else None,
        )
    elif not errors:
        wanted = f" with status {', '.join(status)}" if status else ""
        where = f"in workspace {workspace}" if workspace else "in any workspace"
        note(f"no tasks{wanted} {where} ({total} in all)")
    for exc in errors:
        warn(exc.message)


def show(ctx: typer.Context, workspace: WorkspaceArg, task_id: TaskArg, as_json: JsonOpt = False) -> None:
    """Show one task in detail.

    Its header, steps as a timeline, status transitions, artifacts and the size of its log.
    """
    from atlas_tasks.cli import _render

    store = state(ctx).store()
    task = store.get(workspace, task_id)
    found = artifact_list(store, workspace, task_id)
    log = store.read_log(workspace, task_id)
    if as_json:
        _render.write_json(_render.show_document(workspace, task, found, log))
    else:
        _render.print_task(workspace, task, found, log, datetime.now(UTC))
    warn_log(log)


JsonLinesOpt = Annotated[
    bool, typer.Option("--json", help="Print the entries as JSON Lines, one object per line.", show_default=False)
]


FollowOpt = Annotated[
    bool, typer.Option("--follow", "-f", help="Keep printing new lines as the run writes them, until it ends.")
]


def logs(
    ctx: typer.Context,
    workspace: WorkspaceArg,
    task_id: TaskArg,
    as_json: JsonLinesOpt = False,
    follow: FollowOpt = False,
) -> None:
    """Print a task's log.

    One entry per line as `ts level step event key=value...`, or the JSON lines themselves with --json. Damaged
    and torn lines are reported on stderr. With --follow, new lines are printed as they are written, until no
    live runner holds the task.
    """
    from atlas_tasks.cli import _render

    store = state(ctx).store()
    if follow:
        from atlas_tasks.cli._runs import follow_log

        store.get(workspace, task_id)  # a clear error for a missing task before waiting on anything
        if as_json:
            follow_log(store, workspace, task_id, lambda record: _render.write_json_lines([record]))
        else:
            follow_log(store, workspace, task_id, lambda record: _render.print_log([record], workspace, task_id))
        return
    log = store.read_log(workspace, task_id)
    if as_json:
        _render.write_json_lines(log)
    elif log:
        _render.print_log(log, workspace, task_id)
    elif not log.skipped:
        note(f"task {task_id} in workspace {workspace} has no log entries yet")
    warn_log(log)


def artifacts(
    ctx: typer.Context, workspace: WorkspaceArg, task_id: TaskArg, get: GetOpt = None, as_json: JsonOpt = False
) -> None:
    """List a task's artifacts, or print one.

    Lists names and sizes; --get NAME writes that artifact's bytes to stdout, unchanged.
    """
    from atlas_tasks.cli import _render

    store = state(ctx).store()
    if get is not None:
        if as_json:
            raise typer.BadParameter("--get writes the artifact's raw bytes; it cannot be combined with --json")
        _render.write_bytes(store.get_artifact(workspace, task_id, get))
        return
    found = artifact_list(store, workspace, task_id)
    if as_json:
        _render.write_json(_render.artifacts_document(workspace, task_id, found))
    elif found:
        _render.print_artifacts(found)
    else:
        note(f"task {task_id} in workspace {workspace} has no artifacts")


def artifact_list(store: Store, workspace: str, task_id: str) -> list[Artifact]:
    """The task's artifacts in natural order, each with its size (``None`` if it vanished or cannot be read).

    Args:
        store: The open store (a file store's sizes come from the files; a database store reports them).
        workspace: The workspace name.
        task_id: The task id.
    """
    from atlas_tasks.backends.file import FileStore
    from atlas_tasks.cli._render import Artifact

    sizes = getattr(store, "artifact_sizes", None)
    if sizes is not None:
        return [Artifact(name, size) for name, size in sizes(workspace, task_id).items()]
    names = store.list_artifacts(workspace, task_id)
    if not isinstance(store, FileStore):
        return [Artifact(name, len(store.get_artifact(workspace, task_id, name))) for name in names]
    base = store.task_path(workspace, task_id) / "artifacts"
    found = []
    for name in names:
        try:
            # lstat: list_artifacts reports regular files only, and a size must never come from a symlink's target.
            size: int | None = (base / name).lstat().st_size
        except OSError:
            size = None
        found.append(Artifact(name, size))
    return found


def warn_log(log: LogLines) -> None:
    """Report a log's damaged lines and its torn tail on stderr (the lines themselves were left out).

    Args:
        log: What ``read_log`` returned.
    """
    for exc in log.errors:
        warn(exc.message)
    torn = log.skipped - len(log.errors)
    if log.torn_tail and torn:
        warn(f"skipped {torn} incomplete line(s) at the end of the log (an append cut short by a crash)")
