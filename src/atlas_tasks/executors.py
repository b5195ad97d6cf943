"""Step executors: what actually happens for each step type when a task runs from the CLI.

* validation, git, ci, sdd, verify, loop steps with commands: run the step's ``commands`` one by one (no shell
  unless the step says ``"shell": true``) within its ``timeout_seconds``; stdout, stderr and exit codes go into a
  versioned artifact (``validation.N.json`` for validation steps, ``<step>.N.json`` otherwise) and a summary into
  the log; the first failing command fails the step. A validation step without commands runs the task's
  ``config.validation_commands``.
* human: stop the run at awaiting_approval (``approve``/``reject`` continue it).
* ai, and sdd/verify without commands: the AI command from ``config.variables["ai_command"]`` or
  ``$ATLAS_TASKS_AI_COMMAND``, with the prompt on stdin; without one, the step fails saying how to configure it.

Commands run in the workspace's worktree (or path) when it has one, with ``ATLAS_HOME``, ``ATLAS_WORKSPACE``,
``ATLAS_TASK_ID``, ``ATLAS_TASK_DESCRIPTION`` and ``ATLAS_STEP_NAME`` in their environment. On Linux they are
killed when the runner dies, so a crashed runner leaves no orphaned step behind.
"""

from __future__ import annotations

import ctypes
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from atlas_tasks.models import Step, Task, utcnow
from atlas_tasks.runs import Run, StepContext

COMMAND_TYPES = frozenset({"validation", "git", "ci", "sdd", "verify", "loop"})
AI_TYPES = frozenset({"ai", "sdd", "verify"})
_OUTPUT_LIMIT = 1 << 20  # bytes of stdout/stderr kept per command in the artifact


