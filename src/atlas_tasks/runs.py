"""Checkpointed runs that survive kill -9: run leases, crash detection, resume.

    with store.run("payments", task_id) as run:           # takes the run lease, moves the task to running
        for step in run.remaining_steps():
            with run.step(step) as s:                     # step -> running, checkpointed before the work starts
                s.log("compiling", files=3)               # one fsynced JSON line in task.log
                s.artifact("validation.json", data, versioned=True)
            # on exit: StepResult recorded, current_step advanced, task checkpointed, before the next step

Guarantees:

* **One live runner per task.** The run lease is an flock held for the whole run; the OS releases it when the
  runner dies, however it dies. A second runner gets :class:`~atlas_tasks.errors.TaskRunningError` naming the
  holder.
* **Crashes are seen.** A task in ``running``/``validating`` whose lease is free has no live runner: it is
  *interrupted* (:func:`is_interrupted`; :func:`recover` records it).
* **Resume continues where it stopped.** Steps recorded as done are never run again (exactly-once for recorded
  steps); the step that was in flight when the runner died runs again with ``attempts`` + 1 (at-least-once for the
  in-flight step). Its side effects may therefore happen twice: make steps idempotent where that matters.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, Protocol

from atlas_tasks import lifecycle
from atlas_tasks.errors import (
    AtlasTasksError,
    CannotAbandonError,
    ConflictError,
    InvalidTransitionError,
    NotAwaitingApprovalError,
    NotRunnableError,
    StepFailedError,
    TaskRunningError,
)
from atlas_tasks.lifecycle import cancel as cancel_request
from atlas_tasks.models import Step, StepResult, Task, TaskStatus, utcnow
from atlas_tasks.store import Store
from atlas_tasks.store.capabilities import LeaseHandle, RunLeases
from atlas_tasks.transitions import allowed_from, can_transition, is_error, is_terminal

ACTIVE_STATUSES = frozenset({TaskStatus.RUNNING, TaskStatus.VALIDATING})
# A task written by the Go ATLAS carries no lease of ours: a live Go engine cannot be told from a dead one except by
# age. Go's own hook subsystem calls a run stale after five minutes without a write; so do we, for Go tasks only.
GO_STALE_AFTER = timedelta(minutes=5)


class LeasingStore(Store, RunLeases, Protocol):
    """A Store with the :class:`~atlas_tasks.store.capabilities.RunLeases` capability: what a run needs.

    Kept under its old name; new code checks ``isinstance(store, RunLeases)`` (the file store: an flock;
    PostgreSQL: an advisory lock; memory: a lock of this process).
    """


def _holder() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname(), "started_at": utcnow().isoformat()}


def ready_to_continue(task: Task) -> bool:
    """Approved at a review step with steps left: running, but waiting for `run` to continue, not crashed."""
    last = task.transitions[-1] if task.transitions else None
    in_flight = task.current_step < len(task.steps) and task.steps[task.current_step].status == "running"
    return (
        task.status == TaskStatus.RUNNING
        and last is not None
        and last.from_status == TaskStatus.AWAITING_APPROVAL
        and not in_flight
    )


def is_interrupted(
    store: LeasingStore, workspace: str, task: Task, *, now: datetime | None = None, confirm: bool = True
) -> bool:
    """True when the task says a runner is at work (running/validating) but no live runner holds its lease.

    ``task`` may be a copy read a moment ago: a runner that finished in between (wrote its last checkpoint, then let
    go of its lease) would look crashed, so a free lease is confirmed by reading the task again: a run that crashed
    stays at the revision it was seen at. ``confirm=False`` skips that re-read, for callers that know no runner of
    ours ever held the lease (no lease file) or that compare revisions themselves.
    """
    if task.status not in ACTIVE_STATUSES or ready_to_continue(task):
        return False
    if store.lease_holder(workspace, task.id) is not None:
        return False
    if not confirm:
        return _stale_enough(task, now)
    try:
        again = store.get(workspace, task.id)
    except AtlasTasksError:
        return False  # deleted or unreadable meanwhile: not a crashed run to resume
    if again.revision != task.revision or again.status not in ACTIVE_STATUSES:
        return False
    return _stale_enough(task, now)


def _stale_enough(task: Task, now: datetime | None) -> bool:
    """A Go task carries no lease of ours: it counts as crashed only after GO_STALE_AFTER without a write."""
    if task.key_style == "go" and task.updated_at is not None:
        return (now or utcnow()) - task.updated_at > GO_STALE_AFTER
    return True


class StepStopped(Exception):
    """Raised inside a step when the run must stop now (a :class:`~atlas_tasks.lifecycle.Stop`: cancel, deadline,
    budget). :meth:`Run.step` records the step as stopped and ends the run in the stop's status."""

    def __init__(self, stop: lifecycle.Stop) -> None:
        super().__init__(stop.reason)
        self.stop = stop


