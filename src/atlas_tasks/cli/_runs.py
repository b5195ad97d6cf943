"""The commands that change tasks: ``new``, ``run``/``resume``, ``approve``, ``reject``, ``abandon``, ``recover``,
and ``doctor``. Each is a thin layer over :mod:`atlas_tasks.runs` and the store; errors are handled in
:mod:`atlas_tasks.cli._errors`.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from atlas_tasks.cli._errors import error, note, warn
from atlas_tasks.cli._everywhere import AllReposOpt, every_store
from atlas_tasks.cli._ids import complete_workspace
from atlas_tasks.cli._options import JsonOpt, TaskArg, WorkspaceArg
from atlas_tasks.cli._state import state
from atlas_tasks.cli._text import printable

if TYPE_CHECKING:
    from atlas_tasks.cli._state import CliStore
    from atlas_tasks.models import Task
    from atlas_tasks.runs import StepContext
    from atlas_tasks.store.types import CheckReport

ReasonOpt = Annotated[str, typer.Option("--reason", "-r", metavar="TEXT", help="Why (kept in the audit trail).")]
OptionalWs = Annotated[
    str | None,
    typer.Argument(
        metavar="[WS]",
        help="Workspace name (default: every workspace).",
        show_default=False,
        autocompletion=complete_workspace,
    ),
]


def _emit(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


WorkdirOpt = Annotated[
    Path | None,
    typer.Option(
        "--workdir",
        metavar="DIR",
        help="Where the commands run (default: the workspace's worktree, else its path; "
        "required when it has neither: `--workdir .` for here).",
        show_default=False,
    ),
]
#: Off a terminal, a long step prints a "still running" line this often (seconds); on one, a live timer.
PROGRESS_EVERY_ENV = "ATLAS_TASKS_PROGRESS_SECONDS"


def _elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class _Progress:
    """The run's terminal output: one line per step start and one per step end, plus the elapsed time of a long
    step (on a terminal a timer updated in place; otherwise a line every ``$ATLAS_TASKS_PROGRESS_SECONDS``, 30 s by
    default). Step names and outputs are stored text: printed escaped, as everywhere else."""

    def __init__(self) -> None:
        self.tty = sys.stdout.isatty()
        try:
            self.every = float(os.environ.get(PROGRESS_EVERY_ENV) or 30)
        except ValueError:
            self.every = 30.0
        self.started = self.shown = 0.0
        self.line = ""
        self.open = False  # a terminal line without its newline yet

    def __call__(self, ctx: StepContext, what: str) -> None:
        index, total = ctx.index + 1, len(ctx.run.task.steps)
        step = ctx.run.task.steps[ctx.index]
        name = printable(step.name)
        now = time.monotonic()
        if what == "started":
            self.started = self.shown = now
            self.line = f"[{index}/{total}] {name} ({printable(str(step.type))}) ... attempt {step.attempts}"
            if self.tty:
                sys.stdout.write(self.line)
                sys.stdout.flush()
                self.open = True
            else:
                _emit(self.line)
        elif what == "running":
            if self.tty:
                sys.stdout.write(f"\r{self.line} {_elapsed(now - self.started)}\x1b[K")
                sys.stdout.flush()
            elif now - self.shown >= self.every:
                self.shown = now
                _emit(f"[{index}/{total}] {name}: running for {_elapsed(now - self.started)}")
        else:
            self.close()
            summary = _summary(ctx)
            wait = ctx.metadata.get("retry_in") if what == "retrying" else None
            label = f"retrying in {round(wait, 1):g}s" if isinstance(wait, int | float) else printable(what)
            _emit(f"[{index}/{total}] {name}: {label}" + (f" - {summary}" if summary else ""))

    def close(self) -> None:
        if self.open:
            self.open = False
            _emit("")


def _summary(ctx: StepContext) -> str:
    """A step's output as one short line: a long or multi-line output (an AI's answer) is only pointed at."""
    text = ctx.output.strip()
    if "\n" in text or len(text) > 160:
        lines = len(ctx.output.splitlines())
        where = f" in {ctx.artifact_path}" if ctx.artifact_path else ""
        return printable(f"{lines} line(s) of output{where}")
    return printable(text)


def _resume_command(store: CliStore, workspace: str, task_id: str, workdir: Path | None) -> str:
    from atlas_tasks.store.capabilities import LocalFiles

    home = ["--home", str(store.home)] if isinstance(store, LocalFiles) else []
    parts = ["atlas-tasks", *home, "run"]
    if workdir is not None:
        parts += ["--workdir", str(workdir.expanduser().absolute())]
    return shlex.join([*parts, workspace, task_id])


def _preflight(store: CliStore, workspace: str, task_id: str, workdir: Path | None) -> None:
    """Refuse before touching the task when its commands would have nowhere safe to run (WorkdirError)."""
    from atlas_tasks.executors import needs_workdir, resolve_workdir
    from atlas_tasks.transitions import is_terminal

    task = store.get(workspace, task_id)
    if is_terminal(task.status) or str(task.status) == "awaiting_approval":
        return  # `run` itself says why it cannot run
    if store.lease_holder(workspace, task_id) is not None:
        return  # `run` refuses it, naming the live runner
    if any(needs_workdir(task, step) for step in task.steps[max(task.current_step, 0) :]):
        resolve_workdir(store, workspace, workdir)


def _run(store: CliStore, workspace: str, task_id: str, workdir: Path | None = None) -> Task:
    from atlas_tasks.executors import run_task

    _preflight(store, workspace, task_id, workdir)
    progress = _Progress()
    try:
        with store.run(workspace, task_id) as live:
            _emit(f"running {task_id} in {workspace} from step {live.task.current_step + 1} of {len(live.task.steps)}")
            task = run_task(live, progress, workdir=workdir)
    except KeyboardInterrupt:
        progress.close()
        note(f"interrupted; resume with `{_resume_command(store, workspace, task_id, workdir)}`")
        raise typer.Exit(130) from None
    finally:
        progress.close()
    _emit(f"task {task_id} is {task.status}" + _next_hint(workspace, task))
    if str(task.status) in ("interrupted", "abandoned"):
        # Stopped early by a cancel, a deadline or a budget: the line above says why; a script must not take it
        # for a finished run.
        raise typer.Exit(1)
    return task


def _dry_run(store: CliStore, workspace: str, task_id: str, workdir: Path | None) -> None:
    """Print what `run` would execute, and where, without running or changing anything."""
    from atlas_tasks import executors
    from atlas_tasks.errors import WorkdirError
    from atlas_tasks.runs import NotRunnableError
    from atlas_tasks.transitions import is_terminal

    task = store.get(workspace, task_id)
    if is_terminal(task.status):
        raise NotRunnableError(workspace, task_id, str(task.status), "it is finished; nothing to run")
    if str(task.status) == "awaiting_approval":
        raise NotRunnableError(
            workspace,
            task_id,
            str(task.status),
            f"approve or reject it first (`atlas-tasks approve {workspace} {task_id}`)",
        )
    start, total = max(task.current_step, 0), len(task.steps)
    steps = task.steps[start:]
    problem: WorkdirError | None = None
    try:
        where = str(executors.resolve_workdir(store, workspace, workdir))
    except WorkdirError as exc:
        problem, where = exc, "(none)"
    _emit(f"dry run of {task_id} in {workspace} ({task.status}): {len(steps)} step(s) left of {total}; nothing is run")
    _emit(f"directory: {printable(where)}")
    holder = store.lease_holder(workspace, task_id)
    if holder is not None:
        from atlas_tasks.views.display import runner_text

        _emit(f"note: a live runner holds it ({runner_text(holder)}): `run` would be refused now")
    for number, step in enumerate(steps, start=start + 1):
        head = f"[{number}/{total}] {printable(step.name)} ({printable(str(step.type))})"
        kind = str(step.type)
        commands = executors._commands_for(task, step)
        limit = f", timeout {step.timeout_seconds}s" if step.timeout_seconds else ""
        if kind == "human":
            _emit(f"{head}: stops and waits for approval")
        elif kind in executors.COMMAND_TYPES and commands:
            shell = bool((step.model_extra or {}).get("shell", False))
            _emit(
                f"{head}: {len(commands)} command(s){' through sh -c' if shell else ''}{limit}, in {printable(where)}"
            )
            for command in commands:
                try:
                    executors.parse_command(command, shell)
                    bad = ""
                except ValueError as exc:
                    bad = f"   <- would fail: {exc}"
                _emit(f"    $ {printable(command)}{bad}")
        elif kind in executors.AI_TYPES:
            command = executors.ai_command(task)
            source = "the step's prompt" if step.prompt else "the step's description and the task's description"
            prompt = executors.ai_prompt(task, step)
            _emit(
                f"{head}: AI command{limit}, in {printable(where)}, prompt on stdin from {source} ({len(prompt)} chars)"
            )
            _emit(
                f"    $ {printable(command)}"
                if command
                else "    no AI command configured (--ai-command or $ATLAS_TASKS_AI_COMMAND): the step would fail"
            )
        else:
            _emit(f"{head}: no commands to run: the step would fail")
    if problem is not None and any(executors.needs_workdir(task, step) for step in steps):
        error(problem.message)
        raise typer.Exit(1)


#: What to run next after a run stopped early, by the stop's kind (metadata.stop_reason.kind).
_AFTER_STOP = {
    "budget_exceeded": (
        "raise the budget with `atlas-tasks budget {ref} --tokens-hard N` (or --cost-hard), then run it again"
    ),
    "deadline": "extend it with `atlas-tasks deadline {ref} --extend 1h`, then run it again",
    "cancelled": "continue it with `atlas-tasks run {ref}`",
}


def _next_hint(workspace: str, task: Task) -> str:
    ref = f"{workspace} {task.id}"
    if str(task.status) == "awaiting_approval":
        return f": approve with `atlas-tasks approve {ref}` or reject with `atlas-tasks reject {ref}`"
    stop = task.metadata.get("stop_reason")
    if str(task.status) in ("interrupted", "abandoned") and isinstance(stop, dict) and stop.get("reason"):
        after = _AFTER_STOP.get(str(stop.get("kind")), "") if str(task.status) == "interrupted" else ""
        return f" ({printable(str(stop['reason']))})" + (f"; {after.format(ref=ref)}" if after else "")
    return ""


def new(
    ctx: typer.Context,
    workspace: WorkspaceArg,
    template: Annotated[str, typer.Option("--template", "-t", help="Template name (`atlas-tasks templates`).")],
    description: Annotated[str, typer.Option("--description", "-d", help="What the task is about.")],
    validate: Annotated[
        list[str] | None,
        typer.Option("--validate", metavar="CMD", help="A validation command (repeatable).", show_default=False),
    ] = None,
    ai_command: Annotated[
        str, typer.Option("--ai-command", metavar="CMD", help="Command AI steps run, with the prompt on stdin.")
    ] = "",
    id_style: Annotated[
        str, typer.Option("--id-style", help="auto (follow the workspace), timestamp or uuid.")
    ] = "auto",
    run_now: Annotated[bool, typer.Option("--run", help="Start running it at once.")] = False,
    as_json: JsonOpt = False,
    workdir: WorkdirOpt = None,
    deadline: Annotated[
        str, typer.Option("--deadline", metavar="WHEN", help="Stop runs after this: a duration (2h) or ISO time.")
    ] = "",
    crash_limit: Annotated[
        int | None,
        typer.Option("--crash-limit", metavar="N", help="Refuse to resume after N crashes in a row (default 5)."),
    ] = None,
    retries: Annotated[
        int | None, typer.Option("--retries", metavar="N", help="Retry a failing step up to N more times.")
    ] = None,
    retry_delay: Annotated[
        str, typer.Option("--retry-delay", metavar="DUR", help="First wait before a retry (5s); doubles each time.")
    ] = "",
    budget_tokens: Annotated[
        str,
        typer.Option(
            "--budget-tokens",
            metavar="SOFT:HARD",
            help="Token budget: SOFT:HARD, SOFT: or HARD alone (over the template's budget).",
        ),
    ] = "",
    budget_cost: Annotated[
        str,
        typer.Option("--budget-cost", metavar="SOFT:HARD", help="Cost budget in USD, as --budget-tokens."),
    ] = "",
) -> None:
    """Create a task from a template (and with --run, run it).

    Ids follow the Go ATLAS: task-YYYYMMDD-HHMMSS, or task-<uuid4> in a workspace that already has uuid ids.
    """
    from atlas_tasks.cli import _render
    from atlas_tasks.cli._edit import check_command, check_description, config_problems
    from atlas_tasks.errors import IncompleteConfigError
    from atlas_tasks.templates import load_template

    if id_style not in ("auto", "timestamp", "uuid"):
        raise typer.BadParameter("must be auto, timestamp or uuid", param_hint="--id-style")
    # Everything that would make the task fail later is refused now, before anything is stored.
    check_description(description)
    if ai_command:
        check_command("--ai-command", ai_command)
    for command in validate or []:
        check_command("--validate", command)
    current = state(ctx)
    store = current.store(id_style=id_style)
    task = load_template(current.templates_home(), template).new_task(description, validation_commands=validate)
    if ai_command:
        task.config.variables["ai_command"] = ai_command
    _guard_options(task, deadline, crash_limit, retries, retry_delay)
    if budget_tokens or budget_cost:
        from atlas_tasks.cli._budgets import apply_new_options

        apply_new_options(task, budget_tokens, budget_cost)
    problems = config_problems(task)
    if run_now and problems:
        # Running now would stop at the first such step, after the earlier steps did their work: refuse instead.
        # Without --run the task is created and the problems are warnings: the environment where it will run, or
        # `atlas-tasks set`, can still supply what is missing.
        raise IncompleteConfigError(template, problems)
    created = store.create(workspace, task)
    if as_json:
        _render.write_json(_render.task_document(created))
    else:
        _emit(f"created {created.id} in {workspace} ({len(created.steps)} steps, template {template})")
    if _is_closed(store, workspace):
        warn(f"workspace {workspace!r} is closed; the task was created in it all the same")
    for problem in config_problems(created, f"atlas-tasks set {workspace} {created.id}"):
        warn(f"the run will fail: {problem}")
    if run_now:
        _run(store, workspace, created.id, workdir)


def _guard_options(task: Task, deadline: str, crash_limit: int | None, retries: int | None, retry_delay: str) -> None:
    """Apply `new`'s --deadline, --crash-limit, --retries and --retry-delay to the task (before it is stored)."""
    from atlas_tasks.errors import GuardValueError
    from atlas_tasks.lifecycle import deadlines, recovery
    from atlas_tasks.lifecycle.retries import TASK_POLICY, RetryPolicy

    try:
        if deadline:
            task.metadata[deadlines.DEADLINE] = deadlines.parse_when(deadline).isoformat()
            task.metadata.pop(deadlines.DURATION, None)
        if crash_limit is not None:
            task.metadata[recovery.RECOVERY] = {"crash_resumes": 0, "limit": recovery.check_limit(crash_limit)}
        if retries is not None or retry_delay:
            policy = dict(task.metadata.get(TASK_POLICY) or {})
            if retries is not None:
                policy["max_attempts"] = retries + 1
            if retry_delay:
                policy["initial"] = deadlines.parse_duration(retry_delay).total_seconds()
            task.metadata[TASK_POLICY] = RetryPolicy.from_dict(policy, source="task").to_dict()
    except GuardValueError as exc:
        option = {"deadline": "--deadline", "crash_limit": "--crash-limit", "duration": "--retry-delay"}
        raise typer.BadParameter(exc.reason, param_hint=option.get(exc.field, "--retries")) from None


