"""The read-only task commands: ``list``, ``show``, ``logs`` and ``artifacts``.

Each command gathers what it shows through the store API and hands it to :mod:`atlas_tasks.cli._render`; the store
(and with it pydantic) and the renderer are imported inside the commands so that start-up and ``--help`` stay fast.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from atlas_tasks._status import TaskStatus
from atlas_tasks.cli._errors import note, warn
from atlas_tasks.cli._everywhere import AllReposOpt, every_store
from atlas_tasks.cli._options import JsonOpt, TaskArg, WorkspaceArg
from atlas_tasks.cli._state import state

if TYPE_CHECKING:
    from atlas_tasks.errors import AtlasTasksError
    from atlas_tasks.store import LogLines
    from atlas_tasks.store.capabilities import LocalFiles
    from atlas_tasks.views.queries import ListRow

# The stored statuses and "crashed" (a run whose runner died); kept here as text so that --help stays light.
_STATUS_CHOICES = (*[str(s) for s in TaskStatus], "crashed")
StatusOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--status",
        "-s",
        metavar="STATUS",
        help=(
            f"Only tasks with this status (repeatable): {', '.join(_STATUS_CHOICES)}. A crashed run (running, but "
            "its runner died) matches crashed and interrupted, not running."
        ),
        callback=lambda values: _statuses(values),
        show_default=False,
    ),
]


def _statuses(values: list[str] | None) -> list[str] | None:
    """The --status values, lower-cased; an unknown one is a usage error (exit code 2)."""
    if values is None:
        return None
    wanted = [value.lower() for value in values]
    for value in wanted:
        if value not in _STATUS_CHOICES:
            choices = ", ".join(_STATUS_CHOICES)
            raise typer.BadParameter(f"{value!r} is not one of {choices}", param_hint="'--status' / '-s'")
    return wanted


LimitOpt = Annotated[
    int | None,
    typer.Option(
        "--limit", "-n", metavar="N", min=1, help="Show only the newest N matching tasks.", show_default=False
    ),
]
SearchOpt = Annotated[
    str | None,
    typer.Option(
        "--search",
        "-q",
        metavar="TEXT",
        help="Only tasks whose id, description, template or workspace contains TEXT (any case).",
        show_default=False,
    ),
]
GetOpt = Annotated[
    str | None,
    typer.Option("--get", metavar="NAME", help="Write this artifact's bytes to stdout, exactly.", show_default=False),
]

ForkedFromOpt = Annotated[
    str | None,
    typer.Option("--forked-from", metavar="ID", help="Only the forks of task ID (see `fork`).", show_default=False),
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
    limit: LimitOpt = None,
    search: SearchOpt = None,
    all_repos: AllReposOpt = False,
    forked_from: ForkedFromOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List tasks, newest first: one workspace's, or every workspace's.

    Crashed runs (running, but no live runner) show as interrupted (crashed). Unreadable tasks are never hidden:
    each is reported on stderr (and under "errors" with --json).
    """
    from atlas_tasks.cli import _render
    from atlas_tasks.store.capabilities import LocalFiles
    from atlas_tasks.views import queries

    sources = every_store(ctx) if all_repos else [("", state(ctx).store())]
    wanted = list(status or ())
    needle = (search or "").strip().lower()
    listed: list[tuple[int, ListRow]] = []  # (index of the source store, row)
    errors: list[AtlasTasksError] = []
    total = 0
    several = all_repos or not workspace or all_workspaces
    now = datetime.now(UTC)
    for index, (_, store) in enumerate(sources):
        # What this listing decodes is remembered for the fast path of the next `list` (see _listcache).
        remember = _ListMemory(store) if not all_repos and isinstance(store, LocalFiles) else None
        if workspace and not all_workspaces:
            # With --all-repos a named workspace is looked for in every store, and is in some of them only.
            names = [workspace] if not all_repos or workspace in {w.name for w in store.list_workspaces()} else []
        else:
            if remember is not None:
                remember.before_workspaces()
            names = [w.name for w in store.list_workspaces()]
            if remember is not None:
                remember.workspaces(names)
        several = several or len(names) > 1
        if remember is not None:
            remember.before_tasks(names)
        found = queries.list_rows(
            store, names, wanted, search=needle, limit=limit, now=now, forked_from=forked_from or ""
        )
        if remember is not None:
            remember.tasks(found.searched)
        total += found.total
        errors.extend(found.errors)
        listed.extend((index, row) for row in found.rows)
    if len(sources) > 1:  # each store's rows are newest first: the newest N of all of them
        listed.sort(key=lambda item: queries.newest_first(item[1].task), reverse=True)
        listed = listed[:limit]
    if as_json:
        document = queries.list_document(workspace or "", [row for _, row in listed], errors)
        if all_repos:  # which store each task lives in: its directory, and its repository (None: the legacy tree)
            homes = [str(store.home) if isinstance(store, LocalFiles) else "" for _, store in sources]
            document["stores"] = [{"store": homes[i], "repo": sources[i][0] or None} for i, _ in listed]
        _render.write_json(document)
    elif listed:
        _render.print_task_list(
            [row.state for _, row in listed],
            now,
            workspaces=[_where(row.workspace, sources[i][0]) for i, row in listed] if several else None,
        )
    elif not errors:
        filters = [f"status {', '.join(wanted)}"] if wanted else []
        filters += [f"text {search!r}"] if needle else []
        filters += [f"forked from {forked_from}"] if forked_from else []
        matching = f" with {' and '.join(filters)}" if filters else ""
        where = f"in workspace {workspace}" if workspace else "in any workspace"
        note(f"no tasks{matching} {where} ({total} in all)")
    for exc in errors:
        warn(exc.message)