#: Seconds between two :meth:`Run.poll` questions to :func:`atlas_tasks.lifecycle.while_running`.
POLL_EVERY = 1.0


def failure_status(step: Step) -> TaskStatus:
    """The task status a failed step of this type leads to (as the Go engine maps them, per the issue)."""
    kind = str(step.type)
    if kind == "validation":
        return TaskStatus.VALIDATION_FAILED
    if kind == "ci":
        return TaskStatus.CI_FAILED
    if kind == "git":
        return TaskStatus.GH_FAILED
    return TaskStatus.INTERRUPTED


def _move(task: Task, target: TaskStatus, reason: str) -> None:
    """Transition along the shortest allowed path (running reaches validation_failed through validating)."""
    if task.status == target:
        return
    if target in (TaskStatus.VALIDATION_FAILED, TaskStatus.AWAITING_APPROVAL) and task.status == TaskStatus.RUNNING:
        task.transition(TaskStatus.VALIDATING, reason)
    if target == TaskStatus.ABANDONED and task.status == TaskStatus.VALIDATING:
        task.transition(TaskStatus.INTERRUPTED, reason)  # Go has no validating -> abandoned edge
    task.transition(target, reason)


class StepContext:
    """What a step's code uses while it runs: its log, its artifacts, and how it ends."""

    def __init__(self, run: Run, index: int) -> None:
        self.run = run
        self.index = index
        self.step = run.task.steps[index]
        self.output = ""
        self.files_changed: list[str] = []
        self.metadata: dict[str, Any] = {}
        self.artifact_path = ""
        self.outcome = "success"

    def log(self, event: str, *, level: str = "info", **fields: Any) -> None:
        """Append one durable log line for this step."""
        entry = {"level": level, "event": event, "step_name": self.step.name, **fields}
        self.run.store.append_log(self.run.workspace, self.run.task.id, entry)

    def artifact(self, name: str, data: bytes | str, *, versioned: bool = False) -> str:
        """Save an artifact durably (before the step's checkpoint refers to it); returns the name used."""
        store, ws, task_id = self.run.store, self.run.workspace, self.run.task.id
        if versioned:
            saved = store.save_versioned_artifact(ws, task_id, name, data)
        else:
            saved = store.save_artifact(ws, task_id, name, data)
        self.artifact_path = f"artifacts/{saved}"
        return saved

    def skip(self, reason: str = "") -> None:
        """End the step as skipped (recorded, and the run moves on)."""
        self.outcome, self.output = "skipped", reason or self.output

    def no_changes(self, reason: str = "") -> None:
        """End the step as no_changes (nothing to do: later git steps may be skipped by their executors)."""
        self.outcome, self.output = "no_changes", reason or self.output

    def await_approval(self, prompt: str = "") -> None:
        """End the step waiting for a human: the run stops at awaiting_approval until `approve` or `reject`."""
        self.outcome, self.output = "awaiting_approval", prompt or self.output