def _is_closed(store: CliStore, workspace: str) -> bool:
    from atlas_tasks.errors import AtlasTasksError

    try:
        return str(store.get_workspace(workspace).status) == "closed"
    except AtlasTasksError:
        return False  # a task directory without a readable workspace.json (a Go home): nothing says it is closed


def run(
    ctx: typer.Context,
    workspace: WorkspaceArg,
    task_id: TaskArg,
    workdir: WorkdirOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would run, and where, without running or changing anything.")
    ] = False,
    reset_crash_count: Annotated[
        bool,
        typer.Option("--reset-crash-count", help="Run a task the crash-loop limit stopped (recorded in its log)."),
    ] = False,
) -> None:
    """Run a task from where it stands: a new task from its first step, a crashed or failed one from the step
    that did not finish. Steps recorded as done never run again.

    Commands run in the workspace's worktree (else its path); a workspace with neither needs --workdir. Ctrl-C
    stops the run (exit 130) and prints the command that resumes it.
    """
    store = state(ctx).store()
    if reset_crash_count and not dry_run:
        from atlas_tasks.lifecycle.recovery import reset_crash_count as reset

        reset(store, workspace, task_id)
        note("crash count reset; the run may resume")
    if dry_run:
        _dry_run(store, workspace, task_id, workdir)
    else:
        _run(store, workspace, task_id, workdir)


