"""Task ids as people type them, and shell completion of workspace names and task ids.

Every command that takes a task id resolves it here (through :data:`atlas_tasks.cli._options.TaskArg`), so they all
accept the same forms:

* the exact id (``task-20261204-052952``): checked first and cheaply (one read of that task, no listing);
* ``latest``: the workspace's newest task (unless a task is really called ``latest``);
* a fragment: the start of the id, the start of what follows ``task-`` (``20261204-0529``, the first characters
  of a uuid) or its end (``052952``). It must match exactly one task; more matches are an error listing them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# typer resolves the callbacks' annotations at run time: typer.Context must be importable here, not only for mypy.
import typer

from atlas_tasks.errors import AmbiguousTaskIdError, AtlasTasksError, TaskNotFoundError

if TYPE_CHECKING:
    from atlas_tasks.cli._state import CliStore, State

LATEST = "latest"
_PREFIX = "task-"


def _exists(store: CliStore, workspace: str, task_id: str) -> bool:
    """Whether ``task_id`` names a task of the workspace, without listing it (a broken task counts: it exists)."""
    # A task that cannot be read (an incomplete creation, a symlink planted in its place) is "there" too: the
    # command's own read then reports exactly what is wrong with it.
    try:
        store.get(workspace, task_id)
    except TaskNotFoundError:
        return False
    except AtlasTasksError:
        return True  # unreadable, but there
    return True


def _ids(store: CliStore, workspace: str) -> list[str]:
    """Every task id of the workspace, newest first, unreadable tasks included (they can still be deleted)."""
    # Summaries: no full task is built just to read its id.
    summaries = store.list_summaries(workspace)
    ids = [s.id for s in summaries]
    for exc in summaries.errors:
        task_id = exc.context.get("task_id")
        if isinstance(task_id, str) and task_id not in ids:
            ids.append(task_id)
    return ids


def matches(task_id: str, fragment: str) -> bool:
    """Whether ``fragment`` is a start or an end of ``task_id`` (the ``task-`` prefix may be left out)."""
    return task_id.startswith((fragment, _PREFIX + fragment)) or task_id.endswith(fragment)


def resolve_task_id(store: CliStore, workspace: str, given: str) -> str:
    """The full id of the task ``given`` names in ``workspace`` (see the module docstring for the forms).

    Raises:
        InvalidNameError: ``given`` (or the workspace name) is not a valid name.
        WorkspaceNotFoundError: no such workspace.
        TaskNotFoundError: nothing matches (the message of an unknown exact id).
        AmbiguousTaskIdError: the fragment matches several tasks; the error lists them.
    """
    from atlas_tasks.names import check_task_id  # loaded by the store anyway; `--help` need not load it

    check_task_id(given)
    if _exists(store, workspace, given):
        return given
    ids = _ids(store, workspace)
    if given == LATEST:
        if not ids:
            raise TaskNotFoundError(workspace, LATEST)
        return ids[0]
    found = [task_id for task_id in ids if matches(task_id, given)]
    if len(found) > 1:
        raise AmbiguousTaskIdError(workspace, given, found)
    if found:
        return found[0]
    store.get(workspace, given)  # raises the store's own TaskNotFoundError, with the path it looked in
    raise TaskNotFoundError(workspace, given)  # a store that found it after all: it vanished and came back


def task_callback(ctx: typer.Context, value: str) -> str:
    """The TASK argument's callback: replace what was typed by the full id (not while completing a command line)."""
    from atlas_tasks.cli._state import state

    workspace = ctx.params.get("workspace")
    if ctx.resilient_parsing or not isinstance(workspace, str):
        return value
    return resolve_task_id(state(ctx).store(), workspace, value)


def _completion_state(ctx: Any) -> State:
    """The store options of the command line being completed: the root callback has not run, its values are parsed."""
    from atlas_tasks.cli._state import State

    root = ctx.find_root()
    if isinstance(root.obj, State):
        return root.obj
    return State(
        home=root.params.get("home"),
        store_url=root.params.get("store") or None,
        repo=root.params.get("repo"),
        quiet=True,
    )


def complete_workspace(ctx: typer.Context, incomplete: str) -> list[str]:
    """Workspace names that start with what was typed (nothing at all if the store cannot be read)."""
    current = _completion_state(ctx)
    try:
        return [ws.name for ws in current.store().list_workspaces() if ws.name.startswith(incomplete)]
    except Exception:  # noqa: BLE001 - completion must never print a traceback into the user's shell
        return []
    finally:
        current.close()


def complete_task(ctx: typer.Context, incomplete: str) -> list[str]:
    """Task ids (newest first) of the workspace already on the command line that start with what was typed.

    Only starts: typer, and the shells, keep just the words that begin with the typed text. A fragment that ends an
    id needs no completion, the commands accept it as it is.
    """
    workspace = ctx.params.get("workspace")
    if not isinstance(workspace, str):
        return []
    current = _completion_state(ctx)
    try:
        return [task_id for task_id in _ids(current.store(), workspace) if task_id.startswith(incomplete)]
    except Exception:  # noqa: BLE001 - as above
        return []
    finally:
        current.close()
