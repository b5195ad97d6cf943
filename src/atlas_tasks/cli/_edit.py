"""``set`` and ``delete``: change a task's configuration, or remove a task, while no runner holds it.

Also the checks ``new`` and ``set`` share: a description and commands are refused when they cannot work (an
empty description, a NUL byte, unbalanced quotes), and :func:`config_problems` says which steps a task cannot run
as configured (an AI step without an AI command, a validation step without commands).
"""

from __future__ import annotations

import os
import shlex
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from atlas_tasks.cli._errors import error, note, warn
from atlas_tasks.cli._options import JsonOpt, TaskArg, WorkspaceArg
from atlas_tasks.cli._state import state
from atlas_tasks.errors import InvalidValueError

if TYPE_CHECKING:
    from atlas_tasks.cli._state import CliStore
    from atlas_tasks.models import Task

#: Where the runner looks for the AI command when the task has none (see atlas_tasks.executors).
AI_COMMAND_ENV = "ATLAS_TASKS_AI_COMMAND"
# Step commands get the description in $ATLAS_TASK_DESCRIPTION; Linux refuses to start a program with one
# environment string over MAX_ARG_STRLEN (128 KiB), so every command step of such a task would fail.
_MAX_DESCRIPTION_BYTES = 128 * 1024 - len("ATLAS_TASK_DESCRIPTION=") - 1


def check_description(text: str, what: str = "--description") -> str:
    """Return ``text`` if it can be a task's description, else raise InvalidValueError."""
    if not text.strip():
        raise InvalidValueError(what, text, "a task needs a description: say what it is about")
    if "\x00" in text:
        raise InvalidValueError(what, text, "it contains a NUL byte, which no step command could be given")
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > _MAX_DESCRIPTION_BYTES:
        raise InvalidValueError(
            what,
            text,
            f"it is {size} bytes; step commands receive it in $ATLAS_TASK_DESCRIPTION, which Linux limits to "
            "128 KiB: keep it shorter and put long text in a file",
        )
    return text


def check_command(what: str, command: str) -> str:
    """Return ``command`` if the runner can split it into a program and its arguments, else raise."""
    if "\x00" in command:
        raise InvalidValueError(what, command, "it contains a NUL byte, which no program can be given")
    try:
        words = shlex.split(command)
    except ValueError as exc:
        reason = str(exc).lower()
        raise InvalidValueError(
            what, command, f"{reason}: it is split into words like a shell would, so balance its quotes"
        ) from None
    if not words:
        raise InvalidValueError(what, command, "it is empty: give the program to run")
    return command


def config_problems(task: Task, set_cmd: str = "") -> list[str]:
    """What would make the task's run fail at a step, as configured now (AI command from the task or the environment).

    Mirrors what the runner does per step type (:func:`atlas_tasks.executors.execute`). ``set_cmd``, when given, is
    the `atlas-tasks set WS ID` that can fix the task later, named in the advice.
    """
    from atlas_tasks.executors import AI_TYPES, COMMAND_TYPES

    ai_command = task.config.variables.get("ai_command") or os.environ.get(AI_COMMAND_ENV, "")
    ai_steps: list[str] = []
    problems: list[str] = []
    for step in task.steps:
        kind = str(step.type)
        if kind == "human":
            continue
        commands = step.commands or (task.config.validation_commands if kind == "validation" else [])
        if kind in COMMAND_TYPES and commands:
            continue
        if kind in AI_TYPES:
            if not ai_command:
                ai_steps.append(step.name)
        elif kind == "validation":
            fix = f"`{set_cmd} --validate CMD` gives it some" if set_cmd else "give --validate CMD"
            problems.append(f"step {step.name!r} (validation) has no commands to run: {fix}")
        else:
            problems.append(f"step {step.name!r} ({kind}) has no commands in its template, so it will fail")
    if ai_steps:
        names = ", ".join(repr(name) for name in ai_steps)
        fix = f"`{set_cmd} --ai-command CMD` sets one" if set_cmd else "give --ai-command CMD"
        problems.insert(
            0,
            f"{'steps' if len(ai_steps) > 1 else 'step'} {names} {'need' if len(ai_steps) > 1 else 'needs'} an AI "
            f"command and none is configured: {fix} "
            f"(it gets the prompt on stdin, e.g. 'claude -p'), or set ${AI_COMMAND_ENV} where the task runs",
        )
    return problems


def _lease_check(store: CliStore, workspace: str, task_id: str) -> None:
    from atlas_tasks.errors import TaskRunningError

    holder = store.lease_holder(workspace, task_id)
    if holder is not None:
        raise TaskRunningError(workspace, task_id, holder)


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(repr(v) for v in value) if value else "none"
    return repr(value) if value else "none"


