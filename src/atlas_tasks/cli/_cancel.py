"""``atlas-tasks cancel``: stop a task's live run (or record that its dead runner's run is over), and the waiting
that ``abandon --force`` shares. The library side is :mod:`atlas_tasks.lifecycle.cancel`."""

from __future__ import annotations

import json
import re
import sys
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from atlas_tasks.cli._errors import error, note
from atlas_tasks.cli._options import JsonOpt, TaskArg, WorkspaceArg
from atlas_tasks.cli._state import state

if TYPE_CHECKING:
    from atlas_tasks.cli._state import CliStore
    from atlas_tasks.models import Task

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)?")

#: Seconds the CLI waits beyond the grace for the runner to record the stop and free its lease.
SLACK = 10.0


def parse_seconds(text: str) -> float:
    """``30s``, ``2m``, ``1h``, ``500ms`` or a bare number of seconds; ``typer.BadParameter`` otherwise."""
    total, at = 0.0, 0
    cleaned = text.strip().lower()
    for match in _DURATION.finditer(cleaned):
        if match.start() != at:
            break
        total += float(match.group(1)) * _UNITS[match.group(2) or "s"]
        at = match.end()
    if not cleaned or at != len(cleaned):
        raise typer.BadParameter(f"{text!r} is not a duration; write it like 30s, 2m or 1h")
    return total


def wait_for_runner(store: CliStore, workspace: str, task_id: str, timeout: float) -> bool:
    """Wait (at most ``timeout`` seconds) until no live runner holds the task; whether it let go."""
    deadline = time.monotonic() + timeout
    while store.lease_holder(workspace, task_id) is not None:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
    return True


def _document(workspace: str, task: Task, *, outcome: str, waited: bool | None) -> dict[str, Any]:
    return {
        "workspace": workspace,
        "id": task.id,
        "status": str(task.status),
        "outcome": outcome,
        "waited": waited,
        "cancel_request": task.metadata.get("cancel_request"),
    }


def cancel(
    ctx: typer.Context,
    workspace: WorkspaceArg,
    task_id: TaskArg,
    grace: Annotated[
        str,
        typer.Option("--grace", metavar="DURATION", help="Time between SIGTERM and SIGKILL for the step's commands."),
    ] = "30s",
    reason: Annotated[str, typer.Option("--reason", "-r", metavar="TEXT", help="Why (kept in the audit trail).")] = (
        "cancelled"
    ),
    abandon: Annotated[bool, typer.Option("--abandon", help="End the task abandoned instead of interrupted.")] = False,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Wait (up to the grace + 10s) for the runner to stop.")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Stop a task's run: the live runner terminates the step's commands and ends the task interrupted (or
    abandoned with --abandon); `run` resumes an interrupted task at the stopped step."""
    from atlas_tasks.lifecycle.cancel import cancel as cancel_task
    from atlas_tasks.lifecycle.cancel import is_stopped, pending_request

    seconds = parse_seconds(grace)
    store = state(ctx).store()
    before = store.get(workspace, task_id)
    task = cancel_task(store, workspace, task_id, reason=reason, grace=seconds, abandon=abandon)
    waited: bool | None = None
    if pending_request(task) is not None:
        outcome = "requested"
        if wait:
            waited = wait_for_runner(store, workspace, task_id, seconds + SLACK)
            task = store.get(workspace, task_id)
            if waited:
                outcome = "stopped"
    elif task.revision == before.revision and is_stopped(task):
        outcome = "already_stopped"
    else:
        outcome = "applied"
    if as_json:
        sys.stdout.write(json.dumps(_document(workspace, task, outcome=outcome, waited=waited)) + "\n")
    elif outcome == "already_stopped":
        note(f"{task_id} is already stopped ({task.status}); nothing runs, nothing recorded (--abandon ends it)")
    elif outcome == "requested" and waited is None:
        typer.echo(f"cancel requested for {task_id}; its runner stops within about a second")
    elif outcome == "requested":
        error(
            f"the runner of {task_id} in workspace {workspace!r} still holds it after {seconds + SLACK:g}s; "
            f"the request stays recorded, check again with `atlas-tasks show {workspace} {task_id}`"
        )
        raise typer.Exit(1)
    else:
        typer.echo(f"cancelled {task_id}: now {task.status}")
    if outcome == "requested" and waited is False and as_json:
        raise typer.Exit(1)


def _exists(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # somebody else's process: it exists, and we cannot signal it (kill says so below)
    return True


def kill_leftovers(pids: list[int], grace: float) -> list[int]:
    """SIGTERM the pids that still exist, SIGKILL those still there after ``grace``; returns the pids signalled."""
    import os
    import signal

    alive = [pid for pid in pids if pid > 1 and pid != os.getpid() and _exists(pid)]
    for pid in alive:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + grace
    while any(_exists(pid) for pid in alive) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    return alive


def force_abandon(store: CliStore, workspace: str, task_id: str, reason: str, grace: float) -> Task:
    """``abandon --force``: cancel a live run with abandon and wait for it; with a dead runner, kill the processes
    Go recorded in ``running_processes`` (only those still there), then abandon."""
    from atlas_tasks.errors import TaskRunningError
    from atlas_tasks.lifecycle.cancel import cancel as cancel_task
    from atlas_tasks.lifecycle.cancel import pending_request
    from atlas_tasks.runs import abandon as abandon_task

    if store.lease_holder(workspace, task_id) is not None:
        task = cancel_task(store, workspace, task_id, reason=reason, grace=grace, abandon=True)
        if pending_request(task) is None:
            return task
        if not wait_for_runner(store, workspace, task_id, grace + SLACK):
            holder = store.lease_holder(workspace, task_id) or {}
            raise TaskRunningError(workspace, task_id, holder)
        task = store.get(workspace, task_id)
        if str(task.status) == "abandoned":
            return task
        return abandon_task(store, workspace, task_id, reason)  # it stopped some other way (e.g. interrupted)
    task = store.get(workspace, task_id)
    if task.running_processes:
        killed = kill_leftovers(list(task.running_processes), grace)
        if killed:
            note(f"killed leftover processes of {task_id}: {', '.join(str(p) for p in killed)}")
    if str(task.status) in ("running", "validating"):
        # Its runner is dead: record that (cancel applies at once without a live runner) and end it abandoned.
        return cancel_task(store, workspace, task_id, reason=reason, grace=grace, abandon=True)
    return abandon_task(store, workspace, task_id, reason)
