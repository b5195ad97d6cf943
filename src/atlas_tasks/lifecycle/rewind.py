"""Retry a task from a chosen step in place, or fork it from a step as a new task (see docs/runs.md).

Both are written once on the store contract, so they behave the same on every backend:

* :func:`retry_from` resets the chosen step and every later one to pending (their attempts kept, the results
  history never rewritten) and points ``current_step`` at it: Go's ``atlas reject --retry --step N``, which sets
  ``current_step`` and moves a task awaiting approval to running. One revision-checked ``store.modify``.
* :func:`fork` builds a NEW task whose steps before the fork point carry the source's results, copies every
  artifact of the source through the store API, and records lineage both ways. The new task is created marked
  ``fork_incomplete`` and built under its own run lease; only then is the marker cleared and the source's
  ``forks`` list updated. A crash leaves either no fork, a complete one, or an incomplete one with a free lease,
  which :func:`discard_incomplete_forks` (called by ``recover``) deletes.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any

from atlas_tasks.errors import AtlasTasksError, RewindError, TaskNotFoundError, TaskRunningError
from atlas_tasks.lifecycle import budgets, recovery
from atlas_tasks.models import StepResult, Task, TaskStatus, format_time, utcnow
from atlas_tasks.names import VERSIONED_RE
from atlas_tasks.transitions import is_terminal

if TYPE_CHECKING:
    from atlas_tasks.runs import LeasingStore

#: ``metadata`` keys written here (documented in docs/runs.md).
RETRIED_FROM = "retried_from"
FORKED_FROM = "forked_from"
FORKS = "forks"
FORK_INCOMPLETE = "fork_incomplete"
# Keys describing the source's own runs, spend and lineage, which a fork does not inherit: it is a new run, with
# its own spend (the source's is carried as `inherited_usage`), no pending cancel, no crash history and no deadline
# of the source's run (a deadline belongs to a run; give the fork its own with `atlas-tasks deadline`). Limits stay:
# `budget`, `retry_policy` and the crash limit apply to the fork's own run.
_NOT_INHERITED = (
    RETRIED_FROM,
    FORKED_FROM,
    FORKS,
    FORK_INCOMPLETE,
    "stop_reason",
    "run",
    "cancel_request",
    "usage",
    "inherited_usage",
    "budget_warnings",
    "budget_changes",
    "deadline",
    "deadline_changes",
)
_DONE = ("success", "skipped", "completed")

# Test-only crash injection: ATLAS_TASKS_FORK_CRASH=<point> makes fork() exit at once (os._exit, like kill -9)
# at that point, so tests can show a crash at each write leaves no fork or a complete one.
_CRASH_ENV = "ATLAS_TASKS_FORK_CRASH"
CRASH_POINTS = ("created", "logged", "artifacts", "completed")


def _crash_point(name: str) -> None:
    if os.environ.get(_CRASH_ENV) == name:
        os._exit(137)


def _choices(task: Task) -> tuple[str, ...]:
    return (*(f"{i + 1} ({s.name})" for i, s in enumerate(task.steps)), "failed", "last")


def resolve_step(workspace: str, task: Task, step: int | str) -> int:
    """The 0-based index of ``step``: a 1-based number, a unique step name, ``"failed"`` or ``"last"``.

    Raises:
        RewindError: out of range, a name that is missing or repeats, no failed step, or no step ran yet.
    """
    asked = str(step)
    if isinstance(step, int) or asked.isdigit():
        number = int(step)
        if not 1 <= number <= len(task.steps):
            raise RewindError(workspace, task.id, asked, f"the task has {len(task.steps)} steps", _choices(task))
        return number - 1
    if asked == "failed":
        for index, s in enumerate(task.steps):
            if s.status == "failed":
                return index
        failed = [r for r in task.step_results if r.status == "failed" and 0 <= r.step_index < len(task.steps)]
        if failed:
            return failed[-1].step_index
        raise RewindError(workspace, task.id, asked, "no step has failed", (*_choices(task)[:-2], "last"))
    if asked == "last":
        ran = [i for i, s in enumerate(task.steps) if s.status != "pending" or s.attempts > 0]
        ran += [r.step_index for r in task.step_results if 0 <= r.step_index < len(task.steps)]
        if not ran:
            raise RewindError(workspace, task.id, asked, "no step has run yet", _choices(task)[:-2])
        return max(ran)
    named = [i for i, s in enumerate(task.steps) if s.name == asked]
    if len(named) == 1:
        return named[0]
    why = f"{len(named)} steps are named {asked!r}: use the number" if named else f"no step is named {asked!r}"
    raise RewindError(workspace, task.id, asked, why, _choices(task))


def _first_unfinished(task: Task) -> int:
    return next((i for i, s in enumerate(task.steps) if s.status not in _DONE), len(task.steps))


def _check_reachable(workspace: str, task: Task, index: int, asked: str) -> None:
    # Starting past a step that never finished would skip it silently: refuse, naming the furthest valid step.
    limit = _first_unfinished(task)
    if index > limit:
        raise RewindError(
            workspace,
            task.id,
            asked,
            f"step {limit + 1} ({task.steps[limit].name}) has not finished, so no later step can be the start",
            tuple(f"{i + 1} ({s.name})" for i, s in enumerate(task.steps[: limit + 1])),
        )


def _refuse_if_running(store: LeasingStore, workspace: str, task_id: str) -> None:
    holder = store.lease_holder(workspace, task_id)
    if holder is not None:
        raise TaskRunningError(workspace, task_id, holder)


def plan_retry(store: LeasingStore, workspace: str, task_id: str, step: int | str) -> tuple[Task, int]:
    """The task and the 0-based step a retry would start from (checks everything; changes nothing)."""
    task = store.get(workspace, task_id)
    index = resolve_step(workspace, task, step)
    if is_terminal(task.status):
        raise RewindError(
            workspace,
            task_id,
            str(step),
            f"it is {task.status}, and a finished task never runs again (Go agrees); fork it instead: "
            f"`atlas-tasks fork {workspace} {task_id} --from-step {index + 1}`",
        )
    _check_reachable(workspace, task, index, str(step))
    return task, index


def retry_from(
    store: LeasingStore,
    workspace: str,
    task_id: str,
    step: int | str,
    *,
    reason: str = "",
    expected_revision: int | None = None,
) -> Task:
    """Reset ``step`` and every later step to pending, in place, so the next run starts there.

    Steps before it and every recorded StepResult are kept; the reset steps keep their attempt counts. A task
    awaiting approval moves to running (Go's reject-and-retry); a crashed one (running, no live runner) to
    interrupted; pending, failed and interrupted tasks stay in their status, from which ``run`` (and Go's
    ``resume``) continues. Returns the stored task.

    Raises:
        RewindError: a bad step (the message lists the valid ones), or a finished task (fork it instead).
        TaskRunningError: a live runner holds the task.
        ConflictError: ``expected_revision`` was given and the task changed since.
    """
    _refuse_if_running(store, workspace, task_id)
    plan_retry(store, workspace, task_id, step)
    why = reason or f"retry from step {step}"

    def change(task: Task) -> None:
        # Checked again under the task lock: the task (or its runner) may have moved since the plan.
        holder = store.lease_holder(workspace, task.id)
        if holder is not None:
            raise TaskRunningError(workspace, task.id, holder)
        if expected_revision is not None and task.revision != expected_revision:
            from atlas_tasks.errors import ConflictError

            raise ConflictError(workspace, task.id, expected_revision, task.revision)
        index = resolve_step(workspace, task, step)
        if is_terminal(task.status):
            raise RewindError(workspace, task.id, str(step), f"it is {task.status}; fork it instead")
        _check_reachable(workspace, task, index, str(step))
        source_revision = task.revision
        for s in task.steps[index:]:
            s.status, s.started_at, s.completed_at, s.error = "pending", None, None, ""
        task.current_step = index
        task.completed_at = None
        if task.status == TaskStatus.AWAITING_APPROVAL:
            task.transition(TaskStatus.RUNNING, f"retry from step {index + 1}: {why}")
        elif task.status in (TaskStatus.RUNNING, TaskStatus.VALIDATING):
            task.transition(TaskStatus.INTERRUPTED, f"retry from step {index + 1}: {why} (no live runner)")
        task.metadata[RETRIED_FROM] = {
            "step_index": index,
            "step_name": task.steps[index].name,
            "reason": why,
            "at": format_time(utcnow()),
            "source_revision": source_revision,
        }
        task.metadata.pop("stop_reason", None)

    task = store.modify(workspace, task_id, change)
    info = task.metadata[RETRIED_FROM]
    store.append_log(
        workspace,
        task_id,
        {
            "level": "info",
            "event": f"retry from step {info['step_index'] + 1} ({info['step_name']}): {why}",
            "step_name": info["step_name"],
        },
    )
    return task


def plan_fork(store: LeasingStore, workspace: str, task_id: str, step: int | str) -> tuple[Task, int]:
    """The source task and the 0-based fork point (checks everything; changes nothing)."""
    source = store.get(workspace, task_id)
    index = resolve_step(workspace, source, step)
    _check_reachable(workspace, source, index, str(step))
    return source, index


def build_fork(source: Task, index: int, *, reason: str, workspace: str, source_workspace: str) -> Task:
    """The new task a fork of ``source`` at ``index`` starts as (not stored; marked incomplete)."""
    new = source.model_copy(deep=True)
    new.id, new.revision = "", 0
    new.status, new.transitions, new.running_processes = TaskStatus.PENDING, [], []
    new.created_at = new.updated_at = new.completed_at = None
    new.current_step = index
    for s in new.steps[index:]:
        s.status, s.started_at, s.completed_at, s.error, s.attempts = "pending", None, None, "", 0
    kept: list[StepResult] = []
    for result in source.step_results:
        if result.step_index >= index:
            continue
        copy = result.model_copy(deep=True)
        if 0 <= result.step_index < len(new.steps) and str(new.steps[result.step_index].type) == "human":
            copy.metadata["inherited"] = True  # approved in the source: the fork does not ask again
        kept.append(copy)
    new.step_results = kept
    for key in _NOT_INHERITED:
        new.metadata.pop(key, None)
    spent = budgets.inherited(source)
    if spent is not None:
        new.metadata[budgets.INHERITED] = spent
    crash = source.metadata.get(recovery.RECOVERY)
    if isinstance(crash, dict):
        new.metadata[recovery.RECOVERY] = {"crash_resumes": 0, "limit": recovery.state(source)["limit"]}
    new.metadata[FORKED_FROM] = {
        "task_id": source.id,
        "workspace": source_workspace,
        "step_index": index,
        "step_name": source.steps[index].name if index < len(source.steps) else "",
        "source_revision": source.revision,
        "reason": reason,
        "at": format_time(utcnow()),
    }
    new.metadata[FORK_INCOMPLETE] = True
    new.workspace_name = workspace
    return new


def fork(
    store: LeasingStore,
    workspace: str,
    task_id: str,
    step: int | str,
    *,
    reason: str = "",
    to_workspace: str | None = None,
) -> Task:
    """Fork ``task_id`` at ``step`` as a new pending task (in ``to_workspace``, default the same); returns it.

    The source changes only by one entry appended to ``metadata.forks``.

    Raises:
        RewindError: a bad step (the message lists the valid ones).
        TaskRunningError: a live runner holds the source.
        WorkspaceNotFoundError: ``to_workspace`` does not exist.
    """
    from atlas_tasks.runs import _holder

    target = to_workspace or workspace
    _refuse_if_running(store, workspace, task_id)
    source, index = plan_fork(store, workspace, task_id, step)
    why = reason or f"fork from step {index + 1}"
    names = store.list_artifacts(workspace, task_id)  # read before creating, so a fork into the same ws is clean
    created = store.create(target, build_fork(source, index, reason=why, workspace=target, source_workspace=workspace))
    _crash_point("created")
    # Held while building: recover deletes an incomplete fork only when nobody holds it.
    lease = store.acquire_lease(target, created.id, {**_holder(), "fork_of": f"{workspace}/{task_id}"})
    try:
        store.append_log(
            target,
            created.id,
            {
                "level": "info",
                "event": f"forked from {workspace}/{task_id} at step {index + 1}: {why}",
                "step_name": "",
            },
        )
        _crash_point("logged")
        _copy_artifacts(store, (workspace, task_id), (target, created.id), names)
        _crash_point("artifacts")
        done = store.modify(target, created.id, lambda t: t.metadata.pop(FORK_INCOMPLETE, None))
        _crash_point("completed")
    except BaseException:
        # A failure we live through (a store error, Ctrl-C): remove the half-built fork now rather than leave it
        # to recover. Still marked incomplete and still under our lease, so nobody else can be using it.
        with contextlib.suppress(AtlasTasksError):
            store.delete(target, created.id)
        raise
    finally:
        lease.release()
    entry = {"task_id": done.id, "workspace": target, "step_index": index, "at": format_time(utcnow())}
    store.modify(workspace, task_id, lambda t: t.metadata.setdefault(FORKS, []).append(entry))
    return done


def _versioned(name: str) -> tuple[str, int] | None:
    """``a/validation.2.json`` -> (``a/validation.json``, 2); None for a plain name."""
    folder, slash, leaf = name.rpartition("/")
    match = VERSIONED_RE.fullmatch(leaf)
    if match is None:
        return None
    return f"{folder}{slash}{match['stem']}{match['ext'] or ''}", int(match["n"])


def _copy_artifacts(store: LeasingStore, source: tuple[str, str], target: tuple[str, str], names: list[str]) -> None:
    """Copy every artifact's bytes through the store API; versioned ones in version order, so they keep their
    names (the store numbers them: max + 1, so a source with a gap in its versions is renumbered densely)."""
    versions: list[tuple[str, int, str]] = []
    for name in names:
        parsed = _versioned(name)
        if parsed is None:
            store.save_artifact(*target, name, store.get_artifact(*source, name))
        else:
            versions.append((parsed[0], parsed[1], name))
    for base, _, name in sorted(versions):
        store.save_versioned_artifact(*target, base, store.get_artifact(*source, name))


def is_incomplete_fork(task: Task) -> bool:
    """True for a fork whose build has not finished (being built, or its builder died)."""
    return bool(task.metadata.get(FORK_INCOMPLETE))


def discard_incomplete_forks(store: LeasingStore, workspace: str) -> list[str]:
    """Delete every incomplete fork of ``workspace`` whose builder is gone (its lease free); returns their ids."""
    gone: list[str] = []
    for task in store.list(workspace):
        if not is_incomplete_fork(task) or store.lease_holder(workspace, task.id) is not None:
            continue
        try:
            lease = store.acquire_lease(workspace, task.id, {"pid": os.getpid(), "recovering": "incomplete fork"})
        except (TaskRunningError, TaskNotFoundError):
            continue  # its builder (or another recover) holds it, or it is gone already
        try:
            if is_incomplete_fork(store.get(workspace, task.id)):  # finished meanwhile: keep it
                store.delete(workspace, task.id)
                gone.append(task.id)
        except TaskNotFoundError:
            pass
        finally:
            lease.release()
    return gone


def describe(task: Task) -> list[tuple[str, str]]:
    """Lineage lines for ``show`` and the dashboard."""
    lines: list[tuple[str, str]] = []
    meta = task.metadata
    if meta.get(FORK_INCOMPLETE):
        lines.append(("fork", "INCOMPLETE: its build did not finish; `atlas-tasks recover` removes it"))
    origin = meta.get(FORKED_FROM)
    if isinstance(origin, dict):
        lines.append(
            (
                "forked from",
                f"{origin.get('workspace', '')}/{origin.get('task_id', '')} at step "
                f"{int(origin.get('step_index', 0)) + 1} ({origin.get('step_name', '')})",
            )
        )
    forks = meta.get(FORKS)
    if isinstance(forks, list) and forks:
        ids = ", ".join(f"{f.get('workspace', '')}/{f.get('task_id', '')}" for f in forks if isinstance(f, dict))
        lines.append(("forks", ids))
    retried = meta.get(RETRIED_FROM)
    if isinstance(retried, dict):
        lines.append(
            (
                "retried",
                f"from step {int(retried.get('step_index', 0)) + 1} ({retried.get('step_name', '')}) at "
                f"{retried.get('at', '')}: {retried.get('reason', '')}",
            )
        )
    return lines


def document(task: Task) -> dict[str, Any]:
    """The lineage keys of ``show --json``'s ``"lifecycle"`` object."""
    doc: dict[str, Any] = {}
    meta = task.metadata
    for key in (FORKED_FROM, FORKS, RETRIED_FROM):
        if meta.get(key):
            doc[key] = meta[key]
    if meta.get(FORK_INCOMPLETE):
        doc[FORK_INCOMPLETE] = True
    return doc


def missing_forks(store: LeasingStore, task: Task) -> list[dict[str, Any]]:
    """The entries of ``task``'s forks list whose task no longer exists (deleted, or a crash between writes)."""
    missing = []
    for entry in task.metadata.get(FORKS) or []:
        if not isinstance(entry, dict):
            continue
        try:
            store.get(str(entry.get("workspace", "")), str(entry.get("task_id", "")))
        except AtlasTasksError:  # gone, or unreadable: either way not there to show
            missing.append(entry)
    return missing


__all__ = [
    "CRASH_POINTS",
    "FORKED_FROM",
    "FORKS",
    "FORK_INCOMPLETE",
    "RETRIED_FROM",
    "describe",
    "discard_incomplete_forks",
    "document",
    "fork",
    "is_incomplete_fork",
    "plan_fork",
    "plan_retry",
    "resolve_step",
    "retry_from",
]
