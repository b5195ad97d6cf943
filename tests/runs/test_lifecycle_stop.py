"""The runner's stop mechanism that cancel, deadlines and budgets share (atlas_tasks.lifecycle).

A stop asked for while a command runs terminates the command's tree (SIGTERM first, SIGKILL after the stop's grace),
records the step as stopped (not as a step failure), ends the task in the stop's Go status, and keeps the reason in
``metadata.stop_reason``. A stop asked for between steps halts before the next step runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from atlas_tasks import Step, Task, executors, lifecycle
from atlas_tasks.models import TaskStatus
from atlas_tasks.store import Store

# Says so when it gets SIGTERM, then exits; otherwise sleeps far longer than the test.
TRAPPING = "trap 'echo got-term; exit 3' TERM; sleep 30 & wait"


def _task(store: Store, ws: str, commands: list[str], steps: int = 1) -> Task:
    extra = [Step(name=f"after-{i}", type="validation", commands=["true"]) for i in range(steps - 1)]
    task = Task(
        description="stop me",
        steps=[Step(name="long", type="validation", commands=commands, shell=True), *extra],  # type: ignore[call-arg]
    )
    return store.create(ws, task)


def _stop_after(monkeypatch: pytest.MonkeyPatch, seconds_of_ticks: int, stop: lifecycle.Stop) -> list[int]:
    asked: list[int] = []

    def while_running(run: object) -> lifecycle.Stop | None:
        asked.append(1)
        return stop if len(asked) >= seconds_of_ticks else None

    monkeypatch.setattr(lifecycle, "while_running", while_running)
    return asked


@pytest.mark.stores("file", "memory")
@pytest.mark.parametrize(("grace", "said_term"), [(5.0, True), (0.0, False)])
def test_a_stop_while_running_terminates_the_command_and_records_why(
    store: Store, ws: str, monkeypatch: pytest.MonkeyPatch, grace: float, said_term: bool
) -> None:
    """With a grace the command hears SIGTERM (its trap prints); without one it is SIGKILLed (the control)."""
    task = _task(store, ws, [TRAPPING], steps=2)
    asked = _stop_after(monkeypatch, 2, lifecycle.Stop("cancelled", "cancelled by test", grace=grace))
    with store.run(ws, task.id) as live:
        done = executors.run_task(live)
    assert asked, "the runner asked whether to stop while the command ran"
    assert done.status == TaskStatus.INTERRUPTED
    stored = store.get(ws, task.id)
    assert stored.status == TaskStatus.INTERRUPTED
    assert stored.transitions[-1].reason == "cancelled by test (during step 'long')"
    assert "last_error" not in stored.metadata, "a stop is not the step's failure"
    assert stored.metadata["stop_reason"]["kind"] == "cancelled"
    assert stored.steps[0].status == "failed" and stored.steps[0].error == "cancelled by test"
    assert stored.steps[1].status == "pending", "no step after the stop ran"
    assert stored.current_step == 0, "the stopped step runs again on resume"
    report = json.loads(store.get_artifact(ws, task.id, "validation.1.json"))
    result = report["results"][-1]
    assert result["stopped"] == {"kind": "cancelled", "reason": "cancelled by test"}
    assert ("got-term" in result["stdout"]) is said_term


@pytest.mark.stores("file", "memory")
def test_a_stop_between_steps_halts_before_the_next_step(
    store: Store, ws: str, monkeypatch: pytest.MonkeyPatch, worktree: Path
) -> None:
    marker = worktree / "ran"
    task = _task(store, ws, ["true"], steps=1)
    task.steps.append(Step(name="never", type="validation", commands=[f"touch {marker}"]))
    task = store.update(ws, task)
    calls: list[int] = []

    def at_boundary(run: object) -> lifecycle.Stop | None:
        calls.append(1)
        return lifecycle.Stop("deadline", "the run's deadline passed") if len(calls) == 2 else None

    monkeypatch.setattr(lifecycle, "at_boundary", at_boundary)
    with store.run(ws, task.id) as live:
        executors.run_task(live)
    stored = store.get(ws, task.id)
    assert not marker.exists()
    assert stored.status == TaskStatus.INTERRUPTED
    assert stored.current_step == 1 and stored.steps[0].status == "success" and stored.steps[1].status == "pending"
    assert stored.metadata["stop_reason"]["reason"] == "the run's deadline passed"
    # The next run starts clean: the old stop stays in the transitions, not in the metadata.
    monkeypatch.setattr(lifecycle, "at_boundary", lambda run: None)
    with store.run(ws, task.id) as live:
        executors.run_task(live)
    again = store.get(ws, task.id)
    assert again.status == TaskStatus.COMPLETED and marker.exists()
    assert "stop_reason" not in again.metadata
