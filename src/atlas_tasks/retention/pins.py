"""Pins: a task marked to be kept, whatever its age or status (``gc`` never collects a pinned task).

A pin is ``metadata.pinned = {at, by, reason}``, written with one revision-checked ``store.modify``. Go keeps
``metadata`` as a free map, so the Go tool reads and keeps a pin without knowing it.

A pin is refused while a live runner holds the task: the runner saves its own copy of the task with a revision
check, and a write under it would make its next checkpoint conflict (a cancel request is the one write a runner
merges; a pin is not worth widening that). The check is made inside the modify, under the task's write lock, so a
runner that took the lease after a first look is seen. A running task is never collected anyway; pin it once the
run is over.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from atlas_tasks.errors import TaskRunningError
from atlas_tasks.models import utcnow

if TYPE_CHECKING:
    from atlas_tasks.models import Task
    from atlas_tasks.runs import LeasingStore

#: ``metadata`` key of a pin: ``{at, by, reason}``.
PINNED = "pinned"


def pin_of(task: Task) -> dict[str, Any] | None:
    """The task's pin (``{at, by, reason}``), or None when it is not pinned."""
    value = task.metadata.get(PINNED)
    return value if isinstance(value, dict) else None


def describe_pin(task: Task) -> str | None:
    """One line for ``show`` and the dashboard: the reason, who pinned it and when; None when not pinned."""
    record = pin_of(task)
    if record is None:
        return None
    raw_by = record.get("by")
    by: dict[str, Any] = raw_by if isinstance(raw_by, dict) else {}
    who = f"{by.get('user', 'someone')}@{by['host']}" if by.get("host") else str(by.get("user", "someone"))
    reason = str(record.get("reason") or "no reason given")
    return f"{reason} (by {who}, {record.get('at', '?')}); gc keeps it"


def _refuse_if_running(store: LeasingStore, workspace: str, task_id: str) -> None:
    holder = store.lease_holder(workspace, task_id)
    if holder is not None:
        raise TaskRunningError(workspace, task_id, holder)


def pin(
    store: LeasingStore, workspace: str, task_id: str, reason: str = "", *, by: dict[str, Any] | None = None
) -> Task:
    """Pin the task (a new pin replaces an older one); returns the stored task.

    Raises:
        TaskRunningError: a live runner holds the task.
        TaskNotFoundError, WorkspaceNotFoundError, InvalidNameError: as ``get``.
    """
    from atlas_tasks.lifecycle.cancel import _by

    record = {"at": utcnow().isoformat(), "by": _by(by), "reason": reason}

    def change(task: Task) -> None:
        _refuse_if_running(store, workspace, task_id)
        task.metadata[PINNED] = record

    return store.modify(workspace, task_id, change)


def unpin(store: LeasingStore, workspace: str, task_id: str) -> Task:
    """Remove the task's pin; a task not pinned is returned as it is, nothing written.

    Raises:
        TaskRunningError: a live runner holds the task (and it is pinned).
        TaskNotFoundError, WorkspaceNotFoundError, InvalidNameError: as ``get``.
    """
    task = store.get(workspace, task_id)
    if pin_of(task) is None and PINNED not in task.metadata:
        return task

    def change(task: Task) -> None:
        _refuse_if_running(store, workspace, task_id)
        task.metadata.pop(PINNED, None)

    return store.modify(workspace, task_id, change)


__all__ = ["PINNED", "describe_pin", "pin", "pin_of", "unpin"]