def approve(
    ctx: typer.Context,
    workspace: WorkspaceArg,
    task_id: TaskArg,
    reason: ReasonOpt = "approved",
    no_run: Annotated[bool, typer.Option("--no-run", help="Do not continue the remaining steps now.")] = False,
) -> None:
    """Approve a task waiting for a human; with steps left, the run continues (unless --no-run)."""
    from atlas_tasks.runs import approve as approve_task

    store = state(ctx).store()
    task = approve_task(store, workspace, task_id, reason)
    _emit(f"approved {task_id}: now {task.status}")
    if str(task.status) == "running" and not no_run:
        _run(store, workspace, task_id)


def reject(ctx: typer.Context, workspace: WorkspaceArg, task_id: TaskArg, reason: ReasonOpt = "rejected") -> None:
    """Reject a task waiting for a human (it ends as rejected)."""
    from atlas_tasks.runs import reject as reject_task

    task = reject_task(state(ctx).store(), workspace, task_id, reason)
    _emit(f"rejected {task_id}: now {task.status}")


def abandon(
    ctx: typer.Context,
    workspace: WorkspaceArg,
    task_id: TaskArg,
    reason: ReasonOpt = "abandoned",
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Also when it runs: a live runner is cancelled (and waited for); a dead one's leftover processes "
            "(running_processes) are killed first.",
        ),
    ] = False,
    grace: Annotated[
        str, typer.Option("--grace", metavar="DURATION", help="With --force: time between SIGTERM and SIGKILL.")
    ] = "30s",
) -> None:
    """Abandon a task that no live runner holds (it ends as abandoned); --force stops its run first."""
    from atlas_tasks.runs import abandon as abandon_task

    store = state(ctx).store()
    if force:
        from atlas_tasks.cli._cancel import force_abandon, parse_seconds

        task = force_abandon(store, workspace, task_id, reason, parse_seconds(grace))
    else:
        task = abandon_task(store, workspace, task_id, reason)
    _emit(f"abandoned {task_id}: now {task.status}")


