"""``atlas-tasks templates``: the task templates, and exactly what each of their steps runs.

A built-in template runs real ``git`` and ``gh`` commands in the workspace's worktree (commit, push, pull request,
CI); a newcomer must be able to see that before the first ``new --run``, so the listing shows every step with what
it executes, and ``templates show NAME`` adds timeouts, prompts and ``--json``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from atlas_tasks.cli._errors import note, warn
from atlas_tasks.cli._options import JsonOpt
from atlas_tasks.cli._state import state
from atlas_tasks.cli._text import printable

if TYPE_CHECKING:
    from atlas_tasks.errors import TemplateError
    from atlas_tasks.templates import StepPlan, Template

app = typer.Typer(
    name="templates",
    help="List the task templates and what each step runs (built-in ones and <home>/templates/*.json).",
    invoke_without_command=True,
)

NameArg = Annotated[
    str, typer.Argument(metavar="NAME", help="Template name (`atlas-tasks templates` lists them).", show_default=False)
]

_WHERE = "in the workspace's worktree"
_AI = "the AI command (new --ai-command or $ATLAS_TASKS_AI_COMMAND), prompt on stdin"


def _emit(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _templates(ctx: typer.Context) -> tuple[list[Template], list[TemplateError]]:
    """The readable templates, and an error for each user template that cannot be read (never hidden, never fatal:
    one broken file must not hide the built-in templates)."""
    from atlas_tasks.errors import TemplateError
    from atlas_tasks.templates import load_template, template_names

    current = state(ctx)
    home = current.templates_home()
    if current.is_file_store():
        current.warn_if_missing(home)
    found: list[Template] = []
    errors: list[TemplateError] = []
    for name in template_names(home):
        try:
            found.append(load_template(home, name))
        except TemplateError as exc:
            errors.append(exc)
    return found, errors


def _plans(template: Template) -> list[StepPlan]:
    from atlas_tasks.templates import plan_step

    return [plan_step(step, template.validation_commands) for step in template.steps]


def _runs(template: Template) -> list[str]:
    from atlas_tasks.templates import programs

    found: list[str] = []
    for plan in _plans(template):
        for program in programs(plan.commands, shell=plan.shell):
            if program not in found:
                found.append(program)
    return found


def _summary(plan: StepPlan) -> list[str]:
    """One line per command (or one line saying what else happens) for the listing."""
    if plan.action == "commands":
        return [f"$ {c}" for c in plan.commands]
    if plan.action == "validation_commands":
        defaults = [f"$ {c}" for c in plan.commands]
        return defaults or ["the task's validation commands (new --validate CMD)"]
    if plan.action == "ai":
        return ["AI step: the --ai-command, prompt on stdin"]
    if plan.action == "human":
        return ["waits for a person: atlas-tasks approve / reject"]
    return ["nothing to run: the step fails (give it commands in the template)"]


@app.callback()
def templates(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List the task templates, each step with what it runs (built-in ones and <home>/templates/*.json).

    The built-in bugfix, feature and commit templates run real git and gh commands (commit, push, pull request,
    CI) in the workspace's worktree. `atlas-tasks templates show NAME` prints timeouts and prompts too.
    """
    if ctx.invoked_subcommand is not None:
        return
    _list(ctx, as_json)