class Run:
    """A live run of one task, holding its lease. Create it with :func:`run` (or ``store.run``)."""

    def __init__(self, store: LeasingStore, workspace: str, task: Task, lease: LeaseHandle) -> None:
        self.store = store
        self.workspace = workspace
        self.task = task
        self._lease = lease
        self.stopped = False
        #: Why the run stopped early (cancel, deadline, budget), once it has.
        self.stop: lifecycle.Stop | None = None
        self._polled = 0.0
        #: What the store holds as of our last save (compared when a checkpoint conflicts).
        self._saved = task.model_copy(deep=True)

    def checkpoint(self) -> Task:
        """Save the task now (revision-checked) and keep the stored copy.

        A lease that can tell it was lost (PostgreSQL's, when its connection broke) is checked first, so a runner
        that may have been replaced stops instead of writing.
        """
        verify = getattr(self._lease, "verify", None)
        if verify is not None:
            verify()
        try:
            saved = self.store.update(self.workspace, self.task)
        except ConflictError:
            # `cancel` writes its request while we hold an older revision. When that request is the only change
            # since our last save, merge it (the poll obeys it) or, once the run has stopped, drop it (consumed);
            # any other change is a real conflict.
            stored = self.store.get(self.workspace, self.task.id)
            if not cancel_request.only_request_differs(self._saved, stored):
                raise
            self.task.revision = stored.revision
            if not self.stopped and self.stop is None:
                self.task.metadata[cancel_request.CANCEL_REQUEST] = stored.metadata[cancel_request.CANCEL_REQUEST]
            saved = self.store.update(self.workspace, self.task)
        self.task = saved
        self._saved = saved.model_copy(deep=True)
        return self.task

    def remaining_steps(self) -> Iterator[Step]:
        """The steps not yet done, in order; stops early when a step waits for approval or the run stopped.

        Before each step :func:`atlas_tasks.lifecycle.at_boundary` is asked whether the run must stop there
        (cancelled, past its deadline, over its budget); if so the run halts (:meth:`halt`) and no step is yielded.
        """
        while not self.stopped and self.task.current_step < len(self.task.steps):
            stop = lifecycle.at_boundary(self)
            if stop is not None:
                self.halt(stop)
                break
            yield self.task.steps[self.task.current_step]
        if not self.stopped and self.task.status == TaskStatus.RUNNING:
            self._finish()

    def poll(self, *, force: bool = False) -> lifecycle.Stop | None:
        """Whether the run must stop now (asked by executors while a step's command runs); at most once a
        :data:`POLL_EVERY` unless ``force``."""
        now = time.monotonic()
        if not force and now - self._polled < POLL_EVERY:
            return None
        self._polled = now
        return lifecycle.while_running(self)

    def halt(self, stop: lifecycle.Stop) -> Task:
        """Stop the run between steps: record why (log, ``metadata.stop_reason``, a transition to the stop's
        status) in one checkpoint. Steps done so far stay done."""
        with contextlib.suppress(AtlasTasksError):
            self.store.append_log(
                self.workspace,
                self.task.id,
                {"level": "warn", "event": "run stopped", "step_name": "", "kind": stop.kind, "reason": stop.reason},
            )
        self._record_stop(stop)
        _move(self.task, stop.status, stop.reason)
        self.stopped = True
        return self.checkpoint()

    def _record_stop(self, stop: lifecycle.Stop) -> None:
        self.stop = stop
        # Whatever stopped the run, a cancel request is obeyed by it (consumed in the same checkpoint).
        self.task.metadata.pop(cancel_request.CANCEL_REQUEST, None)
        self.task.metadata[lifecycle.STOP_REASON] = {
            "kind": stop.kind,
            "reason": stop.reason,
            "at": utcnow().isoformat(),
        }

    @contextlib.contextmanager
    def step(self, step: Step | None = None) -> Iterator[StepContext]:
        """Run the current step: checkpointed as running before the work, as done (or failed) after it."""
        index = self.task.current_step
        if index >= len(self.task.steps):
            raise IndexError(f"task {self.task.id!r} has no step left to run")
        if step is not None and step.name != self.task.steps[index].name:
            raise ValueError(
                f"steps run in order: the current step is {self.task.steps[index].name!r}, not {step.name!r}"
            )
        ctx = self._begin(index)
        try:
            yield ctx
        except BaseException as exc:
            self._fail(ctx, exc)
            raise
        self._succeed(ctx)

    def _begin(self, index: int) -> StepContext:
        current = self.task.steps[index]
        current.status, current.started_at, current.completed_at = "running", utcnow(), None
        current.attempts += 1
        current.error = ""
        self.checkpoint()  # durable before any work: after a crash we know which step was in flight
        ctx = StepContext(self, index)
        ctx.log("step started", attempt=current.attempts)
        return ctx

    def _result(self, ctx: StepContext, status: str, error: str = "") -> None:
        step = self.task.steps[ctx.index]
        step.status, step.completed_at, step.error = status, utcnow(), error
        started = step.started_at or step.completed_at
        self.task.step_results.append(
            StepResult(
                step_index=ctx.index,
                step_name=step.name,
                status=status,
                started_at=started,
                completed_at=step.completed_at,
                duration_ms=int((step.completed_at - started).total_seconds() * 1000),
                output=ctx.output,
                error=error,
                files_changed=ctx.files_changed,
                artifact_path=ctx.artifact_path,
                metadata=ctx.metadata,
            )
        )

    def _succeed(self, ctx: StepContext) -> None:
        ctx.log(f"step {ctx.outcome}")  # log lines go before the checkpoint that acknowledges the step
        self._result(ctx, ctx.outcome)
        if ctx.outcome == "awaiting_approval":
            _move(self.task, TaskStatus.AWAITING_APPROVAL, f"step {ctx.step.name!r} waits for approval")
            self.stopped = True
        else:
            self.task.current_step = ctx.index + 1
        self.checkpoint()

    def _fail(self, ctx: StepContext, exc: BaseException) -> None:
        if isinstance(exc, StepStopped):
            # Not the step's failure: the run was told to stop. The step runs again when the task is resumed.
            reason = exc.stop.reason
            with contextlib.suppress(AtlasTasksError):
                ctx.log("step stopped", level="warn", kind=exc.stop.kind, error=reason)
            self._result(ctx, "failed", reason)
            self._record_stop(exc.stop)
            _move(self.task, exc.stop.status, f"{reason} (during step {ctx.step.name!r})")
            self.stopped = True
            self.checkpoint()
            return
        if isinstance(exc, KeyboardInterrupt):
            reason, target = "interrupted by the user", TaskStatus.INTERRUPTED
        else:
            reason, target = (str(exc) or type(exc).__name__), failure_status(ctx.step)
        with contextlib.suppress(AtlasTasksError):
            ctx.log("step failed", level="error", error=reason)
        self._result(ctx, "failed", reason)
        self.task.metadata["last_error"] = reason
        _move(self.task, target, f"step {ctx.step.name!r} failed: {reason}")
        self.stopped = True
        self.checkpoint()

    def _finish(self) -> None:
        # No review step stopped the run: every step is done, so the task completes. The Go state machine has no
        # edge from running to completed (running -> validating -> awaiting_approval -> completed is the only way),
        # so the task passes through those statuses in one checkpoint; the reasons say that it did not wait.
        self.task.transition(TaskStatus.VALIDATING, f"all {len(self.task.steps)} steps done")
        reviewed = [s.name for s in self.task.steps if str(s.type) == "human"]
        if reviewed:
            names = ", ".join(repr(n) for n in reviewed)
            why = f"the review ({names}) was approved earlier; no review left"
        else:
            why = "no review step in this template"
        self.task.transition(TaskStatus.AWAITING_APPROVAL, f"{why}, so nothing to wait for")
        self.task.transition(TaskStatus.COMPLETED, f"all steps done; {why}, so it completes without waiting")
        self.checkpoint()

    def release(self) -> None:
        self._lease.release()


