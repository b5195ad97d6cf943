"""``atlas-tasks workspace ...``: create and list workspaces."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from atlas_tasks.cli._errors import note, warn
from atlas_tasks.cli._everywhere import AllReposOpt, every_store
from atlas_tasks.cli._ids import complete_workspace
from atlas_tasks.cli._options import JsonOpt
from atlas_tasks.cli._state import state

if TYPE_CHECKING:
    from atlas_tasks.errors import AtlasTasksError
    from atlas_tasks.models import Workspace

app = typer.Typer(name="workspace", help="Create, list, show and close workspaces.", no_args_is_help=True)

PathOpt = Annotated[
    Path | None,
    typer.Option(
        "--path", metavar="P", help="The workspace's path (a relative path is made absolute).", show_default=False
    ),
]
WorktreeOpt = Annotated[
    Path | None,
    typer.Option("--worktree", metavar="W", help="The git worktree the workspace's tasks run in.", show_default=False),
]
BranchOpt = Annotated[str, typer.Option("--branch", metavar="B", help="The git branch of the workspace.")]
CreateWorktreeOpt = Annotated[
    bool,
    typer.Option(
        "--create-worktree",
        help="Create the --worktree directory if it does not exist (empty: clone or `git worktree add` into it).",
    ),
]
ExistOkOpt = Annotated[
    bool, typer.Option("--exist-ok", help="Succeed if the workspace exists already (and leave it unchanged).")
]


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The new workspace's name.", show_default=False)],
    path: PathOpt = None,
    worktree: WorktreeOpt = None,
    branch: BranchOpt = "",
    create_worktree: CreateWorktreeOpt = False,
    exist_ok: ExistOkOpt = False,
) -> None:
    """Create a workspace.

    Makes its directory and workspace.json in the store. A --worktree must be an existing directory (the tasks'
    commands run there), unless --create-worktree makes it.
    """
    from atlas_tasks.cli import _render

    worktree_path = _absolute(worktree)
    missing = bool(worktree_path) and _check_worktree(Path(worktree_path), create_worktree)
    store = state(ctx).store()
    started = datetime.now(UTC)
    ws = store.create_workspace(
        name, path=_absolute(path), worktree_path=worktree_path, branch=branch, exist_ok=exist_ok
    )
    # With --exist-ok the store hands back the existing workspace: its creation time tells which case this was.
    fresh = ws.created_at is not None and ws.created_at >= started
    verb = "created workspace" if fresh else "workspace already exists:"
    from atlas_tasks.store.capabilities import LocalFiles

    where = store.workspace_path(name) if isinstance(store, LocalFiles) else repr(store)
    _render.message(f"{verb} {name} ({where})")
    if missing and fresh:
        _make_worktree(Path(worktree_path))
        _render.message(f"created the worktree directory {worktree_path} (empty: clone or `git worktree add` into it)")


def _check_worktree(worktree: Path, create: bool) -> bool:
    """Whether the worktree must be created; refuses a missing one without ``create``, and a non-directory."""
    from atlas_tasks.errors import InvalidValueError

    if worktree.is_dir():
        return False
    if worktree.exists() or worktree.is_symlink():
        raise InvalidValueError("--worktree", str(worktree), "it is not a directory; give the directory of a checkout")
    if not create:
        raise InvalidValueError(
            "--worktree",
            str(worktree),
            "no such directory (the tasks' commands, git steps included, run in the worktree); give the directory "
            "of your checkout, or add --create-worktree to create an empty one there",
        )
    return True


def _make_worktree(worktree: Path) -> None:
    from atlas_tasks.errors import InvalidValueError

    try:
        worktree.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidValueError(
            "--worktree",
            str(worktree),
            f"cannot create it ({exc.strerror}); the workspace was created: create the directory yourself",
        ) from None


@app.command("list")
def list_workspaces(ctx: typer.Context, all_repos: AllReposOpt = False, as_json: JsonOpt = False) -> None:
    """List the workspaces.

    Sorted by name; unreadable ones are reported on stderr (and under "errors" with --json). With --all-repos, the
    workspaces of every store under the home, each with the repository whose store holds it.
    """
    from atlas_tasks.cli import _render
    from atlas_tasks.views import documents as _documents

    sources = every_store(ctx) if all_repos else [("", state(ctx).store())]
    rows: list[tuple[str, Any, Workspace]] = []  # (repository label, store, workspace)
    errors: list[AtlasTasksError] = []
    for label, store in sources:
        found = store.list_workspaces()
        rows.extend((label, store, ws) for ws in found)
        errors.extend(found.errors)
    workspaces = [ws for _, _, ws in rows]
    counts = [_documents.workspace_task_count(store, ws) for _, store, ws in rows]
    if as_json:
        document = _render.workspace_list_document(workspaces, errors, counts)
        if all_repos:  # which store each workspace lives in (repo None: the legacy tree)
            document["stores"] = [{"store": str(store.home), "repo": label or None} for label, store, _ in rows]
        _render.write_json(document)
    elif workspaces:
        _render.print_workspaces(
            workspaces,
            datetime.now(UTC),
            repos=[label for label, _, _ in rows] if all_repos else None,
            counts=counts,
        )
    elif not errors:
        note("no workspaces yet; create one with `atlas-tasks workspace create NAME`")
    for exc in errors:
        warn(exc.message)


NameArg = Annotated[
    str,
    typer.Argument(metavar="NAME", help="The workspace's name.", show_default=False, autocompletion=complete_workspace),
]


@app.command("show")
def show(ctx: typer.Context, name: NameArg, as_json: JsonOpt = False) -> None:
    """Show a workspace: its fields and its tasks with their current status.

    The statuses are read from the tasks themselves (a crashed run shows as interrupted (crashed)), not from the
    task refs of workspace.json, which need not list every task (docs/durability.md). --json prints
    workspace.json as stored.
    """
    from atlas_tasks.cli import _render
    from atlas_tasks.views import display as _display

    store = state(ctx).store()
    ws = store.get_workspace(name)
    if as_json:
        _render.write_json(_render.workspace_document(ws))
        return
    now = datetime.now(UTC)
    tasks = store.list(name)
    _render.print_workspaces([ws], now, counts=[len(tasks)])
    rows = [(name, task) for task in tasks]
    states = _display.display_states(store, rows, now=now)
    _render.print_workspace_tasks([_display.state_of(states, name, task) for _, task in rows])
    for exc in tasks.errors:
        warn(exc.message)


@app.command("close")
def close(ctx: typer.Context, name: NameArg) -> None:
    """Mark a workspace closed (its tasks and files stay)."""
    from atlas_tasks.cli import _render

    state(ctx).store().set_workspace_status(name, "closed")
    _render.message(f"closed workspace {name}")


def _absolute(path: Path | None) -> str:
    # A relative path means nothing to the next process that reads workspace.json from another directory.
    return "" if path is None else str(path.expanduser().absolute())
