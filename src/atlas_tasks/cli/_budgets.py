"""``atlas-tasks budget``: show a task's token/cost budget and spend, or raise (lower) it as a recorded change; and
the parsing of ``new --budget-tokens/--budget-cost``. A thin layer over :mod:`atlas_tasks.lifecycle.budgets`.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from atlas_tasks.cli._options import JsonOpt, TaskArg, WorkspaceArg
from atlas_tasks.cli._state import state

if TYPE_CHECKING:
    from atlas_tasks.models import Task


def parse_pair(option: str, text: str, *, whole: bool) -> tuple[float | None, float | None]:
    """``SOFT:HARD`` (either side may be empty) or ``HARD`` alone, as given to ``new --budget-tokens/--budget-cost``.

    Raises:
        typer.BadParameter: anything else (a usage error naming ``option``).
    """
    soft_text, sep, hard_text = text.partition(":")
    if not sep:
        soft_text, hard_text = "", text

    def number(part: str) -> float | None:
        part = part.strip()
        if not part:
            return None
        try:
            value: float = int(part) if whole else float(part)
        except ValueError:
            kind = "a whole number" if whole else "a number"
            raise typer.BadParameter(f"{part!r} is not {kind}; give SOFT:HARD or HARD", param_hint=option) from None
        if not value > 0 or value == float("inf"):
            raise typer.BadParameter(f"{part!r}: a limit must be a positive number", param_hint=option)
        return value

    soft, hard = number(soft_text), number(hard_text)
    if soft is None and hard is None:
        raise typer.BadParameter("give SOFT:HARD, SOFT: or HARD", param_hint=option)
    if soft is not None and hard is not None and soft > hard:
        raise typer.BadParameter(f"the soft limit {soft:g} is above the hard limit {hard:g}", param_hint=option)
    return soft, hard


def apply_new_options(task: Task, tokens: str, cost: str) -> None:
    """Set the budget ``new --budget-tokens/--budget-cost`` gave, over the template's (limit by limit)."""
    from atlas_tasks.errors import InvalidValueError
    from atlas_tasks.lifecycle import budgets

    if not tokens and not cost:
        return
    given: dict[str, Any] = {}
    if tokens:
        given["tokens_soft"], given["tokens_hard"] = parse_pair("--budget-tokens", tokens, whole=True)
    if cost:
        given["cost_soft"], given["cost_hard"] = parse_pair("--budget-cost", cost, whole=False)
    try:
        task.metadata[budgets.BUDGET] = budgets.merge(task.metadata.get(budgets.BUDGET), **given)
    except InvalidValueError as exc:  # against the template's other limit: say it about the option given
        option = "--budget-tokens" if exc.what.startswith("--tokens") else "--budget-cost"
        raise typer.BadParameter(f"{exc.reason} (the template's budget)", param_hint=option) from None


def budget(
    ctx: typer.Context,
    workspace: WorkspaceArg,
    task_id: TaskArg,
    tokens_soft: Annotated[
        int | None, typer.Option("--tokens-soft", metavar="N", help="Soft token limit: a warning when reached.")
    ] = None,
    tokens_hard: Annotated[
        int | None, typer.Option("--tokens-hard", metavar="N", help="Hard token limit: the run stops when reached.")
    ] = None,
    cost_soft: Annotated[
        float | None, typer.Option("--cost-soft", metavar="USD", help="Soft cost limit in USD: a warning.")
    ] = None,
    cost_hard: Annotated[
        float | None, typer.Option("--cost-hard", metavar="USD", help="Hard cost limit in USD: the run stops.")
    ] = None,
    reason: Annotated[
        str, typer.Option("--reason", "-r", metavar="TEXT", help="Why (kept in metadata.budget_changes and the log).")
    ] = "",
    as_json: JsonOpt = False,
) -> None:
    """Show a task's token/cost budget and spend; with a limit option, raise (or lower) it as a recorded change.

    A run stopped by a hard limit continues with `atlas-tasks run` once the limit is above the spend.
    """
    from atlas_tasks.cli import _render
    from atlas_tasks.lifecycle import budgets

    store = state(ctx).store()
    given = (tokens_soft, tokens_hard, cost_soft, cost_hard)
    changed = any(value is not None for value in given)
    if changed:
        task = budgets.set_budget(
            store,
            workspace,
            task_id,
            tokens_soft=tokens_soft,
            tokens_hard=tokens_hard,
            cost_soft=cost_soft,
            cost_hard=cost_hard,
            reason=reason or "budget changed",
        )
    else:
        task = store.get(workspace, task_id)
    if as_json:
        _render.write_json(budget_document(workspace, task, changed=changed))
        return
    out = sys.stdout
    if changed:
        out.write(f"budget of {task.id} changed\n")
    lines = budgets.describe(task) or [("budget", "none set, and no step reported usage")]
    width = max(len(label) for label, _ in lines)
    for label, text in lines:
        out.write(f"{label + ':':<{width + 1}} {text}\n")
    over = budgets.exceeded(task)
    if over is not None and changed is False:
        out.write(f"raise it with `atlas-tasks budget {workspace} {task.id} --{_flag(over[0])}-hard N`\n")
    elif changed and over is None and str(task.status) == "interrupted":
        out.write(f"continue it with `atlas-tasks run {workspace} {task.id}`\n")
    out.flush()


def _flag(limit: str) -> str:
    return "tokens" if limit == "tokens" else "cost"


def budget_document(workspace: str, task: Task, *, changed: bool) -> dict[str, Any]:
    """``budget --json``: ``{"workspace", "task_id", "status", "changed", "budget", "usage", "warnings",
    "exceeded", "changes"}``."""
    from atlas_tasks.lifecycle import budgets

    over = budgets.exceeded(task)
    warnings = task.metadata.get(budgets.WARNINGS)
    changes = task.metadata.get(budgets.CHANGES)
    return {
        "workspace": workspace,
        "task_id": task.id,
        "status": str(task.status),
        "changed": changed,
        "budget": budgets.limits(task),
        "usage": budgets.spend(task),
        "warnings": warnings if isinstance(warnings, list) else [],
        "exceeded": None if over is None else {"limit": over[0], "used": over[1], "hard": over[2]},
        "changes": changes if isinstance(changes, list) else [],
    }