#: Said by every transition that records a dead runner (see :func:`_resume_note`, which looks for it).
RUNNER_DIED = "runner died"
_CRASH_RESUMED = "resumed after a crash (the previous runner died)"


def _resume_note(task: Task) -> str:
    """Why a run starts, in words a reader of the audit trail can trust (it becomes the transition's reason)."""
    status = task.status
    if status == TaskStatus.PENDING:
        return "run started"
    if status in ACTIVE_STATUSES:
        return _CRASH_RESUMED
    last = task.transitions[-1] if task.transitions else None
    why = last.reason if last is not None and str(last.to_status) == str(status) else ""
    if len(why) > 200:
        why = why[:197] + "..."
    if status == TaskStatus.INTERRUPTED:
        if RUNNER_DIED in why:
            return _CRASH_RESUMED
        return f"resumed after an interruption ({why})" if why else "resumed after an interruption"
    return f"retried after {status}" + (f" ({why})" if why else "")


def _prepare(task: Task) -> str:
    """Bring a task that may have crashed into ``running``; returns what happened, for the log."""
    if ready_to_continue(task):
        return "continued after approval"
    from atlas_tasks.lifecycle import deadlines, recovery

    note = _resume_note(task)
    if note == _CRASH_RESUMED:
        recovery.count_resume(task)  # the crash-loop limit counts resumes without progress
    deadlines.start_clock(task)  # a template's deadline_seconds becomes absolute at the first run
    if task.status in ACTIVE_STATUSES:
        # We hold the lease, so whoever ran it before is gone: record the crash before resuming.
        task.transition(TaskStatus.INTERRUPTED, f"the previous {RUNNER_DIED} (its run lease was free)")
    in_flight = task.current_step < len(task.steps) and task.steps[task.current_step].status == "running"
    if in_flight:
        step = task.steps[task.current_step]
        now = utcnow()
        task.step_results.append(
            StepResult(
                step_index=task.current_step,
                step_name=step.name,
                status="failed",
                started_at=step.started_at or now,
                completed_at=now,
                error="interrupted: the runner died during this step; it runs again",
            )
        )
        step.status, step.error = "pending", ""
    task.transition(TaskStatus.RUNNING, note)
    return note


