"""The crash-loop limit: a task that keeps dying without finishing a step stops resuming itself.

``metadata.recovery = {"crash_resumes", "limit", "at_step", "exhausted"}``: :func:`count_resume` (called by the
runner when a run resumes after a dead runner) adds one; a step completing after that resets it (noticed at the
next step boundary, so no extra write). Once ``crash_resumes >= limit`` :func:`gate` refuses the run
(:class:`~atlas_tasks.errors.CrashLoopError`), leaves the task ``interrupted`` with ``exhausted: true``, and the
refusal names the override: ``atlas-tasks run WS ID --reset-crash-count`` (:func:`reset_crash_count`).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from atlas_tasks.errors import CrashLoopError, GuardValueError
from atlas_tasks.models import TaskStatus, utcnow

if TYPE_CHECKING:
    from atlas_tasks.lifecycle import Stop
    from atlas_tasks.models import Task
    from atlas_tasks.runs import LeasingStore, Run
    from atlas_tasks.store import Store

RECOVERY = "recovery"
#: Crash resumes in a row allowed by default (DBOS allows 50, the Go daemon 3).
DEFAULT_LIMIT = 5


def check_limit(value: object) -> int:
    """A crash limit must be a whole number >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise GuardValueError("crash_limit", value, "must be a whole number >= 1")
    return value


def state(task: Task) -> dict[str, Any]:
    """The task's recovery record, with defaults filled in (a copy)."""
    raw = task.metadata.get(RECOVERY)
    doc = dict(raw) if isinstance(raw, dict) else {}
    doc.setdefault("crash_resumes", 0)
    limit = doc.get("limit")
    doc["limit"] = limit if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 1 else DEFAULT_LIMIT
    return doc


def count_resume(task: Task) -> None:
    """The run resumes after its runner died: one more crash resume, remembered with the step it stood at."""
    doc = state(task)
    doc["crash_resumes"] = int(doc["crash_resumes"]) + 1
    doc["at_step"] = task.current_step
    task.metadata[RECOVERY] = doc


def at_boundary(run: Run) -> Stop | None:
    """A step completed since the last crash resume: the crash count starts again (saved by the next checkpoint)."""
    raw = run.task.metadata.get(RECOVERY)
    if isinstance(raw, dict) and raw.get("crash_resumes") and run.task.current_step > int(raw.get("at_step", 0)):
        run.task.metadata[RECOVERY] = {**raw, "crash_resumes": 0, "at_step": run.task.current_step}
    return None


def _crashed(task: Task) -> bool:
    from atlas_tasks.runs import _CRASH_RESUMED, _resume_note

    return _resume_note(task) == _CRASH_RESUMED


def gate(store: LeasingStore, workspace: str, task: Task, *, now: datetime | None = None) -> None:
    """Refuse to resume a task whose runner died ``limit`` times in a row without finishing a step."""
    doc = state(task)
    if int(doc["crash_resumes"]) < int(doc["limit"]) or not _crashed(task):
        return
    from atlas_tasks.lifecycle import STOP_REASON
    from atlas_tasks.runs import ACTIVE_STATUSES, RUNNER_DIED

    reason = (
        f"crash-loop limit reached: the runner died {doc['crash_resumes']} times in a row without finishing a "
        f"step (limit {doc['limit']})"
    )

    def exhaust(current: Task) -> None:
        if current.status in ACTIVE_STATUSES:
            current.transition(TaskStatus.INTERRUPTED, f"the previous {RUNNER_DIED}; {reason}")
        current.metadata[RECOVERY] = {**state(current), "exhausted": True}
        current.metadata[STOP_REASON] = {"kind": "crash_loop", "reason": reason, "at": utcnow().isoformat()}

    if not state(task).get("exhausted") or task.status in ACTIVE_STATUSES:
        store.modify(workspace, task.id, exhaust)
    raise CrashLoopError(workspace, task.id, str(TaskStatus.INTERRUPTED), int(doc["crash_resumes"]), int(doc["limit"]))


def reset_crash_count(store: Store, workspace: str, task_id: str, reason: str = "") -> Task:
    """Let a crash-looping task run again: the count goes back to 0 (one write, and a log line saying who asked)."""
    why = reason or "crash count reset by the user (`run --reset-crash-count`)"

    def change(task: Task) -> None:
        doc = state(task)
        resets = list(doc.get("resets") or [])
        resets.append({"at": utcnow().isoformat(), "crash_resumes": doc["crash_resumes"], "reason": why})
        task.metadata[RECOVERY] = {**doc, "crash_resumes": 0, "exhausted": False, "resets": resets}

    task = store.modify(workspace, task_id, change)
    entry = {"level": "warn", "event": "crash count reset", "step_name": "", "reason": why}
    store.append_log(workspace, task_id, entry)
    return task


def document(task: Task) -> dict[str, Any]:
    """``{"recovery": {"crash_resumes", "limit", "exhausted"}}`` once the task has a record or a custom limit."""
    if not isinstance(task.metadata.get(RECOVERY), dict):
        return {}
    doc = state(task)
    return {
        "recovery": {
            "crash_resumes": doc["crash_resumes"],
            "limit": doc["limit"],
            "exhausted": bool(doc.get("exhausted")),
        }
    }


def describe(task: Task) -> list[tuple[str, str]]:
    """Crash resumes n/limit, and whether the limit stopped the task."""
    doc = document(task).get("recovery")
    if not doc:
        return []
    text = f"{doc['crash_resumes']}/{doc['limit']} crash resumes in a row"
    if doc["exhausted"]:
        text += " (limit reached: `run --reset-crash-count` overrides)"
    return [("crash loop", text)]


__all__ = ["DEFAULT_LIMIT", "RECOVERY", "check_limit", "count_resume", "reset_crash_count", "state"]
