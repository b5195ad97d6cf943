"""The run API in-process: checkpoints per step, failure statuses, approval, leases, recover."""

from __future__ import annotations

import pytest

from atlas_tasks import Step, Task, TaskRunningError, TaskStatus
from atlas_tasks.executors import run_task
from atlas_tasks.runs import NotRunnableError, abandon, approve, is_interrupted, recover, reject
from atlas_tasks.store import Store

#: Runs take leases and checkpoint through the store: every backend.
STORE_KINDS = ("memory", "file", "postgres")


def make(store: Store, ws: str, *steps: Step) -> Task:
    return store.create(ws, Task(description="run me", steps=list(steps)))


def cmd(name: str, command: str = "true", kind: str = "validation") -> Step:
    return Step(name=name, type=kind, commands=[command])


def test_each_step_is_checkpointed_before_the_next(store: Store, ws: str) -> None:
    """Inside step 2, step 1 is already recorded as success on disk, with current_step pointing at step 2."""
    task = make(store, ws, cmd("one"), cmd("two"))
    with store.run(ws, task.id) as run:
        for step in run.remaining_steps():
            with run.step(step):
                on_disk = store.get(ws, task.id)
                assert on_disk.steps[on_disk.current_step].status == "running"
                if step.name == "two":
                    assert on_disk.steps[0].status == "success" and on_disk.current_step == 1
                    assert [r.step_name for r in on_disk.step_results] == ["one"]
    done = store.get(ws, task.id)
    assert done.status == TaskStatus.COMPLETED and done.current_step == 2


def test_step_context_logs_and_artifacts(store: Store, ws: str) -> None:
    """A step's log lines and artifacts are stored, and its StepResult points at the artifact."""
    task = make(store, ws, Step(name="analyze", type="ai"))
    with store.run(ws, task.id) as run:
        for step in run.remaining_steps():
            with run.step(step) as s:
                s.log("thinking", tokens=12)
                s.artifact("analysis.md", "root cause", versioned=True)
                s.output = "found it"
    done = store.get(ws, task.id)
    assert done.step_results[0].artifact_path == "artifacts/analysis.1.md"
    assert done.step_results[0].output == "found it"
    events = [(line["event"], line.get("step_name")) for line in store.read_log(ws, task.id)]
    assert ("thinking", "analyze") in events


@pytest.mark.parametrize(
    ("kind", "status"),
    [("validation", "validation_failed"), ("ci", "ci_failed"), ("git", "gh_failed"), ("ai", "interrupted")],
)
def test_failed_step_maps_to_status(store: Store, ws: str, kind: str, status: str) -> None:
    """A step that raises records a failed StepResult and moves the task to its type's failure status."""
    task = make(store, ws, Step(name="s", type=kind))
    with pytest.raises(RuntimeError, match="boom"), store.run(ws, task.id) as run:
        for step in run.remaining_steps():
            with run.step(step):
                raise RuntimeError("boom")
    failed = store.get(ws, task.id)
    assert failed.status == status
    assert failed.steps[0].status == "failed" and failed.steps[0].error == "boom"
    assert failed.step_results[-1].status == "failed"
    assert store.lease_holder(ws, task.id) is None