@contextlib.contextmanager
def run(store: LeasingStore, workspace: str, task_id: str) -> Iterator[Run]:
    """Take the task's run lease and move it to running; release the lease however the block ends.

    Raises:
        TaskRunningError: another live runner holds the task.
        NotRunnableError: the task is finished, or waits for approval.
        TaskNotFoundError, WorkspaceNotFoundError, InvalidNameError: as ``get``.
    """
    lease = store.acquire_lease(workspace, task_id, _holder())
    try:
        task = store.get(workspace, task_id)
        if is_terminal(task.status):
            raise NotRunnableError(workspace, task_id, str(task.status), "it is finished; nothing to run")
        if task.status == TaskStatus.AWAITING_APPROVAL:
            raise NotRunnableError(
                workspace,
                task_id,
                str(task.status),
                f"approve or reject it first (`atlas-tasks approve {workspace} {task_id}`)",
            )
        lifecycle.gate(store, workspace, task)
        note = _prepare(task)
        task.metadata.pop(lifecycle.STOP_REASON, None)  # a new run: the last one's stop is in the transitions
        # A request its runner died before obeying: starting a run again is the newer wish.
        task.metadata.pop(cancel_request.CANCEL_REQUEST, None)
        task.metadata["run"] = _holder()
        live = Run(store, workspace, store.update(workspace, task), lease)
        live.store.append_log(workspace, task_id, {"level": "info", "event": note, "step_name": ""})
        yield live
    finally:
        lease.release()


def _not_awaiting(workspace: str, task: Task, action: str, want: TaskStatus) -> NotAwaitingApprovalError:
    """Why ``approve``/``reject`` cannot apply to ``task`` now, and what would help instead."""
    status, ref = task.status, f"{workspace} {task.id}"
    if is_terminal(status):
        hint = f"nothing to {action}"
    elif is_error(status):
        step = task.steps[task.current_step].name if task.current_step < len(task.steps) else ""
        failed = f"step {step!r} did not finish; " if step else ""
        hint = f"{failed}`atlas-tasks run {ref}` retries it, `atlas-tasks abandon {ref}` gives it up"
    elif status == TaskStatus.PENDING:
        hint = f"it has not run yet; `atlas-tasks run {ref}` starts it"
    elif ready_to_continue(task):
        hint = f"it was approved already and waits to continue; `atlas-tasks run {ref}` continues it"
    else:
        # running/validating, and _decide found no live runner: the run crashed before reaching a review step.
        hint = f"its runner died before reaching a review step; `atlas-tasks run {ref}` resumes it"
    allowed = tuple(str(s) for s in allowed_from(status))
    return NotAwaitingApprovalError(workspace, task.id, str(status), action, hint, str(want), allowed)


def _decide(store: LeasingStore, workspace: str, task_id: str, want: TaskStatus, reason: str) -> Task:
    holder = store.lease_holder(workspace, task_id)
    if holder is not None:
        raise TaskRunningError(workspace, task_id, holder)
    action = "reject" if want == TaskStatus.REJECTED else "approve"

    def change(task: Task) -> None:
        if task.status != TaskStatus.AWAITING_APPROVAL:
            raise _not_awaiting(workspace, task, action, want)
        index = task.current_step
        if index < len(task.steps) and task.steps[index].status == "awaiting_approval":
            step = task.steps[index]
            step.status, step.completed_at = ("success" if want != TaskStatus.REJECTED else "failed"), utcnow()
            task.step_results.append(
                StepResult(
                    step_index=index,
                    step_name=step.name,
                    status=step.status,
                    started_at=step.started_at or step.completed_at,
                    completed_at=step.completed_at,
                    output=reason,
                )
            )
            if want != TaskStatus.REJECTED:
                task.current_step = index + 1
        if want == TaskStatus.REJECTED or task.current_step >= len(task.steps):
            task.transition(want if want == TaskStatus.REJECTED else TaskStatus.COMPLETED, reason)
        else:
            task.transition(TaskStatus.RUNNING, reason)  # more steps: `run` continues from here

    return store.modify(workspace, task_id, change)


