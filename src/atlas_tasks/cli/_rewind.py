"""``retry`` (start a task again from a step, in place) and ``fork`` (a new task from a step of another).

Thin: the work is :mod:`atlas_tasks.lifecycle.rewind`; ``--run`` runs through the same code as ``run``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from atlas_tasks.cli._options import JsonOpt, TaskArg, WorkspaceArg
from atlas_tasks.cli._state import state

if TYPE_CHECKING:
    from atlas_tasks.models import Task

FromStepOpt = Annotated[
    str,
    typer.Option(
        "--from-step",
        metavar="N|NAME|failed|last",
        help="The step to start from: its number (1 is the first), its name, failed (the first failed step) or "
        "last (the last step that ran).",
    ),
]
ReasonOpt = Annotated[str, typer.Option("--reason", "-r", metavar="TEXT", help="Why (kept in the task's lineage).")]
RunOpt = Annotated[bool, typer.Option("--run", help="Run the task right away, as `run` would.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print what would be reset or copied; change nothing.")]
ToWsOpt = Annotated[
    str | None,
    typer.Option("--to-workspace", metavar="WS", help="Create the fork in this workspace.", show_default=False),
]


def _step(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def _plan(task: Task, index: int, *, reset: str) -> dict[str, Any]:
    return {
        "task_id": task.id,
        "from_step": index + 1,
        "step_name": task.steps[index].name,
        "kept": [{"step": i + 1, "name": s.name, "status": str(s.status)} for i, s in enumerate(task.steps[:index])],
        reset: [{"step": i + 1, "name": s.name} for i, s in enumerate(task.steps) if i >= index],
    }


def _print_plan(verb: str, plan: dict[str, Any], reset: str) -> None:
    typer.echo(f"would {verb} {plan['task_id']} from step {plan['from_step']} ({plan['step_name']})")
    for step in plan["kept"]:
        typer.echo(f"  keep   {step['step']}. {step['name']} ({step['status']})")
    for step in plan[reset]:
        typer.echo(f"  {'reset' if reset == 'reset' else 'redo'}  {step['step']}. {step['name']}")
    for name in plan.get("artifacts", []):
        typer.echo(f"  copy   {name}")


def _lineage(task: Task) -> dict[str, Any]:
    from atlas_tasks.lifecycle import rewind

    return rewind.document(task)


def retry(
    ctx: typer.Context,
    workspace: WorkspaceArg,
    task_id: TaskArg,
    from_step: FromStepOpt,
    reason: ReasonOpt = "",
    run: RunOpt = False,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Start a task again from a step, in place (the same id): that step and every later one go back to pending;
    earlier steps and every recorded result are kept. A finished task cannot be retried: fork it.
    """
    from atlas_tasks.cli import _render
    from atlas_tasks.lifecycle import rewind

    store = state(ctx).store()
    step = _step(from_step)
    if dry_run:
        task, index = rewind.plan_retry(store, workspace, task_id, step)
        plan = {**_plan(task, index, reset="reset"), "dry_run": True}
        _render.write_json(plan) if as_json else _print_plan("retry", plan, "reset")
        return
    task = rewind.retry_from(store, workspace, task_id, step, reason=reason)
    info = task.metadata[rewind.RETRIED_FROM]
    if as_json and not run:
        _render.write_json(
            {
                "task_id": task.id,
                "workspace": workspace,
                "status": str(task.status),
                "current_step": task.current_step + 1,
                "lifecycle": _lineage(task),
            }
        )
        return
    typer.echo(f"{task.id} will run from step {info['step_index'] + 1} ({info['step_name']}); now {task.status}")
    if run:
        from atlas_tasks.cli._runs import _run

        _run(store, workspace, task_id)
    else:
        typer.echo(f"run it with `atlas-tasks run {workspace} {task.id}`")


def fork(
    ctx: typer.Context,
    workspace: WorkspaceArg,
    task_id: TaskArg,
    from_step: FromStepOpt,
    reason: ReasonOpt = "",
    to_workspace: ToWsOpt = None,
    run: RunOpt = False,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Fork a task from a step as a NEW task: steps before it carry their results, every artifact is copied, the
    rest is pending. Prints the new task's id. The source only gains an entry in its forks list.
    """
    from atlas_tasks.cli import _render
    from atlas_tasks.lifecycle import rewind

    store = state(ctx).store()
    step = _step(from_step)
    if dry_run:
        task, index = rewind.plan_fork(store, workspace, task_id, step)
        if to_workspace:
            store.get_workspace(to_workspace)  # a clear WorkspaceNotFoundError for a typo
        plan = {
            **_plan(task, index, reset="pending"),
            "to_workspace": to_workspace or workspace,
            "artifacts": sorted(store.list_artifacts(workspace, task_id)),
            "dry_run": True,
        }
        _render.write_json(plan) if as_json else _print_plan("fork", plan, "pending")
        return
    new = rewind.fork(store, workspace, task_id, step, reason=reason, to_workspace=to_workspace)
    target = to_workspace or workspace
    if as_json and not run:
        _render.write_json(
            {"task_id": new.id, "workspace": target, "status": str(new.status), "lifecycle": _lineage(new)}
        )
        return
    typer.echo(new.id)
    if run:
        from atlas_tasks.cli._runs import _run

        _run(store, target, new.id)
