"""Control over a run after it starts: cancel, deadlines, crash-loop limits, budgets, retry policies, and retry or
fork from a chosen step.

Everything here is written once, on the store contract (:class:`~atlas_tasks.store.Store` plus
:class:`~atlas_tasks.store.capabilities.RunLeases`), so it behaves the same on every backend. What it records lives
in ``task.json`` where the Go ATLAS can read it: in the Go statuses (a stopped run ends ``interrupted`` or
``abandoned``, never in a status Go does not know) and in ``metadata`` keys (documented in docs/runs.md).

The runner (:mod:`atlas_tasks.runs`) asks this package three questions, and each module answers for itself:

* :func:`gate`: may this task start (or resume) a run at all? A module that says no raises
  :class:`~atlas_tasks.errors.NotRunnableError` (or a subclass) saying why and which command lifts it.
* :func:`at_boundary`: before each step, must the run stop here? (A :class:`Stop`, or None.)
* :func:`while_running`: during a step, about once a second, must the run stop now? The step's commands are
  then terminated (SIGTERM, then SIGKILL after :attr:`Stop.grace` seconds) and the step is recorded as stopped.

``show``, ``--json`` and the dashboard ask :func:`describe` and :func:`document`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from atlas_tasks.models import TaskStatus

if TYPE_CHECKING:
    from atlas_tasks.models import Task
    from atlas_tasks.runs import LeasingStore, Run

#: ``metadata`` key: why the last run stopped before its steps were done, when something other than a failed step
#: stopped it: ``{"kind", "reason", "at"}``. Cleared when a run starts again.
STOP_REASON = "stop_reason"


@dataclass(frozen=True)
class Stop:
    """Why a run must stop now, and where it ends.

    Attributes:
        kind: A short stable word: ``cancelled``, ``deadline``, ``budget_exceeded``, ``crash_loop``.
        reason: The sentence the audit trail records (a transition's reason, the step's error).
        status: The Go status the task ends in (``interrupted``: resumable; ``abandoned``: terminal).
        grace: Seconds a running command gets between SIGTERM and SIGKILL (0: SIGKILL at once).
    """

    kind: str
    reason: str
    status: TaskStatus = TaskStatus.INTERRUPTED
    grace: float = 0.0


def _modules() -> tuple[Any, ...]:
    # Imported late: the runner imports this package, and these modules import the runner's helpers.
    from atlas_tasks.lifecycle import budgets, cancel, deadlines, recovery

    return (cancel, deadlines, budgets, recovery)


def gate(store: LeasingStore, workspace: str, task: Task, *, now: datetime | None = None) -> None:
    """Raise (a :class:`~atlas_tasks.errors.NotRunnableError`) when ``task`` may not start a run now.

    Called by :func:`atlas_tasks.runs.run` with the run lease held, on the task as stored.
    """
    for module in _modules():
        check = getattr(module, "gate", None)
        if check is not None:
            check(store, workspace, task, now=now)


def at_boundary(run: Run) -> Stop | None:
    """Whether the run must stop before its next step (the first answer wins)."""
    for module in _modules():
        check = getattr(module, "at_boundary", None)
        stop: Stop | None = check(run) if check is not None else None
        if stop is not None:
            return stop
    return None


def while_running(run: Run) -> Stop | None:
    """Whether the run must stop during the current step (asked about once a second while a command runs)."""
    for module in _modules():
        check = getattr(module, "while_running", None)
        stop: Stop | None = check(run) if check is not None else None
        if stop is not None:
            return stop
    return None


def describe(task: Task) -> list[tuple[str, str]]:
    """``(label, text)`` lines about the task's lifecycle for ``show`` and the dashboard (empty: nothing to say)."""
    from atlas_tasks.lifecycle import retries, rewind

    lines: list[tuple[str, str]] = []
    if task.metadata.get(STOP_REASON):
        stop = task.metadata[STOP_REASON]
        if isinstance(stop, dict):
            lines.append(("stopped", f"{stop.get('kind', '')}: {stop.get('reason', '')}"))
    for module in (*_modules(), retries, rewind):
        describer = getattr(module, "describe", None)
        if describer is not None:
            lines.extend(describer(task))
    return lines


def document(task: Task) -> dict[str, Any]:
    """The ``"lifecycle"`` object of ``show --json`` (keys only for what applies to this task)."""
    from atlas_tasks.lifecycle import retries, rewind

    doc: dict[str, Any] = {}
    stop = task.metadata.get(STOP_REASON)
    if isinstance(stop, dict):
        doc["stopped"] = stop
    for module in (*_modules(), retries, rewind):
        part = getattr(module, "document", None)
        if part is not None:
            doc.update(part(task))
    return doc


__all__ = ["STOP_REASON", "Stop", "at_boundary", "describe", "document", "gate", "while_running"]