def approve(store: LeasingStore, workspace: str, task_id: str, reason: str = "approved") -> Task:
    """Approve a task waiting for a human: completes it, or (more steps left) makes it ready to run on.

    Raises:
        NotAwaitingApprovalError: the task is not awaiting approval (the message says its state and what helps).
        TaskRunningError: a live runner holds it.
    """
    return _decide(store, workspace, task_id, TaskStatus.COMPLETED, reason)


def reject(store: LeasingStore, workspace: str, task_id: str, reason: str = "rejected") -> Task:
    """Reject a task waiting for a human (terminal).

    Raises:
        NotAwaitingApprovalError: the task is not awaiting approval (the message says its state and what helps).
        TaskRunningError: a live runner holds it.
    """
    return _decide(store, workspace, task_id, TaskStatus.REJECTED, reason)


def _cannot_abandon(workspace: str, task: Task) -> InvalidTransitionError:
    """Why ``abandon`` cannot apply to ``task`` now (the Go table allows it from running and the failure statuses)."""
    status, ref = task.status, f"{workspace} {task.id}"
    if is_terminal(status):
        hint = "it is finished already; nothing to abandon"
    elif status == TaskStatus.PENDING:
        hint = f"it never ran; `atlas-tasks delete {ref}` removes it"
    elif status == TaskStatus.AWAITING_APPROVAL:
        hint = f"it waits for a review; `atlas-tasks reject {ref}` ends it"
    else:
        hint = f"its runner died; `atlas-tasks recover {workspace}` records that, then abandon it"
    allowed = tuple(str(s) for s in allowed_from(status))
    return CannotAbandonError(workspace, task.id, str(status), hint, allowed)


def abandon(store: LeasingStore, workspace: str, task_id: str, reason: str = "abandoned") -> Task:
    """Abandon a task that is not being run (terminal). A task with a live runner must be stopped first.

    Raises:
        CannotAbandonError: its status has no edge to abandoned (the message says what would help).
        TaskRunningError: a live runner holds it.
    """
    holder = store.lease_holder(workspace, task_id)
    if holder is not None:
        raise TaskRunningError(workspace, task_id, holder)

    def change(task: Task) -> None:
        if not can_transition(task.status, TaskStatus.ABANDONED):
            raise _cannot_abandon(workspace, task)
        task.transition(TaskStatus.ABANDONED, reason)

    return store.modify(workspace, task_id, change)


def recover(store: LeasingStore, workspace: str) -> list[Task]:
    """Record every crashed run of a workspace as interrupted (a passed deadline says so too), and delete every fork
    whose build died (see :func:`atlas_tasks.lifecycle.rewind.discard_incomplete_forks`); returns the tasks it
    changed."""
    from atlas_tasks.lifecycle import deadlines
    from atlas_tasks.lifecycle.rewind import discard_incomplete_forks

    discard_incomplete_forks(store, workspace)
    changed: list[Task] = []
    for task in store.list(workspace):
        if not is_interrupted(store, workspace, task):
            continue

        def mark(current: Task) -> None:
            # Checked again under the task lock: a runner may have taken the task since we listed it.
            holder = store.lease_holder(workspace, current.id)
            if holder is not None:
                raise TaskRunningError(workspace, current.id, holder)
            if current.status in ACTIVE_STATUSES:
                why = f"the {RUNNER_DIED} (no live run lease); recovered"
                passed = deadlines.deadline_of(current)
                if passed is not None and utcnow() >= passed:
                    # The deadline passed while nothing ran (the machine was off): applied now, as a stop.
                    stop = deadlines.stop_for(passed)
                    why = f"{why}; {stop.reason}"
                    current.metadata[lifecycle.STOP_REASON] = {
                        "kind": stop.kind,
                        "reason": stop.reason,
                        "at": utcnow().isoformat(),
                    }
                current.transition(TaskStatus.INTERRUPTED, why)

        try:
            changed.append(store.modify(workspace, task.id, mark))
        except TaskRunningError:
            continue
    return changed


__all__ = [
    "LeasingStore",
    "NotRunnableError",
    "Run",
    "StepContext",
    "StepFailedError",
    "StepStopped",
    "abandon",
    "approve",
    "failure_status",
    "is_interrupted",
    "ready_to_continue",
    "recover",
    "reject",
    "run",
]