def test_failed_task_resumes_at_failed_step(store: Store, ws: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    """After a failure, a new run retries the failed step (attempts 2) and never re-runs the step before it."""
    flag = tmp_path_factory.mktemp("flag") / "ok"
    task = make(store, ws, cmd("first"), Step(name="check", type="validation", commands=[f"test -e {flag}"]))
    with pytest.raises(Exception, match="check"), store.run(ws, task.id) as run:
        run_task(run)
    assert store.get(ws, task.id).status == TaskStatus.VALIDATION_FAILED
    flag.touch()
    with store.run(ws, task.id) as run:
        run_task(run)
    done = store.get(ws, task.id)
    assert done.status == TaskStatus.COMPLETED
    assert [s.attempts for s in done.steps] == [1, 2]
    assert [r.step_name for r in done.step_results] == ["first", "check", "check"]


def test_second_runner_refused(store: Store, ws: str) -> None:
    """While a run holds the lease, another run of the task fails with TaskRunningError naming the holder."""
    task = make(store, ws, cmd("one"))
    with store.run(ws, task.id):
        with pytest.raises(TaskRunningError) as info:
            store.run(ws, task.id).__enter__()
        assert "pid" in str(info.value) and str(info.value.holder["pid"]) in str(info.value)
        assert not is_interrupted(store, ws, store.get(ws, task.id))


def test_human_step_waits_then_approve_continues(store: Store, ws: str) -> None:
    """A human step stops the run at awaiting_approval; approve lets the next run finish the remaining steps."""
    task = make(store, ws, cmd("build"), Step(name="review", type="human"), cmd("ship"))
    with store.run(ws, task.id) as run:
        run_task(run)
    waiting = store.get(ws, task.id)
    assert waiting.status == TaskStatus.AWAITING_APPROVAL and waiting.current_step == 1
    with pytest.raises(NotRunnableError, match="approve"):
        store.run(ws, task.id).__enter__()
    approved = approve(store, ws, task.id, "looks good")
    assert approved.status == TaskStatus.RUNNING and approved.current_step == 2
    assert not is_interrupted(store, ws, approved)
    with store.run(ws, task.id) as run:
        run_task(run)
    assert store.get(ws, task.id).status == TaskStatus.COMPLETED


def test_final_review_approve_completes(store: Store, ws: str) -> None:
    """Approving a review that is the last step completes the task."""
    task = make(store, ws, cmd("build"), Step(name="review", type="human"))
    with store.run(ws, task.id) as run:
        run_task(run)
    assert approve(store, ws, task.id).status == TaskStatus.COMPLETED


def test_reject_is_terminal(store: Store, ws: str) -> None:
    """Rejecting a waiting task ends it; it cannot be run again."""
    task = make(store, ws, Step(name="review", type="human"))
    with store.run(ws, task.id) as run:
        run_task(run)
    assert reject(store, ws, task.id, "no").status == TaskStatus.REJECTED
    with pytest.raises(NotRunnableError):
        store.run(ws, task.id).__enter__()


def test_crashed_run_is_interrupted_and_recovered(store: Store, ws: str) -> None:
    """A task left running without a live lease is reported interrupted, and recover records it."""
    task = make(store, ws, cmd("one"))
    task.transition(TaskStatus.RUNNING)
    task = store.update(ws, task)  # as a runner that died right after starting would leave it
    assert is_interrupted(store, ws, task)
    (recovered,) = recover(store, ws)
    assert recovered.status == TaskStatus.INTERRUPTED
    assert recover(store, ws) == []


def test_run_that_finishes_between_read_and_lease_check_is_not_called_crashed(store: Store, ws: str) -> None:
    """A copy read while the runner was alive, checked after it finished and let go of its lease, is not a crash.

    The runner's last checkpoint and its lease release are placed between the reader's get and its lease check.
    """
    task = make(store, ws, cmd("one"))
    with store.run(ws, task.id) as run:
        seen = store.get(ws, task.id)  # a dashboard's copy: running, with a live runner
        assert seen.status == TaskStatus.RUNNING
        assert not is_interrupted(store, ws, seen)
        run_task(run)
    assert store.get(ws, task.id).status == TaskStatus.COMPLETED
    assert store.lease_holder(ws, task.id) is None
    assert not is_interrupted(store, ws, seen)  # stale copy, free lease: the re-read shows the run moved on


def test_resume_after_crash_retries_in_flight_step(store: Store, ws: str) -> None:
    """A step left 'running' by a dead runner is recorded as interrupted and retried with attempts + 1."""
    task = make(store, ws, cmd("one"), cmd("two"))
    task.transition(TaskStatus.RUNNING)
    task.steps[0].status, task.steps[0].attempts = "success", 1
    task.current_step = 1
    task.steps[1].status, task.steps[1].attempts = "running", 1
    store.update(ws, task)
    with store.run(ws, task.id) as run:
        run_task(run)
    done = store.get(ws, task.id)
    assert done.status == TaskStatus.COMPLETED
    assert [s.attempts for s in done.steps] == [1, 2]
    assert [(r.step_name, r.status) for r in done.step_results] == [("two", "failed"), ("two", "success")]
    assert ("running", "interrupted") in [(t.from_status, t.to_status) for t in done.transitions]


def test_abandon_refused_while_running(store: Store, ws: str) -> None:
    """abandon refuses a task with a live runner and ends one without."""
    task = make(store, ws, cmd("one"))
    with store.run(ws, task.id), pytest.raises(TaskRunningError):
        abandon(store, ws, task.id)
    assert abandon(store, ws, task.id).status == TaskStatus.ABANDONED


def test_step_without_commands_fails_clearly(store: Store, ws: str) -> None:
    """A validation step with no commands fails saying how to configure them."""
    task = make(store, ws, Step(name="validate", type="validation"))
    with pytest.raises(Exception, match="validate CMD"), store.run(ws, task.id) as run:
        run_task(run)


def test_ai_step_without_command_fails_clearly(store: Store, ws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An AI step with no AI command configured fails saying how to configure one."""
    monkeypatch.delenv("ATLAS_TASKS_AI_COMMAND", raising=False)
    task = make(store, ws, Step(name="analyze", type="ai"))
    with pytest.raises(Exception, match="ATLAS_TASKS_AI_COMMAND"), store.run(ws, task.id) as run:
        run_task(run)
    assert store.get(ws, task.id).status == TaskStatus.INTERRUPTED


def test_ai_step_runs_configured_command(store: Store, ws: str) -> None:
    """An AI step pipes its prompt into the configured command and keeps the output as an artifact."""
    task = Task(description="d", steps=[Step(name="analyze", type="ai", prompt="hello agent")])
    task.config.variables["ai_command"] = "cat"
    task = store.create(ws, task)
    with store.run(ws, task.id) as run:
        run_task(run)
    assert store.get_artifact(ws, task.id, "analyze.1.md") == b"hello agent"


def test_command_timeout_fails_step(store: Store, ws: str) -> None:
    """A command that outlives timeout_seconds is killed and fails the step."""
    task = make(store, ws, Step(name="slow", type="ci", commands=["sleep 30"], timeout_seconds=1))
    with pytest.raises(Exception, match="timed out"), store.run(ws, task.id) as run:
        run_task(run)
    assert store.get(ws, task.id).status == TaskStatus.CI_FAILED
