"""Retry policies: a failing step runs again after a deterministic backoff, each attempt its own StepResult."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from atlas_tasks import Step, Task, executors
from atlas_tasks.backends.memory import MemoryStore
from atlas_tasks.errors import GuardValueError, StepFailedError
from atlas_tasks.lifecycle import retries
from atlas_tasks.lifecycle.retries import RetryPolicy
from atlas_tasks.models import TaskStatus
from atlas_tasks.store import LogEntry, Store

ALL_KINDS = ("file", "memory", "postgres")


class FakeClock:
    """Time that passes only when the runner sleeps; remembers every sleep."""

    def __init__(self) -> None:
        self.t = 0.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


def _task(store: Store, ws: str, commands: list[str], *, retry: dict[str, Any] | None = None, **step: Any) -> Task:
    extra: dict[str, Any] = {"shell": True}
    if retry is not None:
        extra["retry"] = retry
    fields = {"name": "flaky", "type": "validation", **step}
    return store.create(ws, Task(description="retry me", steps=[Step(commands=commands, **fields, **extra)]))


def test_delays_are_the_seeded_schedule() -> None:
    """The schedule doubles from `initial`, is capped by `max_delay`, and a seeded jitter makes it exact."""
    policy = RetryPolicy(max_attempts=5, initial=1.0, factor=2.0, max_delay=5.0, jitter=0.0)
    assert retries.delays(policy) == [1.0, 2.0, 4.0, 5.0]
    jittered = RetryPolicy(max_attempts=3, initial=10.0, factor=2.0, max_delay=60.0, jitter=0.1)
    rng = random.Random(7)
    want = [round(10.0 * (1 + 0.1 * (2 * rng.random() - 1)), 3), round(20.0 * (1 + 0.1 * (2 * rng.random() - 1)), 3)]
    assert retries.delays(jittered, random.Random(7)) == want
    assert want != [10.0, 20.0]


@pytest.mark.parametrize(
    "doc",
    [{"max_attempts": 0}, {"initial": -1}, {"factor": 0.5}, {"jitter": 2}, {"retry_on": ["oops"]}, {"tries": 3}],
)
def test_bad_policies_are_refused_with_the_field(doc: dict[str, Any]) -> None:
    """A nonsensical policy value raises GuardValueError naming the key."""
    with pytest.raises(GuardValueError, match=r"retry"):
        RetryPolicy.from_dict(doc)


@pytest.mark.stores(*ALL_KINDS)
def test_a_flaky_step_is_retried_with_the_exact_backoff(store: Store, ws: str, worktree: Path) -> None:
    """A step failing twice then passing runs 3 times, waits exactly the seeded delays, one StepResult per try."""
    counter = worktree / "count"
    cmd = f"n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; [ $n -ge 3 ]"
    task = _task(store, ws, [cmd], retry={"max_attempts": 4, "initial": 2.0, "factor": 3.0, "jitter": 0.1})
    clock = FakeClock()
    with store.run(ws, task.id) as live:
        done = executors.run_task(live, clock=clock, rng=random.Random(42))
    want = retries.delays(RetryPolicy(max_attempts=4, initial=2.0, factor=3.0, jitter=0.1), random.Random(42))[:2]
    assert done.status == TaskStatus.COMPLETED
    stored = store.get(ws, task.id)
    assert [r.status for r in stored.step_results] == ["failed", "failed", "success"]
    assert [r.metadata.get("attempt") for r in stored.step_results[:2]] == [1, 2]
    assert [r.metadata["retry_in"] for r in stored.step_results[:2]] == want
    assert sum(clock.slept) == pytest.approx(sum(want))
    assert stored.steps[0].attempts == 3
    assert any(e.get("event", "").startswith("retrying in") for e in store.read_log(ws, task.id))


@pytest.mark.stores("file", "memory")
def test_retry_after_raises_the_delay(store: Store, ws: str) -> None:
    """A failed command printing `Retry-After: 7` waits 7 s, not the 1 s backoff."""
    task = _task(store, ws, ["echo 'Retry-After: 7'; exit 1"], retry={"max_attempts": 2, "initial": 1, "jitter": 0})
    clock = FakeClock()
    with store.run(ws, task.id) as live, pytest.raises(StepFailedError):
        executors.run_task(live, clock=clock)
    stored = store.get(ws, task.id)
    assert stored.step_results[0].metadata["retry_in"] == 7.0
    assert sum(clock.slept) == pytest.approx(7.0)


@pytest.mark.stores(*ALL_KINDS)
def test_exhausted_retries_end_in_the_go_error_status(store: Store, ws: str) -> None:
    """After max_attempts failures the task ends as a failing step always did (validation -> validation_failed)."""
    task = _task(store, ws, ["exit 1"], retry={"max_attempts": 3, "initial": 1, "jitter": 0})
    with store.run(ws, task.id) as live, pytest.raises(StepFailedError):
        executors.run_task(live, clock=FakeClock())
    stored = store.get(ws, task.id)
    assert stored.status == TaskStatus.VALIDATION_FAILED
    assert [r.status for r in stored.step_results] == ["failed"] * 3
    assert stored.steps[0].attempts == 3


@pytest.mark.stores("file", "memory")
@pytest.mark.parametrize(("codes", "runs"), [([75], 2), ([2], 1)])
def test_exit_codes_filter_which_failures_retry(store: Store, ws: str, codes: list[int], runs: int) -> None:
    """Only the listed exit codes retry (exit 75 with [75] retries; with [2] it does not)."""
    task = _task(store, ws, ["exit 75"], retry={"max_attempts": 2, "initial": 0, "jitter": 0, "exit_codes": codes})
    with store.run(ws, task.id) as live, pytest.raises(StepFailedError):
        executors.run_task(live, clock=FakeClock())
    assert len(store.get(ws, task.id).step_results) == runs


@pytest.mark.stores("file", "memory")
@pytest.mark.parametrize(("retry_on", "runs"), [(["timeout"], 2), (["failed"], 1)])
def test_a_timeout_is_classified_as_timeout(store: Store, ws: str, retry_on: list[str], runs: int) -> None:
    """A step that times out retries under retry_on [timeout] and not under [failed]."""
    task = _task(
        store, ws, ["sleep 30"], timeout_seconds=1, retry={"max_attempts": 2, "initial": 0, "retry_on": retry_on}
    )
    with store.run(ws, task.id) as live, pytest.raises(StepFailedError):
        executors.run_task(live, clock=FakeClock())
    assert len(store.get(ws, task.id).step_results) == runs


@pytest.mark.stores(*ALL_KINDS)
@pytest.mark.parametrize(("own", "runs"), [(None, 1), ({"max_attempts": 2, "initial": 0, "side_effects": True}, 2)])
def test_side_effect_steps_retry_only_by_their_own_policy(
    store: Store, ws: str, own: dict[str, Any] | None, runs: int
) -> None:
    """A `commit` step ignores the task default policy; its own policy with side_effects: true retries it."""
    task = Task(
        description="commit",
        steps=[Step(name="commit", type="validation", commands=["exit 1"], **({"retry": own} if own else {}))],
        metadata={retries.TASK_POLICY: {"max_attempts": 3, "initial": 0}},
    )
    task = store.create(ws, task)
    with store.run(ws, task.id) as live, pytest.raises(StepFailedError):
        executors.run_task(live, clock=FakeClock())
    assert len(store.get(ws, task.id).step_results) == runs


@pytest.mark.stores("file", "memory")
def test_the_task_default_policy_retries_ordinary_steps(store: Store, ws: str) -> None:
    """metadata.retry_policy applies to a step with no policy of its own."""
    task = store.create(
        ws,
        Task(
            description="default",
            steps=[Step(name="check", type="validation", commands=["exit 1"])],
            metadata={retries.TASK_POLICY: {"max_attempts": 3, "initial": 0}},
        ),
    )
    with store.run(ws, task.id) as live, pytest.raises(StepFailedError):
        executors.run_task(live, clock=FakeClock())
    assert len(store.get(ws, task.id).step_results) == 3
    assert retries.document(store.get(ws, task.id))["retry"]["attempts_left"] == 0


RUNNER = textwrap.dedent(
    """
    import sys
    from atlas_tasks import executors
    from atlas_tasks.backends.file import FileStore
    store = FileStore(sys.argv[1])
    with store.run(sys.argv[2], sys.argv[3]) as live:
        try:
            executors.run_task(live)
        except Exception as exc:
            print(exc)
    """
)


@pytest.mark.stores("file")
def test_attempts_survive_a_kill_during_the_backoff(store: Store, ws: str, tmp_path: Path) -> None:
    """A runner killed -9 while waiting to retry resumes the step as attempt 2 (not 1), and its first try counts."""
    task = _task(store, ws, ["exit 1"], retry={"max_attempts": 2, "initial": 600, "max_delay": 600, "jitter": 0})
    root = str(getattr(store, "home"))  # noqa: B009 - the FileStore's directory
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, root, ws, task.id], env=env)
    try:
        end = time.monotonic() + 60
        # In the backoff once the failed attempt is checkpointed (its result, the step pending again); the
        # "retrying in" log line follows that checkpoint.
        while time.monotonic() < end:
            now = store.get(ws, task.id)
            if [r.metadata.get("attempt") for r in now.step_results] == [1] and now.steps[0].status == "pending":
                break
            time.sleep(0.1)
        else:
            pytest.fail("the runner never started its backoff")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    mid = store.get(ws, task.id)
    assert mid.status == TaskStatus.RUNNING, "between attempts the task stays running (a Go status)"
    assert mid.steps[0].attempts == 1
    with store.run(ws, task.id) as live, pytest.raises(StepFailedError):
        executors.run_task(live, clock=FakeClock())
    stored = store.get(ws, task.id)
    assert stored.steps[0].attempts == 2
    assert stored.status == TaskStatus.VALIDATION_FAILED, "attempt 2 of 2 failed: no retry left"
    assert [r.metadata.get("attempt") for r in stored.step_results] == [1, None]


class _WitnessStore(MemoryStore):
    """A memory store noting the stored task at the moment the "retrying in" line is appended (a crash's view)."""

    def __init__(self) -> None:
        super().__init__()
        self.at_announcement: list[Task] = []

    def append_log(self, workspace: str, task_id: str, entry: LogEntry) -> None:
        if str(entry.get("event", "")).startswith("retrying in"):
            self.at_announcement.append(self.get(workspace, task_id))
        super().append_log(workspace, task_id, entry)


def test_the_retry_is_announced_only_after_its_checkpoint(worktree: Path) -> None:
    """When "retrying in" is logged, the failed attempt's result and the pending step are already stored."""
    store = _WitnessStore()
    store.create_workspace("w", worktree_path=str(worktree))
    task = _task(store, "w", ["exit 1"], retry={"max_attempts": 2, "initial": 1, "jitter": 0})
    with store.run("w", task.id) as live, pytest.raises(StepFailedError):
        executors.run_task(live, clock=FakeClock())
    [seen] = store.at_announcement
    assert [r.metadata.get("attempt") for r in seen.step_results] == [1], "the attempt was not yet checkpointed"
    assert seen.steps[0].status == "pending"