def _workspaces(store: CliStore, workspace: str | None) -> list[str]:
    if workspace is not None:
        store.get_workspace(workspace)  # a clear WorkspaceNotFoundError for a typo
        return [workspace]
    return [ws.name for ws in store.list_workspaces()]


def recover(ctx: typer.Context, workspace: OptionalWs = None, as_json: JsonOpt = False) -> None:
    """Mark every crashed run (running, but no live runner) as interrupted, so it can be resumed or abandoned."""
    from atlas_tasks.cli import _render
    from atlas_tasks.runs import recover as recover_ws

    store = state(ctx).store()
    found = [(ws, task) for ws in _workspaces(store, workspace) for task in recover_ws(store, ws)]
    if as_json:
        rows = [
            {"workspace": ws, "task_id": t.id, "status": str(t.status), "next": _after_recover(ws, t)}
            for ws, t in found
        ]
        _render.write_json({"recovered": rows})
        return
    for ws, task in found:
        _emit(f"{ws}/{task.id}: marked interrupted; {_after_recover(ws, task)}")
    if not found:
        note("no crashed runs found")


def _after_recover(workspace: str, task: Task) -> str:
    """What to do with a task `recover` just marked interrupted: resume it, unless a run guard would refuse that."""
    from atlas_tasks.lifecycle import budgets, deadlines, recovery
    from atlas_tasks.models import utcnow

    ref = f"{workspace} {task.id}"
    passed = deadlines.deadline_of(task)
    if passed is not None and passed <= utcnow():
        return f"its deadline passed: extend it with `atlas-tasks deadline {ref} --extend 1h`, then run it again"
    crashes = recovery.state(task)
    if int(crashes["crash_resumes"]) >= int(crashes["limit"]):
        return (
            f"its runner died {crashes['crash_resumes']} times in a row without finishing a step (limit "
            f"{crashes['limit']}): look at `atlas-tasks logs {ref}`, then `atlas-tasks run {ref} --reset-crash-count`"
        )
    if budgets.exceeded(task) is not None:
        return f"its budget is spent: raise it with `atlas-tasks budget {ref}`, then run it again"
    return f"resume with `atlas-tasks run {ref}`"