def set_task(
    ctx: typer.Context,
    workspace: WorkspaceArg,
    task_id: TaskArg,
    ai_command: Annotated[
        str | None,
        typer.Option(
            "--ai-command",
            metavar="CMD",
            help="Command AI steps run, with the prompt on stdin ('' removes it: $ATLAS_TASKS_AI_COMMAND applies).",
            show_default=False,
        ),
    ] = None,
    validate: Annotated[
        list[str] | None,
        typer.Option(
            "--validate",
            metavar="CMD",
            help="A validation command (repeatable; replaces the list).",
            show_default=False,
        ),
    ] = None,
    no_validate: Annotated[bool, typer.Option("--no-validate", help="Remove every validation command.")] = False,
    description: Annotated[
        str | None, typer.Option("--description", "-d", metavar="TEXT", help="A new description.", show_default=False)
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a task's configuration (AI command, validation commands, description) while no runner holds it.

    The next `atlas-tasks run` uses the new values. The change goes into the task's log; the audit trail of statuses
    is untouched (nothing happened to the task's status). Finished tasks keep the configuration they ran with.
    """
    # click's UsageError lives in typer's private copy of click; a usage error is exit code 2 with the usage line.
    from typer._click.exceptions import UsageError

    from atlas_tasks.cli import _render
    from atlas_tasks.errors import TaskFinishedError
    from atlas_tasks.transitions import is_terminal

    if validate is not None and no_validate:
        raise UsageError("give --validate or --no-validate, not both", ctx)
    if ai_command is None and validate is None and not no_validate and description is None:
        raise UsageError("nothing to change: give --ai-command, --validate, --no-validate or --description", ctx)
    if ai_command:
        check_command("--ai-command", ai_command)
    for command in validate or []:
        check_command("--validate", command)
    if description is not None:
        check_description(description)
    store = state(ctx).store()
    _lease_check(store, workspace, task_id)
    changed: dict[str, tuple[Any, Any]] = {}

    def change(task: Task) -> None:
        # Again under the task's lock: a runner that started since the first check would run with a half-old
        # configuration (and its next checkpoint would conflict with this write).
        _lease_check(store, workspace, task.id)
        if is_terminal(task.status):
            raise TaskFinishedError(workspace, task.id, str(task.status))
        changed.clear()
        if ai_command is not None:
            before = task.config.variables.get("ai_command", "")
            if ai_command:
                task.config.variables["ai_command"] = ai_command
            else:
                task.config.variables.pop("ai_command", None)
            changed["ai_command"] = (before, ai_command)
        if validate is not None or no_validate:
            changed["validation_commands"] = (list(task.config.validation_commands), list(validate or []))
            task.config.validation_commands = list(validate or [])
        if description is not None:
            changed["description"] = (task.description, description)
            task.description = description

    task = store.modify(workspace, task_id, change)
    store.append_log(
        workspace,
        task.id,
        {
            "level": "info",
            "event": "configuration changed",
            "step_name": "",
            "changed": {key: {"from": old, "to": new} for key, (old, new) in changed.items()},
        },
    )
    if as_json:
        _render.write_json(_render.task_document(task))
        return
    for key, (old, new) in changed.items():
        if key == "description":
            sys.stdout.write(f"{task.id}: description changed\n")
        else:
            sys.stdout.write(f"{task.id}: {key.replace('_', ' ')} {_shown(new)} (was {_shown(old)})\n")
    for problem in config_problems(task, f"atlas-tasks set {workspace} {task.id}"):
        warn(f"the run will fail: {problem}")
    if str(task.status) != "pending":
        note(f"`atlas-tasks run {workspace} {task.id}` runs it with the new configuration")


def delete(
    ctx: typer.Context,
    workspace: WorkspaceArg,
    task_id: TaskArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a task with its log and artifacts, for good. Refused while a runner holds it.

    Asks for confirmation on a terminal; elsewhere (a script, a pipe) it needs --yes.
    """
    import socket

    from atlas_tasks.errors import CorruptTaskError
    from atlas_tasks.models import utcnow

    store = state(ctx).store()
    # Hold the task's run lease while deleting: no runner can start on it meanwhile, and a live one is named.
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": utcnow().isoformat(), "deleting": True}
    lease = store.acquire_lease(workspace, task_id, holder)
    try:
        try:
            task = store.get(workspace, task_id)
            state_of = f"{task.status}, {task.description[:60]!r}"
        except CorruptTaskError:
            state_of = "unreadable"  # deleting a broken task is one way out of it
        artifacts = store.list_artifacts(workspace, task_id)
        log_lines = len(store.read_log(workspace, task_id))
        what = (
            f"task {task_id} in {workspace} ({state_of}) with its log ({log_lines} line(s)) and "
            f"{len(artifacts)} artifact(s)"
        )
        if not yes:
            if not sys.stdin.isatty():
                # No one to ask (a script, a pipe): deleting for good needs the caller to say so.
                error(f"not deleting {task_id}: nobody to confirm it (stdin is not a terminal); add --yes")
                raise typer.Exit(1)
            if not typer.confirm(f"delete {what}?", default=False, err=True):
                note("nothing deleted")
                raise typer.Exit(1)
        from atlas_tasks.store.capabilities import LocalFiles

        where = f" ({store.task_path(workspace, task_id)})" if isinstance(store, LocalFiles) else ""
        store.delete(workspace, task_id)
    finally:
        lease.release()
    sys.stdout.write(f"deleted {what}{where}\n")
