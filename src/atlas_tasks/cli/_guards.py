"""`atlas-tasks deadline`: extend, set or clear a task's run deadline (see docs/runs.md, "Deadlines")."""

from __future__ import annotations

from typing import Annotated

import typer

from atlas_tasks.cli._options import JsonOpt, TaskArg, WorkspaceArg
from atlas_tasks.cli._runs import ReasonOpt, _emit
from atlas_tasks.cli._state import state


def deadline(
    ctx: typer.Context,
    workspace: WorkspaceArg,
    task_id: TaskArg,
    extend: Annotated[
        str, typer.Option("--extend", metavar="DUR", help="Move the deadline later by DUR (90s, 15m, 2h, 1d).")
    ] = "",
    at: Annotated[str, typer.Option("--at", metavar="WHEN", help="Set it to an ISO time or a duration from now.")] = "",
    clear: Annotated[bool, typer.Option("--clear", help="Remove the deadline.")] = False,
    reason: ReasonOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """Extend, set or clear the deadline of a task's runs (a run past it is stopped, and refused until then)."""
    from atlas_tasks.cli import _render
    from atlas_tasks.errors import GuardValueError
    from atlas_tasks.lifecycle import deadlines
    from atlas_tasks.models import utcnow

    if sum((bool(extend), bool(at), clear)) != 1:
        raise typer.BadParameter("give exactly one of --extend DUR, --at WHEN or --clear", param_hint="--extend")
    store = state(ctx).store()
    try:
        if clear:
            when = None
        elif at:
            when = deadlines.parse_when(at)
        else:
            task = store.get(workspace, task_id)
            # Extending a passed deadline counts from now: the point is to give the run time again.
            base = max(deadlines.deadline_of(task) or utcnow(), utcnow())
            when = base + deadlines.parse_duration(extend)
    except GuardValueError as exc:
        raise typer.BadParameter(exc.reason, param_hint="--at" if at else "--extend") from None
    task = deadlines.set_deadline(store, workspace, task_id, when, reason or ("cleared" if clear else "extended"))
    if as_json:
        _render.write_json(_render.task_document(task))
        return
    text = "no deadline" if when is None else f"deadline {task.metadata[deadlines.DEADLINE]}"
    _emit(f"task {task_id} in {workspace}: {text}")