def doctor(
    ctx: typer.Context,
    workspace: OptionalWs = None,
    fix: Annotated[bool, typer.Option("--fix", help="Repair what is safe to repair, and say what was done.")] = False,
    all_repos: AllReposOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Check the store: leftover temp files, incomplete creations, corrupt tasks, torn logs, unfinished deletes,
    workspace refs out of step, and crashed runs. Exits 1 while something still needs attention.

    With --all-repos, every store under the home (the legacy one and each repository's), each finding saying where.
    """
    from atlas_tasks.cli import _render
    from atlas_tasks.store.types import CheckReport

    report = CheckReport()
    sources = every_store(ctx) if all_repos else [("", state(ctx).store())]
    labels: list[str] = []  # parallel to report.findings: the repository of the store each came from
    for label, store in sources:
        if all_repos and workspace and workspace not in {w.name for w in store.list_workspaces()}:
            continue  # the named workspace lives in some of the stores only
        one = _doctor_store(store, workspace, fix, quiet=as_json)
        report.tasks_checked += one.tasks_checked
        report.findings.extend(one.findings)
        labels.extend([label] * len(one.findings))
    if as_json:
        findings = [
            f.to_dict() | ({"repo": label or None} if all_repos else {})
            for f, label in zip(report.findings, labels, strict=True)
        ]
        _render.write_json({"ok": report.ok, "tasks_checked": report.tasks_checked, "findings": findings})
    else:
        for f, label in zip(report.findings, labels, strict=True):
            where = f"{f.workspace}/{f.task_id}" if f.task_id else (f.workspace or f.path)
            where += f" @ {label}" if label else ""
            _emit(f"{'fixed' if f.fixed else 'found'}: {f.kind} {where}: {f.detail}")
        summary = f"checked {report.tasks_checked} task(s): {len(report.findings)} finding(s)"
        _emit(
            summary
            + (
                ""
                if report.ok
                else "; run `atlas-tasks doctor --fix` to repair what is safe"
                if not fix
                else "; the rest needs a person"
            )
        )
    if not report.ok:
        raise typer.Exit(1)


def _doctor_store(store: CliStore, workspace: str | None, fix: bool, *, quiet: bool) -> CheckReport:
    """One store's findings: the file store's own check (or none for a database store), then crashed runs."""
    from atlas_tasks.errors import AtlasTasksError
    from atlas_tasks.runs import is_interrupted
    from atlas_tasks.runs import recover as recover_ws
    from atlas_tasks.store.capabilities import Repairable
    from atlas_tasks.store.types import CheckReport, Finding

    checked = isinstance(store, Repairable)
    if isinstance(store, Repairable):
        report: CheckReport = store.check(workspace, fix=fix)
    else:
        # A database store has no files to sweep: no temp files, torn logs or half-done deletes (each write is one
        # transaction). What can still need attention is a run whose runner died.
        report = CheckReport()
        if not quiet:
            note(f"{store!r}: file checks do not apply (each write is one transaction); checking for crashed runs")
    for ws in _workspaces(store, workspace):
        tasks = store.list(ws)
        if not checked:  # the store's own check counted and read its tasks already
            report.tasks_checked += len(tasks) + len(tasks.errors)
            for exc in tasks.errors:
                task_id = exc.context.get("task_id")
                report.add(Finding("corrupt_task", _task_where(store, ws, str(task_id)), exc.message, ws, task_id))
        for task in tasks:
            try:
                interrupted = is_interrupted(store, ws, task)
            except AtlasTasksError as exc:  # its lease file cannot be read (a FIFO planted there): one finding
                report.add(Finding("unreadable", _task_where(store, ws, task.id), exc.message, ws, task.id))
                continue
            if interrupted:
                report.add(
                    Finding(
                        "interrupted_run",
                        _task_where(store, ws, task.id),
                        "running, but no live runner holds it (the runner died)",
                        ws,
                        task.id,
                    )
                )
        if fix:
            recovered = {t.id for t in recover_ws(store, ws)}
            for finding in report.findings:
                if finding.kind == "interrupted_run" and finding.task_id in recovered:
                    finding.fixed = True
    return report


def _task_where(store: CliStore, workspace: str, task_id: str) -> str:
    from atlas_tasks.store.capabilities import LocalFiles

    if isinstance(store, LocalFiles):
        return str(store.task_path(workspace, task_id))
    return f"{store!r} {workspace}/{task_id}"


def follow_log(store: CliStore, workspace: str, task_id: str, emit: Any, *, poll: float = 0.2) -> None:
    """Print new log lines as the run writes them.

    Waits while the task has not started (or was approved and waits to continue); returns once the task is
    over or waits for a person, and everything written is printed; warns and returns if its runner died. The
    store follows its own log (``store.follow_log``: the file store reads a window at a time after the last
    position shown, through its own symlink-free reads; PostgreSQL is woken by LISTEN/NOTIFY).
    """

    def over() -> bool:
        return store.lease_holder(workspace, task_id) is None and _follow_done(store, workspace, task_id)

    for record in store.follow_log(workspace, task_id, until=over, poll=poll):
        emit(record)


def _follow_done(store: CliStore, workspace: str, task_id: str) -> bool:
    from atlas_tasks.runs import ACTIVE_STATUSES, is_interrupted, ready_to_continue

    task = store.get(workspace, task_id)
    if str(task.status) == "pending" or ready_to_continue(task):
        return False  # not started yet: wait for a runner
    if task.status in ACTIVE_STATUSES and is_interrupted(store, workspace, task):
        warn("no live runner holds this task (it crashed?); `atlas-tasks run` resumes it")
        return True
    return task.status not in ACTIVE_STATUSES