class _ListMemory:
    """Feeds :mod:`atlas_tasks.cli._listcache` from a full listing of a file store: stamps taken before and after."""

    def __init__(self, store: LocalFiles) -> None:
        self.home = str(store.home)
        self._workspaces: dict[str, Any] = {}
        self._tasks: dict[str, dict[str, Any]] = {}

    def before_workspaces(self) -> None:
        from atlas_tasks.backends._file_light import workspace_stamps

        self._workspaces = workspace_stamps(self.home)

    def workspaces(self, names: list[str]) -> None:
        from atlas_tasks.cli import _listcache

        _listcache.remember_workspaces(self.home, self._workspaces, names)

    def before_tasks(self, names: list[str]) -> None:
        from atlas_tasks.backends._file_light import task_stamps

        self._tasks = {name: task_stamps(self.home, name) for name in names}

    def tasks(self, rows: list[ListRow]) -> None:
        from atlas_tasks.cli import _listcache

        for name, before in self._tasks.items():
            _listcache.remember_tasks(self.home, name, before, [row.task for row in rows if row.workspace == name])


def _where(workspace: str, repo: str) -> str:
    """A row's WORKSPACE cell: the name, and with --all-repos the repository whose store holds it."""
    return f"{workspace} @ {repo}" if repo else workspace


def show(ctx: typer.Context, workspace: WorkspaceArg, task_id: TaskArg, as_json: JsonOpt = False) -> None:
    """Show one task in detail.

    Its header, steps as a timeline, status transitions, artifacts and the size of its log.
    """
    from atlas_tasks.cli import _render
    from atlas_tasks.views.display import display_state
    from atlas_tasks.views.queries import artifact_list

    store = state(ctx).store()
    now = datetime.now(UTC)
    shown = display_state(store, workspace, store.get(workspace, task_id), now=now)
    found = _render.with_steps(shown.task, artifact_list(store, workspace, task_id))
    log = store.read_log(workspace, task_id)
    from atlas_tasks.go_hooks import hook_for

    hook = hook_for(store, workspace, shown.task.id)
    if as_json:
        _render.write_json(_render.show_document(workspace, shown, found, log, hook))
    else:
        _render.print_task(workspace, shown, found, log, now, hook)
        from atlas_tasks.lifecycle.rewind import missing_forks

        for entry in missing_forks(store, shown.task):  # deleted since, or its build died before it was complete
            note(f"fork {entry.get('workspace', '')}/{entry.get('task_id', '')} no longer exists")
    warn_log(log)


JsonLinesOpt = Annotated[
    bool, typer.Option("--json", help="Print the entries as JSON Lines, one object per line.", show_default=False)
]


FollowOpt = Annotated[
    bool, typer.Option("--follow", "-f", help="Keep printing new lines as the run writes them, until it ends.")
]


WholeLogOpt = Annotated[
    bool,
    typer.Option(
        "--all",
        help="Include the older lines `compact` moved into gzip segments (artifacts logs/task.log.N.gz), first.",
    ),
]


def logs(
    ctx: typer.Context,
    workspace: WorkspaceArg,
    task_id: TaskArg,
    as_json: JsonLinesOpt = False,
    follow: FollowOpt = False,
    whole: WholeLogOpt = False,
) -> None:
    """Print a task's log.

    One entry per line as `ts level step event key=value...`, or the JSON lines themselves with --json. Damaged
    and torn lines are reported on stderr. With --follow, new lines are printed as they are written, until no
    live runner holds the task. With --all, the lines `compact` rotated out of the live log come first.
    """
    from atlas_tasks.cli import _render

    if follow and whole:
        raise typer.BadParameter("--all prints the whole log once; it cannot be combined with --follow")
    store = state(ctx).store()
    if follow:
        from atlas_tasks.cli._runs import follow_log

        store.get(workspace, task_id)  # a clear error for a missing task before waiting on anything
        if as_json:
            follow_log(store, workspace, task_id, lambda record: _render.write_json_lines([record]))
        else:
            follow_log(store, workspace, task_id, lambda record: _render.print_log([record], workspace, task_id))
        return
    log = store.read_log(workspace, task_id, rotated=whole)
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

    Lists names, sizes and the step that produced each (as the step results record it); --get NAME writes that
    artifact's bytes to stdout, unchanged.
    """
    from atlas_tasks.cli import _render
    from atlas_tasks.views.queries import artifact_list

    store = state(ctx).store()
    if get is not None:
        if as_json:
            raise typer.BadParameter("--get writes the artifact's raw bytes; it cannot be combined with --json")
        _render.write_bytes(store.get_artifact(workspace, task_id, get))
        return
    found = _render.with_steps(store.get(workspace, task_id), artifact_list(store, workspace, task_id))
    if as_json:
        _render.write_json(_render.artifacts_document(workspace, task_id, found))
    elif found:
        _render.print_artifacts(found)
    else:
        note(f"task {task_id} in workspace {workspace} has no artifacts")


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