class StepError(Exception):
    """A step's work failed; the message is what the task records as the step's error."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    # PR_SET_PDEATHSIG: the kernel sends SIGKILL to the command when the runner dies (even by SIGKILL).
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)


def _environment(run: Run, step: Step) -> dict[str, str]:
    env = dict(os.environ)
    home = getattr(run.store, "home", None)
    env.update(
        {
            "ATLAS_WORKSPACE": run.workspace,
            "ATLAS_TASK_ID": run.task.id,
            "ATLAS_TASK_DESCRIPTION": run.task.description,
            "ATLAS_STEP_NAME": step.name,
        }
    )
    if home is not None:
        env["ATLAS_HOME"] = str(home)
    return env


def _workdir(run: Run) -> str | None:
    try:
        ws = run.store.get_workspace(run.workspace)
    except Exception:  # noqa: BLE001 - no workspace metadata: run where we are
        return None
    for candidate in (ws.worktree_path, ws.path):
        if candidate and Path(candidate).is_dir():
            return candidate
    return None


def _run_command(
    command: str,
    *,
    shell: bool,
    timeout: float | None,
    env: dict[str, str],
    cwd: str | None,
    stdin: bytes | None = None,
) -> dict[str, Any]:
    started = utcnow()
    argv: str | list[str] = command if shell else shlex.split(command)
    entry: dict[str, Any] = {"command": command, "started_at": started.isoformat()}
    try:
        proc = subprocess.Popen(
            argv,
            shell=shell,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    except OSError as exc:
        entry.update(success=False, exit_code=-1, stdout="", stderr="", error=f"cannot start: {exc}")
        return _finish(entry, started)
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
        entry["error"] = ""
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the command's whole process group, not just its shell
        out, err = proc.communicate()
        entry["error"] = f"timed out after {timeout:g}s"
    entry.update(
        success=proc.returncode == 0 and not entry["error"],
        exit_code=proc.returncode,
        stdout=out[-_OUTPUT_LIMIT:].decode("utf-8", "replace"),
        stderr=err[-_OUTPUT_LIMIT:].decode("utf-8", "replace"),
    )
    return _finish(entry, started)


def _finish(entry: dict[str, Any], started: Any) -> dict[str, Any]:
    done = utcnow()
    entry["completed_at"] = done.isoformat()
    entry["duration_ms"] = int((done - started).total_seconds() * 1000)
    if not entry.get("error"):
        entry.pop("error", None)
    return entry


def _commands_for(task: Task, step: Step) -> list[str]:
    if step.commands:
        return list(step.commands)
    if str(step.type) == "validation":
        return list(task.config.validation_commands)
    return []


def run_commands(ctx: StepContext, commands: list[str]) -> None:
    """Run ``commands`` in order for the step; record them in a versioned artifact; fail on the first failure."""
    run, step = ctx.run, ctx.step
    shell = bool((step.model_extra or {}).get("shell", False))
    env, cwd = _environment(run, step), _workdir(run)
    deadline = time.monotonic() + step.timeout_seconds if step.timeout_seconds else None
    results: list[dict[str, Any]] = []
    for command in commands:
        left = None if deadline is None else max(0.1, deadline - time.monotonic())
        ctx.log("command started", command=command)
        result = _run_command(command, shell=shell, timeout=left, env=env, cwd=cwd)
        results.append(result)
        ctx.log(
            "command finished",
            level="info" if result["success"] else "error",
            command=command,
            exit_code=result["exit_code"],
            duration_ms=result["duration_ms"],
        )
        if not result["success"]:
            break
    success = all(r["success"] for r in results)
    report = {
        "success": success,
        "step_name": step.name,
        "results": results,
        "duration_ms": sum(r["duration_ms"] for r in results),
    }
    if str(step.type) == "validation":
        report["failed_step"] = "" if success else results[-1]["command"]
    base = "validation.json" if str(step.type) == "validation" else f"{step.name}.json"
    ctx.artifact(base, json.dumps(report, indent=2, ensure_ascii=False), versioned=True)
    ctx.output = f"{len(results)} command(s), " + ("all passed" if success else f"failed: {results[-1]['command']}")
    if not success:
        last = results[-1]
        detail = last.get("error") or f"exit code {last['exit_code']}"
        raise StepError(f"`{last['command']}` failed ({detail})")


def run_ai(ctx: StepContext) -> None:
    """Run the configured AI command with the prompt on stdin; its output becomes a versioned artifact."""
    run, step = ctx.run, ctx.step
    command = run.task.config.variables.get("ai_command") or os.environ.get("ATLAS_TASKS_AI_COMMAND", "")
    if not command:
        raise StepError(
            f"step {step.name!r} is an AI step and no AI command is configured: set the task's "
            "config.variables['ai_command'] (e.g. `atlas-tasks new ... --ai-command 'claude -p'`) "
            "or the ATLAS_TASKS_AI_COMMAND environment variable"
        )
    prompt = step.prompt or f"{step.description}\n\nTask: {run.task.description}\n"
    ctx.log("ai command started", command=command)
    result = _run_command(
        command,
        shell=False,
        timeout=step.timeout_seconds or None,
        env=_environment(run, step),
        cwd=_workdir(run),
        stdin=prompt.encode(),
    )
    ctx.artifact(f"{step.name}.md", result["stdout"], versioned=True)
    ctx.output = result["stdout"][-2000:]
    if not result["success"]:
        raise StepError(
            f"AI command `{command}` failed ({result.get('error') or 'exit ' + str(result['exit_code'])})"
            + (f": {result['stderr'].strip()[-500:]}" if result["stderr"].strip() else "")
        )


def execute(ctx: StepContext) -> None:
    """Do the step's work according to its type (see the module docstring)."""
    kind = str(ctx.step.type)
    if kind == "human":
        ctx.await_approval(ctx.step.prompt or ctx.step.description or "waiting for approval")
        return
    commands = _commands_for(ctx.run.task, ctx.step)
    if kind in COMMAND_TYPES and commands:
        run_commands(ctx, commands)
    elif kind in AI_TYPES:
        run_ai(ctx)
    else:
        where = (
            "the step's commands or the task's validation commands (`new --validate CMD`)"
            if kind == "validation"
            else "the step's commands in the template"
        )
        raise StepError(f"step {ctx.step.name!r} ({kind}) has no commands to run; configure {where}")


def run_task(run: Run, on_step: Callable[[StepContext, str], None] | None = None) -> Task:
    """Execute every remaining step of a live run; a failing step is recorded and re-raised as StepFailedError."""
    from atlas_tasks.errors import StepFailedError

    for step in run.remaining_steps():
        index = run.task.current_step
        try:
            with run.step(step) as ctx:
                if on_step:
                    on_step(ctx, "started")
                execute(ctx)
        except StepError as exc:
            if on_step:
                on_step(StepContext(run, index), "failed")
            raise StepFailedError(run.workspace, run.task.id, step.name, str(run.task.status), str(exc)) from None
        if on_step:
            on_step(ctx, ctx.outcome)
    return run.task
