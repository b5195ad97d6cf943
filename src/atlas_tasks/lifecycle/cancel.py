"""Cancel a run: a durable request the live runner obeys (see docs/runs.md, "Cancel").

``cancel`` writes ``metadata.cancel_request`` with one revision-checked ``store.modify``. A live runner (it holds
the run lease) reads it back once a second while a command runs and before each step, stops (SIGTERM to the step's
command tree, SIGKILL after the grace), and consumes the request in the checkpoint that records the stop. With no
live runner the request is applied at once instead, so nothing waits for a runner that will never come.

The runner keeps its own copy of the task and saves it with a revision check, so a request written while it holds
an older revision makes its next checkpoint conflict. :meth:`atlas_tasks.runs.Run.checkpoint` then asks
:func:`only_request_differs` and, when the request is the only change, merges it into its copy (or drops it, when
the run has stopped already) and saves again; any other change still fails the checkpoint.
"""

from __future__ import annotations

import getpass
import os
import socket
from typing import TYPE_CHECKING, Any

from atlas_tasks.errors import AtlasTasksError, CannotCancelError
from atlas_tasks.lifecycle import Stop
from atlas_tasks.models import TaskStatus, utcnow
from atlas_tasks.transitions import allowed_from, can_transition, is_error, is_terminal

if TYPE_CHECKING:
    from atlas_tasks.models import Task
    from atlas_tasks.runs import LeasingStore, Run

#: ``metadata`` key: a cancel asked for and not yet obeyed: ``{at, reason, grace_seconds, abandon, by}``.
CANCEL_REQUEST = "cancel_request"

_RUNNING = (TaskStatus.RUNNING, TaskStatus.VALIDATING)


def _by(by: dict[str, Any] | None) -> dict[str, Any]:
    if by is not None:
        return by
    try:
        user = os.getlogin()
    except OSError:  # no controlling terminal (a service, a container): the environment, then the password database
        try:
            user = getpass.getuser()
        except (OSError, KeyError):
            user = str(os.getuid())
    return {"user": user, "host": socket.gethostname(), "pid": os.getpid()}


def _who(request: dict[str, Any]) -> str:
    by = request.get("by") or {}
    if not isinstance(by, dict):
        return "someone"
    user, host = by.get("user") or "someone", by.get("host")
    return f"{user}@{host}" if host else str(user)


def _stop_for(request: dict[str, Any]) -> Stop:
    status = TaskStatus.ABANDONED if request.get("abandon") else TaskStatus.INTERRUPTED
    try:
        grace = max(0.0, float(request.get("grace_seconds", 0.0)))
    except (TypeError, ValueError):
        grace = 0.0
    return Stop("cancelled", f"cancelled by {_who(request)}: {request.get('reason', '')}", status=status, grace=grace)


def pending_request(task: Task) -> dict[str, Any] | None:
    """The cancel request the task carries, if any (None when absent or not a mapping)."""
    request = task.metadata.get(CANCEL_REQUEST)
    return request if isinstance(request, dict) else None


def _refusal(workspace: str, task: Task) -> CannotCancelError:
    status, ref = task.status, f"{workspace} {task.id}"
    if is_terminal(status):
        hint = "it is already finished; nothing to cancel"
    elif status == TaskStatus.PENDING:
        hint = f"it never ran, and a pending task cannot be stopped; `atlas-tasks delete {ref}` removes it"
    else:
        hint = f"it waits for a review, not a runner; `atlas-tasks reject {ref}` ends it"
    return CannotCancelError(workspace, task.id, str(status), hint, tuple(str(s) for s in allowed_from(status)))


