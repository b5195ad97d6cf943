"""Run deadlines, stored as absolute times so they survive a crash and a resume (see docs/runs.md, "Deadlines").

``metadata.deadline`` is an ISO time in UTC. It is set by ``new --deadline``, by :func:`set_deadline` (the
``deadline`` command), or at a task's first run from ``metadata.deadline_seconds`` (a template's
``deadline_seconds``: first run start + duration, stored then so a resume keeps it). Every change is kept in
``metadata.deadline_changes`` and the task's log.

Past the deadline a running step's commands get SIGTERM, then SIGKILL after :data:`KILL_GRACE` seconds; between
steps the run halts; a new run is refused (:class:`~atlas_tasks.errors.DeadlinePassedError`). The task ends
``interrupted`` (resumable once the deadline is extended or cleared). A per-step ``timeout_seconds`` is separate
and per attempt: a resumed step starts a new attempt with the full timeout.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from atlas_tasks.errors import DeadlinePassedError, GuardValueError
from atlas_tasks.lifecycle import Stop
from atlas_tasks.models import utcnow

if TYPE_CHECKING:
    from atlas_tasks.models import Task
    from atlas_tasks.runs import LeasingStore, Run
    from atlas_tasks.store import Store

DEADLINE = "deadline"
DURATION = "deadline_seconds"
CHANGES = "deadline_changes"
#: Seconds a running command gets between SIGTERM and SIGKILL when the deadline passes.
KILL_GRACE = 10.0

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(text: str) -> timedelta:
    """``90``, ``90s``, ``15m``, ``2h``, ``1d`` as a timedelta (GuardValueError otherwise)."""
    match = _DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise GuardValueError("duration", text, "must be a positive number with an optional unit s, m, h or d")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def parse_when(text: str, *, now: datetime | None = None) -> datetime:
    """A duration from now (``2h``) or an ISO time (naive means UTC) as an aware UTC datetime."""
    if _DURATION.match(text):
        return (now or utcnow()) + parse_duration(text)
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise GuardValueError("deadline", text, "must be a duration (90s, 15m, 2h, 1d) or an ISO time") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def deadline_of(task: Task) -> datetime | None:
    """The task's deadline, if it has one (an unreadable value counts as none rather than blocking the task)."""
    raw = task.metadata.get(DEADLINE)
    if not isinstance(raw, str) or not raw:
        return None
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def _passed(task: Task, now: datetime | None) -> datetime | None:
    when = deadline_of(task)
    return when if when is not None and (now or utcnow()) >= when else None


def stop_for(when: datetime) -> Stop:
    """The Stop a passed deadline causes."""
    return Stop("deadline", f"the run's deadline ({when.isoformat()}) passed", grace=KILL_GRACE)


def set_deadline(store: Store, workspace: str, task_id: str, when: datetime | None, reason: str = "") -> Task:
    """Set (or with None clear) the task's deadline in one revision-checked write, recording the change."""

    def change(task: Task) -> None:
        before = task.metadata.get(DEADLINE)
        if when is None:
            task.metadata.pop(DEADLINE, None)
        else:
            task.metadata[DEADLINE] = when.astimezone(UTC).isoformat()
        task.metadata.pop(DURATION, None)  # an explicit deadline replaces a pending duration
        history = task.metadata.get(CHANGES)
        history = list(history) if isinstance(history, list) else []
        history.append(
            {"at": utcnow().isoformat(), "from": before, "to": task.metadata.get(DEADLINE), "reason": reason}
        )
        task.metadata[CHANGES] = history

    task = store.modify(workspace, task_id, change)
    store.append_log(
        workspace,
        task_id,
        {
            "level": "info",
            "event": "deadline cleared" if when is None else f"deadline set to {task.metadata[DEADLINE]}",
            "step_name": "",
            "reason": reason,
        },
    )
    return task


def start_clock(task: Task, now: datetime | None = None) -> None:
    """At a task's first run, turn a template's ``deadline_seconds`` into an absolute deadline (kept on resume)."""
    seconds = task.metadata.get(DURATION)
    if task.metadata.get(DEADLINE) or not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return
    task.metadata[DEADLINE] = ((now or utcnow()) + timedelta(seconds=float(seconds))).isoformat()
    task.metadata.pop(DURATION)


def gate(store: LeasingStore, workspace: str, task: Task, *, now: datetime | None = None) -> None:
    """Refuse a run once the task's deadline has passed."""
    when = _passed(task, now)
    if when is not None:
        raise DeadlinePassedError(workspace, task.id, str(task.status), when.isoformat())


def at_boundary(run: Run) -> Stop | None:
    """Stop before the next step once the deadline has passed."""
    when = _passed(run.task, None)
    return stop_for(when) if when is not None else None


def while_running(run: Run) -> Stop | None:
    """Stop a running step once the deadline has passed."""
    return at_boundary(run)


def document(task: Task) -> dict[str, Any]:
    """``{"deadline": {"at", "seconds_left", "passed"}}`` (or ``{"duration_seconds"}`` before the first run)."""
    when = deadline_of(task)
    if when is None:
        seconds = task.metadata.get(DURATION)
        return {"deadline": {"duration_seconds": seconds}} if isinstance(seconds, int | float) else {}
    left = (when - utcnow()).total_seconds()
    return {"deadline": {"at": when.isoformat(), "seconds_left": max(0.0, round(left, 1)), "passed": left <= 0}}


def describe(task: Task) -> list[tuple[str, str]]:
    """The deadline and the time left."""
    doc = document(task).get("deadline")
    if not doc:
        return []
    if "at" not in doc:
        return [("deadline", f"{doc['duration_seconds']:g}s from the first run")]
    if doc["passed"]:
        return [("deadline", f"{doc['at']} (passed)")]
    return [("deadline", f"{doc['at']} ({timedelta(seconds=int(doc['seconds_left']))} left)")]


__all__ = ["KILL_GRACE", "deadline_of", "parse_duration", "parse_when", "set_deadline", "start_clock", "stop_for"]