@app.command("list")
def list_templates(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Same as `atlas-tasks templates`."""
    _list(ctx, as_json)


def _list(ctx: typer.Context, as_json: bool) -> None:
    from atlas_tasks.cli import _render

    found, errors = _templates(ctx)
    if as_json:
        _render.write_json(
            {
                "templates": [
                    {
                        "name": t.name,
                        "description": t.description,
                        "source": t.source,
                        "steps": [s.get("name", "") for s in t.steps],
                        "runs": _runs(t),
                        "step_actions": [
                            {"name": s.get("name", ""), "type": s.get("type", ""), **_plan_document(p)}
                            for s, p in zip(t.steps, _plans(t), strict=True)
                        ],
                    }
                    for t in found
                ],
                "errors": [{"name": e.name, "message": e.message} for e in errors],
            }
        )
        for exc in errors:
            warn(exc.message)
        return
    for number, t in enumerate(found):
        if number:
            _emit()
        source = "built-in" if t.source == "built-in" else printable(t.source)
        _emit(f"{printable(t.name)} ({source}): {printable(t.description)}".rstrip(": "))
        name_width = max((len(printable(str(s.get("name", "")))) for s in t.steps), default=0)
        type_width = max((len(printable(str(s.get("type", "")))) for s in t.steps), default=0)
        for position, (step, plan) in enumerate(zip(t.steps, _plans(t), strict=True), 1):
            lead = (
                f"  {position:>2}  {printable(str(step.get('name', ''))):<{name_width}}  "
                f"{printable(str(step.get('type', ''))):<{type_width}}  "
            )
            for index, line in enumerate(_summary(plan)):
                _emit((lead if index == 0 else " " * len(lead)) + printable(line))
        runs = _runs(t)
        if runs:
            _emit(f"  runs: {', '.join(printable(p) for p in runs)} {_WHERE}")
    for exc in errors:
        warn(exc.message)
    note(
        f"commands run {_WHERE} (or `run --workdir PATH`); "
        "`atlas-tasks templates show NAME` adds timeouts and prompts; docs/templates.md: write your own"
    )


def _plan_document(plan: StepPlan) -> dict[str, Any]:
    return {"action": plan.action, "commands": plan.commands, "shell": plan.shell, "prompt": plan.prompt}


@app.command("show")
def show(ctx: typer.Context, name: NameArg, as_json: JsonOpt = False) -> None:
    """Every step of one template: its type, timeout and the exact commands it runs (or the AI prompt)."""
    from atlas_tasks.cli import _render
    from atlas_tasks.templates import load_template

    current = state(ctx)
    home = current.templates_home()
    if current.is_file_store():
        current.warn_if_missing(home)
    t = load_template(home, name)
    plans = _plans(t)
    if as_json:
        _render.write_json(
            {
                "name": t.name,
                "description": t.description,
                "source": t.source,
                "validation_commands": t.validation_commands,
                "runs": _runs(t),
                "steps": [
                    {
                        "name": s.get("name", ""),
                        "type": s.get("type", ""),
                        "description": s.get("description", ""),
                        "timeout_seconds": s.get("timeout_seconds", 0),
                        **_plan_document(p),
                    }
                    for s, p in zip(t.steps, plans, strict=True)
                ],
            }
        )
        return
    _emit(f"template {printable(t.name)} ({'built-in' if t.source == 'built-in' else printable(t.source)})")
    if t.description:
        _emit(printable(t.description))
    runs = _runs(t)
    if runs:
        _emit(f"runs: {', '.join(printable(p) for p in runs)} {_WHERE}")
    for position, (step, plan) in enumerate(zip(t.steps, plans, strict=True), 1):
        _emit()
        _emit(_step_heading(position, step, plan))
        for line in _step_detail(plan):
            _emit("   " + line)
    note(
        f"commands run {_WHERE} (or `run --workdir PATH`), one by one, with ATLAS_HOME, ATLAS_WORKSPACE, "
        "ATLAS_TASK_ID, ATLAS_TASK_DESCRIPTION and ATLAS_STEP_NAME set; the first failing command fails the step"
    )


def _step_heading(position: int, step: dict[str, Any], plan: StepPlan) -> str:
    facts = [printable(str(step.get("type", "")))]
    timeout = int(step.get("timeout_seconds") or 0)
    if plan.action != "human":
        facts.append(f"timeout {timeout}s" if timeout else "no timeout")
    if plan.commands and plan.shell:
        facts.append("through /bin/sh")
    heading = f"{position}. {printable(str(step.get('name', '')))} ({', '.join(facts)})"
    description = str(step.get("description", ""))
    return heading + (f": {printable(description)}" if description else "")


def _step_detail(plan: StepPlan) -> list[str]:
    if plan.action == "commands":
        return [f"$ {printable(c)}" for c in plan.commands]
    if plan.action == "validation_commands":
        lines = ["runs the task's validation commands, given with `new --validate CMD` (repeatable)"]
        if plan.commands:
            lines.append("without --validate, the template's:")
            lines += [f"$ {printable(c)}" for c in plan.commands]
        else:
            lines.append("without --validate the step fails: it has nothing to run")
        return lines
    if plan.action == "ai":
        return [f"AI step: runs {_AI}:"] + [f"  | {printable(line)}".rstrip() for line in plan.prompt.splitlines()]
    if plan.action == "human":
        return [
            "human step: the run stops at awaiting_approval until `atlas-tasks approve` (or `reject`)",
            f"asks: {printable(plan.prompt)}",
        ]
    return ["nothing to run: the step fails (give it commands in the template)"]
