"""The transitions a run records say what happened: no claimed wait for approval, crashes called crashes."""

from __future__ import annotations

import pytest

from atlas_tasks import Step, Task, TaskStatus
from atlas_tasks.executors import run_task
from atlas_tasks.runs import approve, recover
from atlas_tasks.store import Store
from atlas_tasks.transitions import can_transition

STORE_KINDS = ("memory", "file")


def make(store: Store, ws: str, *steps: Step) -> Task:
    return store.create(ws, Task(description="trail", steps=list(steps)))


def cmd(name: str) -> Step:
    return Step(name=name, type="validation", commands=["true"])


def trail(task: Task) -> list[tuple[str, str, str]]:
    return [(str(t.from_status), str(t.to_status), t.reason) for t in task.transitions]


def test_task_without_review_step_completes_without_claiming_it_waited(store: Store, ws: str) -> None:
    """A template with no human step passes the Go statuses to completed, and the reasons say it did not wait."""
    task = make(store, ws, cmd("one"), cmd("two"))
    with store.run(ws, task.id) as live:
        run_task(live)
    done = store.get(ws, task.id)
    assert trail(done)[-3:] == [
        ("running", "validating", "all 2 steps done"),
        ("validating", "awaiting_approval", "no review step in this template, so nothing to wait for"),
        (
            "awaiting_approval",
            "completed",
            "all steps done; no review step in this template, so it completes without waiting",
        ),
    ]
    assert all(can_transition(a, b) for a, b, _ in trail(done))  # still the Go table's edges


def test_finish_after_an_earlier_approved_review_says_so(store: Store, ws: str) -> None:
    """When the review was approved earlier and later steps finish the run, the trail says no review is left."""
    task = make(store, ws, Step(name="review", type="human"), cmd("ship"))
    with store.run(ws, task.id) as live:
        run_task(live)
    approve(store, ws, task.id)
    with store.run(ws, task.id) as live:
        run_task(live)
    done = store.get(ws, task.id)
    assert done.status == TaskStatus.COMPLETED
    assert trail(done)[-1][2] == (
        "all steps done; the review ('review') was approved earlier; no review left, so it completes without waiting"
    )


def test_resumed_crash_is_called_a_crash(store: Store, ws: str) -> None:
    """A task left in running by a dead runner resumes with "resumed after a crash", not "resumed from running"."""
    task = make(store, ws, cmd("one"))
    store.modify(ws, task.id, lambda t: t.transition(TaskStatus.RUNNING, "driven by hand, then abandoned"))
    with store.run(ws, task.id) as live:
        run_task(live)
    reasons = [r for _, to, r in trail(store.get(ws, task.id)) if to in ("interrupted", "running")]
    assert reasons[-2:] == [
        "the previous runner died (its run lease was free)",
        "resumed after a crash (the previous runner died)",
    ]


def test_resume_after_recover_is_called_a_crash(store: Store, ws: str) -> None:
    """A crash recorded by `recover` first is still called a crash when the task resumes."""
    task = make(store, ws, cmd("one"))
    store.modify(ws, task.id, lambda t: t.transition(TaskStatus.RUNNING, "driven by hand, then abandoned"))
    assert [t.id for t in recover(store, ws)] == [task.id]
    with store.run(ws, task.id) as live:
        run_task(live)
    to_running = [r for _, to, r in trail(store.get(ws, task.id)) if to == "running"]
    assert to_running[-1] == "resumed after a crash (the previous runner died)"


def test_resume_after_ctrl_c_says_why_it_stopped(store: Store, ws: str) -> None:
    """A run stopped by Ctrl-C resumes with the reason it was interrupted, not as a crash."""
    task = make(store, ws, cmd("one"))
    with pytest.raises(KeyboardInterrupt), store.run(ws, task.id) as live:
        for step in live.remaining_steps():
            with live.step(step):
                raise KeyboardInterrupt
    with store.run(ws, task.id) as live:
        run_task(live)
    to_running = [r for _, to, r in trail(store.get(ws, task.id)) if to == "running"]
    assert to_running[-1] == "resumed after an interruption (step 'one' failed: interrupted by the user)"


def test_retry_of_failed_validation_names_the_failure(store: Store, ws: str) -> None:
    """Running a validation_failed task again is recorded as a retry after that failure."""
    task = make(store, ws, Step(name="check", type="validation", commands=["false"]))
    with pytest.raises(Exception, match="check"), store.run(ws, task.id) as live:
        run_task(live)
    store.modify(ws, task.id, lambda t: setattr(t.steps[0], "commands", ["true"]))
    with store.run(ws, task.id) as live:
        run_task(live)
    to_running = [r for _, to, r in trail(store.get(ws, task.id)) if to == "running"]
    assert to_running[-1].startswith("retried after validation_failed (step 'check' failed: ")