def cancel(
    store: LeasingStore,
    workspace: str,
    task_id: str,
    *,
    reason: str,
    grace: float = 30.0,
    abandon: bool = False,
    by: dict[str, Any] | None = None,
) -> Task:
    """Ask the task's run to stop; returns the stored task.

    * A live runner holds it: the request is recorded (``metadata.cancel_request``) and the runner obeys within
      about a second (wait for its lease to be free to see the final status).
    * Running/validating with no live runner (the run crashed): the task moves to interrupted (``abandoned`` with
      ``abandon``) at once, with the reason.
    * Interrupted or a failure status: nothing runs; with ``abandon`` it is abandoned, otherwise nothing is written
      and the task is returned as it is.

    Raises:
        CannotCancelError: the task is pending, awaiting approval, or finished (the message says what helps).
        TaskNotFoundError, WorkspaceNotFoundError, InvalidNameError: as ``get``.
    """
    request = {
        "at": utcnow().isoformat(),
        "reason": reason,
        "grace_seconds": float(grace),
        "abandon": bool(abandon),
        "by": _by(by),
    }
    stop = _stop_for(request)
    changed: list[bool] = []

    def change(task: Task) -> None:
        status = task.status
        if status in _RUNNING:
            # Asked under the task's lock: a runner that took the lease after our first look is seen here.
            if store.lease_holder(workspace, task_id) is not None:
                task.metadata[CANCEL_REQUEST] = request
            else:
                task.metadata.pop(CANCEL_REQUEST, None)
                why = f"{stop.reason} (its runner was not running; recorded at once)"
                if not can_transition(status, stop.status):
                    task.transition(TaskStatus.INTERRUPTED, why)  # validating reaches abandoned through interrupted
                task.transition(stop.status, why)
            changed.append(True)
        elif is_error(status) or status == TaskStatus.INTERRUPTED:
            if abandon:
                task.metadata.pop(CANCEL_REQUEST, None)
                task.transition(TaskStatus.ABANDONED, stop.reason)
                changed.append(True)
            else:
                # Nothing to stop: leave the task exactly as it is (the modify's write is skipped below).
                raise _Unchanged
        else:
            raise _refusal(workspace, task)

    try:
        return store.modify(workspace, task_id, change)
    except _Unchanged:
        return store.get(workspace, task_id)


class _Unchanged(Exception):
    """Raised inside the modify to write nothing (a stopped task that is not being abandoned)."""


def is_stopped(task: Task) -> bool:
    """Whether ``task`` has no run to cancel (interrupted or in a failure status): cancel records nothing."""
    return task.status == TaskStatus.INTERRUPTED or is_error(task.status)


def _check(run: Run) -> Stop | None:
    try:
        stored = run.store.get(run.workspace, run.task.id)
    except (AtlasTasksError, OSError):
        # The store is unreachable (StoreUnavailableError, a disk error) or the task unreadable for a moment: the
        # next poll asks again and the step goes on. Anything else is a bug and is not hidden.
        return None
    request = pending_request(stored)
    if request is None:
        return None
    return _stop_for(request)


def while_running(run: Run) -> Stop | None:
    """A cancel request stops the step now (its command tree gets SIGTERM, then SIGKILL after the grace)."""
    return _check(run)


def at_boundary(run: Run) -> Stop | None:
    """A cancel request halts the run before its next step (a step that finished meanwhile stays done)."""
    return _check(run)


#: Fields a checkpoint conflict may differ in and still be only a cancel request (the store sets them).
_IGNORED = {"revision", "updated_at"}


def only_request_differs(base: Task, stored: Task) -> bool:
    """Whether ``stored`` is ``base`` (what the runner last saved) plus a cancel request and nothing else."""
    if pending_request(stored) is None:
        return False
    ours = base.model_dump(mode="json", exclude=_IGNORED)
    theirs = stored.model_dump(mode="json", exclude=_IGNORED)
    ours.get("metadata", {}).pop(CANCEL_REQUEST, None)
    theirs.get("metadata", {}).pop(CANCEL_REQUEST, None)
    return bool(ours == theirs)


def describe(task: Task) -> list[tuple[str, str]]:
    """``cancel requested by X at T: reason`` while a request waits for the runner."""
    request = pending_request(task)
    if request is None:
        return []
    then = "abandon" if request.get("abandon") else "interrupt"
    text = f"cancel requested by {_who(request)} at {request.get('at', '?')}: {request.get('reason', '')} ({then})"
    return [("cancel", text)]


def document(task: Task) -> dict[str, Any]:
    """``{"cancel_request": {...}}`` while a request waits for the runner."""
    request = pending_request(task)
    return {"cancel_request": request} if request is not None else {}


__all__ = [
    "CANCEL_REQUEST",
    "at_boundary",
    "cancel",
    "describe",
    "document",
    "is_stopped",
    "only_request_differs",
    "pending_request",
    "while_running",
]
